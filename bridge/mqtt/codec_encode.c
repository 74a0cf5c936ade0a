/* bridge/mqtt/codec_encode.c — MQTT 3.1, 3.1.1 and 5.0 packets: encoding. */
#include "codec.h"

#include <errno.h>

#include "codec_int.h"

/*
 * One walk over a packet serves both to measure it (@b NULL) and to write it, so that
 * codec_encoded_len() cannot disagree with codec_encode(). The first error sticks.
 */
struct enc {
	struct buf *b;
	size_t n;
	int rc;
};

static void enc_fail(struct enc *e, int rc)
{
	if (!e->rc)
		e->rc = rc;
}

/* Counts @n more bytes; true when they are to be written. */
static bool enc_count(struct enc *e, size_t n)
{
	if (n > SIZE_MAX - e->n)
		enc_fail(e, -ERANGE);
	else
		e->n += n;
	return e->b && !e->rc;
}

static size_t varint_size(uint32_t v)
{
	/* Seven bits of the value per byte. */
	return v < 1u << 7 ? 1 : v < 1u << 14 ? 2 : v < 1u << 21 ? 3 : 4;
}

static void enc_u8(struct enc *e, uint8_t v)
{
	if (enc_count(e, 1))
		e->rc = buf_put_u8(e->b, v);
}

static void enc_u16(struct enc *e, uint16_t v)
{
	if (enc_count(e, MQTT_U16_SIZE))
		e->rc = buf_put_u16(e->b, v);
}

static void enc_varint(struct enc *e, size_t v)
{
	if (v > MQTT_MAX_REMAINING_LENGTH)
		enc_fail(e, -ERANGE);
	else if (enc_count(e, varint_size((uint32_t)v)))
		e->rc = buf_put_varint(e->b, (uint32_t)v);
}

static void enc_bytes(struct enc *e, const struct mqtt_bytes *v)
{
	if (enc_count(e, v->len))
		e->rc = buf_append(e->b, v->data, v->len);
}

static void enc_lstring(struct enc *e, const struct mqtt_bytes *v)
{
	if (v->len > UINT16_MAX)
		enc_fail(e, -ERANGE);
	else if (enc_count(e, MQTT_U16_SIZE + v->len))
		e->rc = buf_put_lstring(e->b, v->data, v->len);
}

static void enc_props(struct enc *e, const struct mqtt_bytes *props)
{
	enc_varint(e, props->len);
	enc_bytes(e, props);
}

static void enc_packet_id(struct enc *e, uint16_t id)
{
	if (id == 0)
		enc_fail(e, -EINVAL);
	enc_u16(e, id);
}

/* The v5 tail of acks, DISCONNECT and AUTH, in its shortest form. */
static void enc_reason_props(struct enc *e, int type, uint8_t reason,
			     const struct mqtt_bytes *props)
{
	if (!codec_reason_allowed(type, MQTT_V5, reason))
		enc_fail(e, -EINVAL);
	if (reason == MQTT_RC_SUCCESS && props->len == 0)
		return;
	enc_u8(e, reason);
	if (props->len)
		enc_props(e, props);
}

static void enc_connect(struct enc *e, int version, const struct mqtt_connect *c)
{
	static const struct mqtt_bytes mqisdp = {(const uint8_t *)"MQIsdp", sizeof "MQIsdp" - 1};
	static const struct mqtt_bytes mqtt = {(const uint8_t *)"MQTT", sizeof "MQTT" - 1};
	bool v5 = version == MQTT_V5;

	if (c->will_qos > MQTT_QOS_MAX || (!v5 && c->has_password && !c->has_username))
		enc_fail(e, -EINVAL);
	uint8_t flags = (uint8_t)((c->clean_start ? MQTT_CONNECT_CLEAN_START : 0) |
				  (c->has_password ? MQTT_CONNECT_PASSWORD : 0) |
				  (c->has_username ? MQTT_CONNECT_USERNAME : 0));
	if (c->will)
		flags |= (uint8_t)(MQTT_CONNECT_WILL | c->will_qos << MQTT_CONNECT_WILL_QOS_SHIFT |
				   (c->will_retain ? MQTT_CONNECT_WILL_RETAIN : 0));
	enc_lstring(e, version == MQTT_V31 ? &mqisdp : &mqtt);
	enc_u8(e, (uint8_t)version);
	enc_u8(e, flags);
	enc_u16(e, c->keepalive);
	if (v5)
		enc_props(e, &c->props);
	enc_lstring(e, &c->client_id);
	if (c->will) {
		if (v5)
			enc_props(e, &c->will_props);
		enc_lstring(e, &c->will_topic);
		enc_lstring(e, &c->will_payload);
	}
	if (c->has_username)
		enc_lstring(e, &c->username);
	if (c->has_password)
		enc_lstring(e, &c->password);
}

