/*
 * bridge/session.c — a browser's MQTT session translated onto its own upstream Paho client.
 *
 * The browser side is a byte stream decoded by codec.c; the broker side is upstream.c. Acks are
 * end to end: the browser's PUBACK / PUBREC / SUBACK / UNSUBACK go out only when the broker has
 * answered. Messages towards the browser are tracked until the browser acknowledges them, so a
 * persistent session can get them again (DUP set) when it comes back (store.h).
 */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth.h"
#include "hmap.h"
#include "log.h"
#include "props.h"
#include "store.h"

/* Topic aliases the bridge accepts from a v5 browser; it resolves them itself. */
#define TOPIC_ALIAS_MAX 32
/* Requests waiting for the broker before the bridge stops reading from that browser. */
#define OPS_PAUSE_AT 256
#define OPS_RESUME_AT 128
/* How long a 3.1/3.1.1 session's emulated will may take to reach the broker. */
#define WILL_WAIT_MS 2000

/* msg->state for messages towards the browser. */
enum {
	MSG_QUEUED = 0,   /* waiting for room under the browser's receive maximum */
	MSG_SENT = 1,     /* PUBLISH sent, PUBACK / PUBREC awaited */
	MSG_RELEASED = 2, /* QoS 2: PUBREL sent, PUBCOMP awaited */
	MSG_STATE = 3,
	MSG_WAS_SENT = 4, /* sent on an earlier connection: DUP on the next send */
};

enum op_kind {
	OP_PUB0,
	OP_PUB1,
	OP_PUB2,
	OP_SUB,
	OP_UNSUB,
};

/* In struct sub_op's codes: this filter went to the broker, whose code fills it in. */
#define CODE_FORWARDED 0xff

/*
 * A SUBSCRIBE as the browser sent it: the filters the bridge refused itself (ACL, quota) have
 * their code already, the others went to the broker. The SUBACK merges both, in order.
 */
struct sub_op {
	uint32_t mark;      /* what this SUBSCRIBE stored in s->subs for the filters it added */
	size_t count;       /* filters in the browser's packet */
	struct buf entries; /* the entries that went to the broker */
	uint8_t codes[];
};

/*
 * A request to the broker waiting for its answer, or (local) an answer of the bridge's own that
 * waits for the requests before it: acks go out in the order the browser's packets came.
 */
struct op {
	int token;
	uint8_t kind;
	bool local;
	uint8_t code; /* local PUBLISH: the reason code of its PUBACK / PUBREC */
	uint16_t packet_id;
	uint16_t count;
	struct sub_op *sub; /* SUBSCRIBE: owned */
};

/* A QoS 2 PUBLISH from the browser, by packet id. */
struct qos2_in {
	uint16_t packet_id;
	bool received; /* false: at the broker's side still; true: PUBREC sent, PUBREL awaited */
};

enum up_state {
	UP_NONE,       /* no upstream (yet, or never) */
	UP_CONNECTING, /* waiting for the broker's CONNACK */
	UP_CONNECTED,
	UP_CLOSING,    /* upstream_disconnect() sent, UPSTREAM_CLOSED awaited */
	UP_GONE,
};

enum end_kind {
	END_NONE,     /* still going, or the browser vanished */
	END_CLEAN,    /* the browser sent DISCONNECT */
	END_UPSTREAM, /* the broker ended it */
	END_ERROR,    /* the bridge ended it: protocol error, too slow, broker refused */
	END_SHUTDOWN,
};

struct session {
	struct session *prev, *next; /* in sessions.all */
	struct sessions *ss;
	const struct session_io *io;
	void *conn; /* NULL once detached */
	char peer[64];

	/* From CONNECT. */
	uint8_t version; /* 0 until CONNECT */
	char *client_id;
	bool id_assigned;
	bool clean_start;
	uint16_t keepalive;
	uint32_t session_expiry; /* seconds; 3.1.1: UINT32_MAX for clean session 0 */
	uint16_t browser_receive_max;
	uint32_t browser_max_packet; /* 0: no limit */
	struct msg *will;            /* 3.1/3.1.1 only: published by the bridge on an abrupt end */

	enum up_state up_state;
	struct upstream *up;
	enum end_kind end;
	bool closing; /* the browser connection is being closed: ignore its input */
	bool held;    /* input waits for the broker's CONNACK */
	bool paused;

	struct buf in;    /* unhandled input: a partial packet, or packets held until CONNACK */
	struct buf out;   /* scratch for encoding */
	struct buf topic; /* scratch for a NUL-terminated topic */

	/* Towards the browser: QoS 1/2 messages in order, from the oldest. */
	struct msg *out_head, *out_tail;
	size_t out_inflight;
	size_t out_bytes;
	uint16_t last_packet_id;

	/* From the browser. */
	struct op *ops;
	size_t nops, cap_ops;
	struct qos2_in *q2;
	size_t nq2, cap_q2;
	uint16_t receive_max; /* what the CONNACK told the browser (the broker's) */
	char *aliases[TOPIC_ALIAS_MAX + 1];

	/* The filters subscribed on this connection (or on their way), for max_subscriptions:
	 * filter -> the mark of the SUBSCRIBE that added it. NULL until the first SUBSCRIBE. */
	struct hmap *subs;
	uint32_t last_mark;

	/* Bridge credentials: the CONNECT's token and a reference on its table. */
	struct auth *auth;
	const struct auth_token *token;
};

struct sessions {
	struct sessions_config cfg;
	struct session *all;
	size_t count;
	struct hmap *live; /* client id -> connected, attached session */
	struct store *store;
	struct auth *auth; /* a reference; NULL: every token is unknown */
	struct sessions_stats stats;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *cid(const struct session *s)
{
	return s->client_id ? s->client_id : "-";
}

/* ---- writing to the browser ---- */

static void slow_disconnect(struct session *s);

static int send_packet(struct session *s, const struct mqtt_packet *p)
{
	int rc;

	if (!s->conn || s->closing)
		return -ENOTCONN;
	s->out.len = 0;
	rc = codec_encode(&s->out, s->version ? s->version : MQTT_V311, p);
	if (rc) {
		log_msg(LOG_WARN, "session", "encode-failed client_id=%s type=%s rc=%d", cid(s),
			codec_type_name(p->type), rc);
		return rc;
	}
	rc = s->io->write(s->conn, s->out.data, s->out.len);
	if (rc == -ENOBUFS)
		slow_disconnect(s);
	else if (!rc)
		s->ss->stats.bytes_to_browser += s->out.len;
	return rc;
}

static void close_browser(struct session *s, enum end_kind why)
{
	if (s->end == END_NONE)
		s->end = why;
	if (s->conn && !s->closing) {
		s->closing = true;
		s->io->close(s->conn);
	}
}

static void send_disconnect(struct session *s, uint8_t reason, struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_DISCONNECT};

	if (s->version != MQTT_V5)
		return;
	p.u.disconnect.reason = reason;
	p.u.disconnect.props = props;
	send_packet(s, &p);
}

