/*
 * bridge/session/shared.c — shared sessions served from the hub.
 *
 * Each filter a browser subscribes to is a struct shared_sub, a member of the hub's filter. The
 * hub matches a message once and hands each browser the list of its own subscriptions that
 * matched: the browser gets one copy, at the highest QoS those grant, with all their
 * subscription identifiers (MQTT 5 §3.3.4). Copies without identifiers share the event's
 * encoding; QoS 1/2 ones only have their packet id patched in, and once sent, only the packet id
 * is kept until the browser's ack (a clean session never sends them again).
 *
 * Retained messages come from retained.h after the SUBACK, for that browser only. Until they
 * have come, live messages for the browser wait in order (s->held): so a retained message never
 * follows a live one. When a held live message set a topic's retained value meanwhile, that
 * one goes with RETAIN=1 in place of the older value the read found.
 *
 * The broker cannot apply no-local: every browser publishes through the hub, which receives its
 * own messages back. So a browser with a no-local subscription remembers what it published
 * (topic and payload, as a hash) until it comes back, and that copy skips its no-local
 * subscriptions.
 */
#include "shared.h"

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
#define ECHO_MAX    64
#define ECHO_TTL_MS 30000
/* Retained messages a subscription may wait for, and how many it gets. */
#define RETAINED_WAIT_MS 5000
#define RETAINED_LIMIT   10000
/* msg->state of a held message: the publisher set retain (its retained value replaces any). */
#define HELD_RETAINED 1

struct shared_sub {
	struct hub_member member;
	struct session *s;
	char *filter;
	size_t len;
	uint8_t options;
	uint8_t granted;
	uint32_t sub_id; /* 0: none */
	bool hold;       /* live messages wait for this subscription's SUBACK and retained ones */
	bool want_retained;
	struct sub_op *op; /* the SUBSCRIBE whose SUBACK has not gone out yet */
	size_t op_index;
	struct retained_req *read;
	/* What the read found, waiting for the hub to catch up (hub_barrier()) */
	struct barrier_wait *barrier;
	struct msg *found;
	bool read_wanted; /* the reader was not up yet: shared_tick() tries again */
	uint64_t joined;  /* retained_mark() when its live messages started */
	uint64_t read_since_ms;
};

struct shared_echoes {
	size_t head, n;
	struct {
		uint64_t hash;
		uint64_t expires_ms;
	} e[ECHO_MAX];
};

static struct shared_sub *sub_of(struct hub_member *m)
{
	return (struct shared_sub *)((char *)m - offsetof(struct shared_sub, member));
}

static struct session *session_of(struct hub_receiver *r)
{
	return (struct session *)((char *)r - offsetof(struct session, rcv));
}

