/*
 * bridge/session/shared.c — shared sessions served from the hub: CONNECT, the browser's PUBLISH,
 * SUBSCRIBE and UNSUBSCRIBE, each subscription's record (struct shared_sub), and the end.
 * Messages from the hub are in shared_deliver.c, retained messages on subscribe in
 * shared_retained.c.
 *
 * Each filter a browser subscribes to is a struct shared_sub, a member of the hub's filter. The
 * hub matches a message once and hands each browser the list of its own subscriptions that
 * matched: the browser gets one copy, at the highest QoS those grant, with all their
 * subscription identifiers (MQTT 5 §3.3.4).
 *
 * The broker cannot apply no-local: every browser publishes through the hub, which receives its
 * own messages back. So a browser with a no-local subscription remembers what it published
 * (topic and payload, as a hash) until it comes back, and that copy skips its no-local
 * subscriptions.
 */
#include "shared.h"
#include "shared_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "props.h"
#include "retained.h"
#include "topic.h"
#include "utf8.h"

/* Own publishes remembered for no-local, and for how long (a lost one must not stay). */
#define ECHO_TTL_MS 30000

/* ---- no-local ---- */

static uint64_t echo_hash(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (size_t i = 0; i < tlen; i++)
		h = (h ^ topic[i]) * UINT64_C(1099511628211);
	h = (h ^ 0xff) * UINT64_C(1099511628211); /* no topic byte is 0xff in UTF-8 */
	for (size_t i = 0; i < plen; i++)
		h = (h ^ payload[i]) * UINT64_C(1099511628211);
	return h;
}

static void echo_add(struct session *s, const char *topic, struct mqtt_bytes payload)
{
	struct shared_echoes *e = s->echoes;
	size_t slot;

	if (!e && !(e = s->echoes = calloc(1, sizeof(*e))))
		return; /* then the browser may get its own message: better than losing others' */
	if (e->n == ECHO_MAX) {
		e->head = (e->head + 1) % ECHO_MAX;
		e->n--;
	}
	slot = (e->head + e->n++) % ECHO_MAX;
	e->e[slot].hash =
	    echo_hash((const uint8_t *)topic, strlen(topic), payload.data, payload.len);
	e->e[slot].expires_ms = clock_mono_ms() + ECHO_TTL_MS;
}

/* Is @m the browser's own publish coming back? Then it is forgotten. */
bool shared_echo_take(struct session *s, const struct msg *m)
{
	struct shared_echoes *e = s->echoes;
	uint64_t now, hash;

	if (!e || !e->n)
		return false;
	now = clock_mono_ms();
	while (e->n && e->e[e->head].expires_ms <= now) {
		e->head = (e->head + 1) % ECHO_MAX;
		e->n--;
	}
	hash = echo_hash(m->topic.data, m->topic.len, m->payload.data, m->payload.len);
	for (size_t i = 0; i < e->n; i++) {
		size_t slot = (e->head + i) % ECHO_MAX;
		if (e->e[slot].hash != hash)
			continue;
		/* Later entries move up one: the ring keeps its order. */
		for (size_t j = i; j + 1 < e->n; j++)
			e->e[(e->head + j) % ECHO_MAX] = e->e[(e->head + j + 1) % ECHO_MAX];
		e->n--;
		return true;
	}
	return false;
}

/* Marks the SUBSCRIBE @so answered: it goes out in its turn (session_answer_local()). */
static void op_ready(struct session *s, struct sub_op *so)
{
	for (size_t i = 0; i < s->nops; i++) {
		if (s->ops[i].sub == so) {
			s->ops[i].local = true;
			return;
		}
	}
}

/* Frees @ss, which the caller has taken out of s->subs. */
static void sub_destroy(struct shared_sub *ss)
{
	struct session *s = ss->s;
	bool waiting = ss->member.waiting;

	hub_leave(s->ss->cfg.hub, &ss->member);
	if (ss->read)
		retained_cancel(s->ss->cfg.retained, ss->read);
	if (ss->barrier)
		hub_barrier_cancel(s->ss->cfg.hub, ss->barrier);
	shared_free_list(ss->found);
	if (ss->op) {
		struct sub_op *so = ss->op;
		so->ssubs[ss->op_index] = NULL;
		/* Unsubscribed before the broker answered: the SUBACK says what was asked. */
		if (waiting) {
			so->codes[ss->op_index] = ss->member.qos;
			if (!--so->waiting)
				op_ready(s, so);
		}
	}
	if (ss->hold) {
		ss->hold = false;
		s->holding--;
	}
	if (ss->options & MQTT_SUBOPT_NO_LOCAL)
		s->nolocal_subs--;
	free(ss->filter);
	free(ss);
}