static int protocol_error(struct session *s, uint8_t reason, const char *why)
{
	s->ss->stats.protocol_errors++;
	log_msg(LOG_INFO, "session", "protocol-error client_id=%s peer=%s reason=0x%02x why=\"%s\"",
		cid(s), s->peer, reason, why);
	if (s->up_state == UP_CONNECTED)
		send_disconnect(s, reason, (struct mqtt_bytes){NULL, 0});
	close_browser(s, END_ERROR);
	return -EPROTO;
}

static void slow_disconnect(struct session *s)
{
	if (s->closing)
		return;
	s->ss->stats.slow_disconnects++;
	log_msg(LOG_WARN, "session", "slow-browser client_id=%s peer=%s queued=%zu", cid(s),
		s->peer, s->conn ? s->io->queued(s->conn) : 0);
	close_browser(s, END_ERROR);
}

static void send_ack(struct session *s, enum mqtt_type type, uint16_t packet_id, uint8_t reason,
		     struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = type};

	p.u.ack.packet_id = packet_id;
	p.u.ack.reason = reason;
	p.u.ack.props = props;
	send_packet(s, &p);
}

static const struct mqtt_bytes no_props = {NULL, 0};
static const struct mqtt_bytes no_codes = {NULL, 0};

/* ---- flow control towards the broker ---- */

static void update_pause(struct session *s)
{
	bool pause = s->held || s->nops >= OPS_PAUSE_AT || (s->paused && s->nops > OPS_RESUME_AT);

	if (pause != s->paused && s->conn) {
		s->paused = pause;
		s->io->pause(s->conn, pause);
	}
}

static int push_op(struct session *s, const struct op *op)
{
	if (s->nops == s->cap_ops) {
		size_t cap = s->cap_ops ? s->cap_ops * 2 : 8;
		struct op *ops = realloc(s->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		s->ops = ops;
		s->cap_ops = cap;
	}
	s->ops[s->nops++] = *op;
	update_pause(s);
	return 0;
}

static int add_op(struct session *s, int token, enum op_kind kind, uint16_t packet_id,
		  size_t count)
{
	struct op op = {.token = token, .kind = (uint8_t)kind, .packet_id = packet_id,
			.count = (uint16_t)count};

	return push_op(s, &op);
}

static void sub_op_free(struct sub_op *sub)
{
	if (sub) {
		buf_clear(&sub->entries);
		free(sub);
	}
}

/* Paho answers in order, so the op is nearly always the first one. */
static bool take_op(struct session *s, int token, struct op *out)
{
	for (size_t i = 0; i < s->nops; i++) {
		if (!s->ops[i].local && s->ops[i].token == token) {
			*out = s->ops[i];
			memmove(&s->ops[i], &s->ops[i + 1], (s->nops - i - 1) * sizeof(*s->ops));
			s->nops--;
			update_pause(s);
			return true;
		}
	}
	return false;
}

static struct qos2_in *find_q2(struct session *s, uint16_t packet_id)
{
	for (size_t i = 0; i < s->nq2; i++) {
		if (s->q2[i].packet_id == packet_id)
			return &s->q2[i];
	}
	return NULL;
}

static int add_q2(struct session *s, uint16_t packet_id, bool received)
{
	if (s->nq2 == s->cap_q2) {
		size_t cap = s->cap_q2 ? s->cap_q2 * 2 : 8;
		struct qos2_in *q2 = realloc(s->q2, cap * sizeof(*q2));
		if (!q2)
			return -ENOMEM;
		s->q2 = q2;
		s->cap_q2 = cap;
	}
	s->q2[s->nq2++] = (struct qos2_in){packet_id, received};
	return 0;
}

static void remove_q2(struct session *s, struct qos2_in *q)
{
	size_t i = (size_t)(q - s->q2);

	memmove(&s->q2[i], &s->q2[i + 1], (s->nq2 - i - 1) * sizeof(*s->q2));
	s->nq2--;
}

/* ---- messages towards the browser ---- */

/* Queued messages have id 0 unless they keep the id of an earlier connection. */
static bool packet_id_in_use(const struct session *s, uint16_t id)
{
	for (const struct msg *m = s->out_head; m; m = m->next) {
		if (m->packet_id == id)
			return true;
	}
	return false;
}

static uint16_t next_packet_id(struct session *s)
{
	/* At most 65535 ids can be in use and in-flight is bounded far below that. */
	for (int tries = 0; tries < 65536; tries++) {
		s->last_packet_id = (uint16_t)(s->last_packet_id + 1);
		if (s->last_packet_id && !packet_id_in_use(s, s->last_packet_id))
			return s->last_packet_id;
	}
	return 0;
}

/* Encodes and queues a PUBLISH; false when the browser's Maximum Packet Size forbids it. */
static bool send_publish(struct session *s, const struct msg *m, uint16_t packet_id, bool dup)
{
	struct mqtt_packet p = {.type = MQTT_PUBLISH};

	p.u.publish.qos = m->qos;
	p.u.publish.retain = m->retain;
	p.u.publish.dup = dup;
	p.u.publish.packet_id = packet_id;
	p.u.publish.topic = m->topic;
	p.u.publish.payload = m->payload;
	p.u.publish.props = m->props;
	if (s->browser_max_packet && codec_encoded_len(s->version, &p) > s->browser_max_packet)
		return false;
	send_packet(s, &p);
	return true;
}

static void unlink_out(struct session *s, struct msg *prev, struct msg *m)
{
	if (prev)
		prev->next = m->next;
	else
		s->out_head = m->next;
	if (s->out_tail == m)
		s->out_tail = prev;
	s->out_bytes -= m->size;
	free(m);
}

/* Sends queued QoS 1/2 messages while the browser's receive maximum leaves room. */
static void pump(struct session *s)
{
	struct msg *prev = NULL, *m = s->out_head, *next;

	for (; m && s->conn && !s->closing && s->out_inflight < s->browser_receive_max; m = next) {
		next = m->next;
		if ((m->state & MSG_STATE) != MSG_QUEUED) {
			prev = m;
			continue;
		}
		if (!m->packet_id)
			m->packet_id = next_packet_id(s);
		if (!send_publish(s, m, m->packet_id, m->state & MSG_WAS_SENT)) {
			/* Too large for this browser: the spec says to discard it as if sent. */
			unlink_out(s, prev, m);
			continue;
		}
		m->state = MSG_SENT;
		s->out_inflight++;
		prev = m;
	}
}

/* Appends a QoS 1/2 message to the messages towards the browser, not sent yet. */
static void queue_out(struct session *s, struct msg *m)
{
	m->state = MSG_QUEUED;
	m->packet_id = 0;
	m->next = NULL;
	if (s->out_tail)
		s->out_tail->next = m;
	else
		s->out_head = m;
	s->out_tail = m;
	s->out_bytes += m->size;
}

static void deliver(struct session *s, struct msg *m)
{
	size_t limit = s->ss->cfg.max_queue_bytes;

	s->ss->stats.messages_to_browser++;
	if (m->qos == 0) {
		/* A slow browser loses QoS 0 messages first (DESIGN §3, backpressure). */
		if (s->io->queued(s->conn) > limit / 2)
			s->ss->stats.qos0_dropped++;
		else
			send_publish(s, m, 0, false);
		free(m);
		return;
	}
	queue_out(s, m);
	if (s->out_bytes + s->io->queued(s->conn) > limit) {
		slow_disconnect(s);
		return;
	}
	pump(s);
}

static struct msg *find_out(struct session *s, uint16_t packet_id, struct msg **prev_out)
{
	struct msg *prev = NULL;

	for (struct msg *m = s->out_head; m; prev = m, m = m->next) {
		if (m->packet_id == packet_id && (m->state & MSG_STATE) != MSG_QUEUED) {
			*prev_out = prev;
			return m;
		}
	}
	return NULL;
}

/* ---- the upstream's events ---- */

static void finalize(struct session *s);

static void maybe_finalize(struct session *s)
{
	if (!s->conn && (s->up_state == UP_NONE || s->up_state == UP_GONE))
		finalize(s);
}

static void upstream_gone(struct session *s)
{
	upstream_free(s->up);
	s->up = NULL;
	s->up_state = UP_GONE;
}

/*
 * The browser is gone without DISCONNECT (or the bridge ended it): end the upstream so that the
 * broker publishes the will. MQTT 5 has DISCONNECT 0x04 for that. Paho always sends a plain
 * DISCONNECT below 5 and exposes no socket to drop, so for 3.1/3.1.1 the bridge publishes the
 * will itself on the session's own connection, waits for it to be acknowledged, then
 * disconnects: subscribers see the same message from the same client.
 */
static void end_upstream_abruptly(struct session *s)
{
	int rc, token;

	if (s->up_state != UP_CONNECTED)
		return;
	if (s->version == MQTT_V5) {
		rc = upstream_disconnect(s->up, MQTT_RC_DISCONNECT_WITH_WILL, no_props, 0);
	} else {
		if (s->will)
			upstream_publish(s->up, (const char *)s->will->topic.data, s->will->payload,
					 s->will->qos, s->will->retain, no_props, &token);
		rc = upstream_disconnect(s->up, 0, no_props, s->will ? WILL_WAIT_MS : 0);
	}
	if (rc)
		upstream_gone(s);
	else
		s->up_state = UP_CLOSING;
}

static uint32_t prop_u32(struct mqtt_bytes props, uint8_t id, uint32_t dflt)
{
	struct mqtt_prop p;

	return props_find(props.data, props.len, id, &p) ? p.value : dflt;
}

static void send_connack(struct session *s, bool session_present, uint8_t code,
			 struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_CONNACK};

	p.u.connack.session_present = session_present;
	p.u.connack.code = code;
	p.u.connack.props = props;
	send_packet(s, &p);
}

