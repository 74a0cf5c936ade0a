/*
 * bridge/session/session_dedicated.c — the dedicated mode's broker side: the events of the
 * session's own upstream Paho client (CONNACK, messages, answers, its end) and ending it so
 * that the broker publishes the will.
 */
#include "session.h"
#include "session_int.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "hmap.h"
#include "log.h"
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
		rc = props_put_int(out, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS_MAX);
	if (!rc)
		rc = props_put_int(out, MQTT_PROP_MAXIMUM_PACKET_SIZE, max_packet);
	if (!rc && s->id_assigned)
		rc = props_put_bytes(out, MQTT_PROP_ASSIGNED_CLIENT_ID, s->client_id,
				     strlen(s->client_id));
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
	if (!session_may_read(s, m)) {
		log_msg(LOG_DEBUG, "session", "message-denied client_id=%s token=%s", session_cid(s),
			s->token->name);
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

	session_upstream_gone(s);
	if (!s->conn) {
		session_maybe_finalize(s);
		return;
	}
	log_msg(LOG_INFO, "session", "upstream-ended client_id=%s peer=%s reason=%s", session_cid(s),
		s->peer, told ? "broker-disconnect" : "connection-lost");
	if (told)
		session_send_disconnect(s, ev->code, ev->props);
	session_close(s, END_UPSTREAM);
}

void session_on_upstream_event(void *owner, struct upstream_event *ev)
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
		session_upstream_gone(s);
		session_maybe_finalize(s);
		break;
	}
	upstream_event_free(ev);
}
