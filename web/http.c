/*
 * web/http.c — the API protocol: reads a request (method, path, headers, bounded body), checks
 * its origin, routes it, and writes the answer. The handlers are in rest.c and sse.c.
 */
#include "http.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rest.h"
#include "sse.h"

const double web_latency_bounds[WEB_LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
							0.05,  0.1,    0.25,  0.5,  1.0};

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
	lws_callback_on_writable(c->wsi);
}

void http_json(struct http_conn *c, int status, void *json)
{
	char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;

	if (text) {
		http_respond(c, status, "application/json", text, strlen(text));
		free(text);
	} else {
		http_respond(c, 500, "application/json",
			     "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}", 55);
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
	char frag[1100];

	for (int i = 0; lws_hdr_copy_fragment(c->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS,
					      i) >= 0;
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

	for (int i = 0; lws_hdr_copy_fragment(c->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS,
					      i) >= 0;
	     i++) {
		size_t nlen = strcspn(frag, "=");
		bool ok = false;
		/* A bare "?" leaves lws with an empty (or lone "/") fragment: nothing was asked. */
		if (!nlen || (nlen == 1 && frag[0] == '/'))
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

/* ---- origin and CORS (DESIGN §4) ---- */

static bool origin_allowed(const struct config *cfg, const char *origin)
{
	for (size_t i = 0; i < cfg->nallowed_origins; i++) {
		if (!strcmp(cfg->allowed_origins[i], "*") || !strcmp(cfg->allowed_origins[i], origin))
			return true;
	}
	return false;
}

static int add_cors(struct http_conn *c, unsigned char **p, unsigned char *end)
{
	if (!c->has_origin)
		return 0;
	if (lws_add_http_header_by_name(c->wsi, (unsigned char *)"access-control-allow-origin:",
					(unsigned char *)c->origin, (int)strlen(c->origin), p,
					end) ||
	    lws_add_http_header_by_name(c->wsi, (unsigned char *)"vary:",
					(unsigned char *)"Origin", 6, p, end))
		return -1;
	if (c->method == HTTP_OPTIONS) {
		static const char methods[] = "GET, POST, PUT, DELETE, OPTIONS";
		static const char headers[] = "Content-Type, Authorization, Accept, Last-Event-ID";
		if (lws_add_http_header_by_name(c->wsi,
						(unsigned char *)"access-control-allow-methods:",
						(unsigned char *)methods, sizeof(methods) - 1, p,
						end) ||
		    lws_add_http_header_by_name(c->wsi,
						(unsigned char *)"access-control-allow-headers:",
						(unsigned char *)headers, sizeof(headers) - 1, p,
						end) ||
		    lws_add_http_header_by_name(c->wsi, (unsigned char *)"access-control-max-age:",
						(unsigned char *)"600", 3, p, end))
			return -1;
	}
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

static void route(struct http_conn *c)
{
	if (c->is_metrics) {
		rest_metrics(c);
		return;
	}
	if (!strcmp(c->path, "/stream")) {
		sse_start(c);
		return;
	}
	rest_route(c);
}

static int on_request(struct http_conn *c, const char *path)
{
	char length[32];
	unsigned long long content_length;

	c->started = lws_now_usecs();
	c->ctx->stats.http_requests++;
	c->ctx->http_open++;
	c->method = method_of(c->wsi);
	c->path = strdup(path && *path ? path : "/");
	if (!c->path)
		return -1;
	copy_header(c->wsi, WSI_TOKEN_ORIGIN, c->origin, sizeof(c->origin), &c->has_origin);
	copy_header(c->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, c->content_type, sizeof(c->content_type),
		    NULL);
	{
		char accept[512];
		copy_header(c->wsi, WSI_TOKEN_HTTP_ACCEPT, accept, sizeof(accept), NULL);
		c->accept_json = strstr(accept, "application/json") != NULL;
	}
	/* A browser's request from a page of an origin that is not allowed goes no further. */
	if (c->has_origin && !origin_allowed(c->ctx->cfg, c->origin)) {
		c->has_origin = false;
		c->close_after = true;
		http_error(c, 403, "origin_not_allowed", "requests from this origin are not allowed");
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
	copy_header(c->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, length, sizeof(length), NULL);
	content_length = strtoull(length, NULL, 10);
	if (content_length > (unsigned long long)c->ctx->cfg->limits.max_body_bytes) {
		c->close_after = true;
		http_error(c, 413, "body_too_large", "the body is over %ld bytes",
			   c->ctx->cfg->limits.max_body_bytes);
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
	free(c->path);
	buf_clear(&c->body);
	buf_clear(&c->resp);
	memset(c, 0, sizeof(*c));
}

/* ---- writing the answer ---- */

static int write_headers(struct http_conn *c)
{
	uint8_t buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	size_t body = c->resp.len - LWS_PRE;

	if (lws_add_http_common_headers(c->wsi, (unsigned)c->status, c->resp_type,
					c->sse ? LWS_ILLEGAL_HTTP_CONTENT_LEN : body, &p, end) ||
	    add_cors(c, &p, end))
		return -1;
	for (int i = 0; i < c->nheaders; i++) {
		if (lws_add_http_header_by_name(c->wsi, (const unsigned char *)c->headers[i].name,
						(unsigned char *)c->headers[i].value,
						(int)strlen(c->headers[i].value), &p, end))
			return -1;
	}
	if (c->close_after &&
	    lws_add_http_header_by_name(c->wsi, (unsigned char *)"connection:",
					(unsigned char *)"close", 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(c->wsi, start, &p, end))
		return -1;
	c->headers_sent = true;
	return 0;
}

/* Ends the transaction; nonzero: the connection closes (lws wants that, or we do). */
static int transaction_done(struct http_conn *c)
{
	struct web_ctx *ctx = c->ctx;
	bool close_after = c->close_after;
	struct lws *wsi = c->wsi;

	finish(c);
	c->wsi = wsi;
	c->ctx = ctx;
	if (close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_writeable(struct http_conn *c)
{
	size_t body;

	if (c->sse && c->headers_sent)
		return sse_writeable(c);
	if (!c->answered)
		return 0;
	if (!c->headers_sent) {
		if (write_headers(c))
			return -1;
		if (c->sse)
			return sse_after_headers(c);
		if (c->resp.len > LWS_PRE || c->method == HTTP_HEAD)
			lws_callback_on_writable(c->wsi);
		if (c->resp.len > LWS_PRE && c->method != HTTP_HEAD)
			return 0;
		return transaction_done(c);
	}
	body = c->resp.len - LWS_PRE;
	if (lws_write(c->wsi, c->resp.data + LWS_PRE, body, LWS_WRITE_HTTP_FINAL) < (int)body)
		return -1;
	return transaction_done(c);
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
			c->is_metrics = ulen >= 8 && !strncmp(uri, "/metrics", 8);
		}
		return on_request(c, in);

	case LWS_CALLBACK_HTTP_BODY:
		if (!c->expects_body || c->answered)
			return 0;
		if (len > (size_t)c->ctx->cfg->limits.max_body_bytes - c->body.len) {
			c->close_after = true;
			http_error(c, 413, "body_too_large", "the body is over %ld bytes",
				   c->ctx->cfg->limits.max_body_bytes);
			return 0;
		}
		return buf_append(&c->body, in, len) ? -1 : 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
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