/* The broker's CONNACK properties, with what the bridge itself decides put in. */
static int connack_props(struct session *s, struct mqtt_bytes broker, struct buf *out)
{
	static const uint8_t ours[] = {MQTT_PROP_TOPIC_ALIAS_MAXIMUM, MQTT_PROP_MAXIMUM_PACKET_SIZE,
				       MQTT_PROP_ASSIGNED_CLIENT_ID};
	uint32_t max_packet = prop_u32(broker, MQTT_PROP_MAXIMUM_PACKET_SIZE, 0);
	size_t ours_max = s->ss->cfg.max_packet_bytes;
	int rc;

	if (!max_packet || max_packet > ours_max)
		max_packet = (uint32_t)ours_max;
	rc = props_copy_except(out, broker.data, broker.len, ours, sizeof(ours));
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS_MAX);
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_MAXIMUM_PACKET_SIZE, max_packet);
	if (!rc && s->id_assigned)
		rc = props_put_bytes(out, MQTT_PROP_ASSIGNED_CLIENT_ID, s->client_id,
				     strlen(s->client_id));
	return rc;
}

static void session_handoff(struct session *to, struct leftovers *lo);
static int drain_input(struct session *s);

static void on_connected(struct session *s, struct upstream_event *ev)
{
	struct buf props = BUF_INIT;
	struct leftovers *lo;
	uint32_t keepalive;

	s->up_state = UP_CONNECTED;
	if (!s->conn || s->closing) {
		end_upstream_abruptly(s);
		maybe_finalize(s);
		return;
	}
	if (s->version == MQTT_V5 && connack_props(s, ev->props, &props)) {
		buf_clear(&props);
		close_browser(s, END_ERROR);
		end_upstream_abruptly(s);
		return;
	}
	send_connack(s, ev->session_present, 0, (struct mqtt_bytes){props.data, props.len});
	buf_clear(&props);
	log_msg(LOG_INFO, "session",
		"connected client_id=%s peer=%s version=%u clean_start=%d session_present=%d",
		cid(s), s->peer, s->version, s->clean_start, ev->session_present);

	if (hmap_put(s->ss->live, s->client_id, strlen(s->client_id), s))
		log_msg(LOG_WARN, "session", "untracked client_id=%s reason=out-of-memory", cid(s));
	lo = store_take(s->ss->store, s->client_id);
	if (lo && ev->session_present && !s->clean_start)
		session_handoff(s, lo);
	else
		leftovers_free(lo);

	keepalive = prop_u32(ev->props, MQTT_PROP_SERVER_KEEP_ALIVE, s->keepalive);
	/* MQTT: the server may drop a client silent for one and a half keepalive periods. */
	s->io->deadline(s->conn, keepalive * 1500u);
	s->receive_max = (uint16_t)prop_u32(ev->props, MQTT_PROP_RECEIVE_MAXIMUM, 65535);
	s->held = false;
	update_pause(s);
	/* Packets the browser sent right after CONNECT are handled now. */
	if (s->in.len)
		drain_input(s);
}

static void on_connect_failed(struct session *s, struct upstream_event *ev)
{
	uint8_t code = ev->code;

	upstream_gone(s);
	if (!s->conn) {
		maybe_finalize(s);
		return;
	}
	if (s->version == MQTT_V5)
		code = code >= 0x80 ? code : MQTT_RC_SERVER_UNAVAILABLE;
	else
		code = code >= 1 && code <= 5 ? code : MQTT_CONNACK_UNAVAILABLE;
	log_msg(LOG_INFO, "session", "connect-refused client_id=%s peer=%s code=0x%02x broker=%s",
		cid(s), s->peer, code, ev->code ? "answered" : "unreachable");
	send_connack(s, false, code, ev->props);
	close_browser(s, END_ERROR);
}

/*
 * With bridge credentials every upstream logs in as the bridge, so the broker cannot keep one
 * token's messages from another's: a client id resumed under another token still carries the
 * first one's subscriptions. So what reaches the browser is checked against its token too.
 */
static bool may_read(const struct session *s, const struct msg *m)
{
	return !s->token || auth_may_subscribe(s->token, (const char *)m->topic.data, m->topic.len);
}

static void on_message(struct session *s, struct upstream_event *ev)
{
	struct msg *m = ev->msg;

	ev->msg = NULL;
	if (!may_read(s, m)) {
		log_msg(LOG_DEBUG, "session", "message-denied client_id=%s token=%s", cid(s),
			s->token->name);
		free(m);
		return;
	}
	if (!s->conn || s->closing) {
		/* Kept for a persistent session's return; see finalize(). */
		if (m->qos > 0)
			queue_out(s, m);
		else
			free(m);
		return;
	}
	deliver(s, m);
	if (ev->overflow)
		slow_disconnect(s);
}

