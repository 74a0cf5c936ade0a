/*
 * bridge/session/session.c — a browser's MQTT session: the browser side (packets, acks in order, QoS 1/2
 * towards the browser) for both modes, and the dedicated mode, translated onto its own upstream
 * Paho client. Shared sessions do their broker side in shared.c.
 *
 * The browser side is a byte stream decoded by codec.c; the broker side is upstream.c. Acks are
 * end to end: the browser's PUBACK / PUBREC / SUBACK / UNSUBACK go out only when the broker has
 * answered. Messages towards the browser are tracked until the browser acknowledges them, so a
 * persistent session can get them again (DUP set) when it comes back (store.h).
 */
#include "session.h"
#include "session_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "auth.h"
#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "props.h"
#include "shared.h"
#include "store.h"

const char *session_cid(const struct session *s)
{
	return s->client_id ? s->client_id : "-";
}

/* ---- writing to the browser ---- */

static const struct mqtt_bytes no_props = {NULL, 0};
static const struct mqtt_bytes no_codes = {NULL, 0};

/* The browser has its CONNACK: it may be sent a DISCONNECT. */
static bool established(const struct session *s)
{
	return s->mode == MODE_SHARED || s->up_state == UP_CONNECTED;
}

int session_send_packet(struct session *s, const struct mqtt_packet *p)
{
	int rc;

	if (!s->conn || s->closing)
		return -ENOTCONN;
	s->out.len = 0;
	rc = codec_encode(&s->out, s->version ? s->version : MQTT_V311, p);
	if (rc) {
		log_msg(LOG_WARN, "session", "encode-failed client_id=%s type=%s rc=%d", session_cid(s),
			codec_type_name(p->type), rc);
		return rc;
	}
	rc = s->io->write(s->conn, s->out.data, s->out.len);
	if (rc == -ENOBUFS)
		session_slow(s);
	else if (!rc)
		s->ss->stats.bytes_to_browser += s->out.len;
	return rc;
}

void session_close(struct session *s, enum end_kind why)
{
	if (s->end == END_NONE)
		s->end = why;
	if (s->conn && !s->closing) {
		s->closing = true;
		s->io->close(s->conn);
	}
}

void session_send_disconnect(struct session *s, uint8_t reason, struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_DISCONNECT};

	if (s->version != MQTT_V5)
		return;
	p.u.disconnect.reason = reason;
	p.u.disconnect.props = props;
	session_send_packet(s, &p);
}

int session_protocol_error(struct session *s, uint8_t reason, const char *why)
{
	s->ss->stats.protocol_errors++;
	log_msg(LOG_INFO, "session", "protocol-error client_id=%s peer=%s reason=0x%02x why=\"%s\"",
		session_cid(s), s->peer, reason, why);
	if (established(s))
		session_send_disconnect(s, reason, no_props);
	session_close(s, END_ERROR);
	return -EPROTO;
}

void session_slow(struct session *s)
{
	if (s->closing)
		return;
	s->ss->stats.slow_disconnects++;
	log_msg(LOG_WARN, "session", "slow-browser client_id=%s peer=%s queued=%zu", session_cid(s),
		s->peer, s->conn ? s->io->queued(s->conn) : 0);
	session_close(s, END_ERROR);
}

void session_send_ack(struct session *s, enum mqtt_type type, uint16_t packet_id, uint8_t reason,
		     struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = type};

	p.u.ack.packet_id = packet_id;
	p.u.ack.reason = reason;
	p.u.ack.props = props;
	session_send_packet(s, &p);
}


/* ---- flow control towards the broker ---- */

void session_update_pause(struct session *s)
{
	bool pause = s->held || s->nops >= OPS_PAUSE_AT || (s->paused && s->nops > OPS_RESUME_AT);

	if (pause != s->paused && s->conn) {
		s->paused = pause;
		s->io->pause(s->conn, pause);
	}
}

int session_push_op(struct session *s, const struct op *op)
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
	session_update_pause(s);
	return 0;
}

static int add_op(struct session *s, int token, enum op_kind kind, uint16_t packet_id,
		  size_t count)
{
	struct op op = {.token = token, .kind = (uint8_t)kind, .packet_id = packet_id,
			.count = count};

	return session_push_op(s, &op);
}

void session_sub_op_free(struct sub_op *sub)
{
	if (sub) {
		buf_clear(&sub->entries);
		free(sub->ssubs);
		free(sub);
	}
}