static uint8_t min_qos(uint8_t a, uint8_t b)
{
	return a < b ? a : b;
}

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
static bool echo_take(struct session *s, const struct msg *m)
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
static struct msg *copy_for(const struct msg *m, uint8_t qos, bool retain, const uint32_t *ids,
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

static void hold(struct session *s, struct msg *m, bool published_retained)
{
	m->state = published_retained ? HELD_RETAINED : 0;
	m->queued_ms = clock_mono_ms(); /* message expiry counts from now */
	m->next = NULL;
	if (s->held_tail)
		s->held_tail->next = m;
	else
		s->held_head = m;
	s->held_tail = m;
	s->held_bytes += m->size;
	s->ss->stats.shared_held++;
	if (s->held_bytes + s->io->queued(s->conn) > s->ss->cfg.max_queue_bytes)
		session_slow(s);
}

static void free_list(struct msg *m)
{
	for (struct msg *next; m; m = next) {
		next = m->next;
		free(m);
	}
}

static void free_held(struct session *s)
{
	free_list(s->held_head);
	s->held_head = s->held_tail = NULL;
	s->held_bytes = 0;
}

static void flush_held(struct session *s)
{
	struct msg *m = s->held_head, *next;

	s->held_head = s->held_tail = NULL;
	s->held_bytes = 0;
	for (; m; m = next) {
		next = m->next;
		m->state = 0;
		if (s->conn && !s->closing)
			session_deliver(s, m);
		else
			free(m);
	}
}

static void release_hold(struct shared_sub *ss)
{
	struct session *s = ss->s;

	if (!ss->hold)
		return;
	ss->hold = false;
	if (!--s->holding)
		flush_held(s);
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
	if (qos && ((s->out_tail && (s->out_tail->state & MSG_STATE) == MSG_QUEUED) ||
	            s->out_inflight >= s->browser_receive_max)) {
		struct msg *m = copy_for(ev->msg, qos, retain, NULL, 0);
		if (m)
			session_deliver(s, m); /* counts it */
		return;
	}
	s->ss->stats.messages_to_browser++;
	if (qos == 0) {
		/* A slow browser loses QoS 0 messages first (DESIGN §3, backpressure). */
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
	if (rc == -ENOBUFS || s->out_bytes + s->io->queued(s->conn) > limit)
		session_slow(s);
	else if (!rc)
		s->ss->stats.bytes_to_browser += s->out.len;
}

/* ---- from the hub ---- */

static void deliver(struct hub_receiver *r, struct hub_event *ev, struct hub_member *matches)
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
		own = nolocal && echo_take(s, m);
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
		struct msg *copy = copy_for(m, (uint8_t)qos, rap && m->retain, ids, nids);
		if (!copy) {
			log_msg(LOG_WARN, "shared",
			        "message-dropped client_id=%s reason=out-of-memory",
			        session_cid(s));
			return;
		}
		if (s->holding)
			hold(s, copy, m->retain);
		else
			session_deliver(s, copy);
		return;
	}
	send_shared(s, ev, (uint8_t)qos, rap && m->retain);
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
	free_list(ss->found);
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
			flush_held(s);
	} else {
		ss->granted = code;
	}
	if (!--so->waiting) {
		op_ready(s, so);
		session_answer_local(s);
	}
}

/* ---- retained messages on subscribe ---- */

/*
 * A live message waiting for this browser that set @topic's retained value: it is newer than
 * what the read found (or the same), so it goes as the retained message instead, as a broker
 * that took the SUBSCRIBE a moment later would have sent it. true when there was one.
 */
static bool held_replaces(struct session *s, struct mqtt_bytes topic)
{
	for (struct msg *m = s->held_head; m; m = m->next) {
		if ((m->state & HELD_RETAINED) && m->topic.len == topic.len &&
		    !memcmp(m->topic.data, topic.data, topic.len)) {
			/* An empty one cleared the value: there is none to send. */
			if (m->payload.len)
				m->retain = true;
			return true;
		}
	}
	return false;
}

/* The hub is caught up with the broker: what the read found goes out, then the held messages. */
static void on_hub_caught_up(void *user)
{
	struct shared_sub *ss = user;
	struct session *s = ss->s;
	struct msg *m = ss->found, *next;

	ss->barrier = NULL;
	ss->found = NULL;
	for (; m; m = next) {
		next = m->next;
		m->next = NULL;
		if (!s->conn || s->closing || held_replaces(s, m->topic))
			free(m);
		else
			session_deliver(s, m);
	}
	release_hold(ss);
}

/*
 * The read found @msgs. The hub and the reader are two connections: the hub may not have handed
 * over yet a live message the broker sent it before the read's SUBSCRIBE, and that one must be
 * held (so that it replaces an older retained value, or comes after the value it replaced).
 * So the values go out once a marker the hub sends now has come back.
 */
static void on_retained(void *user, bool ok, bool complete, struct msg *const *msgs, size_t n)
{
	struct shared_sub *ss = user;
	struct session *s = ss->s;
	struct msg **tail = &ss->found;

	ss->read = NULL;
	if (!complete)
		log_msg(LOG_DEBUG, "shared", "retained-incomplete client_id=%s ok=%d count=%zu",
		        session_cid(s), ok, n);
	for (size_t i = 0; ok && i < n && s->conn && !s->closing; i++) {
		const struct msg *m = msgs[i];
		struct msg *copy;
		if (!session_may_read(s, m))
			continue;
		copy = copy_for(m, min_qos(m->qos, ss->granted), true, &ss->sub_id,
		                ss->sub_id ? 1 : 0);
		if (!copy)
			continue;
		*tail = copy;
		tail = &copy->next;
	}
	ss->barrier = hub_barrier(s->ss->cfg.hub, on_hub_caught_up, ss);
	if (!ss->barrier)
		on_hub_caught_up(ss);
}