/* @filter no longer counts against max_subscriptions, unless a later SUBSCRIBE added it again. */
static void forget_sub(struct session *s, struct mqtt_bytes filter, uint32_t mark)
{
	if (s->subs && hmap_get(s->subs, filter.data, filter.len) == (void *)(uintptr_t)mark)
		hmap_remove(s->subs, filter.data, filter.len);
}

/*
 * The SUBACK of @sub: the bridge's own codes, and in between the broker's @broker codes for the
 * filters that went to it (all 0x80 when its answer does not fit them). A filter the broker
 * refused does not count against max_subscriptions.
 */
static void send_suback(struct session *s, uint16_t packet_id, struct sub_op *sub,
			struct mqtt_bytes broker, struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_SUBACK};
	struct mqtt_bytes cursor = {sub->entries.data, sub->entries.len};
	struct codec_entry e;
	size_t forwarded = 0, j = 0;

	for (size_t i = 0; i < sub->count; i++)
		forwarded += sub->codes[i] == CODE_FORWARDED;
	for (size_t i = 0; i < sub->count; i++) {
		uint8_t code;
		if (sub->codes[i] != CODE_FORWARDED)
			continue;
		code = broker.len == forwarded ? broker.data[j++] : MQTT_RC_UNSPECIFIED;
		sub->codes[i] = code;
		if (codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e) && code >= 0x80)
			forget_sub(s, e.filter, sub->mark);
	}
	p.u.suback.packet_id = packet_id;
	p.u.suback.props = props;
	p.u.suback.codes = (struct mqtt_bytes){sub->codes, sub->count};
	send_packet(s, &p);
}

/* Sends the bridge's own answers that no request to the broker is ahead of any more. */
static void answer_local(struct session *s)
{
	while (s->nops && s->ops[0].local) {
		struct op op = s->ops[0];
		memmove(&s->ops[0], &s->ops[1], (s->nops - 1) * sizeof(*s->ops));
		s->nops--;
		if (op.kind == OP_PUB1)
			send_ack(s, MQTT_PUBACK, op.packet_id, op.code, no_props);
		else if (op.kind == OP_PUB2)
			send_ack(s, MQTT_PUBREC, op.packet_id, op.code, no_props);
		else if (op.kind == OP_SUB)
			send_suback(s, op.packet_id, op.sub, no_codes, no_props);
		sub_op_free(op.sub);
	}
	update_pause(s);
}

/* Queues an answer of the bridge's own (it owns @sub); it goes out after the requests before it. */
static int add_local(struct session *s, enum op_kind kind, uint16_t packet_id, uint8_t code,
		     struct sub_op *sub)
{
	struct op op = {.kind = (uint8_t)kind, .local = true, .code = code, .packet_id = packet_id,
			.sub = sub};
	int rc = push_op(s, &op);

	if (rc) {
		sub_op_free(sub);
		return rc;
	}
	answer_local(s);
	return 0;
}

/* The broker answered @op: the browser gets its ack. */
static void answer_op(struct session *s, struct op op, struct upstream_event *ev)
{
	struct qos2_in *q;

	if (op.kind == OP_PUB0)
		return;
	/* Paho gave up without the broker's answer: the browser must not think it was acked.
	 * Closing makes it send again when it reconnects. */
	if (ev->failed) {
		log_msg(LOG_INFO, "session", "request-failed client_id=%s packet_id=%u", cid(s),
			op.packet_id);
		close_browser(s, END_ERROR);
		return;
	}
	switch (op.kind) {
	case OP_PUB1:
		send_ack(s, MQTT_PUBACK, op.packet_id, ev->code, ev->props);
		break;
	case OP_PUB2:
		q = find_q2(s, op.packet_id);
		send_ack(s, MQTT_PUBREC, op.packet_id, ev->code, ev->props);
		if (q && ev->code >= 0x80)
			remove_q2(s, q);
		else if (q)
			q->received = true;
		break;
	case OP_SUB:
		send_suback(s, op.packet_id, op.sub, ev->codes, ev->props);
		break;
	case OP_UNSUB: {
		struct mqtt_packet p = {.type = MQTT_UNSUBACK};
		uint8_t codes[256];
		p.u.suback.packet_id = op.packet_id;
		p.u.suback.props = ev->props;
		p.u.suback.codes = ev->codes;
		/* 3.1.1 UNSUBACK has no codes; a v5 one with none means all succeeded. */
		if (ev->codes.len != op.count && s->version == MQTT_V5) {
			memset(codes, 0, sizeof(codes));
			p.u.suback.codes = (struct mqtt_bytes){codes, op.count};
		}
		send_packet(s, &p);
		break;
	}
	}
}

static void on_done(struct session *s, struct upstream_event *ev)
{
	struct op op;

	if (!take_op(s, ev->token, &op))
		return;
	answer_op(s, op, ev);
	sub_op_free(op.sub);
	answer_local(s);
}

static void on_upstream_end(struct session *s, struct upstream_event *ev)
{
	bool told = ev->item.kind == UPSTREAM_DISCONNECTED;

	upstream_gone(s);
	if (!s->conn) {
		maybe_finalize(s);
		return;
	}
	log_msg(LOG_INFO, "session", "upstream-ended client_id=%s peer=%s reason=%s", cid(s),
		s->peer, told ? "broker-disconnect" : "connection-lost");
	if (told)
		send_disconnect(s, ev->code, ev->props);
	close_browser(s, END_UPSTREAM);
}

static void on_upstream_event(void *owner, struct upstream_event *ev)
{
	struct session *s = owner;

	/* A handler may free @s (when the browser is gone too); @ev stays valid either way. */
	switch ((enum upstream_event_kind)ev->item.kind) {
	case UPSTREAM_CONNECTED:
		on_connected(s, ev);
		break;
	case UPSTREAM_CONNECT_FAILED:
		on_connect_failed(s, ev);
		break;
	case UPSTREAM_MESSAGE:
		on_message(s, ev);
		break;
	case UPSTREAM_DONE:
		on_done(s, ev);
		break;
	case UPSTREAM_DISCONNECTED:
	case UPSTREAM_LOST:
		on_upstream_end(s, ev);
		break;
	case UPSTREAM_CLOSED:
		upstream_gone(s);
		maybe_finalize(s);
		break;
	}
	upstream_event_free(ev);
}

/* ---- persistent sessions ---- */

static bool persistent(const struct session *s)
{
	return s->client_id && s->session_expiry > 0;
}

/* What the session leaves behind: unacknowledged messages and QoS 2 ids awaiting PUBREL. */
static struct leftovers *take_leftovers(struct session *s)
{
	struct leftovers *lo;
	size_t n = 0;

