/*
 * bridge/session/session_dedicated.c — the dedicated mode's broker side: the session's own
 * upstream Paho client, made from the browser's CONNECT, the browser's PUBLISH, SUBSCRIBE,
 * UNSUBSCRIBE and DISCONNECT translated onto it, its events (CONNACK, messages, answers, its
 * end), and ending it so that the broker publishes the will.
 */
#include "session.h"
#include "session_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "hmap.h"
#include "log.h"
#include "markers.h"
#include "props.h"
#include "store.h"

void session_upstream_gone(struct session *s)
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
void session_end_upstream_abruptly(struct session *s)
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
		session_upstream_gone(s);
	else
		s->up_state = UP_CLOSING;
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
		rc = session_put_connack_limits(s, out, max_packet);
	return rc;
}

static void on_connected(struct session *s, struct upstream_event *ev)
{
	struct buf props = BUF_INIT;
	struct leftovers *lo;
	uint32_t keepalive;

	s->up_state = UP_CONNECTED;
	if (!s->conn || s->closing) {
		session_end_upstream_abruptly(s);
		session_maybe_finalize(s);
		return;
	}
	if (s->version == MQTT_V5 && connack_props(s, ev->props, &props)) {
		buf_clear(&props);
		session_close(s, END_ERROR);
		session_end_upstream_abruptly(s);
		return;
	}
	session_send_connack(s, ev->session_present, 0, (struct mqtt_bytes){props.data, props.len});
	buf_clear(&props);
	log_msg(LOG_INFO, "session",
		"connected client_id=%s peer=%s version=%u clean_start=%d session_present=%d "
		"mode=dedicated",
		session_cid(s), s->peer, s->version, s->clean_start, ev->session_present);

	if (hmap_put(s->ss->live, s->client_id, strlen(s->client_id), s))
		log_msg(LOG_WARN, "session", "untracked client_id=%s reason=out-of-memory",
			session_cid(s));
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
		session_drain_input(s);
}