static void granted(struct hub_receiver *r, struct hub_member *m, uint8_t code)
{
	struct session *s = session_of(r);
	struct shared_sub *ss = sub_of(m);
	struct sub_op *so = ss->op;

	if (!so)
		return;
	so->codes[ss->op_index] = code;
	if (code >= 0x80) {
		/* Refused by the broker: the subscription never was. */
		so->ssubs[ss->op_index] = NULL;
		ss->op = NULL;
		if (hmap_get(s->subs, ss->filter, ss->len) == ss)
			hmap_remove(s->subs, ss->filter, ss->len);
		sub_destroy(ss);
		if (!s->holding)
			shared_flush_held(s);
	} else {
		ss->granted = code;
	}
	if (!--so->waiting) {
		op_ready(s, so);
		session_answer_local(s);
	}
}

/* ---- from the browser ---- */

bool shared_eligible(const struct session *s, const struct mqtt_connect *c)
{
	const struct sessions_config *cfg = &s->ss->cfg;

	if (!cfg->shared_sessions || !cfg->hub || !cfg->retained)
		return false;
	if (!c->clean_start || s->session_expiry || c->will)
		return false;
	if (s->token)
		return true;
	return cfg->auth_none && !c->has_username && !c->has_password;
}

/*
 * What a broker tells a client in its CONNACK. What the bridge does itself (subscription
 * identifiers, topic aliases, packet size) is the bridge's; what it passes on (QoS, retain,
 * wildcards, shared subscriptions, receive maximum) is the broker's.
 */
static int connack_props(struct session *s, struct mqtt_bytes broker, uint16_t keepalive,
			 struct buf *out)
{
	uint32_t max_packet = session_prop_u32(broker, MQTT_PROP_MAXIMUM_PACKET_SIZE, 0);
	uint32_t max_qos = session_prop_u32(broker, MQTT_PROP_MAXIMUM_QOS, 2);
	int rc;

	if (!max_packet || max_packet > s->ss->cfg.max_packet_bytes)
		max_packet = (uint32_t)s->ss->cfg.max_packet_bytes;
	rc = props_put_int(out, MQTT_PROP_RECEIVE_MAXIMUM, s->receive_max);
	if (!rc && max_qos < 2)
		rc = props_put_int(out, MQTT_PROP_MAXIMUM_QOS, max_qos);
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_RETAIN_AVAILABLE,
				   session_prop_u32(broker, MQTT_PROP_RETAIN_AVAILABLE, 1));
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_WILDCARD_SUB_AVAILABLE,
				   session_prop_u32(broker, MQTT_PROP_WILDCARD_SUB_AVAILABLE, 1));
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_SUB_ID_AVAILABLE, 1);
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_SHARED_SUB_AVAILABLE,
				   session_prop_u32(broker, MQTT_PROP_SHARED_SUB_AVAILABLE, 1));
	if (!rc)
		rc = session_put_connack_limits(s, out, max_packet);
	if (!rc && s->keepalive != keepalive)
		rc = props_put_int(out, MQTT_PROP_SERVER_KEEP_ALIVE, keepalive);
	return rc;
}

