/*
 * web/sse.c — GET /api/v1/stream. A stream subscribes its filters at the hub and queues the
 * hub's shared events by reference; each writeable callback writes one. A slow reader loses its
 * oldest queued events first (counted) once half of limits.max_queue_bytes is queued, and is cut
 * off when it has lost a whole limit's worth since it last took anything, or has taken nothing
 * for STALL_S seconds while events wait; it resumes with Last-Event-ID.
 */
#include "sse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "args.h"
#include "jsonmsg.h"
#include "log.h"

#define RETRY_LINE       "retry: 2000\n\n"
#define KEEPALIVE_LINE   ": keepalive\n\n"
#define STALL_S          30
#define RETAINED_WAIT_MS 1000
#define RETAINED_LIMIT   10000
/* Room for a Last-Event-ID; a longer one is none of ours and starts the stream afresh. */
#define LAST_ID_MAX 128

/* A queued piece of the stream: a shared hub event, or text of the stream's own. */
struct sse_item {
	struct hub_event *ev;
	uint8_t *own; /* LWS_PRE bytes of room, then the text */
	size_t len;
};

/* One retained read of a stream: which stream, which filter. */
struct sse_read {
	struct sse_stream *s;
	struct retained_req *req; /* NULL once answered */
};

struct sse_stream {
	struct http_conn *c;
	struct web_ctx *ctx;
	struct sse_stream *prev, *next; /* in ctx->streams, for shutdown */
	struct hub_sub *sub;
	char **filters;
	size_t nfilters;
	bool preamble_sent;
	/* Live events wait behind the retained values while these are read. */
	struct sse_read *reads;
	size_t rpending;
	struct sse_item *held; /* retained values collected so far */
	size_t nheld, capheld;
	/* The queue: a ring of items. */
	struct sse_item *q;
	size_t cap, head, count, bytes;
	lws_usec_t last_write;
	size_t lost_bytes; /* dropped since the last write */
	bool cut_off;
	lws_sorted_usec_list_t sul_beat;
	lws_sorted_usec_list_t sul_retained;
};

static void item_release(struct sse_item *it)
{
	hub_event_unref(it->ev);
	free(it->own);
}

static const uint8_t *item_data(const struct sse_item *it)
{
	return it->ev ? (const uint8_t *)it->ev->sse : it->own + LWS_PRE;
}

static int own_item(struct sse_item *it, const void *text, size_t len)
{
	it->ev = NULL;
	it->own = malloc(LWS_PRE + len);
	if (!it->own)
		return -1;
	memcpy(it->own + LWS_PRE, text, len);
	it->len = len;
	return 0;
}

