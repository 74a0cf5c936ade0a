/*
 * web/ws.c — "/mqtt": WebSocket frames in and out, one bridge session per connection.
 *
 * MQTT over WebSocket (MQTT 5 §6): binary frames only, and the frame boundaries mean nothing,
 * so the payload bytes go to the session as one stream. Writes happen only in
 * LWS_CALLBACK_SERVER_WRITEABLE, one queued chunk per callback. Service thread only.
 */
#include "ws.h"

#include <string.h>

#include "guard.h"
#include "log.h"
#include "outq.h"
#include "session.h"
#include "web.h"

struct ws_conn {
	struct lws *wsi;
	struct session *session;
	struct outq q;
	struct wheel_entry deadline;
	lws_usec_t last_rx;
	uint32_t deadline_ms; /* 0: none */
	bool deadline_fixed;  /* counted from when it was set, not from the last frame */
	bool closing;
	char peer[GUARD_ADDR_MAX]; /* the client's address (behind a trusted proxy: its word) */
};

static int conn_write(void *conn, const uint8_t *data, size_t len)
{
	struct ws_conn *c = conn;
	int rc = outq_append(&c->q, data, len);

	if (!rc)
		lws_callback_on_writable(c->wsi);
	return rc;
}

static size_t conn_queued(void *conn)
{
	struct ws_conn *c = conn;

	return c->q.bytes;
}

static void conn_close(void *conn)
{
	struct ws_conn *c = conn;

	if (c->closing)
		return;
	c->closing = true;
	lws_callback_on_writable(c->wsi);
	/* A browser that stops reading must not keep its connection by never taking the rest. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

static void conn_pause(void *conn, bool paused)
{
	struct ws_conn *c = conn;

	lws_rx_flow_control(c->wsi, paused ? 0 : 1);
}

static void step_deadlines(lws_sorted_usec_list_t *sul);

static void arm_deadline(struct web_ctx *ctx, struct ws_conn *c, lws_usec_t due)
{
	wheel_set(&ctx->deadlines, &c->deadline, due);
	if (!ctx->deadlines_stepping) {
		ctx->deadlines_stepping = true;
		lws_sul_schedule(ctx->context, 0, &ctx->sul_deadlines, step_deadlines,
				 WHEEL_SLOT_US);
	}
}

static void deadline_expired(struct wheel_entry *e, void *arg)
{
	struct ws_conn *c = lws_container_of(e, struct ws_conn, deadline);
	struct web_ctx *ctx = arg;
	lws_usec_t limit = (lws_usec_t)c->deadline_ms * LWS_US_PER_MS;
	lws_usec_t silent = lws_now_usecs() - c->last_rx;

	if (!c->deadline_ms)
		return;
	if (silent < limit) {
		arm_deadline(ctx, c, c->last_rx + limit);
		return;
	}
	log_msg(LOG_INFO, "ws", "timeout peer=%s waiting_for=%s silent_ms=%lld", c->peer,
		c->deadline_fixed ? "connect" : "packet", (long long)(silent / LWS_US_PER_MS));
	if (c->deadline_fixed)
		ctx->stats.ws_connect_timeouts++;
	else
		ctx->stats.ws_keepalive_timeouts++;
	/* As if the browser vanished: its session ends abruptly and the will is published. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Steps the wheel one slot at a time while any deadline is armed; idle otherwise. */
static void step_deadlines(lws_sorted_usec_list_t *sul)
{
	struct web_ctx *ctx = lws_container_of(sul, struct web_ctx, sul_deadlines);

	wheel_expire(&ctx->deadlines, lws_now_usecs(), deadline_expired, ctx);
	ctx->deadlines_stepping = ctx->deadlines.armed > 0;
	if (ctx->deadlines_stepping)
		lws_sul_schedule(ctx->context, 0, &ctx->sul_deadlines, step_deadlines,
				 WHEEL_SLOT_US);
}

static void conn_deadline(void *conn, uint32_t ms)
{
	struct ws_conn *c = conn;
	struct web_ctx *ctx = web_ctx_of(c->wsi);

	c->deadline_ms = ms;
	c->last_rx = lws_now_usecs();
	/* The first deadline comes while the session is being made: the wait for CONNECT. A
	 * client that trickles its CONNECT a byte at a time must not stretch it. */
	c->deadline_fixed = ms && !c->session;
	if (!ms) {
		wheel_cancel(&ctx->deadlines, &c->deadline);
		return;
	}
	/* Re-armed once per period, not per packet (deadline_expired looks at last_rx). */
	arm_deadline(ctx, c, c->last_rx + (lws_usec_t)ms * LWS_US_PER_MS);
}

static const struct session_io conn_io = {
    .write = conn_write,
    .queued = conn_queued,
    .close = conn_close,
    .pause = conn_pause,
    .deadline = conn_deadline,
};

/*
 * The path, origin and connection limit were checked before the upgrade (guard.c), where a
 * refusal can still be an HTTP answer; this is the last word, should lws get here another way.
 */
static int filter(struct lws *wsi, struct web_ctx *ctx)
{
	char uri[64];
	int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);

	if (n < 0 || strcmp(uri, "/mqtt")) {
		log_msg(LOG_INFO, "ws", "upgrade-refused reason=path");
		return 1;
	}
	return ctx->shutting_down;
}