int shared_connect(struct session *s)
{
	struct hub *hub = s->ss->cfg.hub;
	struct mqtt_bytes broker = hub_broker_props(hub);
	struct mqtt_packet p = {.type = MQTT_CONNACK};
	struct buf props = BUF_INIT;
	uint16_t keepalive;

	if (!hub_connected(hub) && hub_connecting(hub)) {
		/* Starting, or reconnecting: the answer is a moment away (sessions_broker_state).
		 */
		s->awaiting_hub = true;
		s->held = true;
		session_update_pause(s);
		s->io->deadline(s->conn, 0);
		return 0;
	}
	if (!hub_connected(hub))
		return session_refuse_connect(s, MQTT_CONNACK_UNAVAILABLE,
					      MQTT_RC_SERVER_UNAVAILABLE, "broker down");
	session_take_over(s, true);
	s->mode = MODE_SHARED;
	s->ss->shared_count++;
	s->rcv.deliver = shared_deliver;
	s->rcv.granted = granted;
	s->receive_max = (uint16_t)session_prop_u32(broker, MQTT_PROP_RECEIVE_MAXIMUM, 65535);
	/* A broker that allows less than the hub asked for says so; its limit is the browser's
	 * too (MQTT 5 §3.2.2.3.14). 3.1.1 has no way to say it: the browser's own stands. */
	keepalive = (uint16_t)hub_max_keepalive(hub);
	if (!keepalive || s->version != MQTT_V5 || (s->keepalive && s->keepalive < keepalive))
		keepalive = s->keepalive;
	if (s->version == MQTT_V5 && connack_props(s, broker, keepalive, &props)) {
		buf_clear(&props);
		return session_refuse_connect(s, MQTT_CONNACK_UNAVAILABLE,
					      MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	}
	p.u.connack.props = (struct mqtt_bytes){props.data, props.len};
	session_send_packet(s, &p);
	buf_clear(&props);
	if (hmap_put(s->ss->live, s->client_id, strlen(s->client_id), s))
		log_msg(LOG_WARN, "session", "untracked client_id=%s reason=out-of-memory",
			session_cid(s));
	/* MQTT: the server may drop a client silent for one and a half keepalive periods. */
	s->io->deadline(s->conn, (uint32_t)keepalive * 1500u);
	log_msg(LOG_INFO, "session", "connected client_id=%s peer=%s version=%u mode=shared",
		session_cid(s), s->peer, s->version);
	return 0;
}

static void on_ack(void *user, uint32_t tag, enum hub_status status, uint8_t reason)
{
	struct session *s = user;
	struct upstream_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.failed = status == HUB_DOWN || status == HUB_FAILED;
	ev.code = reason;
	session_op_done(s, (int)tag, &ev);
}

/*
 * What would make the broker drop the hub's connection, and with it every shared browser, is
 * refused here as the broker would refuse it from the browser itself.
 */
static int check_publish(struct session *s, const char *topic, const struct mqtt_publish *p)
{
	struct mqtt_bytes broker = hub_broker_props(s->ss->cfg.hub);
	uint32_t max_packet = session_prop_u32(broker, MQTT_PROP_MAXIMUM_PACKET_SIZE, 0);
	struct mqtt_packet pkt = {.type = MQTT_PUBLISH};
	struct mqtt_prop format;

	if (p->qos > session_prop_u32(broker, MQTT_PROP_MAXIMUM_QOS, 2))
		return session_protocol_error(s, MQTT_RC_QOS_NOT_SUPPORTED,
					      "QoS over the broker's maximum");
	if (p->retain && !session_prop_u32(broker, MQTT_PROP_RETAIN_AVAILABLE, 1))
		return session_protocol_error(s, MQTT_RC_RETAIN_NOT_SUPPORTED,
					      "retain not available at the broker");
	pkt.u.publish = *p;
	pkt.u.publish.topic = (struct mqtt_bytes){(const uint8_t *)topic, strlen(topic)};
	if (max_packet && codec_encoded_len(MQTT_V5, &pkt) > max_packet)
		return session_protocol_error(s, MQTT_RC_PACKET_TOO_LARGE,
					      "packet over the broker's maximum packet size");
	if (props_find(p->props.data, p->props.len, MQTT_PROP_PAYLOAD_FORMAT, &format) &&
	    format.value == 1 && !utf8_valid(p->payload.data, p->payload.len))
		return 1;
	return 0;
}

/* 0: it went; 1: dropped, as QoS 0 may be; or the error the session was closed for. */
static int publish_qos0(struct session *s, const char *topic, const struct mqtt_publish *p)
{
	int rc = hub_publish_qos0(s->ss->cfg.hub, topic, p->payload, p->retain, p->props);

	if (rc == -ENOBUFS) {
		/* The broker link is backed up: QoS 0 may be lost, as at a busy broker. */
		s->ss->stats.qos0_upstream_dropped++;
		return 1;
	}
	if (rc) {
		log_msg(LOG_INFO, "session", "publish-failed client_id=%s rc=%d", session_cid(s),
			rc);
		session_close(s, END_ERROR);
	}
	return rc;
}

int shared_publish(struct session *s, const char *topic, const struct mqtt_publish *p)
{
	struct hub_req *req;
	struct op op = {0};
	uint32_t tag;
	int rc = check_publish(s, topic, p);

	if (rc < 0)
		return rc;
	if (rc > 0) {
		/* As the broker answers a payload that is not the UTF-8 it says it is. */
		if (!p->qos)
			return 0;
		rc = session_add_local(s, p->qos == 1 ? OP_PUB1 : OP_PUB2, p->packet_id,
				       MQTT_RC_PAYLOAD_FORMAT_INVALID, NULL);
		if (rc)
			session_close(s, END_ERROR);
		return rc;
	}
	if (!p->qos) {
		rc = publish_qos0(s, topic, p);
		if (rc)
			return rc > 0 ? 0 : rc;
		goto sent;
	}
	tag = ++s->last_tag ? s->last_tag : ++s->last_tag; /* 0 is no tag */
	req = hub_publish_tagged(s->ss->cfg.hub, topic, p->payload, p->qos, p->retain, p->props,
				 on_ack, s, tag);
	if (!req) {
		log_msg(LOG_INFO, "session", "publish-failed client_id=%s reason=broker-down",
			session_cid(s));
		session_close(s, END_ERROR);
		return -ENOTCONN;
	}
	op.token = (int)tag;
	op.kind = p->qos == 1 ? OP_PUB1 : OP_PUB2;
	op.packet_id = p->packet_id;
	op.req = req;
	rc = session_push_op(s, &op);
	if (!rc && p->qos == 2)
		rc = session_add_q2(s, p->packet_id, false);
	if (rc) {
		hub_cancel(s->ss->cfg.hub, req);
		session_close(s, END_ERROR);
		return rc;
	}
sent:
	if (s->nolocal_subs)
		echo_add(s, topic, p->payload);
	s->ss->stats.messages_from_browser++;
	return 0;
}

static struct shared_sub *sub_new(struct session *s, struct codec_entry *e, uint32_t sub_id)
{
	struct shared_sub *ss = calloc(1, sizeof(*ss));

	if (!ss || !(ss->filter = strndup((const char *)e->filter.data, e->filter.len))) {
		free(ss);
		return NULL;
	}
	ss->s = s;
	ss->len = e->filter.len;
	ss->options = e->options;
	ss->sub_id = sub_id;
	ss->member.rcv = &s->rcv;
	ss->member.qos = e->options & MQTT_SUBOPT_QOS_MASK;
	ss->hold = true;
	s->holding++;
	if (ss->options & MQTT_SUBOPT_NO_LOCAL)
		s->nolocal_subs++;
	return ss;
}

/* The code for one filter of a SUBSCRIBE, or CODE_FORWARDED when the hub will answer. */
static uint8_t subscribe_one(struct session *s, struct sub_op *so, size_t i, struct codec_entry *e,
			     uint32_t sub_id)
{
	bool v5 = s->version == MQTT_V5;
	size_t max = s->ss->cfg.max_subscriptions;
	struct shared_sub *old, *ss;
	unsigned rh = MQTT_SUBOPT_RETAIN_HANDLING(e->options);
	int rc;

	if (s->token &&
	    !auth_may_subscribe(s->token, (const char *)e->filter.data, e->filter.len)) {
		s->ss->stats.denied_subscribe++;
		return v5 ? MQTT_RC_NOT_AUTHORIZED : MQTT_RC_UNSPECIFIED;
	}
	old = hmap_get(s->subs, e->filter.data, e->filter.len);
	if (!old && max && hmap_count(s->subs) >= max) {
		s->ss->stats.quota_refused++;
		return v5 ? MQTT_RC_QUOTA_EXCEEDED : MQTT_RC_UNSPECIFIED;
	}
	ss = sub_new(s, e, sub_id);
	if (!ss || hmap_put(s->subs, e->filter.data, e->filter.len, ss)) {
		if (ss)
			sub_destroy(ss);
		return MQTT_RC_UNSPECIFIED;
	}
	/* Subscribing again replaces the subscription (MQTT 5 §3.8.4). */
	if (old)
		sub_destroy(old);
	ss->want_retained = (rh == 0 || (rh == 1 && !old)) &&
			    !topic_filter_is_shared(ss->filter, ss->len, NULL, NULL);
	ss->joined = retained_mark(s->ss->cfg.retained);
	rc = hub_join(s->ss->cfg.hub, &ss->member, ss->filter, ss->len);
	if (rc >= 0 && rc < HUB_JOIN_WAIT) {
		ss->granted = (uint8_t)rc;
		ss->op = so;
		ss->op_index = i;
		so->ssubs[i] = ss;
		return (uint8_t)rc;
	}
	if (rc == HUB_JOIN_WAIT) {
		ss->op = so;
		ss->op_index = i;
		so->ssubs[i] = ss;
		so->waiting++;
		return CODE_FORWARDED;
	}
	hmap_remove(s->subs, ss->filter, ss->len);
	sub_destroy(ss);
	return MQTT_RC_UNSPECIFIED;
}

int shared_subscribe(struct session *s, const struct mqtt_subscribe *sub)
{
	struct mqtt_bytes cursor = sub->entries;
	uint32_t sub_id = session_prop_u32(sub->props, MQTT_PROP_SUBSCRIPTION_ID, 0);
	struct codec_entry e;
	struct sub_op *so = NULL;
	struct op op = {0};
	size_t i = 0;
	int rc = -ENOMEM;

	if (!s->subs && !(s->subs = hmap_new()))
		goto fail;
	so = calloc(1, sizeof(*so) + sub->count);
	if (!so || !(so->ssubs = calloc(sub->count, sizeof(*so->ssubs))))
		goto fail;
	so->count = sub->count;
	while (i < sub->count && codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e)) {
		so->codes[i] = subscribe_one(s, so, i, &e, sub_id);
		i++;
	}
	op.kind = OP_SUB;
	op.packet_id = sub->packet_id;
	op.count = sub->count;
	op.sub = so;
	op.local = so->waiting == 0;
	rc = session_push_op(s, &op);
	if (rc)
		goto fail;
	if (!s->holding)
		shared_flush_held(s); /* a refused filter may have been the one others waited for */
	session_answer_local(s);
	return 0;
fail:
	/* The filters already joined stay in s->subs and end with the session. */
	for (size_t j = 0; so && so->ssubs && j < so->count; j++) {
		if (so->ssubs[j])
			so->ssubs[j]->op = NULL;
	}
	return session_request_failed(s, so, "subscribe", rc);
}