static void on_connect_failed(struct session *s, struct upstream_event *ev)
{
	uint8_t code = ev->code;

	session_upstream_gone(s);
	if (!s->conn) {
		session_maybe_finalize(s);
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
	session_send_connack(s, false, code, ev->props);
	session_close(s, END_ERROR);
}

static void on_message(struct session *s, struct upstream_event *ev)
{
	struct msg *m = ev->msg;

	ev->msg = NULL;
	/* Another broker client's view of the bridge's markers: shared browsers never see them
	 * (hub_message_in()), and a dedicated one under "#" does not either. */
	if (markers_internal(m)) {
		free(m);
		return;
	}
	if (!session_may_read(s, m)) {
		log_msg(LOG_DEBUG, "session", "message-denied client_id=%s token=%s",
			session_cid(s), s->token->name);
		free(m);
		return;
	}
	if (!s->conn || s->closing) {
		/* Kept for a persistent session's return; see session_finalize(). */
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

static void on_upstream_end(struct session *s, struct upstream_event *ev)
{
	bool told = ev->item.kind == UPSTREAM_DISCONNECTED;

	session_upstream_gone(s);
	if (!s->conn) {
		session_maybe_finalize(s);
		return;
	}
	log_msg(LOG_INFO, "session", "upstream-ended client_id=%s peer=%s reason=%s",
		session_cid(s), s->peer, told ? "broker-disconnect" : "connection-lost");
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
		session_op_done(s, ev->token, ev);
		break;
	case UPSTREAM_DISCONNECTED:
	case UPSTREAM_LOST:
		on_upstream_end(s, ev);
		break;
	case UPSTREAM_CLOSED:
		session_upstream_gone(s);
		session_maybe_finalize(s);
		break;
	}
	upstream_event_free(ev);
}

/* ---- connecting ---- */

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

/* The upstream's CONNECT: the browser's, but with a token the bridge's own login. */
static void upstream_connect_of(const struct session *s, const struct mqtt_connect *c,
				const char *username, const char *will_topic,
				struct upstream_connect *uc)
{
	uc->version = s->up_version;
	uc->client_id = s->client_id;
	/* 3.1.x has one flag for both ends of a session: an MQTT 5 session that starts clean or
	 * ends with the connection is a clean one; only one that resumes and is kept persists. */
	uc->clean_start = c->clean_start ||
			  (c->version == MQTT_V5 && s->up_version != MQTT_V5 && !s->session_expiry);
	uc->keepalive_s = c->keepalive;
	uc->props = c->props;
	uc->will = c->will;
	uc->will_topic = will_topic;
	uc->will_payload = c->will_payload;
	uc->will_qos = c->will_qos;
	uc->will_retain = c->will_retain;
	uc->will_props = c->will_props;
	uc->username = username;
	uc->has_password = c->has_password;
	uc->password = c->password;
	if (s->token) {
		const char *user = s->ss->cfg.broker_username, *pw = s->ss->cfg.broker_password;
		uc->username = user && *user ? user : NULL;
		uc->has_password = pw && *pw;
		uc->password.data = (const uint8_t *)pw;
		uc->password.len = uc->has_password ? strlen(pw) : 0;
	}
}

int session_dedicated_connect(struct session *s, const struct mqtt_connect *c)
{
	struct upstream_connect uc = {0};
	char *username = NULL, *will_topic = NULL;
	bool own_user;

	s->up_version = broker_version_for(s, c->version);
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

	upstream_connect_of(s, c, username, will_topic, &uc);
	s->up = upstream_new(s->ss->cfg.env, &uc, on_upstream_event, s);
	free(username);
	free(will_topic);
	if (!s->up)
		return session_refuse_connect(s, MQTT_CONNACK_UNAVAILABLE,
					      MQTT_RC_SERVER_UNAVAILABLE,
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

/* ---- the browser's requests ---- */

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

int session_dedicated_publish(struct session *s, const char *topic, const struct mqtt_publish *p)
{
	int token, rc;

	if (s->up_version != MQTT_V5 && carries_props(p->props))
		s->ss->stats.props_dropped++;
	rc = upstream_publish(s->up, topic, p->payload, capped_qos(s, p->qos), p->retain, p->props,
			      &token);
	if (!rc)
		rc = session_add_op(s, token,
				    p->qos == 0   ? OP_PUB0
				    : p->qos == 1 ? OP_PUB1
						  : OP_PUB2,
				    p->packet_id, 0);
	if (!rc && p->qos == 2)
		rc = session_add_q2(s, p->packet_id, false);
	if (rc) {
		log_msg(LOG_INFO, "session", "publish-failed client_id=%s rc=%d", session_cid(s),
			rc);
		session_close(s, END_ERROR);
		return rc;
	}
	s->ss->stats.messages_from_browser++;
	return 0;
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
int session_dedicated_subscribe(struct session *s, const struct mqtt_subscribe *sub)
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
		struct op op = {.token = token,
				.kind = OP_SUB,
				.packet_id = sub->packet_id,
				.count = sub->count,
				.sub = so};
		rc = session_push_op(s, &op);
	}
	if (rc)
		goto fail;
	return 0;
fail:
	return session_request_failed(s, so, "subscribe", rc);
}

int session_dedicated_unsubscribe(struct session *s, const struct mqtt_subscribe *sub)
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
		rc = session_add_op(s, token, OP_UNSUB, sub->packet_id, sub->count);
	if (rc)
		return session_request_failed(s, NULL, "unsubscribe", rc);
	return 0;
}

void session_dedicated_disconnect(struct session *s, const struct mqtt_disconnect *d)
{
	/* The broker gets the browser's own DISCONNECT: with 0x04 it publishes the will, which a
	 * 3.1.x broker client has to do itself. */
	if (s->up_version != MQTT_V5 && d->reason == MQTT_RC_DISCONNECT_WITH_WILL) {
		session_end_upstream_abruptly(s);
		return;
	}
	if (upstream_disconnect(s->up, d->reason, d->props, 0))
		session_upstream_gone(s);
	else
		s->up_state = UP_CLOSING;
}