static void cut_off(struct sse_stream *s, const char *why)
{
	if (s->cut_off)
		return;
	s->cut_off = true;
	s->ctx->stats.sse_cut_off++;
	log_msg(LOG_INFO, "sse", "cut-off reason=%s queued_bytes=%zu", why, s->bytes);
	lws_set_timeout(s->c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void drop_oldest(struct sse_stream *s)
{
	size_t len = s->q[s->head].len;

	item_release(&s->q[s->head]);
	s->bytes -= len;
	s->head = (s->head + 1) % s->cap;
	s->count--;
	s->ctx->stats.sse_dropped++;
	s->lost_bytes += len;
	if (s->lost_bytes > (size_t)s->ctx->cfg->limits.max_queue_bytes)
		cut_off(s, "too-slow");
}

/* Appends @it (the queue owns it from now on) or, at the front, ahead of everything queued. */
static void enqueue(struct sse_stream *s, struct sse_item *it, bool front)
{
	size_t soft = (size_t)s->ctx->cfg->limits.max_queue_bytes / 2;

	while (s->count && s->bytes + it->len > soft && !front)
		drop_oldest(s);
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct sse_item *q = malloc(cap * sizeof(*q));
		if (!q) {
			item_release(it);
			s->ctx->stats.sse_dropped++;
			return;
		}
		for (size_t i = 0; i < s->count; i++)
			q[i] = s->q[(s->head + i) % s->cap];
		free(s->q);
		s->q = q;
		s->cap = cap;
		s->head = 0;
	}
	if (front) {
		s->head = (s->head + s->cap - 1) % s->cap;
		s->q[s->head] = *it;
	} else {
		s->q[(s->head + s->count) % s->cap] = *it;
	}
	s->count++;
	s->bytes += it->len;
	if (s->preamble_sent && !s->rpending)
		http_want_write(s->c);
}

static void deliver(void *user, struct hub_event *ev)
{
	struct sse_stream *s = user;
	struct sse_item it = {ev, NULL, ev->sse_len};

	hub_event_ref(ev);
	enqueue(s, &it, false);
}

/* ---- retained values first (?retained=true) ---- */

static void release_held(struct sse_stream *s)
{
	/* At the front in reverse order, so they go out in the order they were read. */
	while (s->nheld)
		enqueue(s, &s->held[--s->nheld], true);
	free(s->held);
	s->held = NULL;
	s->capheld = 0;
	lws_sul_cancel(&s->sul_retained);
	http_want_write(s->c);
}

static void on_retained(void *user, bool ok, bool complete, struct msg *const *msgs, size_t n)
{
	struct sse_read *r = user;
	struct sse_stream *s = r->s;
	struct buf text = BUF_INIT;

	(void)ok;
	(void)complete;
	r->req = NULL;
	for (size_t i = 0; i < n; i++) {
		struct sse_item it;
		text.len = 0;
		/* No id: retained values are not part of the replayable sequence. */
		if (jsonmsg_sse(&text, NULL, msgs[i], 0))
			break;
		if (s->nheld == s->capheld) {
			size_t cap = s->capheld ? s->capheld * 2 : 16;
			struct sse_item *more = realloc(s->held, cap * sizeof(*more));
			if (!more)
				break;
			s->held = more;
			s->capheld = cap;
		}
		if (own_item(&it, text.data, text.len))
			break;
		s->held[s->nheld++] = it;
	}
	buf_clear(&text);
	if (--s->rpending == 0)
		release_held(s);
}

static void retained_timeout(lws_sorted_usec_list_t *sul)
{
	struct sse_stream *s = lws_container_of(sul, struct sse_stream, sul_retained);

	/* Each finish answers (and may release the stream's values); stop when none is left. */
	for (size_t i = 0; i < s->nfilters && s->rpending; i++) {
		if (s->reads[i].req)
			retained_finish(s->ctx->deps.retained, s->reads[i].req);
	}
}

/* ---- heartbeats and stalls ---- */

static void beat(lws_sorted_usec_list_t *sul)
{
	struct sse_stream *s = lws_container_of(sul, struct sse_stream, sul_beat);
	long period = s->ctx->cfg->sse.heartbeat_s;

	if (s->count && lws_now_usecs() - s->last_write > (lws_usec_t)STALL_S * LWS_US_PER_SEC) {
		cut_off(s, "stalled");
		return;
	}
	/* A comment when nothing at all went out for a whole period; the 100 ms spare absorbs
	 * the timer's own lateness. */
	if (!s->count && lws_now_usecs() - s->last_write >=
			     (lws_usec_t)period * LWS_US_PER_SEC - 100 * LWS_US_PER_MS) {
		struct sse_item it;
		if (!own_item(&it, KEEPALIVE_LINE, sizeof(KEEPALIVE_LINE) - 1))
			enqueue(s, &it, false);
	}
	lws_sul_schedule(s->ctx->context, 0, &s->sul_beat, beat,
			 (lws_usec_t)period * LWS_US_PER_SEC);
}

/* ---- the request ---- */

static int add_filter(struct sse_stream *s, const char *value)
{
	char *f = strdup(value), **more;

	if (!f)
		return -1;
	if (!args_filter_valid(f)) {
		free(f);
		return 1;
	}
	more = realloc(s->filters, (s->nfilters + 1) * sizeof(*more));
	if (!more) {
		free(f);
		return -1;
	}
	s->filters = more;
	s->filters[s->nfilters++] = f;
	return 0;
}

static void stream_free(struct sse_stream *s)
{
	for (size_t i = 0; i < s->nfilters; i++)
		free(s->filters[i]);
	free(s->filters);
	free(s->reads);
	free(s);
}

static bool read_args(struct http_conn *c, struct sse_stream *s, bool *retained, char *last_id,
		      size_t cap)
{
	static const char *const known[] = {"topic", "retained", "last_event_id", NULL};
	char frag[HTTP_ARG_MAX];
	int rc;

	if (!http_args_known(c, known))
		return false;
	for (int i = 0;
	     lws_hdr_copy_fragment(c->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
	     i++) {
		if (strncmp(frag, "topic=", WEB_LITLEN("topic=")))
			continue;
		if ((long)s->nfilters >= c->ctx->cfg->limits.max_subscriptions) {
			http_error(c, 400, "too_many_filters",
				   "at most %ld topic filters per stream",
				   c->ctx->cfg->limits.max_subscriptions);
			return false;
		}
		rc = add_filter(s, frag + WEB_LITLEN("topic="));
		if (rc) {
			if (rc > 0)
				http_error(c, 400, "invalid_filter",
					   "not a valid MQTT topic filter (write # as %%23)");
			else
				http_error(c, 500, "internal", "out of memory");
			return false;
		}
	}
	if (!s->nfilters) {
		http_error(c, 400, "invalid_filter", "give at least one topic=FILTER");
		return false;
	}
	if (!args_bool(c, "retained", retained))
		return false;
	/* EventSource sends the header by itself when it reconnects: it is the newest. */
	last_id[0] = '\0';
	if (lws_hdr_custom_copy(c->wsi, last_id, (int)cap,
				"last-event-id:", WEB_LITLEN("last-event-id:")) <= 0)
		if (!http_arg(c, "last_event_id", last_id, cap))
			last_id[0] = '\0';
	return true;
}

/* The events after @last_id, queued; a note when some are lost. hub_replay()'s result. */
static int replay(struct sse_stream *s, const char *last_id)
{
	static const char missed[] = ": some events were missed\n\n";
	static const char afresh[] = ": last event id unknown here: starting afresh\n\n";
	struct sse_item it;
	int rc = hub_replay(s->ctx->deps.hub, s->sub, last_id);

	if (rc == -ERANGE && !own_item(&it, missed, sizeof(missed) - 1))
		enqueue(s, &it, true);
	/* Another instance's id (behind a load balancer), or nonsense: this stream starts as a
	 * new one, and says so. */
	if (rc == -ENOENT && !own_item(&it, afresh, sizeof(afresh) - 1))
		enqueue(s, &it, true);
	return rc;
}

/* The retained messages of every filter, read before live events flow (see on_retained()). */
static void read_retained(struct sse_stream *s)
{
	struct web_ctx *ctx = s->ctx;

	s->reads = calloc(s->nfilters, sizeof(*s->reads));
	for (size_t i = 0; s->reads && i < s->nfilters; i++) {
		s->reads[i].s = s;
		s->reads[i].req = retained_get(ctx->deps.retained, s->filters[i], RETAINED_LIMIT, 0,
					       on_retained, &s->reads[i]);
		s->rpending += s->reads[i].req != NULL;
	}
	if (s->rpending)
		lws_sul_schedule(ctx->context, 0, &s->sul_retained, retained_timeout,
				 (lws_usec_t)RETAINED_WAIT_MS * LWS_US_PER_MS);
}

/* The stream's head: 200, never cached nor buffered by a proxy; events follow as they come. */
static void answer_open(struct http_conn *c)
{
	http_header(c, "cache-control:", "no-cache");
	http_header(c, "x-accel-buffering:", "no");
	c->status = 200;
	strcpy(c->resp_type, "text/event-stream");
	c->answered = true;
	c->ctx->stats.http_responses[2]++;
	c->resp.len = LWS_PRE;
	http_want_write(c);
}

void sse_start(struct http_conn *c)
{
	struct web_ctx *ctx = c->ctx;
	struct sse_stream *s;
	char last_id[LAST_ID_MAX];
	bool retained;

	if (c->method != HTTP_GET) {
		http_header(c, "allow:", "GET");
		http_error(c, 405, "method_not_allowed", "use GET");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	s->c = c;
	s->ctx = ctx;
	if (!read_args(c, s, &retained, last_id, sizeof(last_id))) {
		stream_free(s);
		return;
	}
	/* Every filter must lie wholly inside the token's subscribe ACL, or nothing is streamed. */
	for (size_t i = 0; i < s->nfilters; i++) {
		if (!http_may_subscribe(c, s->filters[i])) {
			http_forbidden(c, "subscribe to", s->filters[i]);
			stream_free(s);
			return;
		}
	}
	/* The stream's writes start LWS_PRE bytes into c->resp (lws writes headers there). */
	if (buf_reserve(&c->resp, LWS_PRE)) {
		stream_free(s);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	s->sub =
	    hub_subscribe(ctx->deps.hub, (const char *const *)s->filters, s->nfilters, deliver, s);
	if (!s->sub) {
		stream_free(s);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	c->sse = s;
	ctx->sse_streams++;
	s->next = ctx->streams;
	if (ctx->streams)
		ctx->streams->prev = s;
	ctx->streams = s;
	s->last_write = lws_now_usecs();
	/* Replayed events go first, before any live one can arrive (both run on this thread). */
	if (*last_id && replay(s, last_id) == -ENOENT)
		last_id[0] = '\0';
	/* A resuming client has the retained values already; one starting afresh gets them. */
	if (retained && !*last_id)
		read_retained(s);
	answer_open(c);
}

int sse_after_headers(struct http_conn *c)
{
	struct sse_stream *s = c->sse;

	/* lws_http_mark_sse() is for h2 streams (it logs an error on h1): an h1 connection only
	 * needs its header storage back. */
	if (lws_get_network_wsi(c->wsi) != c->wsi)
		lws_http_mark_sse(c->wsi);
	else
		lws_http_headers_detach(c->wsi);
	lws_sul_schedule(s->ctx->context, 0, &s->sul_beat, beat,
			 (lws_usec_t)s->ctx->cfg->sse.heartbeat_s * LWS_US_PER_SEC);
	http_want_write(c);
	return 0;
}

int sse_writeable(struct http_conn *c)
{
	static uint8_t retry[LWS_PRE + sizeof(RETRY_LINE)];
	struct sse_stream *s = c->sse;
	struct sse_item it;
	int n;

	if (!s->preamble_sent) {
		memcpy(retry + LWS_PRE, RETRY_LINE, sizeof(RETRY_LINE) - 1);
		if (lws_write(c->wsi, retry + LWS_PRE, sizeof(RETRY_LINE) - 1, LWS_WRITE_HTTP) <
		    (int)sizeof(RETRY_LINE) - 1)
			return -1;
		s->preamble_sent = true;
		if (s->count && !s->rpending)
			http_want_write(c);
		else
			http_pause_rx(c);
		return 0;
	}
	if (!s->count || s->rpending) {
		http_pause_rx(c);
		return 0;
	}
	it = s->q[s->head];
	s->head = (s->head + 1) % s->cap;
	s->count--;
	s->bytes -= it.len;
	/* lws_write() wants LWS_PRE bytes of room before the data: the hub leaves them. */
	n = lws_write(c->wsi, (uint8_t *)item_data(&it), it.len, LWS_WRITE_HTTP);
	if (it.ev)
		s->ctx->stats.sse_events++;
	item_release(&it);
	if (n < (int)it.len)
		return -1;
	s->last_write = lws_now_usecs();
	s->lost_bytes = 0;
	if (s->count)
		http_want_write(c);
	else
		http_pause_rx(c);
	return 0;
}

void sse_close(struct http_conn *c)
{
	struct sse_stream *s = c->sse;

	if (!s)
		return;
	c->sse = NULL;
	s->ctx->sse_streams--;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->ctx->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	lws_sul_cancel(&s->sul_beat);
	lws_sul_cancel(&s->sul_retained);
	hub_unsubscribe(s->ctx->deps.hub, s->sub);
	for (size_t i = 0; s->reads && i < s->nfilters; i++) {
		if (s->reads[i].req)
			retained_cancel(s->ctx->deps.retained, s->reads[i].req);
	}
	for (; s->count; s->count--, s->head = (s->head + 1) % s->cap)
		item_release(&s->q[s->head]);
	free(s->q);
	while (s->nheld)
		item_release(&s->held[--s->nheld]);
	free(s->held);
	stream_free(s);
}

void sse_check_peers(struct web_ctx *ctx)
{
	for (struct sse_stream *s = ctx->streams; s; s = s->next) {
		struct lws *wsi = s->c->wsi;
		char byte;
		ssize_t n;

		if (s->cut_off || lws_get_network_wsi(wsi) != wsi)
			continue;
		n = recv(lws_get_socket_fd(wsi), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		/* Closed, failed, or sent something: a stream's client has nothing to say (a TLS
		 * client's close_notify shows as bytes). */
		s->cut_off = true;
		log_msg(LOG_DEBUG, "sse", "client-gone");
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
}

size_t sse_auth_changed(struct web_ctx *ctx)
{
	size_t closed = 0;

	for (struct sse_stream *s = ctx->streams; s; s = s->next) {
		struct http_conn *c = s->c;
		const struct auth_token *t;
		bool ok;

		if (!c->token || s->cut_off)
			continue;
		t = auth_find_same(ctx->auth, c->token);
		ok = t != NULL;
		for (size_t i = 0; ok && i < s->nfilters; i++)
			ok = auth_may_subscribe(t, s->filters[i], strlen(s->filters[i]));
		if (!ok) {
			/* The client reconnects and is told why (401 or 403). */
			log_msg(LOG_INFO, "sse", "closed reason=token-changed token=%s",
				c->token->name);
			s->cut_off = true;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
			closed++;
			continue;
		}
		auth_unref(c->auth);
		c->auth = auth_ref(ctx->auth);
		c->token = t;
	}
	return closed;
}

void sse_shutdown(struct web_ctx *ctx)
{
	/* The streams end; clients reconnect (to another instance, or after the restart). */
	for (struct sse_stream *s = ctx->streams; s; s = s->next)
		lws_set_timeout(s->c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}