int shared_unsubscribe(struct session *s, const struct mqtt_subscribe *sub)
{
	struct mqtt_bytes cursor = sub->entries;
	struct codec_entry e;
	struct sub_op *so = calloc(1, sizeof(*so) + sub->count);
	size_t i = 0;
	int rc;

	if (!so) {
		session_close(s, END_ERROR);
		return -ENOMEM;
	}
	so->count = sub->count;
	while (i < sub->count && codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e)) {
		struct shared_sub *ss =
		    s->subs ? hmap_remove(s->subs, e.filter.data, e.filter.len) : NULL;
		so->codes[i++] = ss ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
		if (ss)
			sub_destroy(ss);
	}
	if (!s->holding)
		shared_flush_held(s);
	rc = session_add_local(s, OP_UNSUB, sub->packet_id, 0, so);
	if (rc)
		session_close(s, END_ERROR);
	return rc;
}

static bool end_sub(const void *key, size_t len, void *value, void *user)
{
	(void)key;
	(void)len;
	(void)user;
	sub_destroy(value);
	return true;
}

void shared_end(struct session *s)
{
	struct hub *hub = s->ss->cfg.hub;

	if (s->subs)
		hmap_foreach(s->subs, end_sub, NULL);
	hmap_free(s->subs);
	s->subs = NULL;
	for (size_t i = 0; i < s->nops; i++) {
		if (s->ops[i].req)
			hub_cancel(hub, s->ops[i].req);
		s->ops[i].req = NULL;
	}
	session_list_clear(&s->held_msgs);
	free(s->echoes);
	s->echoes = NULL;
	s->ss->shared_count--;
}
