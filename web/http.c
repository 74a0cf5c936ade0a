/*
 * web/http.c — the API protocol: reads a request (method, path, headers, bounded body), checks
 * its origin, its token and its rate, routes it, and writes the answer. The handlers are in
 * rest.c and sse.c; they ask http_may_publish()/http_may_subscribe() about the token's ACL.
 */
#include "http.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "rest.h"
#include "sse.h"

#define REALM "Bearer realm=\"mqtt-web-bridge\""

/*
 * A lingering close, as nginx's: after an answer given before the body was read (413, 401,
 * 403, 429), the rest of the body is read and dropped before the connection closes, since a
 * close with unread data resets it, and a client that writes its whole body before reading
 * (http.client, requests) would see a broken pipe instead of the answer. Bounded: a body with
 * more left to come than LINGER_MAX_BYTES is not waited for, nor one slower than LINGER_MS.
 */
#define LINGER_MAX_BYTES (8ULL * 1024 * 1024)
#define LINGER_MS        5000
/* Room for a Content-Length value (20 digits at most) and for an Accept header worth reading. */
#define CONTENT_LENGTH_MAX 32
#define ACCEPT_MAX         512
/* The answer when even the answer could not be made. */
#define OOM_JSON "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}"

void http_header(struct http_conn *c, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (c->nheaders >= HTTP_MAX_HEADERS)
		return;
	c->headers[c->nheaders].name = name;
	va_start(ap, fmt);
	vsnprintf(c->headers[c->nheaders].value, sizeof(c->headers[0].value), fmt, ap);
	va_end(ap);
	c->nheaders++;
}

/* The answer's body lives after LWS_PRE bytes of room for lws_write(). */
static int resp_reset(struct http_conn *c)
{
	static const uint8_t room[LWS_PRE];

	c->resp.len = 0;
	return buf_append(&c->resp, room, LWS_PRE);
}

void http_respond(struct http_conn *c, int status, const char *type, const void *body, size_t len)
{
	if (c->answered)
		return;
	if (resp_reset(c) || (len && buf_append(&c->resp, body, len))) {
		status = 500;
		type = "application/json";
		c->resp.len = LWS_PRE;
	}
	c->status = status;
	snprintf(c->resp_type, sizeof(c->resp_type), "%s", type);
	c->answered = true;
	c->ctx->stats.http_responses[status / 100 % 6]++;
	http_want_write(c);
}

void http_json(struct http_conn *c, int status, void *json)
{
	char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;

	if (text) {
		http_respond(c, status, "application/json", text, strlen(text));
		free(text);
	} else {
		http_respond(c, 500, "application/json", OOM_JSON, WEB_LITLEN(OOM_JSON));
	}
	json_decref(json);
}