	if (!s->out_head && !s->nq2)
		return NULL;
	lo = calloc(1, sizeof(*lo));
	if (!lo)
		return NULL;
	for (size_t i = 0; i < s->nq2; i++)
		n += s->q2[i].received;
	if (n) {
		lo->qos2_received = calloc(n, sizeof(uint16_t));
		if (!lo->qos2_received) {
			free(lo);
			return NULL;
		}
		for (size_t i = 0; i < s->nq2; i++) {
			if (s->q2[i].received)
				lo->qos2_received[lo->nqos2_received++] = s->q2[i].packet_id;
		}
	}
	for (struct msg *m = s->out_head; m; m = m->next) {
		if ((m->state & MSG_STATE) != MSG_QUEUED)
			m->state |= MSG_WAS_SENT;
	}
	lo->msgs = s->out_head;
	lo->bytes = s->out_bytes;
	s->out_head = s->out_tail = NULL;
	s->out_bytes = 0;
	s->out_inflight = 0;
	lo->expires_ms = s->session_expiry == UINT32_MAX
				 ? UINT64_MAX
				 : now_ms() + (uint64_t)s->session_expiry * 1000u;
	return lo;
}

/*
 * A returning (or taking over) connection of the same client id gets what was left: messages
 * sent before go again with DUP and their packet ids, PUBRELs are sent again, and the QoS 2
 * packet ids still awaiting PUBREL are remembered so a re-sent PUBLISH is not delivered twice.
 */
static void session_handoff(struct session *to, struct leftovers *lo)
{
	struct msg *m, *next;
	size_t count = 0;

	for (m = lo->msgs; m; m = next) {
		next = m->next;
		m->next = NULL;
		if ((m->state & MSG_STATE) != MSG_RELEASED && !may_read(to, m)) {
			free(m);
			continue;
		}
		count++;
		/* A taking-over connection may already use the id for something else. */
		if ((m->state & MSG_STATE) == MSG_SENT && packet_id_in_use(to, m->packet_id))
			m->packet_id = 0;
		if (to->out_tail)
			to->out_tail->next = m;
		else
			to->out_head = m;
		to->out_tail = m;
		to->out_bytes += m->size;
		if ((m->state & MSG_STATE) == MSG_RELEASED) {
			to->out_inflight++;
			send_ack(to, MQTT_PUBREL, m->packet_id, 0, no_props);
		} else {
			/* Sent before: it goes again with DUP under the same packet id. */
			m->state = (m->state & MSG_WAS_SENT) | MSG_QUEUED;
		}
	}
	lo->msgs = NULL;
	for (size_t i = 0; i < lo->nqos2_received; i++) {
		if (!find_q2(to, lo->qos2_received[i]))
			add_q2(to, lo->qos2_received[i], true);
	}
	log_msg(LOG_INFO, "session", "session-resumed client_id=%s messages=%zu qos2_pending=%zu",
		cid(to), count, lo->nqos2_received);
	leftovers_free(lo);
	pump(to);
}

static void finalize(struct session *s)
{
	struct sessions *ss = s->ss;
	struct leftovers *lo = NULL;

	if (persistent(s)) {
		/* A connection of the same client id that took over gets them at once, unless it
		 * started clean; otherwise they wait in the store. */
		struct session *live = hmap_get(ss->live, s->client_id, strlen(s->client_id));
		lo = take_leftovers(s);
		if (!lo && (s->out_head || s->nq2))
			ss->stats.qos12_lost++;
		if (lo && live && live != s && !live->clean_start)
			session_handoff(live, lo);
		else if (lo && live && live != s)
			leftovers_free(lo);
		else if (lo && store_put(ss->store, s->client_id, lo))
			ss->stats.qos12_lost++;
	}
	/* A clean session's unacknowledged messages end with it, as at a broker. */
	for (struct msg *m = s->out_head, *next; m; m = next) {
		next = m->next;
		free(m);
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		ss->all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ss->count--;
	ss->stats.sessions_active = ss->count;
	log_msg(LOG_DEBUG, "session", "ended client_id=%s peer=%s", cid(s), s->peer);
	for (int i = 0; i <= TOPIC_ALIAS_MAX; i++)
		free(s->aliases[i]);
	free(s->will);
	free(s->client_id);
	for (size_t i = 0; i < s->nops; i++)
		sub_op_free(s->ops[i].sub);
	free(s->ops);
	hmap_free(s->subs);
	auth_unref(s->auth);
	free(s->q2);
	buf_clear(&s->in);
	buf_clear(&s->out);
	buf_clear(&s->topic);
	free(s);
}

/* ---- packets from the browser ---- */

static int refuse_connect(struct session *s, uint8_t code_v3, uint8_t code_v5, const char *why)
{
	log_msg(LOG_INFO, "session", "connect-refused peer=%s why=\"%s\"", s->peer, why);
	send_connack(s, false, s->version == MQTT_V5 ? code_v5 : code_v3, no_props);
	close_browser(s, END_ERROR);
	return -EPROTO;
}

static char *assign_client_id(void)
{
	uint8_t r[16];
	char *id = malloc(42);

	if (!id)
		return NULL;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		free(id);
		return NULL;
	}
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* a version 4 UUID, as Mosquitto assigns */
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
	snprintf(id, 42,
		 "auto-%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
		 r[13], r[14], r[15]);
	return id;
}

/*
 * Bridge credentials: the CONNECT password is a token's secret; the username is not looked at.
 * A wrong one is refused before any upstream client exists. The will is published with the
 * session's rights, so its topic must be inside the token's publish ACL, as at a broker.
 */
static int accept_token(struct session *s, const struct mqtt_connect *c)
{
	struct auth *table = s->ss->auth;
	const struct auth_token *t = NULL;

	if (table && c->has_password)
		t = auth_find(table, (const char *)c->password.data, c->password.len);
	if (!t)
		return refuse_connect(s, MQTT_CONNACK_NOT_AUTHORIZED, MQTT_RC_BAD_CREDENTIALS,
				      c->has_password ? "unknown token" : "no token (password)");
	if (c->will && !auth_may_publish(t, (const char *)c->will_topic.data, c->will_topic.len))
		return refuse_connect(s, MQTT_CONNACK_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
				      "will topic outside the token's publish ACL");
	s->auth = auth_ref(table);
	s->token = t;
	log_msg(LOG_DEBUG, "session", "token-accepted client_id=%s peer=%s token=%s", cid(s),
		s->peer, t->name);
	return 0;
}

