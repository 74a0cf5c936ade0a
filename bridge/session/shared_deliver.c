/*
 * bridge/session/shared_deliver.c — a message from the hub to one shared browser. Copies without
 * identifiers share the event's encoding; QoS 1/2 ones only have their packet id patched in,
 * and once sent, only the packet id is kept until the browser's ack (a clean session never
 * sends them again). While a subscription waits for its retained messages, live messages wait
 * in order (s->held_msgs.head).
 */
#include "shared.h"
#include "shared_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "props.h"

/* ---- sending ---- */

/* @props without the broker's subscription identifiers, plus @ids[0..n). 0 or -ENOMEM. */
static int browser_props(struct buf *out, struct mqtt_bytes props, const uint32_t *ids, size_t n)
{
	static const uint8_t drop[] = {MQTT_PROP_SUBSCRIPTION_ID};
	int rc = props_copy_except(out, props.data, props.len, drop, sizeof(drop));

	for (size_t i = 0; i < n && !rc; i++)
		rc = props_put_int(out, MQTT_PROP_SUBSCRIPTION_ID, ids[i]);
	return rc;
}

/* A copy of @m as this browser gets it. NULL when out of memory. */
struct msg *shared_copy_for(const struct msg *m, uint8_t qos, bool retain, const uint32_t *ids,
			    size_t nids)
{
	struct buf props = BUF_INIT;
	struct msg *out = NULL;

	if (!browser_props(&props, m->props, ids, nids))
		out = msg_new(m->topic.data, m->topic.len, m->payload.data, m->payload.len,
			      props.data, props.len, qos, retain);
	buf_clear(&props);
	return out;
}

/*
 * Whether the live @m may have set its topic's retained value. Over MQTT 5 the hub's link says
 * (Retain As Published). Over 3.1.x no live message says so: any may have, and counting every one
 * as such keeps a topic's values in order when the reader's link is ahead of the hub's (a newer
 * value found than the ones still held; shared_retained.c).
 */
static bool may_have_set_retained(const struct session *s, const struct msg *m)
{
	return m->retain || hub_version(s->ss->cfg.hub) != MQTT_V5;
}

static void hold(struct session *s, struct msg *m, bool published_retained)
{
	m->state = published_retained ? HELD_RETAINED : 0;
	m->queued_ms = clock_mono_ms(); /* message expiry counts from now */
	session_list_append(&s->held_msgs, m);
	s->ss->stats.shared_held++;
	if (s->held_msgs.bytes + s->io->queued(s->conn) > s->ss->cfg.max_queue_bytes)
		session_slow(s);
}

void shared_free_list(struct msg *m)
{
	for (struct msg *next; m; m = next) {
		next = m->next;
		free(m);
	}
}

void shared_flush_held(struct session *s)
{
	struct msg *m = s->held_msgs.head, *next;

	s->held_msgs.head = s->held_msgs.tail = NULL;
	s->held_msgs.bytes = 0;
	for (; m; m = next) {
		next = m->next;
		m->state = 0;
		if (s->conn && !s->closing)
			session_deliver(s, m);
		else
			free(m);
	}
}

void shared_release_hold(struct shared_sub *ss)
{
	struct session *s = ss->s;

	if (!ss->hold)
		return;
	ss->hold = false;
	if (!--s->holding)
		shared_flush_held(s);
}

/* The event's encoding for this browser's protocol, @retain and @qos; encoded on first use. */
static const struct buf *encoding(struct session *s, struct hub_event *ev, uint8_t qos, bool retain)
{
	size_t i = ((size_t)(s->version == MQTT_V5) * 2 + retain) * 3 + qos;
	struct buf *b = &ev->pub[i];
	struct mqtt_packet p = {.type = MQTT_PUBLISH};

	if (b->len)
		return b;
	p.u.publish.qos = qos;
	p.u.publish.retain = retain;
	p.u.publish.packet_id = qos ? 1 : 0;
	p.u.publish.topic = ev->msg->topic;
	p.u.publish.payload = ev->msg->payload;
	p.u.publish.props = ev->msg->props;
	if (codec_encode(b, s->version, &p)) {
		log_msg(LOG_WARN, "shared", "encode-failed client_id=%s", session_cid(s));
		return NULL;
	}
	return b;
}

/* Where the packet id sits in an encoded PUBLISH: after the fixed header and the topic. */
static size_t packet_id_offset(const uint8_t *p)
{
	size_t i = 1;

	while (p[i] & 0x80)
		i++;
	i++;
	return i + 2 + (((size_t)p[i] << 8) | p[i + 1]);
}