void http_error(struct http_conn *c, int status, const char *code, const char *fmt, ...)
{
	char message[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (status >= 400 && status < 500)
		c->ctx->stats.rest_refused++;
	http_json(c, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

void http_broker_down(struct http_conn *c)
{
	http_header(c, "retry-after:", "5");
	http_error(c, 503, "broker_unavailable", "the bridge is not connected to the broker");
}

bool http_arg(struct http_conn *c, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);
	char frag[HTTP_ARG_MAX];

	for (int i = 0;
	     lws_hdr_copy_fragment(c->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
	     i++) {
		if (!strncmp(frag, name, nlen) && (frag[nlen] == '=' || !frag[nlen])) {
			const char *v = frag[nlen] ? frag + nlen + 1 : "";
			if (strlen(v) >= cap)
				return false;
			strcpy(out, v);
			return true;
		}
	}
	return false;
}

bool http_args_known(struct http_conn *c, const char *const *known)
{
	char frag[512];

	for (int i = 0;
	     lws_hdr_copy_fragment(c->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
	     i++) {
		size_t nlen = strcspn(frag, "=");
		bool ok = false;
		/* A bare "?" leaves lws with an empty (or lone "/") fragment: nothing was asked. */
		if (!nlen || (nlen == 1 && frag[0] == '/'))
			continue;
		/* Every endpoint takes the token this way too (EventSource cannot set headers). */
		if (nlen == WEB_LITLEN("access_token") && !strncmp(frag, "access_token", nlen))
			continue;
		for (int k = 0; known[k] && !ok; k++)
			ok = strlen(known[k]) == nlen && !strncmp(frag, known[k], nlen);
		if (!ok) {
			http_error(c, 400, "invalid_parameter", "unknown query parameter '%.*s'",
				   (int)(nlen > 64 ? 64 : nlen), frag);
			return false;
		}
	}
	return true;
}

/* ---- tokens, ACLs and the request rate (doc/design.md §4) ---- */

bool http_may_publish(struct http_conn *c, const char *topic)
{
	if (!c->token)
		return !c->ctx->auth->enabled;
	return auth_may_publish(c->token, topic, strlen(topic));
}

bool http_may_subscribe(struct http_conn *c, const char *filter)
{
	if (!c->token)
		return !c->ctx->auth->enabled;
	return auth_may_subscribe(c->token, filter, strlen(filter));
}

void http_forbidden(struct http_conn *c, const char *action, const char *what)
{
	const char *name = c->token ? c->token->name : "";
	char quoted[160];

	c->ctx->stats.refused_forbidden++;
	log_msg(LOG_DEBUG, "http", "refused status=403 token=%s action=\"%s\" what=%s", name,
		action, log_quote(quoted, sizeof(quoted), what, strlen(what)));
	http_error(c, 403, "forbidden", "the token '%s' may not %s '%s'", name, action, what);
}

/*
 * The secret the request offers into @out (@cap bytes): "Authorization: Bearer S" wins over
 * "?access_token=S". 0: none offered; 1: offered, *@len bytes (0 when it did not fit, which
 * no token matches).
 */
static int offered_secret(struct http_conn *c, char *out, size_t cap, size_t *len)
{
	int n = lws_hdr_copy(c->wsi, out, (int)cap, WSI_TOKEN_HTTP_AUTHORIZATION);
	char *s;

	*len = 0;
	if (n < 0)
		return 1;
	/* The scheme is case-insensitive (RFC 9110 §11.1); another scheme is not ours to read. */
	if (n > (int)WEB_LITLEN("Bearer ") && !strncasecmp(out, "Bearer ", WEB_LITLEN("Bearer "))) {
		for (s = out + WEB_LITLEN("Bearer "); *s == ' '; s++)
			;
		n -= (int)(s - out);
		while (n && s[n - 1] == ' ')
			n--;
		memmove(out, s, (size_t)n);
		*len = (size_t)n;
		return 1;
	}
	for (int i = 0; (n = lws_hdr_fragment_length(c->wsi, WSI_TOKEN_HTTP_URI_ARGS, i)) > 0;
	     i++) {
		/* An argument longer than any secret is not one. */
		if ((size_t)n >= cap ||
		    lws_hdr_copy_fragment(c->wsi, out, (int)cap, WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
			continue;
		if (!strncmp(out, "access_token=", WEB_LITLEN("access_token="))) {
			*len = (size_t)n - WEB_LITLEN("access_token=");
			memmove(out, out + WEB_LITLEN("access_token="), *len + 1);
			return 1;
		}
	}
	return 0;
}

/* A known token, or false when it answered 401. The secret is not kept, logged or echoed. */
static bool authenticate(struct http_conn *c)
{
	char secret[HTTP_ARG_MAX], peer[GUARD_ADDR_MAX];
	size_t len;
	int offered = offered_secret(c, secret, sizeof(secret), &len);
	const struct auth_token *t = offered ? auth_find(c->ctx->auth, secret, len) : NULL;

	explicit_bzero(secret, sizeof(secret));
	if (t) {
		c->auth = auth_ref(c->ctx->auth);
		c->token = t;
		return true;
	}
	c->ctx->stats.refused_unauthorized++;
	guard_client_addr(c->ctx, c->wsi, peer, sizeof(peer));
	log_msg(LOG_DEBUG, "http", "refused status=401 reason=%s peer=%s",
		offered ? "unknown_token" : "no_token", peer);
	if (offered) {
		http_header(c, "www-authenticate:", "%s, error=\"invalid_token\"", REALM);
		http_error(c, 401, "invalid_token", "the access token is not valid");
	} else {
		http_header(c, "www-authenticate:", "%s", REALM);
		http_error(c, 401, "unauthorized",
			   "an access token is needed: 'Authorization: Bearer TOKEN' or "
			   "'?access_token=TOKEN'");
	}
	return false;
}

/* Within limits.requests_per_minute (per token, else per address), or false: answered 429. */
static bool within_rate(struct http_conn *c)
{
	char peer[GUARD_ADDR_MAX];
	const char *key = peer;
	long wait;

	if (c->token)
		key = c->token->name;
	else
		guard_client_addr(c->ctx, c->wsi, peer, sizeof(peer));
	wait = ratelimit_take(c->ctx->ratelimit, key, strlen(key), clock_mono_ms());
	/* -ENOMEM: a limiter that cannot remember lets the request through rather than refuse. */
	if (wait <= 0)
		return true;
	c->ctx->stats.refused_rate_limited++;
	log_msg(LOG_DEBUG, "http", "refused status=429 %s=%s retry_after_s=%ld",
		c->token ? "token" : "peer", key, wait);
	http_header(c, "retry-after:", "%ld", wait);
	http_error(c, 429, "rate_limited", "over %ld requests a minute; try again in %ld s",
		   c->ctx->cfg->limits.requests_per_minute, wait);
	return false;
}

/*
 * Who may ask (doc/design.md §4): /api/v1/health is open to all, for load balancers and
 * monitors, and /api/v1/info, which tells a page whether it must sign in;
 * /metrics needs a token only with auth.metrics "token", and neither counts against the rate.
 * false: answered.
 */
static bool admit(struct http_conn *c)
{
	struct web_ctx *ctx = c->ctx;
	bool open = !c->is_metrics && (!strcmp(c->path, "/health") || !strcmp(c->path, "/info"));

	if (open)
		return true;
	if (ctx->auth->enabled && (!c->is_metrics || ctx->cfg->auth.metrics == METRICS_TOKEN) &&
	    !authenticate(c))
		return false;
	if (c->is_metrics || !ctx->ratelimit)
		return true;
	return within_rate(c);
}

static int add_cors(struct http_conn *c, unsigned char **p, unsigned char *end)
{
	static const char methods[] = "GET, POST, PUT, DELETE, OPTIONS";
	static const char headers[] = "Content-Type, Authorization, Accept, Last-Event-ID";
	/* So that a page's script can read why it was refused and when to try again. */
	static const char expose[] = "Retry-After, WWW-Authenticate";

	if (!c->has_origin)
		return 0;
	if (lws_add_http_header_by_name(c->wsi, (unsigned char *)"access-control-allow-origin:",
					(unsigned char *)c->origin, (int)strlen(c->origin), p,
					end) ||
	    lws_add_http_header_by_name(c->wsi, (unsigned char *)"vary:", (unsigned char *)"Origin",
					WEB_LITLEN("Origin"), p, end))
		return -1;
	if (c->method != HTTP_OPTIONS)
		return lws_add_http_header_by_name(
			   c->wsi, (unsigned char *)"access-control-expose-headers:",
			   (unsigned char *)expose, sizeof(expose) - 1, p, end)
			   ? -1
			   : 0;
	if (lws_add_http_header_by_name(c->wsi, (unsigned char *)"access-control-allow-methods:",
					(unsigned char *)methods, sizeof(methods) - 1, p, end) ||
	    lws_add_http_header_by_name(c->wsi, (unsigned char *)"access-control-allow-headers:",
					(unsigned char *)headers, sizeof(headers) - 1, p, end) ||
	    lws_add_http_header_by_name(c->wsi, (unsigned char *)"access-control-max-age:",
					(unsigned char *)"600", WEB_LITLEN("600"), p, end))
		return -1;
	return 0;
}

/* ---- reading the request ---- */

static enum http_method method_of(struct lws *wsi)
{
	char *uri;
	int len;

	switch (lws_http_get_uri_and_method(wsi, &uri, &len)) {
	case LWSHUMETH_GET:
		return HTTP_GET;
	case LWSHUMETH_POST:
		return HTTP_POST;
	case LWSHUMETH_PUT:
		return HTTP_PUT;
	case LWSHUMETH_DELETE:
		return HTTP_DELETE;
	case LWSHUMETH_OPTIONS:
		return HTTP_OPTIONS;
	case LWSHUMETH_HEAD:
		return HTTP_HEAD;
	default:
		return HTTP_OTHER;
	}
}

static void copy_header(struct lws *wsi, enum lws_token_indexes token, char *out, size_t cap,
			bool *present)
{
	int n = lws_hdr_copy(wsi, out, (int)cap, token);

	if (n < 0)
		n = 0;
	out[n] = '\0';
	if (present)
		*present = n > 0;
}

static void dispatch(struct http_conn *c)
{
	if (c->is_metrics) {
		metrics_serve(c);
		return;
	}
	if (!strcmp(c->path, "/stream")) {
		sse_start(c);
		return;
	}
	rest_route(c);
}

/*
 * lws 4.1 does not read an h1 connection during a transaction, so a client that closes while
 * its answer waits (for the broker, or for the next event of a stream) would wake poll() at
 * once, again and again. Such a connection is not polled for reading while nothing is to be
 * written; lws 4.1 serves an h1 connection's POLLOUT only while it is polled for reading, so
 * it is again while something is. Streams notice a client gone with sse_check_peers().
 */
void http_pause_rx(struct http_conn *c)
{
	/* What lws still holds of a partial write goes out on POLLOUT: not while paused. */
	if (c->rx_paused || lws_get_network_wsi(c->wsi) != c->wsi || lws_partial_buffered(c->wsi))
		return;
	c->rx_paused = true;
	lws_rx_flow_control(c->wsi, 0);
}

void http_want_write(struct http_conn *c)
{
	if (c->rx_paused) {
		c->rx_paused = false;
		lws_rx_flow_control(c->wsi, 1);
	}
	lws_callback_on_writable(c->wsi);
}

static void route(struct http_conn *c)
{
	dispatch(c);
	if (!c->answered)
		http_pause_rx(c);
}

/* The request line and the headers the handlers read. 0, or -ENOMEM. */
static int read_request(struct http_conn *c, const char *path)
{
	char length[CONTENT_LENGTH_MAX], accept[ACCEPT_MAX];

	c->started = lws_now_usecs();
	c->ctx->stats.http_requests++;
	c->ctx->http_open++;
	c->method = method_of(c->wsi);
	c->path = strdup(path && *path ? path : "/");
	if (!c->path)
		return -ENOMEM;
	copy_header(c->wsi, WSI_TOKEN_ORIGIN, c->origin, sizeof(c->origin), &c->has_origin);
	copy_header(c->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, c->content_type, sizeof(c->content_type),
		    NULL);
	copy_header(c->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, length, sizeof(length), NULL);
	c->body_unread = strtoull(length, NULL, 10);
	copy_header(c->wsi, WSI_TOKEN_HTTP_ACCEPT, accept, sizeof(accept), NULL);
	c->accept_json = strstr(accept, "application/json") != NULL;
	return 0;
}

static int on_request(struct http_conn *c, const char *path)
{
	unsigned long long content_length;

	if (read_request(c, path))
		return -1;
	content_length = c->body_unread;
	/* A browser's request from a page of an origin that is not allowed goes no further. */
	if (c->has_origin && !guard_origin_allowed(c->ctx->cfg, c->origin)) {
		c->ctx->stats.refused_http_origin++;
		c->has_origin = false;
		c->close_after = true;
		http_error(c, 403, "origin_not_allowed",
			   "requests from this origin are not allowed");
		return 0;
	}
	if (c->has_origin && c->ctx->cfg->nallowed_origins == 1 &&
	    !strcmp(c->ctx->cfg->allowed_origins[0], "*"))
		strcpy(c->origin, "*");
	if (c->method == HTTP_OPTIONS) {
		http_respond(c, 204, "text/plain", NULL, 0);
		return 0;
	}
	/* lws 4.1 does not decode chunked request bodies: refuse them rather than lose them. */
	if (lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		c->close_after = true;
		http_error(c, 411, "length_required",
			   "send the body with a Content-Length, not chunked");
		return 0;
	}
	if (content_length > (unsigned long long)c->ctx->cfg->limits.max_body_bytes) {
		c->close_after = true;
		http_error(c, 413, "body_too_large", "the body is over %ld bytes",
			   c->ctx->cfg->limits.max_body_bytes);
		return 0;
	}
	if (!admit(c)) {
		/* Refused before its body was read: the connection cannot be reused. */
		c->close_after = content_length > 0;
		return 0;
	}
	if ((c->method == HTTP_POST || c->method == HTTP_PUT) && content_length > 0) {
		c->expects_body = true;
		if (buf_reserve(&c->body, (size_t)content_length))
			return -1;
		return 0; /* the body callbacks follow */
	}
	route(c);
	return 0;
}

static void finish(struct http_conn *c)
{
	if (c->sse)
		sse_close(c);
	if (c->job)
		rest_cancel(c);
	lws_sul_cancel(&c->sul);
	if (c->path)
		c->ctx->http_open--;
	auth_unref(c->auth);
	free(c->path);
	buf_clear(&c->body);
	buf_clear(&c->resp);
	memset(c, 0, sizeof(*c));
}

/* ---- writing the answer ---- */

/* Room for the header block, and for a body small enough to leave in the same write. */
#define HEADERS_MAX     2048
#define JOINED_BODY_MAX 4096

static int build_headers(struct http_conn *c, uint8_t **p, uint8_t *end)
{
	size_t body = c->resp.len - LWS_PRE;

	if (lws_add_http_common_headers(c->wsi, (unsigned)c->status, c->resp_type,
					c->sse ? LWS_ILLEGAL_HTTP_CONTENT_LEN : body, p, end) ||
	    add_cors(c, p, end))
		return -1;
	for (int i = 0; i < c->nheaders; i++) {
		if (lws_add_http_header_by_name(c->wsi, (const unsigned char *)c->headers[i].name,
						(unsigned char *)c->headers[i].value,
						(int)strlen(c->headers[i].value), p, end))
			return -1;
	}
	if (c->close_after &&
	    lws_add_http_header_by_name(c->wsi, (unsigned char *)"connection:",
					(unsigned char *)"close", WEB_LITLEN("close"), p, end))
		return -1;
	return lws_finalize_http_header(c->wsi, p, end);
}

static void linger_over(lws_sorted_usec_list_t *sul)
{
	struct http_conn *c = lws_container_of(sul, struct http_conn, sul);

	lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
}

/* Closing after an answer with @unread bytes of body to come: 0 when they are read first. */
static int linger(struct http_conn *c, unsigned long long unread)
{
	/* Over h2 a stream ends alone, and its connection is not reset. */
	if (!unread || unread > LINGER_MAX_BYTES || lws_get_network_wsi(c->wsi) != c->wsi)
		return -1;
	c->lingering = true;
	c->body_unread = unread;
	lws_sul_schedule(c->ctx->context, 0, &c->sul, linger_over, (lws_usec_t)LINGER_MS * 1000);
	return 0;
}

/* Ends the transaction; nonzero: the connection closes (lws wants that, or we do). */
static int transaction_done(struct http_conn *c)
{
	struct web_ctx *ctx = c->ctx;
	bool close_after = c->close_after;
	unsigned long long unread = c->body_unread;
	struct lws *wsi = c->wsi;

	finish(c);
	c->wsi = wsi;
	c->ctx = ctx;
	if (close_after)
		return linger(c, unread);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_writeable(struct http_conn *c)
{
	uint8_t buf[LWS_PRE + HEADERS_MAX + JOINED_BODY_MAX], *start = buf + LWS_PRE, *p = start;
	uint8_t *end = buf + LWS_PRE + HEADERS_MAX - 1;
	size_t body;

	if (c->sse && c->headers_sent)
		return sse_writeable(c);
	if (!c->answered)
		return 0;
	if (c->headers_sent) {
		body = c->resp.len - LWS_PRE;
		if (lws_write(c->wsi, c->resp.data + LWS_PRE, body, LWS_WRITE_HTTP_FINAL) <
		    (int)body)
			return -1;
		return transaction_done(c);
	}
	if (build_headers(c, &p, end))
		return -1;
	body = c->method == HTTP_HEAD || c->sse ? 0 : c->resp.len - LWS_PRE;
	if (c->sse || body > JOINED_BODY_MAX) {
		/* A stream, or a body too big to copy: the body follows in the next write. */
		if (lws_write(c->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) <
		    p - start)
			return -1;
		c->headers_sent = true;
		if (c->sse)
			return sse_after_headers(c);
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	/* Headers and body in one write: one send() and one poll round less per request, which
	 * is most of what a small REST answer costs. */
	memcpy(p, c->resp.data + LWS_PRE, body);
	p += body;
	if (lws_write(c->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) < p - start)
		return -1;
	return transaction_done(c);
}

/* A piece of the body: kept while it is wanted, else dropped. Nonzero: close. */
static int on_body(struct http_conn *c, const void *in, size_t len)
{
	c->body_unread -= len < c->body_unread ? len : c->body_unread;
	if (!c->expects_body || c->answered)
		return 0;
	if (len > (size_t)c->ctx->cfg->limits.max_body_bytes - c->body.len) {
		c->close_after = true;
		http_error(c, 413, "body_too_large", "the body is over %ld bytes",
			   c->ctx->cfg->limits.max_body_bytes);
		return 0;
	}
	return buf_append(&c->body, in, len) ? -1 : 0;
}

static int callback_api(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct http_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_BIND_PROTOCOL:
		if (c) {
			memset(c, 0, sizeof(*c));
			c->wsi = wsi;
			c->ctx = web_ctx_of(wsi);
		}
		return 0;

	case LWS_CALLBACK_HTTP:
		if (c->path)
			finish(c); /* a pipelined request after an unfinished one */
		c->wsi = wsi;
		c->ctx = web_ctx_of(wsi);
		{
			char *uri = NULL;
			int ulen = 0;
			if (lws_http_get_uri_and_method(wsi, &uri, &ulen) < 0)
				return -1;
			c->is_metrics = ulen >= (int)WEB_LITLEN("/metrics") &&
					!strncmp(uri, "/metrics", WEB_LITLEN("/metrics"));
		}
		return on_request(c, in);

	case LWS_CALLBACK_HTTP_BODY:
		return on_body(c, in, len);

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		/* All read: the close now ends the connection with a FIN, not a reset. */
		if (c->lingering)
			return -1;
		if (!c->expects_body || c->answered)
			return 0;
		c->expects_body = false;
		route(c);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		return on_writeable(c);

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (c && c->ctx)
			finish(c);
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols web_http_protocol(void)
{
	struct lws_protocols p;

	memset(&p, 0, sizeof(p));
	p.name = "mwb-api";
	p.callback = callback_api;
	p.per_session_data_size = sizeof(struct http_conn);
	return p;
}