static int on_connect(struct session *s, const struct mqtt_connect *c)
{
	struct upstream_connect uc = {0};
	char *username = NULL, *will_topic = NULL;
	bool own_user;

	s->version = c->version;
	s->clean_start = c->clean_start;
	s->keepalive = c->keepalive;
	s->browser_receive_max = 65535;
	if (c->version == MQTT_V5) {
		s->session_expiry = prop_u32(c->props, MQTT_PROP_SESSION_EXPIRY, 0);
		s->browser_receive_max =
			(uint16_t)prop_u32(c->props, MQTT_PROP_RECEIVE_MAXIMUM, 65535);
		s->browser_max_packet = prop_u32(c->props, MQTT_PROP_MAXIMUM_PACKET_SIZE, 0);
	} else {
		s->session_expiry = c->clean_start ? 0 : UINT32_MAX;
	}

	if (c->client_id.len == 0) {
		/* As a broker does: 3.1 has no empty ids; 3.1.1 only with a clean session. */
		if (c->version == MQTT_V31 || (c->version == MQTT_V311 && !c->clean_start))
			return refuse_connect(s, MQTT_CONNACK_ID_REJECTED, MQTT_RC_CLIENT_ID_INVALID,
					      "empty client id without clean session");
		s->client_id = assign_client_id();
		s->id_assigned = true;
	} else {
		s->client_id = strndup((const char *)c->client_id.data, c->client_id.len);
	}
	if (s->ss->cfg.bridge_credentials && accept_token(s, c))
		return -EPROTO;
	/* All tokens log in to the broker as one user, so their client ids are kept apart:
	 * "TOKEN/ID" at the broker and in the bridge, or one token could take over (and end)
	 * another's connection or resume its session. An assigned id is unique already. */
	if (s->token && !s->id_assigned && s->client_id) {
		char *own = s->client_id;
		if (asprintf(&s->client_id, "%s/%s", s->token->name, own) < 0)
			s->client_id = NULL;
		free(own);
	}
	/* The browser's own username goes to the broker only in passthrough. */
	own_user = c->has_username && !s->token;
	if (own_user)
		username = strndup((const char *)c->username.data, c->username.len);
	if (c->will)
		will_topic = strndup((const char *)c->will_topic.data, c->will_topic.len);
	if (!s->client_id || (own_user && !username) || (c->will && !will_topic))
		goto unavailable;
	if (c->will && c->version != MQTT_V5) {
		s->will = msg_new(c->will_topic.data, c->will_topic.len, c->will_payload.data,
				  c->will_payload.len, NULL, 0, c->will_qos, c->will_retain);
		if (!s->will)
			goto unavailable;
	}

	uc.version = c->version;
	uc.client_id = s->client_id;
	uc.clean_start = c->clean_start;
	uc.keepalive_s = c->keepalive;
	uc.props = c->props;
	uc.will = c->will;
	uc.will_topic = will_topic;
	uc.will_payload = c->will_payload;
	uc.will_qos = c->will_qos;
	uc.will_retain = c->will_retain;
	uc.will_props = c->will_props;
	uc.username = username;
	uc.has_password = c->has_password;
	uc.password = c->password;
	if (s->token) {
		const char *user = s->ss->cfg.broker_username, *pw = s->ss->cfg.broker_password;
		uc.username = user && *user ? user : NULL;
		uc.has_password = pw && *pw;
		uc.password.data = (const uint8_t *)pw;
		uc.password.len = uc.has_password ? strlen(pw) : 0;
	}
	s->up = upstream_new(s->ss->cfg.env, &uc, on_upstream_event, s);
	free(username);
	free(will_topic);
	if (!s->up)
		return refuse_connect(s, MQTT_CONNACK_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
				      "upstream client could not be created");
	s->up_state = UP_CONNECTING;
	/* Nothing more is read until the broker has answered; the CONNECT deadline no longer
	 * applies while the broker takes its time. */
	s->held = true;
	update_pause(s);
	s->io->deadline(s->conn, 0);
	return 0;
unavailable:
	free(username);
	free(will_topic);
	return refuse_connect(s, MQTT_CONNACK_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
			      "out of memory");
}

/*
 * A PUBLISH outside the token's ACL is not passed on, as Mosquitto does it: QoS 0 is dropped;
 * QoS 1 and 2 are answered so that the client does not send it again, with 0x87 in MQTT 5 and
 * as if delivered in 3.1/3.1.1, which cannot say no (the PUBREL of QoS 2 gets its PUBCOMP).
 */
static int deny_publish(struct session *s, const struct mqtt_publish *p)
{
	uint8_t code = s->version == MQTT_V5 ? MQTT_RC_NOT_AUTHORIZED : 0;
	int rc = 0;

	s->ss->stats.denied_publish++;
	log_msg(LOG_DEBUG, "session", "publish-denied client_id=%s token=%s qos=%u", cid(s),
		s->token->name, p->qos);
	if (p->qos)
		rc = add_local(s, p->qos == 1 ? OP_PUB1 : OP_PUB2, p->packet_id, code, NULL);
	if (rc)
		close_browser(s, END_ERROR);
	return rc;
}