/*
 * A live message for a browser with no identifiers of its own: the shared encoding, with the
 * packet id patched in, straight to the connection when the browser's receive maximum has
 * room; else a copy waits in its queue.
 */
static void send_shared(struct session *s, struct hub_event *ev, uint8_t qos, bool retain)
{
	const struct buf *enc = encoding(s, ev, qos, retain);
	size_t limit = s->ss->cfg.max_queue_bytes;
	struct msg *stub;
	uint16_t id;
	int rc;

	if (!enc)
		return;
	/* Over the browser's Maximum Packet Size: discarded as if sent (MQTT 5 §3.1.2.24). */
	if (s->browser_max_packet && enc->len > s->browser_max_packet)
		return;
	if (qos && ((s->out_msgs.tail && (s->out_msgs.tail->state & MSG_STATE) == MSG_QUEUED) ||
		    s->out_inflight >= s->browser_receive_max)) {
		struct msg *m = shared_copy_for(ev->msg, qos, retain, NULL, 0);
		if (m)
			session_deliver(s, m); /* counts it */
		return;
	}
	s->ss->stats.messages_to_browser++;
	if (qos == 0) {
		/* A slow browser loses QoS 0 messages first (doc/design.md §3, backpressure). */
		if (s->io->queued(s->conn) > limit / 2) {
			s->ss->stats.qos0_dropped++;
			return;
		}
		rc = s->io->write(s->conn, enc->data, enc->len);
		if (rc == -ENOBUFS)
			session_slow(s);
		else if (!rc)
			s->ss->stats.bytes_to_browser += enc->len;
		return;
	}
	stub = msg_new(NULL, 0, NULL, 0, NULL, 0, qos, retain);
	id = session_next_packet_id(s);
	s->out.len = 0;
	if (!stub || !id || buf_append(&s->out, enc->data, enc->len)) {
		free(stub);
		session_close(s, END_ERROR);
		return;
	}
	size_t at = packet_id_offset(s->out.data);
	s->out.data[at] = (uint8_t)(id >> 8);
	s->out.data[at + 1] = (uint8_t)id;
	/* Only the packet id is kept until the ack: a clean session never sends it again. */
	session_queue_out(s, stub);
	stub->packet_id = id;
	stub->state = MSG_SENT;
	s->out_inflight++;
	rc = s->io->write(s->conn, s->out.data, s->out.len);
	if (rc == -ENOBUFS || s->out_msgs.bytes + s->io->queued(s->conn) > limit)
		session_slow(s);
	else if (!rc)
		s->ss->stats.bytes_to_browser += s->out.len;
}

/* ---- from the hub ---- */

void shared_deliver(struct hub_receiver *r, struct hub_event *ev, struct hub_member *matches)
{
	struct session *s = session_of(r);
	const struct msg *m = ev->msg;
	uint32_t ids[16];
	size_t nids = 0;
	bool own = false, rap = false, ids_cut = false;
	int qos = -1;

	if (!s->conn || s->closing || !session_may_read(s, m))
		return;
	if (s->nolocal_subs) {
		bool nolocal = false;
		for (struct hub_member *mb = matches; mb; mb = mb->next_match)
			nolocal |= (sub_of(mb)->options & MQTT_SUBOPT_NO_LOCAL) != 0;
		own = nolocal && shared_echo_take(s, m);
	}
	for (struct hub_member *mb = matches; mb; mb = mb->next_match) {
		struct shared_sub *ss = sub_of(mb);
		uint8_t q = min_qos(m->qos, ss->granted);
		if (own && (ss->options & MQTT_SUBOPT_NO_LOCAL))
			continue;
		qos = q > qos ? q : qos;
		rap |= (ss->options & MQTT_SUBOPT_RETAIN_AS_PUB) != 0;
		if (ss->sub_id && nids < sizeof(ids) / sizeof(*ids))
			ids[nids++] = ss->sub_id;
		else if (ss->sub_id)
			ids_cut = true;
	}
	if (qos < 0)
		return;
	if (ids_cut)
		log_msg(LOG_DEBUG, "shared", "subscription-ids-cut client_id=%s kept=%zu",
			session_cid(s), nids);
	if (nids || s->holding) {
		struct msg *copy = shared_copy_for(m, (uint8_t)qos, rap && m->retain, ids, nids);
		if (!copy) {
			log_msg(LOG_WARN, "shared",
				"message-dropped client_id=%s reason=out-of-memory",
				session_cid(s));
			return;
		}
		if (s->holding)
			hold(s, copy, may_have_set_retained(s, m));
		else
			session_deliver(s, copy);
		return;
	}
	send_shared(s, ev, (uint8_t)qos, rap && m->retain);
}