/*
 * 3.x has six CONNACK codes. A v5 reason code is mapped to the nearest one, and any other
 * refusal to "server unavailable", so a session can pass the broker's v5 answer on unchanged.
 */
static uint8_t connack_code_v3(uint8_t code)
{
	switch (code) {
	case MQTT_RC_UNSUPPORTED_VERSION:
		return MQTT_CONNACK_BAD_VERSION;
	case MQTT_RC_CLIENT_ID_INVALID:
		return MQTT_CONNACK_ID_REJECTED;
	case MQTT_RC_BAD_CREDENTIALS:
	case MQTT_RC_BAD_AUTH_METHOD:
		return MQTT_CONNACK_BAD_CREDENTIALS;
	case MQTT_RC_NOT_AUTHORIZED:
	case MQTT_RC_BANNED:
		return MQTT_CONNACK_NOT_AUTHORIZED;
	default:
		return code < MQTT_RC_UNSPECIFIED ? code : MQTT_CONNACK_UNAVAILABLE;
	}
}

static void enc_connack(struct enc *e, int version, const struct mqtt_connack *c)
{
	uint8_t code = version < MQTT_V5 ? connack_code_v3(c->code) : c->code;
	if (!codec_reason_allowed(MQTT_CONNACK, version, code) || (c->session_present && code))
		enc_fail(e, -EINVAL);
	/* 3.1 has no Session Present flag. */
	enc_u8(e, version > MQTT_V31 && c->session_present ? MQTT_CONNACK_SESSION_PRESENT : 0);
	enc_u8(e, code);
	if (version == MQTT_V5)
		enc_props(e, &c->props);
}

static void enc_publish(struct enc *e, int version, const struct mqtt_publish *p)
{
	/* Only v5 has Topic Aliases, the one reason for an empty topic. */
	if (p->qos > MQTT_QOS_MAX || (p->dup && p->qos == 0) ||
	    (version < MQTT_V5 && p->topic.len == 0))
		enc_fail(e, -EINVAL);
	enc_lstring(e, &p->topic);
	if (p->qos)
		enc_packet_id(e, p->packet_id);
	if (version == MQTT_V5)
		enc_props(e, &p->props);
	enc_bytes(e, &p->payload);
}

/* 3.x SUBSCRIBE options have only the QoS bits: the v5 ones are dropped. */
static void enc_subscribe(struct enc *e, int type, int version, const struct mqtt_subscribe *s)
{
	enc_packet_id(e, s->packet_id);
	if (version == MQTT_V5)
		enc_props(e, &s->props);
	struct mqtt_bytes cursor = s->entries;
	struct codec_entry entry;
	size_t count = 0;
	while (codec_next_entry(&cursor, type, &entry)) {
		enc_lstring(e, &entry.filter);
		if (type == MQTT_SUBSCRIBE)
			enc_u8(e, version == MQTT_V5 ? entry.options
						     : entry.options & MQTT_SUBOPT_QOS_MASK);
		count++;
	}
	if (count == 0 || cursor.len)
		enc_fail(e, -EINVAL);
}

/* 3.x SUBACK codes are 0, 1, 2 and 0x80: a v5 failure reason (>= 0x80) becomes 0x80. */
static void enc_suback(struct enc *e, int type, int version, const struct mqtt_suback *s)
{
	enc_packet_id(e, s->packet_id);
	if (version < MQTT_V5 && type == MQTT_UNSUBACK)
		return;
	if (version == MQTT_V5)
		enc_props(e, &s->props);
	if (s->codes.len == 0)
		enc_fail(e, -EINVAL);
	for (size_t i = 0; i < s->codes.len; i++) {
		uint8_t code = s->codes.data[i];
		if (version < MQTT_V5 && code >= MQTT_RC_UNSPECIFIED)
			code = MQTT_RC_UNSPECIFIED;
		if (!codec_reason_allowed(type, version, code))
			enc_fail(e, -EINVAL);
		enc_u8(e, code);
	}
}