static int on_publish(struct session *s, const struct mqtt_publish *p)
{
	struct mqtt_bytes topic = p->topic;
	struct mqtt_prop alias;
	struct qos2_in *q;
	int token, rc;

	if (s->version == MQTT_V5 &&
	    props_find(p->props.data, p->props.len, MQTT_PROP_TOPIC_ALIAS, &alias)) {
		if (alias.value == 0 || alias.value > TOPIC_ALIAS_MAX)
			return protocol_error(s, MQTT_RC_TOPIC_ALIAS_INVALID,
					      "topic alias out of range");
		if (topic.len) {
			char *copy = strndup((const char *)topic.data, topic.len);
			if (!copy)
				return protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
			free(s->aliases[alias.value]);
			s->aliases[alias.value] = copy;
		} else if (s->aliases[alias.value]) {
			topic.data = (const uint8_t *)s->aliases[alias.value];
			topic.len = strlen(s->aliases[alias.value]);
		} else {
			return protocol_error(s, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
		}
	}
	if (p->qos == 2 && (q = find_q2(s, p->packet_id))) {
		/* A re-sent QoS 2 PUBLISH is answered, not delivered again. */
		if (q->received)
			send_ack(s, MQTT_PUBREC, p->packet_id, 0, no_props);
		return 0;
	}
	/* QoS 2 exchanges hold state until PUBREL, so their number is held to Receive Maximum
	 * (MQTT 5 §4.9). QoS 1 is not counted: Mosquitto acknowledges it at once and clients
	 * rely on that, while the bridge waits for the broker. */
	if (p->qos == 2 && s->version == MQTT_V5 && s->nq2 >= s->receive_max)
		return protocol_error(s, MQTT_RC_RECEIVE_MAX_EXCEEDED, "receive maximum exceeded");
	if (s->token && !auth_may_publish(s->token, (const char *)topic.data, topic.len))
		return deny_publish(s, p);
	s->topic.len = 0;
	if (buf_append(&s->topic, topic.data, topic.len) || buf_put_u8(&s->topic, 0))
		return protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
	rc = upstream_publish(s->up, (const char *)s->topic.data, p->payload, p->qos, p->retain,
			      p->props, &token);
	if (!rc)
		rc = add_op(s, token, p->qos == 0 ? OP_PUB0 : p->qos == 1 ? OP_PUB1 : OP_PUB2,
			    p->packet_id, 0);
	if (!rc && p->qos == 2)
		rc = add_q2(s, p->packet_id, false);
	if (rc) {
		log_msg(LOG_INFO, "session", "publish-failed client_id=%s rc=%d", cid(s), rc);
		close_browser(s, END_ERROR);
		return rc;
	}
	s->ss->stats.messages_from_browser++;
	return 0;
}

static void on_browser_ack(struct session *s, enum mqtt_type type, const struct mqtt_ack *a)
{
	struct msg *m, *prev;
	struct qos2_in *q;

	switch (type) {
	case MQTT_PUBACK:
		m = find_out(s, a->packet_id, &prev);
		if (m && m->qos == 1) {
			unlink_out(s, prev, m);
			s->out_inflight--;
		}
		break;
	case MQTT_PUBREC:
		m = find_out(s, a->packet_id, &prev);
		if (m && m->qos == 2 && (m->state & MSG_STATE) == MSG_SENT && a->reason >= 0x80) {
			unlink_out(s, prev, m);
			s->out_inflight--;
			break;
		}
		if (m && m->qos == 2)
			m->state = MSG_RELEASED;
		send_ack(s, MQTT_PUBREL, a->packet_id,
			 m || s->version != MQTT_V5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND, no_props);
		break;
	case MQTT_PUBCOMP:
		m = find_out(s, a->packet_id, &prev);
		if (m && (m->state & MSG_STATE) == MSG_RELEASED) {
			unlink_out(s, prev, m);
			s->out_inflight--;
		}
		break;
	case MQTT_PUBREL:
		q = find_q2(s, a->packet_id);
		/* Still at the broker: the PUBREC has not gone out, so this PUBREL is early. */
		if (q && !q->received)
			break;
		if (q)
			remove_q2(s, q);
		send_ack(s, MQTT_PUBCOMP, a->packet_id,
			 q || s->version != MQTT_V5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND, no_props);
		break;
	default:
		break;
	}
	pump(s);
}

static uint32_t next_mark(struct session *s)
{
	s->last_mark++;
	if (!s->last_mark)
		s->last_mark = 1; /* a stored mark is never NULL */
	return s->last_mark;
}

/*
 * The bridge's own verdict on one filter of a SUBSCRIBE: CODE_FORWARDED (counted in s->subs
 * from now on), or the code it refuses the filter with. As at a broker, subscribing again to a
 * filter replaces the subscription, so it adds nothing to the count.
 */
static uint8_t judge_filter(struct session *s, struct mqtt_bytes filter, uint32_t mark)
{
	size_t max = s->ss->cfg.max_subscriptions;
	bool v5 = s->version == MQTT_V5;

	if (s->token && !auth_may_subscribe(s->token, (const char *)filter.data, filter.len)) {
		s->ss->stats.denied_subscribe++;
		return v5 ? MQTT_RC_NOT_AUTHORIZED : MQTT_RC_UNSPECIFIED;
	}
	if (hmap_get(s->subs, filter.data, filter.len))
		return CODE_FORWARDED;
	if (max && hmap_count(s->subs) >= max) {
		s->ss->stats.quota_refused++;
		return v5 ? MQTT_RC_QUOTA_EXCEEDED : MQTT_RC_UNSPECIFIED;
	}
	if (hmap_put(s->subs, filter.data, filter.len, (void *)(uintptr_t)mark))
		return MQTT_RC_UNSPECIFIED;
	return CODE_FORWARDED;
}

/*
 * Filters outside the token's ACL or over max_subscriptions are refused by the bridge; the
 * others go to the broker in one SUBSCRIBE, with the packet's properties, and the SUBACK puts
 * both answers back in the browser's order.
 */
static int on_subscribe(struct session *s, const struct mqtt_subscribe *sub)
{
	struct mqtt_bytes cursor = sub->entries;
	struct codec_entry e;
	struct sub_op *so = NULL;
	size_t i = 0, forwarded = 0;
	int token, rc = -ENOMEM;

	if (!s->subs && !(s->subs = hmap_new()))
		goto fail;
	so = calloc(1, sizeof(*so) + sub->count);
	if (!so)
		goto fail;
	so->count = sub->count;
	so->mark = next_mark(s);
	while (i < sub->count && codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e)) {
		uint8_t code = judge_filter(s, e.filter, so->mark);
		so->codes[i++] = code;
		if (code != CODE_FORWARDED)
			continue;
		rc = codec_put_entry(&so->entries, MQTT_SUBSCRIBE, e.filter.data, e.filter.len,
				     e.options);
		if (rc)
			goto fail;
		forwarded++;
	}
	if (forwarded < sub->count)
		log_msg(LOG_INFO, "session",
			"subscribe-refused client_id=%s packet_id=%u refused=%zu filters=%zu",
			cid(s), sub->packet_id, sub->count - forwarded, sub->count);
	if (!forwarded) {
		rc = add_local(s, OP_SUB, sub->packet_id, 0, so);
		so = NULL; /* add_local owns it either way */
		if (rc)
			goto fail;
		return 0;
	}
	rc = upstream_subscribe(s->up, MQTT_SUBSCRIBE,
				(struct mqtt_bytes){so->entries.data, so->entries.len}, forwarded,
				sub->props, &token);
	if (!rc) {
		struct op op = {.token = token, .kind = OP_SUB, .packet_id = sub->packet_id,
				.count = (uint16_t)sub->count, .sub = so};
		rc = push_op(s, &op);
	}
	if (rc)
		goto fail;
	return 0;
fail:
	sub_op_free(so);
	log_msg(LOG_INFO, "session", "subscribe-failed client_id=%s rc=%d", cid(s), rc);
	close_browser(s, END_ERROR);
	return rc;
}

static int on_unsubscribe(struct session *s, const struct mqtt_subscribe *sub)
{
	struct mqtt_bytes cursor = sub->entries;
	struct codec_entry e;
	int token, rc;

	/* Counted out now: the broker handles this before any later SUBSCRIBE of the filter. */
	while (s->subs && codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e))
		hmap_remove(s->subs, e.filter.data, e.filter.len);
	rc = upstream_subscribe(s->up, MQTT_UNSUBSCRIBE, sub->entries, sub->count, sub->props,
				&token);
	if (!rc)
		rc = add_op(s, token, OP_UNSUB, sub->packet_id, sub->count);
	if (rc) {
		log_msg(LOG_INFO, "session", "unsubscribe-failed client_id=%s rc=%d", cid(s), rc);
		close_browser(s, END_ERROR);
	}
	return rc;
}

static void on_disconnect(struct session *s, const struct mqtt_disconnect *d)
{
	struct mqtt_prop expiry;

	if (s->version == MQTT_V5 &&
	    props_find(d->props.data, d->props.len, MQTT_PROP_SESSION_EXPIRY, &expiry))
		s->session_expiry = expiry.value;
	log_msg(LOG_DEBUG, "session", "disconnect client_id=%s reason=0x%02x", cid(s), d->reason);
	/* The broker gets the browser's own DISCONNECT: with 0x04 it publishes the will. */
	if (upstream_disconnect(s->up, d->reason, d->props, 0))
		upstream_gone(s);
	else
		s->up_state = UP_CLOSING;
	close_browser(s, END_CLEAN);
}

