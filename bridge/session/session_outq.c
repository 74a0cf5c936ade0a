/*
 * bridge/session/session_outq.c — QoS 0/1/2 messages towards the browser: packet ids, the queue
 * under the browser's receive maximum (s->out_msgs.head), message expiry while queued, and the
 * browser's PUBACK / PUBREC / PUBREL / PUBCOMP.
 */
#include "session.h"
#include "session_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "props.h"

/* ---- messages towards the browser ---- */

void session_list_append(struct msg_list *l, struct msg *m)
{
	m->next = NULL;
	if (l->tail)
		l->tail->next = m;
	else
		l->head = m;
	l->tail = m;
	l->bytes += m->size;
}

void session_list_clear(struct msg_list *l)
{
	for (struct msg *m = l->head, *next; m; m = next) {
		next = m->next;
		free(m);
	}
	l->head = l->tail = NULL;
	l->bytes = 0;
}

/* Queued messages have id 0 unless they keep the id of an earlier connection. */
bool session_packet_id_in_use(const struct session *s, uint16_t id)
{
	for (const struct msg *m = s->out_msgs.head; m; m = m->next) {
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
		if (s->last_packet_id && !session_packet_id_in_use(s, s->last_packet_id))
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
		s->out_msgs.head = m->next;
	if (s->out_msgs.tail == m)
		s->out_msgs.tail = prev;
	s->out_msgs.bytes -= m->size;
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

	if (!m->queued_ms ||
	    !props_find(m->props.data, m->props.len, MQTT_PROP_MESSAGE_EXPIRY, &expiry))
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
	struct msg *prev = NULL, *m = s->out_msgs.head, *next;

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
	session_list_append(&s->out_msgs, m);
}

void session_deliver(struct session *s, struct msg *m)
{
	size_t limit = s->ss->cfg.max_queue_bytes;

	s->ss->stats.messages_to_browser++;
	if (m->qos == 0) {
		/* A slow browser loses QoS 0 messages first (doc/design.md §3, backpressure). */
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
	if (s->out_msgs.bytes + s->io->queued(s->conn) > limit) {
		session_slow(s);
		return;
	}
	session_pump(s);
}

static struct msg *find_out(struct session *s, uint16_t packet_id, struct msg **prev_out)
{
	struct msg *prev = NULL;

	for (struct msg *m = s->out_msgs.head; m; prev = m, m = m->next) {
		if (m->packet_id == packet_id && (m->state & MSG_STATE) != MSG_QUEUED) {
			*prev_out = prev;
			return m;
		}
	}
	return NULL;
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

void session_on_browser_ack(struct session *s, enum mqtt_type type, const struct mqtt_ack *a)
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
				 m || s->version != MQTT_V5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND,
				 no_props);
		break;
	case MQTT_PUBCOMP:
		m = find_out(s, a->packet_id, &prev);
		if (m && (m->state & MSG_STATE) == MSG_RELEASED) {
			session_unlink_out(s, prev, m);
			s->out_inflight--;
		}
		break;
	case MQTT_PUBREL:
		q = session_find_q2(s, a->packet_id);
		/* Still at the broker: the PUBREC has not gone out, so this PUBREL is early. */
		if (q && !q->received)
			break;
		if (q)
			session_remove_q2(s, q);
		session_send_ack(s, MQTT_PUBCOMP, a->packet_id,
				 q || s->version != MQTT_V5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND,
				 no_props);
		break;
	default:
		break;
	}
	session_pump(s);
}