static void enc_body(struct enc *e, int version, const struct mqtt_packet *pkt)
{
	switch (pkt->type) {
	case MQTT_CONNECT:
		enc_connect(e, version, &pkt->u.connect);
		break;
	case MQTT_CONNACK:
		enc_connack(e, version, &pkt->u.connack);
		break;
	case MQTT_PUBLISH:
		enc_publish(e, version, &pkt->u.publish);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		enc_packet_id(e, pkt->u.ack.packet_id);
		if (version == MQTT_V5)
			enc_reason_props(e, pkt->type, pkt->u.ack.reason, &pkt->u.ack.props);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		enc_subscribe(e, pkt->type, version, &pkt->u.sub);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		enc_suback(e, pkt->type, version, &pkt->u.suback);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		/* 3.x DISCONNECT is the fixed header alone: the reason has no room there. */
		if (version == MQTT_V5)
			enc_reason_props(e, pkt->type, pkt->u.disconnect.reason,
					 &pkt->u.disconnect.props);
		else if (pkt->type == MQTT_AUTH)
			enc_fail(e, -EINVAL);
		break;
	default:
		enc_fail(e, -EINVAL);
	}
}

/* Validates @pkt for @version and measures its remaining length. */
static int measure(int version, const struct mqtt_packet *pkt, size_t *remaining)
{
	struct enc m = {NULL, 0, 0};
	if (version < MQTT_V31 || version > MQTT_V5)
		return -EINVAL;
	enc_body(&m, version, pkt);
	if (m.rc)
		return m.rc;
	if (m.n > MQTT_MAX_REMAINING_LENGTH)
		return -ERANGE;
	*remaining = m.n;
	return 0;
}

static uint8_t first_byte(const struct mqtt_packet *pkt)
{
	uint8_t flags = codec_fixed_flags(pkt->type);
	if (pkt->type == MQTT_PUBLISH) {
		const struct mqtt_publish *p = &pkt->u.publish;
		flags =
		    (uint8_t)((p->dup ? MQTT_PUBLISH_DUP : 0) | p->qos << MQTT_PUBLISH_QOS_SHIFT |
			      (p->retain ? MQTT_PUBLISH_RETAIN : 0));
	}
	return (uint8_t)(pkt->type << MQTT_TYPE_SHIFT | flags);
}

/* The whole packet: the type byte, the remaining length and what it counts. */
static size_t packet_size(size_t remaining)
{
	return 1 + varint_size((uint32_t)remaining) + remaining;
}

size_t codec_encoded_len(int version, const struct mqtt_packet *pkt)
{
	size_t remaining;
	if (measure(version, pkt, &remaining))
		return 0;
	return packet_size(remaining);
}

int codec_encode(struct buf *out, int version, const struct mqtt_packet *pkt)
{
	size_t remaining;
	int rc = measure(version, pkt, &remaining);
	if (rc)
		return rc;
	/* With the room reserved, the writes below cannot fail half-way. */
	rc = buf_reserve(out, packet_size(remaining));
	if (rc)
		return rc;
	size_t old_len = out->len;
	struct enc w = {out, 0, 0};
	enc_u8(&w, first_byte(pkt));
	enc_varint(&w, remaining);
	enc_body(&w, version, pkt);
	if (w.rc)
		out->len = old_len;
	return w.rc;
}

int codec_put_entry(struct buf *entries, enum mqtt_type type, const void *filter, size_t len,
		    uint8_t options)
{
	if (len > UINT16_MAX)
		return -ERANGE;
	/* The filter's length, the filter, and the options byte of SUBSCRIBE. */
	int rc = buf_reserve(entries, MQTT_U16_SIZE + len + 1);
	if (rc)
		return rc;
	buf_put_lstring(entries, filter, len);
	return type == MQTT_SUBSCRIBE ? buf_put_u8(entries, options) : 0;
}