static int handle_packet(struct session *s, const uint8_t *data, size_t len)
{
	struct mqtt_packet p;
	struct codec_error err = {0, NULL};
	int rc;

	rc = codec_decode(data, len, s->version ? s->version : MQTT_V311, &p, &err);
	if (!s->version) {
		if (rc == -EPROTONOSUPPORT) {
			/* The level is unknown, so answer in 3.1.1's format, as brokers do. */
			send_connack(s, false, MQTT_CONNACK_BAD_VERSION, no_props);
			s->ss->stats.protocol_errors++;
			close_browser(s, END_ERROR);
			return -EPROTO;
		}
		if (rc || p.type != MQTT_CONNECT) {
			s->ss->stats.protocol_errors++;
			log_msg(LOG_INFO, "session", "protocol-error peer=%s why=\"%s\"", s->peer,
				rc ? err.msg : "the first packet must be CONNECT");
			close_browser(s, END_ERROR);
			return -EPROTO;
		}
		return on_connect(s, &p.u.connect);
	}
	if (rc)
		return protocol_error(s, err.reason ? err.reason : MQTT_RC_MALFORMED,
				      err.msg ? err.msg : "malformed packet");
	switch (p.type) {
	case MQTT_PUBLISH:
		return on_publish(s, &p.u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		on_browser_ack(s, p.type, &p.u.ack);
		return 0;
	case MQTT_SUBSCRIBE:
		return on_subscribe(s, &p.u.sub);
	case MQTT_UNSUBSCRIBE:
		return on_unsubscribe(s, &p.u.sub);
	case MQTT_PINGREQ: {
		struct mqtt_packet pong = {.type = MQTT_PINGRESP};
		send_packet(s, &pong);
		return 0;
	}
	case MQTT_DISCONNECT:
		on_disconnect(s, &p.u.disconnect);
		return 0;
	case MQTT_CONNECT:
		return protocol_error(s, MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
	case MQTT_AUTH:
		return protocol_error(s, MQTT_RC_PROTOCOL_ERROR,
				      "AUTH without an authentication method");
	default:
		return protocol_error(s, MQTT_RC_PROTOCOL_ERROR, "a server's packet type from a client");
	}
}

/* Handles the complete packets at the front of @data; *@used says how far it got. */
static int process(struct session *s, const uint8_t *data, size_t len, size_t *used)
{
	size_t pos = 0, packet_len;
	int rc = 0;

	while (pos < len && !s->held && !s->closing) {
		rc = codec_frame(data + pos, len - pos, &packet_len);
		if (rc == -EAGAIN) {
			rc = 0;
			break;
		}
		if (rc) {
			rc = protocol_error(s, MQTT_RC_MALFORMED, "bad remaining length");
			break;
		}
		/* Refused on its header: an oversized packet is never buffered. */
		if (packet_len > s->ss->cfg.max_packet_bytes) {
			rc = protocol_error(s, MQTT_RC_PACKET_TOO_LARGE, "packet over max_packet_bytes");
			break;
		}
		if (packet_len > len - pos)
			break;
		rc = handle_packet(s, data + pos, packet_len);
		pos += packet_len;
		if (rc)
			break;
	}
	*used = pos;
	return rc;
}

static int drain_input(struct session *s)
{
	size_t used = 0;
	int rc = process(s, s->in.data, s->in.len, &used);

	if (used) {
		memmove(s->in.data, s->in.data + used, s->in.len - used);
		s->in.len -= used;
	}
	return rc;
}

int session_feed(struct session *s, const uint8_t *data, size_t len)
{
	/* Whole packets plus what came with the CONNECT before the broker answered. */
	size_t cap = 2 * s->ss->cfg.max_packet_bytes + 65536;
	size_t used = 0;
	int rc;

	if (s->closing)
		return 0;
	s->ss->stats.bytes_from_browser += len;
	if (s->in.len == 0) {
		/* The common case: whole packets straight from the WebSocket's buffer. */
		rc = process(s, data, len, &used);
		if (rc || used == len || s->closing)
			return rc;
		data += used;
		len -= used;
	}
	if (len > cap - s->in.len)
		return protocol_error(s, MQTT_RC_PACKET_TOO_LARGE, "too much input held");
	if (buf_append(&s->in, data, len))
		return protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
	return drain_input(s);
}

/* ---- lifetime ---- */

struct session *session_new(struct sessions *ss, const struct session_io *io, void *conn,
			    const char *peer)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ss = ss;
	s->io = io;
	s->conn = conn;
	snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "-");
	s->next = ss->all;
	if (ss->all)
		ss->all->prev = s;
	ss->all = s;
	ss->count++;
	ss->stats.sessions_total++;
	ss->stats.sessions_active = ss->count;
	io->deadline(conn, ss->cfg.connect_wait_ms);
	return s;
}

void session_detach(struct session *s)
{
	if (s->client_id && hmap_get(s->ss->live, s->client_id, strlen(s->client_id)) == s)
		hmap_remove(s->ss->live, s->client_id, strlen(s->client_id));
	s->conn = NULL;
	s->closing = true;
	if (s->end != END_CLEAN && s->end != END_UPSTREAM)
		end_upstream_abruptly(s);
	maybe_finalize(s);
}

struct sessions *sessions_new(const struct sessions_config *cfg)
{
	struct sessions *ss = calloc(1, sizeof(*ss));

	if (!ss)
		return NULL;
	ss->cfg = *cfg;
	ss->live = hmap_new();
	ss->store = store_new(cfg->max_sessions);
	if (!ss->live || !ss->store) {
		hmap_free(ss->live);
		store_free(ss->store);
		free(ss);
		return NULL;
	}
	return ss;
}

void sessions_shutdown(struct sessions *ss)
{
	for (struct session *s = ss->all; s; s = s->next) {
		if (!s->conn || s->closing)
			continue;
		if (s->up_state == UP_CONNECTED)
			send_disconnect(s, MQTT_RC_SERVER_SHUTTING_DOWN, no_props);
		close_browser(s, END_SHUTDOWN);
	}
}

size_t sessions_count(const struct sessions *ss)
{
	return ss->count;
}

void sessions_expire(struct sessions *ss)
{
	size_t n = store_expire(ss->store, now_ms());

	if (n)
		log_msg(LOG_DEBUG, "session", "stored-sessions-expired count=%zu", n);
}

bool session_reauth(struct session *s, struct auth *table)
{
	const struct auth_token *t;

	if (!s->token)
		return true;
	t = table ? auth_find_same(table, s->token) : NULL;
	if (!t)
		return false;
	auth_ref(table);
	auth_unref(s->auth);
	s->auth = table;
	s->token = t;
	return true;
}

size_t sessions_set_auth(struct sessions *ss, struct auth *table)
{
	struct auth *old = ss->auth;
	size_t closed = 0;

	ss->auth = table ? auth_ref(table) : NULL;
	for (struct session *s = ss->all; s; s = s->next) {
		if (session_reauth(s, table) || !s->conn || s->closing)
			continue;
		/* The token was revoked: its ACL no longer holds, so neither does the session. */
		log_msg(LOG_INFO, "session", "token-revoked client_id=%s peer=%s token=%s", cid(s),
			s->peer, s->token->name);
		if (s->up_state == UP_CONNECTED)
			send_disconnect(s, MQTT_RC_NOT_AUTHORIZED, no_props);
		close_browser(s, END_ERROR);
		closed++;
	}
	auth_unref(old);
	return closed;
}

void sessions_get_stats(const struct sessions *ss, struct sessions_stats *out)
{
	*out = ss->stats;
	out->stored_sessions = store_count(ss->store);
}

void sessions_free(struct sessions *ss)
{
	if (!ss)
		return;
	while (ss->all) {
		struct session *s = ss->all;
		s->conn = NULL;
		upstream_free(s->up);
		s->up = NULL;
		s->up_state = UP_GONE;
		s->session_expiry = 0; /* nothing is kept past the process */
		finalize(s);
	}
	hmap_free(ss->live);
	store_free(ss->store);
	auth_unref(ss->auth);
	free(ss);
}