/* Starts @ss's retained read; false while the reader's link is not up (tried again on ticks). */
static bool start_read(struct shared_sub *ss)
{
	ss->read = retained_get(ss->s->ss->cfg.retained, ss->filter, RETAINED_LIMIT, ss->joined,
	                        on_retained, ss);
	return ss->read != NULL;
}

void shared_suback_sent(struct session *s, struct sub_op *so)
{
	for (size_t i = 0; i < so->count; i++) {
		struct shared_sub *ss = so->ssubs[i];
		if (!ss)
			continue;
		so->ssubs[i] = NULL;
		ss->op = NULL;
		if (!ss->want_retained || !s->conn || s->closing) {
			release_hold(ss);
			continue;
		}
		/* Without the reader (it connects beside the hub), live messages wait for it up to
		 * RETAINED_WAIT_MS too: a dashboard reconnecting as the bridge starts gets its
		 * retained values. */
		ss->read_since_ms = clock_mono_ms();
		ss->read_wanted = !start_read(ss);
	}
}

static bool tick_sub(const void *key, size_t len, void *value, void *user)
{
	struct shared_sub *ss = value;
	uint64_t now = *(const uint64_t *)user;
	bool late = now - ss->read_since_ms >= RETAINED_WAIT_MS;

	(void)key;
	(void)len;
	if (ss->read_wanted && (start_read(ss) || late)) {
		ss->read_wanted = false;
		if (!ss->read) {
			log_msg(LOG_INFO, "shared", "retained-unavailable client_id=%s",
			        session_cid(ss->s));
			release_hold(ss);
		}
	} else if (ss->read && late) {
		retained_finish(ss->s->ss->cfg.retained, ss->read); /* calls on_retained */
	}
	return true;
}

void shared_tick(struct session *s, uint64_t now_ms)
{
	if (s->holding && s->subs)
		hmap_foreach(s->subs, tick_sub, &now_ms);
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
		rc = props_put_int(out, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS_MAX);
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_MAXIMUM_PACKET_SIZE, max_packet);
	if (!rc && s->id_assigned)
		rc = props_put_bytes(out, MQTT_PROP_ASSIGNED_CLIENT_ID, s->client_id,
		                     strlen(s->client_id));
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
		/* Starting, or reconnecting: the answer is a moment away (sessions_broker_state). */
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
	s->rcv.deliver = deliver;
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
	struct op op;

	if (!session_take_op(s, (int)tag, &op))
		return;
	memset(&ev, 0, sizeof(ev));
	ev.failed = status == HUB_DOWN || status == HUB_FAILED;
	ev.code = reason;
	op.req = NULL;
	session_answer_op(s, op, &ev);
	session_sub_op_free(op.sub);
	session_answer_local(s);
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
		rc = hub_publish_qos0(s->ss->cfg.hub, topic, p->payload, p->retain, p->props);
		if (rc == -ENOBUFS) {
			/* The broker link is backed up: QoS 0 may be lost, as at a busy broker. */
			s->ss->stats.qos0_upstream_dropped++;
			return 0;
		}
		if (rc) {
			log_msg(LOG_INFO, "session", "publish-failed client_id=%s rc=%d",
			        session_cid(s), rc);
			session_close(s, END_ERROR);
			return rc;
		}
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
		flush_held(s); /* a refused filter may have been the one others waited for */
	session_answer_local(s);
	return 0;
fail:
	/* The filters already joined stay in s->subs and end with the session. */
	if (so) {
		for (size_t j = 0; j < so->count && so->ssubs; j++) {
			if (so->ssubs[j])
				so->ssubs[j]->op = NULL;
		}
	}
	session_sub_op_free(so);
	log_msg(LOG_INFO, "session", "subscribe-failed client_id=%s rc=%d", session_cid(s), rc);
	session_close(s, END_ERROR);
	return rc;
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
		flush_held(s);
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
	free_held(s);
	free(s->echoes);
	s->echoes = NULL;
	s->ss->shared_count--;
}