/* Paho answers in order, so the op is nearly always the first one. */
bool session_take_op(struct session *s, int token, struct op *out)
{
	for (size_t i = 0; i < s->nops; i++) {
		if (!s->ops[i].local && s->ops[i].token == token) {
			*out = s->ops[i];
			memmove(&s->ops[i], &s->ops[i + 1], (s->nops - i - 1) * sizeof(*s->ops));
			s->nops--;
			session_update_pause(s);
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

int session_add_q2(struct session *s, uint16_t packet_id, bool received)
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

uint16_t session_next_packet_id(struct session *s)
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
bool session_send_publish(struct session *s, const struct msg *m, uint16_t packet_id, bool dup)
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
	session_send_packet(s, &p);
	return true;
}

void session_unlink_out(struct session *s, struct msg *prev, struct msg *m)
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

/*
 * Sends @m with its Message Expiry Interval less the time it waited for the browser (MQTT 5
 * §3.3.2.3.3); false when it expired meanwhile or is too large for the browser.
 */
static bool send_unexpired(struct session *s, struct msg *m)
{
	static const uint8_t drop[] = {MQTT_PROP_MESSAGE_EXPIRY};
	struct mqtt_prop expiry;
	struct buf props = BUF_INIT;
	struct msg copy;
	uint64_t waited_s;
	bool sent;

	if (!m->queued_ms || !props_find(m->props.data, m->props.len, MQTT_PROP_MESSAGE_EXPIRY, &expiry))
		return session_send_publish(s, m, m->packet_id, m->state & MSG_WAS_SENT);
	waited_s = (clock_mono_ms() - m->queued_ms) / 1000u;
	if (waited_s >= expiry.value)
		return false;
	if (!waited_s)
		return session_send_publish(s, m, m->packet_id, m->state & MSG_WAS_SENT);
	if (props_copy_except(&props, m->props.data, m->props.len, drop, sizeof(drop)) ||
	    props_put_int(&props, MQTT_PROP_MESSAGE_EXPIRY, expiry.value - (uint32_t)waited_s)) {
		buf_clear(&props);
		return session_send_publish(s, m, m->packet_id, m->state & MSG_WAS_SENT);
	}
	memcpy(&copy, m, sizeof(copy));
	copy.props = (struct mqtt_bytes){props.data, props.len};
	sent = session_send_publish(s, &copy, m->packet_id, m->state & MSG_WAS_SENT);
	buf_clear(&props);
	return sent;
}

/* Sends queued QoS 1/2 messages while the browser's receive maximum leaves room. */
void session_pump(struct session *s)
{
	struct msg *prev = NULL, *m = s->out_head, *next;

	for (; m && s->conn && !s->closing && s->out_inflight < s->browser_receive_max; m = next) {
		next = m->next;
		if ((m->state & MSG_STATE) != MSG_QUEUED) {
			prev = m;
			continue;
		}
		if (!m->packet_id)
			m->packet_id = session_next_packet_id(s);
		if (!send_unexpired(s, m)) {
			/* Expired while it waited, or too large for this browser: the spec says
			 * to discard it (as if sent). */
			session_unlink_out(s, prev, m);
			continue;
		}
		m->state = MSG_SENT;
		s->out_inflight++;
		prev = m;
	}
}

/* Appends a QoS 1/2 message to the messages towards the browser, not sent yet. */
void session_queue_out(struct session *s, struct msg *m)
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

void session_deliver(struct session *s, struct msg *m)
{
	size_t limit = s->ss->cfg.max_queue_bytes;

	s->ss->stats.messages_to_browser++;
	if (m->qos == 0) {
		/* A slow browser loses QoS 0 messages first (DESIGN §3, backpressure). */
		if (s->io->queued(s->conn) > limit / 2)
			s->ss->stats.qos0_dropped++;
		else
			session_send_publish(s, m, 0, false);
		free(m);
		return;
	}
	if (!m->queued_ms)
		m->queued_ms = clock_mono_ms();
	session_queue_out(s, m);
	if (s->out_bytes + s->io->queued(s->conn) > limit) {
		session_slow(s);
		return;
	}
	session_pump(s);
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
	if (s->up_version == MQTT_V5) {
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

uint32_t session_prop_u32(struct mqtt_bytes props, uint8_t id, uint32_t dflt)
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
	session_send_packet(s, &p);
}

/* The broker's CONNACK properties, with what the bridge itself decides put in. */
static int connack_props(struct session *s, struct mqtt_bytes broker, struct buf *out)
{
	static const uint8_t ours[] = {MQTT_PROP_TOPIC_ALIAS_MAXIMUM, MQTT_PROP_MAXIMUM_PACKET_SIZE,
				       MQTT_PROP_ASSIGNED_CLIENT_ID};
	uint32_t max_packet = session_prop_u32(broker, MQTT_PROP_MAXIMUM_PACKET_SIZE, 0);
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
		session_close(s, END_ERROR);
		end_upstream_abruptly(s);
		return;
	}
	send_connack(s, ev->session_present, 0, (struct mqtt_bytes){props.data, props.len});
	buf_clear(&props);
	log_msg(LOG_INFO, "session",
		"connected client_id=%s peer=%s version=%u clean_start=%d session_present=%d "
		"mode=dedicated",
		session_cid(s), s->peer, s->version, s->clean_start, ev->session_present);

	if (hmap_put(s->ss->live, s->client_id, strlen(s->client_id), s))
		log_msg(LOG_WARN, "session", "untracked client_id=%s reason=out-of-memory", session_cid(s));
	lo = store_take(s->ss->store, s->client_id);
	if (lo && ev->session_present && !s->clean_start)
		session_handoff(s, lo);
	else
		leftovers_free(lo);

	keepalive = session_prop_u32(ev->props, MQTT_PROP_SERVER_KEEP_ALIVE, s->keepalive);
	/* MQTT: the server may drop a client silent for one and a half keepalive periods. */
	s->io->deadline(s->conn, keepalive * 1500u);
	s->receive_max = (uint16_t)session_prop_u32(ev->props, MQTT_PROP_RECEIVE_MAXIMUM, 65535);
	s->held = false;
	session_update_pause(s);
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
	if (s->version == MQTT_V5 && s->up_version != MQTT_V5 && code)
		code = codec_connack_v5_code(code);
	if (s->version == MQTT_V5)
		code = code >= 0x80 ? code : MQTT_RC_SERVER_UNAVAILABLE;
	else
		code = code >= 1 && code <= 5 ? code : MQTT_CONNACK_UNAVAILABLE;
	log_msg(LOG_INFO, "session", "connect-refused client_id=%s peer=%s code=0x%02x broker=%s",
		session_cid(s), s->peer, code, ev->code ? "answered" : "unreachable");
	send_connack(s, false, code, ev->props);
	session_close(s, END_ERROR);
}

/*
 * With bridge credentials every upstream logs in as the bridge, so the broker cannot keep one
 * token's messages from another's: a client id resumed under another token still carries the
 * first one's subscriptions. So what reaches the browser is checked against its token too.
 */
bool session_may_read(const struct session *s, const struct msg *m)
{
	return !s->token || auth_may_subscribe(s->token, (const char *)m->topic.data, m->topic.len);
}

static void on_message(struct session *s, struct upstream_event *ev)
{
	struct msg *m = ev->msg;

	ev->msg = NULL;
	if (!session_may_read(s, m)) {
		log_msg(LOG_DEBUG, "session", "message-denied client_id=%s token=%s", session_cid(s),
			s->token->name);
		free(m);
		return;
	}
	if (!s->conn || s->closing) {
		/* Kept for a persistent session's return; see finalize(). */
		if (m->qos > 0)
			session_queue_out(s, m);
		else
			free(m);
		return;
	}
	session_deliver(s, m);
	if (ev->overflow)
		session_slow(s);
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
void session_send_suback(struct session *s, uint16_t packet_id, struct sub_op *sub,
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
	session_send_packet(s, &p);
}

/* UNSUBACK with @codes, one per filter: 3.1.1 has none, and a v5 broker's without any means
 * they all succeeded. */
static void send_unsuback(struct session *s, uint16_t packet_id, struct mqtt_bytes codes,
			  struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_UNSUBACK};

	p.u.suback.packet_id = packet_id;
	p.u.suback.props = props;
	p.u.suback.codes = s->version == MQTT_V5 ? codes : no_codes;
	session_send_packet(s, &p);
}

/* Sends the bridge's own answers that no request to the broker is ahead of any more. */
void session_answer_local(struct session *s)
{
	while (s->nops && s->ops[0].local) {
		struct op op = s->ops[0];
		memmove(&s->ops[0], &s->ops[1], (s->nops - 1) * sizeof(*s->ops));
		s->nops--;
		if (op.kind == OP_PUB1)
			session_send_ack(s, MQTT_PUBACK, op.packet_id, op.code, no_props);
		else if (op.kind == OP_PUB2)
			session_send_ack(s, MQTT_PUBREC, op.packet_id, op.code, no_props);
		else if (op.kind == OP_SUB)
			session_send_suback(s, op.packet_id, op.sub, no_codes, no_props);
		else if (op.kind == OP_UNSUB)
			send_unsuback(s, op.packet_id, (struct mqtt_bytes){op.sub->codes, op.sub->count},
				      no_props);
		if (op.kind == OP_SUB && s->mode == MODE_SHARED)
			shared_suback_sent(s, op.sub);
		session_sub_op_free(op.sub);
	}
	session_update_pause(s);
}

/* Queues an answer of the bridge's own (it owns @sub); it goes out after the requests before it. */
int session_add_local(struct session *s, enum op_kind kind, uint16_t packet_id, uint8_t code,
		     struct sub_op *sub)
{
	struct op op = {.kind = (uint8_t)kind, .local = true, .code = code, .packet_id = packet_id,
			.sub = sub};
	int rc = session_push_op(s, &op);

	if (rc) {
		session_sub_op_free(sub);
		return rc;
	}
	session_answer_local(s);
	return 0;
}

/* The broker answered @op: the browser gets its ack. */
void session_answer_op(struct session *s, struct op op, struct upstream_event *ev)
{
	struct qos2_in *q;

	if (op.kind == OP_PUB0)
		return;
	/* Paho gave up without the broker's answer: the browser must not think it was acked.
	 * Closing makes it send again when it reconnects. */
	if (ev->failed) {
		log_msg(LOG_INFO, "session", "request-failed client_id=%s packet_id=%u", session_cid(s),
			op.packet_id);
		session_close(s, END_ERROR);
		return;
	}
	switch (op.kind) {
	case OP_PUB1:
		session_send_ack(s, MQTT_PUBACK, op.packet_id, ev->code, ev->props);
		break;
	case OP_PUB2:
		q = find_q2(s, op.packet_id);
		session_send_ack(s, MQTT_PUBREC, op.packet_id, ev->code, ev->props);
		if (q && ev->code >= 0x80)
			remove_q2(s, q);
		else if (q)
			q->received = true;
		break;
	case OP_SUB:
		session_send_suback(s, op.packet_id, op.sub, ev->codes, ev->props);
		break;
	case OP_UNSUB: {
		uint8_t *ok = NULL;
		if (ev->codes.len == op.count || s->version != MQTT_V5) {
			send_unsuback(s, op.packet_id, ev->codes, ev->props);
			break;
		}
		ok = calloc(op.count ? op.count : 1, 1);
		if (!ok) {
			session_close(s, END_ERROR);
			break;
		}
		send_unsuback(s, op.packet_id, (struct mqtt_bytes){ok, op.count}, ev->props);
		free(ok);
		break;
	}
	}
}

static void on_done(struct session *s, struct upstream_event *ev)
{
	struct op op;

	if (!session_take_op(s, ev->token, &op))
		return;
	session_answer_op(s, op, ev);
	session_sub_op_free(op.sub);
	session_answer_local(s);
}

static void on_upstream_end(struct session *s, struct upstream_event *ev)
{
	bool told = ev->item.kind == UPSTREAM_DISCONNECTED;

	upstream_gone(s);
	if (!s->conn) {
		maybe_finalize(s);
		return;
	}
	log_msg(LOG_INFO, "session", "upstream-ended client_id=%s peer=%s reason=%s", session_cid(s),
		s->peer, told ? "broker-disconnect" : "connection-lost");
	if (told)
		session_send_disconnect(s, ev->code, ev->props);
	session_close(s, END_UPSTREAM);
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
				 : clock_mono_ms() + (uint64_t)s->session_expiry * 1000u;
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
		if ((m->state & MSG_STATE) != MSG_RELEASED && !session_may_read(to, m)) {
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
			session_send_ack(to, MQTT_PUBREL, m->packet_id, 0, no_props);
		} else {
			/* Sent before: it goes again with DUP under the same packet id. */
			m->state = (m->state & MSG_WAS_SENT) | MSG_QUEUED;
		}
	}
	lo->msgs = NULL;
	for (size_t i = 0; i < lo->nqos2_received; i++) {
		if (!find_q2(to, lo->qos2_received[i]))
			session_add_q2(to, lo->qos2_received[i], true);
	}
	log_msg(LOG_INFO, "session", "session-resumed client_id=%s messages=%zu qos2_pending=%zu",
		session_cid(to), count, lo->nqos2_received);
	leftovers_free(lo);
	session_pump(to);
}

static void finalize(struct session *s)
{
	struct sessions *ss = s->ss;
	struct leftovers *lo = NULL;

	if (s->mode == MODE_SHARED)
		shared_end(s);
	else if (s->mode == MODE_DEDICATED)
		ss->dedicated_count--;
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
	log_msg(LOG_DEBUG, "session", "ended client_id=%s peer=%s", session_cid(s), s->peer);
	for (int i = 0; i <= TOPIC_ALIAS_MAX; i++)
		free(s->aliases[i]);
	free(s->will);
	free(s->client_id);
	for (size_t i = 0; i < s->nops; i++)
		session_sub_op_free(s->ops[i].sub);
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

int session_refuse_connect(struct session *s, uint8_t code_v3, uint8_t code_v5, const char *why)
{
	log_msg(LOG_INFO, "session", "connect-refused peer=%s why=\"%s\"", s->peer, why);
	send_connack(s, false, s->version == MQTT_V5 ? code_v5 : code_v3, no_props);
	session_close(s, END_ERROR);
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
		return session_refuse_connect(s, MQTT_CONNACK_NOT_AUTHORIZED, MQTT_RC_BAD_CREDENTIALS,
				      c->has_password ? "unknown token" : "no token (password)");
	if (c->will && !auth_may_publish(t, (const char *)c->will_topic.data, c->will_topic.len))
		return session_refuse_connect(s, MQTT_CONNACK_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
				      "will topic outside the token's publish ACL");
	s->auth = auth_ref(table);
	s->token = t;
	log_msg(LOG_DEBUG, "session", "token-accepted client_id=%s peer=%s token=%s", session_cid(s),
		s->peer, t->name);
	return 0;
}

/*
 * A new connection with the client id of a connected one. The broker ends the old one when both
 * are dedicated; when either is shared the broker never sees the pair, so the bridge does as a
 * broker does: the old connection gets DISCONNECT 0x8E (v5) and is closed.
 */
void session_take_over(struct session *s, bool shared)
{
	struct session *old = hmap_get(s->ss->live, s->client_id, strlen(s->client_id));

	if (!old || old == s || (!shared && old->mode != MODE_SHARED))
		return;
	log_msg(LOG_INFO, "session", "taken-over client_id=%s peer=%s by=%s", session_cid(old),
		old->peer, s->peer);
	hmap_remove(s->ss->live, s->client_id, strlen(s->client_id));
	if (established(old))
		session_send_disconnect(old, MQTT_RC_SESSION_TAKEN_OVER, no_props);
	session_close(old, END_ERROR);
}

/*
 * What a dedicated session's broker client speaks for a browser at @browser: the browser's
 * version, unless the broker is known to stop below it (broker.mqtt_version, or what the hub's
 * link agreed). An MQTT 5 browser then keeps an MQTT 5 session with the bridge, over 3.1.x.
 */
static uint8_t broker_version_for(const struct session *s, uint8_t browser)
{
	const struct hub *h = s->ss->cfg.hub;
	int broker = s->ss->cfg.env->mqtt_version;

	if (!broker && h && hub_connected(h))
		broker = hub_version(h);
	return broker && broker < browser ? (uint8_t)broker : browser;
}

/* @qos as a 3.1.x broker client sends it: at most what the broker takes, since 3.1.x has no
 * way to refuse more (RabbitMQ answers a QoS 2 PUBLISH with PUBACK, which Paho never matches). */
static int capped_qos(const struct session *s, int qos)
{
	const struct hub *h = s->ss->cfg.hub;

	if (s->up_version == MQTT_V5 || !h || qos <= hub_max_qos(h))
		return qos;
	return hub_max_qos(h);
}

/* Whether a PUBLISH's @props hold more than a topic alias, which the session resolves itself. */
static bool carries_props(struct mqtt_bytes props)
{
	struct props_iter it;
	struct mqtt_prop p;

	props_iter_init(&it, props.data, props.len);
	while (props_next(&it, &p))
		if (p.id != MQTT_PROP_TOPIC_ALIAS)
			return true;
	return false;
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
		s->session_expiry = session_prop_u32(c->props, MQTT_PROP_SESSION_EXPIRY, 0);
		s->browser_receive_max =
			(uint16_t)session_prop_u32(c->props, MQTT_PROP_RECEIVE_MAXIMUM, 65535);
		s->browser_max_packet = session_prop_u32(c->props, MQTT_PROP_MAXIMUM_PACKET_SIZE, 0);
	} else {
		s->session_expiry = c->clean_start ? 0 : UINT32_MAX;
	}

	if (c->client_id.len == 0) {
		/* As a broker does: 3.1 has no empty ids; 3.1.1 only with a clean session. */
		if (c->version == MQTT_V31 || (c->version == MQTT_V311 && !c->clean_start))
			return session_refuse_connect(s, MQTT_CONNACK_ID_REJECTED, MQTT_RC_CLIENT_ID_INVALID,
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
	if (s->client_id && shared_eligible(s, c))
		return shared_connect(s);
	s->up_version = broker_version_for(s, c->version);
	if (s->client_id)
		session_take_over(s, false);
	/* The browser's own username goes to the broker only in passthrough. */
	own_user = c->has_username && !s->token;
	if (own_user)
		username = strndup((const char *)c->username.data, c->username.len);
	if (c->will)
		will_topic = strndup((const char *)c->will_topic.data, c->will_topic.len);
	if (!s->client_id || (own_user && !username) || (c->will && !will_topic))
		goto unavailable;
	if (c->will && s->up_version != MQTT_V5) {
		s->will = msg_new(c->will_topic.data, c->will_topic.len, c->will_payload.data,
				  c->will_payload.len, NULL, 0, capped_qos(s, c->will_qos),
				  c->will_retain);
		if (!s->will)
			goto unavailable;
		if (c->will_props.len)
			s->ss->stats.props_dropped++;
	}

	uc.version = s->up_version;
	uc.client_id = s->client_id;
	/* 3.1.x has one flag for both ends of a session: an MQTT 5 session that starts clean or
	 * ends with the connection is a clean one; only one that resumes and is kept persists. */
	uc.clean_start = c->clean_start || (c->version == MQTT_V5 && s->up_version != MQTT_V5 &&
					    !s->session_expiry);
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
		return session_refuse_connect(s, MQTT_CONNACK_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
				      "upstream client could not be created");
	s->mode = MODE_DEDICATED;
	s->ss->dedicated_count++;
	s->up_state = UP_CONNECTING;
	/* Nothing more is read until the broker has answered; the CONNECT deadline no longer
	 * applies while the broker takes its time. */
	s->held = true;
	session_update_pause(s);
	s->io->deadline(s->conn, 0);
	return 0;
unavailable:
	free(username);
	free(will_topic);
	return session_refuse_connect(s, MQTT_CONNACK_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
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
	log_msg(LOG_DEBUG, "session", "publish-denied client_id=%s token=%s qos=%u", session_cid(s),
		s->token->name, p->qos);
	if (p->qos)
		rc = session_add_local(s, p->qos == 1 ? OP_PUB1 : OP_PUB2, p->packet_id, code, NULL);
	if (rc)
		session_close(s, END_ERROR);
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
			return session_protocol_error(s, MQTT_RC_TOPIC_ALIAS_INVALID,
					      "topic alias out of range");
		if (topic.len) {
			char *copy = strndup((const char *)topic.data, topic.len);
			if (!copy)
				return session_protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
			free(s->aliases[alias.value]);
			s->aliases[alias.value] = copy;
		} else if (s->aliases[alias.value]) {
			topic.data = (const uint8_t *)s->aliases[alias.value];
			topic.len = strlen(s->aliases[alias.value]);
		} else {
			return session_protocol_error(s, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
		}
	}
	if (p->qos == 2 && (q = find_q2(s, p->packet_id))) {
		/* A re-sent QoS 2 PUBLISH is answered, not delivered again. */
		if (q->received)
			session_send_ack(s, MQTT_PUBREC, p->packet_id, 0, no_props);
		return 0;
	}
	/* QoS 2 exchanges hold state until PUBREL, so their number is held to Receive Maximum
	 * (MQTT 5 §4.9). QoS 1 is not counted: Mosquitto acknowledges it at once and clients
	 * rely on that, while the bridge waits for the broker. */
	if (p->qos == 2 && s->version == MQTT_V5 && s->nq2 >= s->receive_max)
		return session_protocol_error(s, MQTT_RC_RECEIVE_MAX_EXCEEDED, "receive maximum exceeded");
	if (s->token && !auth_may_publish(s->token, (const char *)topic.data, topic.len))
		return deny_publish(s, p);
	s->topic.len = 0;
	if (buf_append(&s->topic, topic.data, topic.len) || buf_put_u8(&s->topic, 0))
		return session_protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
	if (s->mode == MODE_SHARED)
		return shared_publish(s, (const char *)s->topic.data, p);
	if (s->up_version != MQTT_V5 && carries_props(p->props))
		s->ss->stats.props_dropped++;
	rc = upstream_publish(s->up, (const char *)s->topic.data, p->payload, capped_qos(s, p->qos),
			      p->retain, p->props, &token);
	if (!rc)
		rc = add_op(s, token, p->qos == 0 ? OP_PUB0 : p->qos == 1 ? OP_PUB1 : OP_PUB2,
			    p->packet_id, 0);
	if (!rc && p->qos == 2)
		rc = session_add_q2(s, p->packet_id, false);
	if (rc) {
		log_msg(LOG_INFO, "session", "publish-failed client_id=%s rc=%d", session_cid(s), rc);
		session_close(s, END_ERROR);
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
			session_unlink_out(s, prev, m);
			s->out_inflight--;
		}
		break;
	case MQTT_PUBREC:
		m = find_out(s, a->packet_id, &prev);
		if (m && m->qos == 2 && (m->state & MSG_STATE) == MSG_SENT && a->reason >= 0x80) {
			session_unlink_out(s, prev, m);
			s->out_inflight--;
			break;
		}
		if (m && m->qos == 2)
			m->state = MSG_RELEASED;
		session_send_ack(s, MQTT_PUBREL, a->packet_id,
			 m || s->version != MQTT_V5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND, no_props);
		break;
	case MQTT_PUBCOMP:
		m = find_out(s, a->packet_id, &prev);
		if (m && (m->state & MSG_STATE) == MSG_RELEASED) {
			session_unlink_out(s, prev, m);
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
		session_send_ack(s, MQTT_PUBCOMP, a->packet_id,
			 q || s->version != MQTT_V5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND, no_props);
		break;
	default:
		break;
	}
	session_pump(s);
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

	if (s->mode == MODE_SHARED)
		return shared_subscribe(s, sub);

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
			session_cid(s), sub->packet_id, sub->count - forwarded, sub->count);
	if (!forwarded) {
		rc = session_add_local(s, OP_SUB, sub->packet_id, 0, so);
		so = NULL; /* add_local owns it either way */
		if (rc)
			goto fail;
		return 0;
	}
	if (s->up_version != MQTT_V5 && sub->props.len)
		s->ss->stats.props_dropped++;
	rc = upstream_subscribe(s->up, MQTT_SUBSCRIBE,
				(struct mqtt_bytes){so->entries.data, so->entries.len}, forwarded,
				sub->props, &token);
	if (!rc) {
		struct op op = {.token = token, .kind = OP_SUB, .packet_id = sub->packet_id,
				.count = sub->count, .sub = so};
		rc = session_push_op(s, &op);
	}
	if (rc)
		goto fail;
	return 0;
fail:
	session_sub_op_free(so);
	log_msg(LOG_INFO, "session", "subscribe-failed client_id=%s rc=%d", session_cid(s), rc);
	session_close(s, END_ERROR);
	return rc;
}

static int on_unsubscribe(struct session *s, const struct mqtt_subscribe *sub)
{
	struct mqtt_bytes cursor = sub->entries;
	struct codec_entry e;
	int token, rc;

	if (s->mode == MODE_SHARED)
		return shared_unsubscribe(s, sub);
	/* Counted out now: the broker handles this before any later SUBSCRIBE of the filter. */
	while (s->subs && codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e))
		hmap_remove(s->subs, e.filter.data, e.filter.len);
	rc = upstream_subscribe(s->up, MQTT_UNSUBSCRIBE, sub->entries, sub->count, sub->props,
				&token);
	if (!rc)
		rc = add_op(s, token, OP_UNSUB, sub->packet_id, sub->count);
	if (rc) {
		log_msg(LOG_INFO, "session", "unsubscribe-failed client_id=%s rc=%d", session_cid(s), rc);
		session_close(s, END_ERROR);
	}
	return rc;
}

static void on_disconnect(struct session *s, const struct mqtt_disconnect *d)
{
	struct mqtt_prop expiry;

	if (s->version == MQTT_V5 &&
	    props_find(d->props.data, d->props.len, MQTT_PROP_SESSION_EXPIRY, &expiry)) {
		/* A session that said 0 at CONNECT may not ask to be kept now (MQTT 5 §3.14.2.2.2). */
		if (!s->session_expiry && expiry.value) {
			session_protocol_error(s, MQTT_RC_PROTOCOL_ERROR,
					       "session expiry set at DISCONNECT after 0 at CONNECT");
			return;
		}
		s->session_expiry = expiry.value;
	}
	log_msg(LOG_DEBUG, "session", "disconnect client_id=%s reason=0x%02x", session_cid(s), d->reason);
	if (s->mode == MODE_SHARED) {
		session_close(s, END_CLEAN);
		return;
	}
	/* The broker gets the browser's own DISCONNECT: with 0x04 it publishes the will, which a
	 * 3.1.x broker client has to do itself. */
	if (s->up_version != MQTT_V5 && d->reason == MQTT_RC_DISCONNECT_WITH_WILL) {
		end_upstream_abruptly(s);
		session_close(s, END_CLEAN);
		return;
	}
	if (upstream_disconnect(s->up, d->reason, d->props, 0))
		upstream_gone(s);
	else
		s->up_state = UP_CLOSING;
	session_close(s, END_CLEAN);
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
			session_close(s, END_ERROR);
			return -EPROTO;
		}
		if (rc || p.type != MQTT_CONNECT) {
			s->ss->stats.protocol_errors++;
			log_msg(LOG_INFO, "session", "protocol-error peer=%s why=\"%s\"", s->peer,
				rc ? err.msg : "the first packet must be CONNECT");
			session_close(s, END_ERROR);
			return -EPROTO;
		}
		return on_connect(s, &p.u.connect);
	}
	if (rc)
		return session_protocol_error(s, err.reason ? err.reason : MQTT_RC_MALFORMED,
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
		session_send_packet(s, &pong);
		return 0;
	}
	case MQTT_DISCONNECT:
		on_disconnect(s, &p.u.disconnect);
		return 0;
	case MQTT_CONNECT:
		return session_protocol_error(s, MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
	case MQTT_AUTH:
		return session_protocol_error(s, MQTT_RC_PROTOCOL_ERROR,
				      "AUTH without an authentication method");
	default:
		return session_protocol_error(s, MQTT_RC_PROTOCOL_ERROR, "a server's packet type from a client");
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
			rc = session_protocol_error(s, MQTT_RC_MALFORMED, "bad remaining length");
			break;
		}
		/* Refused on its header: an oversized packet is never buffered. */
		if (packet_len > s->ss->cfg.max_packet_bytes) {
			rc = session_protocol_error(s, MQTT_RC_PACKET_TOO_LARGE, "packet over max_packet_bytes");
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
		return session_protocol_error(s, MQTT_RC_PACKET_TOO_LARGE, "too much input held");
	if (buf_append(&s->in, data, len))
		return session_protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
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
		if (established(s))
			session_send_disconnect(s, MQTT_RC_SERVER_SHUTTING_DOWN, no_props);
		session_close(s, END_SHUTDOWN);
	}
}

