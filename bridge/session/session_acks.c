/*
 * bridge/session/session_acks.c — the browser's requests waiting for the broker (s->ops), so that
 * acks go out in the order of the browser's packets, the bridge's own answers among them, and
 * the browser's QoS 2 PUBLISHes awaiting PUBREL (s->q2). Flow control: reading pauses while too
 * many requests wait.
 */
#include "session.h"
#include "session_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "log.h"
#include "shared.h"

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

int session_add_op(struct session *s, int token, enum op_kind kind, uint16_t packet_id,
		   size_t count)
{
	struct op op = {.token = token,
			.kind = (uint8_t)kind,
			.packet_id = packet_id,
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

int session_request_failed(struct session *s, struct sub_op *so, const char *what, int rc)
{
	session_sub_op_free(so);
	log_msg(LOG_INFO, "session", "%s-failed client_id=%s rc=%d", what, session_cid(s), rc);
	session_close(s, END_ERROR);
	return rc;
}

struct qos2_in *session_find_q2(struct session *s, uint16_t packet_id)
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

void session_remove_q2(struct session *s, struct qos2_in *q)
{
	size_t i = (size_t)(q - s->q2);

	memmove(&s->q2[i], &s->q2[i + 1], (s->nq2 - i - 1) * sizeof(*s->q2));
	s->nq2--;
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

/* Keeps the broker's answer @ev in @op until the answers before it have gone out. */
static int keep_answer(struct op *op, const struct upstream_event *ev)
{
	size_t n = ev->props.len + ev->codes.len;

	if (n && !(op->answer = malloc(n)))
		return -ENOMEM;
	if (ev->props.len)
		memcpy(op->answer, ev->props.data, ev->props.len);
	if (ev->codes.len)
		memcpy(op->answer + ev->props.len, ev->codes.data, ev->codes.len);
	op->answer_props = ev->props.len;
	op->answer_codes = ev->codes.len;
	op->code = ev->code;
	op->answered = true;
	op->local = true;
	return 0;
}

static void answer_kept(struct session *s, struct op op)
{
	struct upstream_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.code = op.code;
	if (op.answer) {
		ev.props = (struct mqtt_bytes){op.answer, op.answer_props};
		ev.codes = (struct mqtt_bytes){op.answer + op.answer_props, op.answer_codes};
	}
	session_answer_op(s, op, &ev);
	free(op.answer);
}

/* Sends the bridge's own answers that no request to the broker is ahead of any more. */
void session_answer_local(struct session *s)
{
	while (s->nops && s->ops[0].local) {
		struct op op = s->ops[0];
		memmove(&s->ops[0], &s->ops[1], (s->nops - 1) * sizeof(*s->ops));
		s->nops--;
		if (op.answered)
			answer_kept(s, op);
		else if (op.kind == OP_PUB1)
			session_send_ack(s, MQTT_PUBACK, op.packet_id, op.code, no_props);
		else if (op.kind == OP_PUB2)
			session_send_ack(s, MQTT_PUBREC, op.packet_id, op.code, no_props);
		else if (op.kind == OP_SUB)
			session_send_suback(s, op.packet_id, op.sub, no_codes, no_props);
		else if (op.kind == OP_UNSUB)
			send_unsuback(s, op.packet_id,
				      (struct mqtt_bytes){op.sub->codes, op.sub->count}, no_props);
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
	struct op op = {.kind = (uint8_t)kind,
			.local = true,
			.code = code,
			.packet_id = packet_id,
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
		log_msg(LOG_INFO, "session", "request-failed client_id=%s packet_id=%u",
			session_cid(s), op.packet_id);
		session_close(s, END_ERROR);
		return;
	}
	switch (op.kind) {
	case OP_PUB1:
		session_send_ack(s, MQTT_PUBACK, op.packet_id, ev->code, ev->props);
		break;
	case OP_PUB2:
		q = session_find_q2(s, op.packet_id);
		session_send_ack(s, MQTT_PUBREC, op.packet_id, ev->code, ev->props);
		if (q && ev->code >= 0x80)
			session_remove_q2(s, q);
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

/*
 * Paho answers in order, so the op is nearly always the first one. When it is not (a QoS 1
 * PUBLISH after a QoS 2 one is done first), its answer waits for the ones before it, as acks
 * keep the browser's order. A failure closes the browser at once.
 */
void session_op_done(struct session *s, int token, struct upstream_event *ev)
{
	struct op op;
	size_t i = 0;

	while (i < s->nops && (s->ops[i].local || s->ops[i].token != token))
		i++;
	if (i == s->nops)
		return;
	s->ops[i].req = NULL; /* the hub is done with it */
	if (i > 0 && !ev->failed) {
		if (keep_answer(&s->ops[i], ev))
			session_close(s, END_ERROR);
		return;
	}
	op = s->ops[i];
	memmove(&s->ops[i], &s->ops[i + 1], (s->nops - i - 1) * sizeof(*s->ops));
	s->nops--;
	session_update_pause(s);
	session_answer_op(s, op, ev);
	session_sub_op_free(op.sub);
	session_answer_local(s);
}