static int write_next(struct ws_conn *c, struct web_ctx *ctx)
{
	uint8_t *data;
	size_t len;

	if (outq_front(&c->q, &data, &len)) {
		int n = lws_write(c->wsi, data, len, LWS_WRITE_BINARY);
		if (n < (int)len)
			return -1;
		outq_pop(&c->q);
		if (c->q.head || c->closing)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->closing) {
		lws_close_reason(c->wsi,
				 ctx->shutting_down ? LWS_CLOSE_STATUS_GOINGAWAY
						    : LWS_CLOSE_STATUS_NORMAL,
				 NULL, 0);
		return -1;
	}
	return 0;
}

static int callback_mqtt(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct web_ctx *ctx = web_ctx_of(wsi);
	struct ws_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return filter(wsi, ctx);

	case LWS_CALLBACK_ESTABLISHED:
		memset(c, 0, sizeof(*c));
		c->wsi = wsi;
		guard_client_addr(ctx, wsi, c->peer, sizeof(c->peer));
		outq_init(&c->q, (size_t)ctx->cfg->limits.max_queue_bytes);
		c->session = session_new(ctx->deps.sessions, &conn_io, c, c->peer);
		if (!c->session)
			return -1;
		ctx->connections++;
		log_msg(LOG_DEBUG, "ws", "open peer=%s protocol=%s", c->peer,
			lws_get_protocol(wsi)->name);
		return 0;

	case LWS_CALLBACK_RECEIVE:
		if (!c->session || c->closing)
			return 0;
		if (!lws_frame_is_binary(wsi)) {
			/* MQTT over WebSocket: a text frame closes the connection (MQTT-6.0.0-1).
			 */
			log_msg(LOG_INFO, "ws", "text-frame peer=%s", c->peer);
			lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
					 (unsigned char *)"binary frames only",
					 WEB_LITLEN("binary frames only"));
			return -1;
		}
		if (!c->deadline_fixed)
			c->last_rx = lws_now_usecs();
		session_feed(c->session, in, len);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return write_next(c, ctx);

	case LWS_CALLBACK_CLOSED:
		wheel_cancel(&ctx->deadlines, &c->deadline);
		outq_clear(&c->q);
		if (c->session) {
			ctx->connections--;
			/* The session may free itself here; it is not ours to touch afterwards. */
			session_detach(c->session);
			c->session = NULL;
		}
		log_msg(LOG_DEBUG, "ws", "closed peer=%s", c->peer);
		return 0;

	default:
		return 0;
	}
}

struct lws_protocols web_ws_protocol(const char *name)
{
	struct lws_protocols p;

	memset(&p, 0, sizeof(p));
	p.name = name;
	p.callback = callback_mqtt;
	p.per_session_data_size = sizeof(struct ws_conn);
	/* Each connection holds one, for as long as it is open: 1 KiB rather than lws's page-sized
	 * default saves 3 KiB of RSS per idle browser (bench: idle shared browsers). A bigger frame
	 * just arrives in more callbacks, and MQTT packets cross frames anyway (session_feed()). */
	p.rx_buffer_size = 1024;
	/* Without it lws would also cut every send() to rx_buffer_size: one chunk of the outq
	 * (16 KiB, many packets) goes in one. Nothing is allocated for it per connection. */
	p.tx_packet_size = 65536;
	return p;
}