size_t sessions_count(const struct sessions *ss)
{
	return ss->count;
}

void sessions_expire(struct sessions *ss)
{
	size_t n = store_expire(ss->store, clock_mono_ms());

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
		log_msg(LOG_INFO, "session", "token-revoked client_id=%s peer=%s token=%s", session_cid(s),
			s->peer, s->token->name);
		if (established(s))
			session_send_disconnect(s, MQTT_RC_NOT_AUTHORIZED, no_props);
		session_close(s, END_ERROR);
		closed++;
	}
	auth_unref(old);
	return closed;
}

void sessions_tick(struct sessions *ss)
{
	uint64_t now = clock_mono_ms();

	for (struct session *s = ss->all; s; s = s->next) {
		if (s->mode == MODE_SHARED)
			shared_tick(s, now);
	}
}

void sessions_broker_state(struct sessions *ss, bool up)
{
	size_t closed = 0;

	for (struct session *s = ss->all; s; s = s->next) {
		if (s->awaiting_hub && s->conn && !s->closing) {
			s->awaiting_hub = false;
			if (shared_connect(s))
				continue;
			s->held = false;
			session_update_pause(s);
			if (s->in.len)
				drain_input(s);
			continue;
		}
		if (up || s->mode != MODE_SHARED || !s->conn || s->closing)
			continue;
		/* 0x88 "server unavailable" is not a DISCONNECT reason (MQTT 5 §3.14.2.1); "busy"
		 * says the same: not now, try again. The reconnect gets CONNACK 0x88. */
		session_send_disconnect(s, MQTT_RC_SERVER_BUSY, no_props);
		session_close(s, END_UPSTREAM);
		closed++;
	}
	if (closed)
		log_msg(LOG_INFO, "session", "shared-sessions-closed reason=broker-down count=%zu",
			closed);
}

void sessions_get_stats(const struct sessions *ss, struct sessions_stats *out)
{
	*out = ss->stats;
	out->sessions_shared = ss->shared_count;
	out->sessions_dedicated = ss->dedicated_count;
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
