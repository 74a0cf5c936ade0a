/*
 * bridge/session/session_input.c — packets from the browser: framing and decoding its byte
 * stream, input held until the broker's CONNACK, and what both modes do about PUBLISH,
 * SUBSCRIBE, UNSUBSCRIBE and DISCONNECT (topic aliases, QoS 2 de-duplication, the token's ACL)
 * before session_dedicated.c or shared.c takes them to the broker.
 */
#include "session.h"
#include "session_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "hmap.h"
#include "log.h"
#include "props.h"
#include "shared.h"

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
		rc =
		    session_add_local(s, p->qos == 1 ? OP_PUB1 : OP_PUB2, p->packet_id, code, NULL);
	if (rc)
		session_close(s, END_ERROR);
	return rc;
}

/*
 * A v5 PUBLISH's topic alias: @topic becomes the topic it stands for, or the alias is set to
 * @topic. 0, or -EPROTO when the session was closed for a bad one.
 */
static int resolve_alias(struct session *s, const struct mqtt_publish *p, struct mqtt_bytes *topic)
{
	struct mqtt_prop alias;

	if (s->version != MQTT_V5 ||
	    !props_find(p->props.data, p->props.len, MQTT_PROP_TOPIC_ALIAS, &alias))
		return 0;
	if (alias.value == 0 || alias.value > TOPIC_ALIAS_MAX)
		return session_protocol_error(s, MQTT_RC_TOPIC_ALIAS_INVALID,
					      "topic alias out of range");
	if (topic->len) {
		char *copy = strndup((const char *)topic->data, topic->len);
		if (!copy)
			return session_protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
		free(s->aliases[alias.value]);
		s->aliases[alias.value] = copy;
	} else if (s->aliases[alias.value]) {
		topic->data = (const uint8_t *)s->aliases[alias.value];
		topic->len = strlen(s->aliases[alias.value]);
	} else {
		return session_protocol_error(s, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
	}
	return 0;
}

static int on_publish(struct session *s, const struct mqtt_publish *p)
{
	struct mqtt_bytes topic = p->topic;
	struct qos2_in *q;

	if (resolve_alias(s, p, &topic))
		return -EPROTO;
	if (p->qos == 2 && (q = session_find_q2(s, p->packet_id))) {
		/* A re-sent QoS 2 PUBLISH is answered, not delivered again. */
		if (q->received)
			session_send_ack(s, MQTT_PUBREC, p->packet_id, 0, no_props);
		return 0;
	}
	/* QoS 2 exchanges hold state until PUBREL, so their number is held to Receive Maximum
	 * (MQTT 5 §4.9). QoS 1 is not counted: Mosquitto acknowledges it at once and clients
	 * rely on that, while the bridge waits for the broker. */
	if (p->qos == 2 && s->version == MQTT_V5 && s->nq2 >= s->receive_max)
		return session_protocol_error(s, MQTT_RC_RECEIVE_MAX_EXCEEDED,
					      "receive maximum exceeded");
	if (s->token && !auth_may_publish(s->token, (const char *)topic.data, topic.len))
		return deny_publish(s, p);
	s->topic.len = 0;
	if (buf_append(&s->topic, topic.data, topic.len) || buf_put_u8(&s->topic, 0))
		return session_protocol_error(s, MQTT_RC_IMPL_SPECIFIC, "out of memory");
	if (s->mode == MODE_SHARED)
		return shared_publish(s, (const char *)s->topic.data, p);
	return session_dedicated_publish(s, (const char *)s->topic.data, p);
}

static int on_subscribe(struct session *s, const struct mqtt_subscribe *sub)
{
	if (s->mode == MODE_SHARED)
		return shared_subscribe(s, sub);
	return session_dedicated_subscribe(s, sub);
}

static int on_unsubscribe(struct session *s, const struct mqtt_subscribe *sub)
{
	if (s->mode == MODE_SHARED)
		return shared_unsubscribe(s, sub);
	return session_dedicated_unsubscribe(s, sub);
}

static void on_disconnect(struct session *s, const struct mqtt_disconnect *d)
{
	struct mqtt_prop expiry;

	if (s->version == MQTT_V5 &&
	    props_find(d->props.data, d->props.len, MQTT_PROP_SESSION_EXPIRY, &expiry)) {
		/* A session that said 0 at CONNECT may not ask to be kept now (MQTT 5 §3.14.2.2.2).
		 */
		if (!s->session_expiry && expiry.value) {
			session_protocol_error(
			    s, MQTT_RC_PROTOCOL_ERROR,
			    "session expiry set at DISCONNECT after 0 at CONNECT");
			return;
		}
		s->session_expiry = expiry.value;
	}
	log_msg(LOG_DEBUG, "session", "disconnect client_id=%s reason=0x%02x", session_cid(s),
		d->reason);
	if (s->mode != MODE_SHARED)
		session_dedicated_disconnect(s, d);
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
			session_send_connack(s, false, MQTT_CONNACK_BAD_VERSION, no_props);
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
		return session_on_connect(s, &p.u.connect);
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
		session_on_browser_ack(s, p.type, &p.u.ack);
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
		return session_protocol_error(s, MQTT_RC_PROTOCOL_ERROR,
					      "a server's packet type from a client");
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
			rc = session_protocol_error(s, MQTT_RC_PACKET_TOO_LARGE,
						    "packet over max_packet_bytes");
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

int session_drain_input(struct session *s)
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
	return session_drain_input(s);
}
