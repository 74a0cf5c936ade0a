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
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void enc_u8(struct enc *e, uint8_t v)
{
	if (enc_count(e, 1))
		e->rc = buf_put_u8(e->b, v);
}

static void enc_u16(struct enc *e, uint16_t v)
{
	if (enc_count(e, 2))
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
	else if (enc_count(e, 2 + v->len))
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
	static const struct mqtt_bytes mqisdp = {(const uint8_t *)"MQIsdp", 6};
	static const struct mqtt_bytes mqtt = {(const uint8_t *)"MQTT", 4};
	bool v5 = version == MQTT_V5;

	if (c->will_qos > 2 || (!v5 && c->has_password && !c->has_username))
		enc_fail(e, -EINVAL);
	uint8_t flags = (uint8_t)((c->clean_start ? 0x02 : 0) | (c->has_password ? 0x40 : 0) |
	                          (c->has_username ? 0x80 : 0));
	if (c->will)
		flags |= (uint8_t)(0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0));
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
		return code < 0x80 ? code : MQTT_CONNACK_UNAVAILABLE;
	}
}

static void enc_connack(struct enc *e, int version, const struct mqtt_connack *c)
{
	uint8_t code = version < MQTT_V5 ? connack_code_v3(c->code) : c->code;
	if (!codec_reason_allowed(MQTT_CONNACK, version, code) || (c->session_present && code))
		enc_fail(e, -EINVAL);
	/* 3.1 has no Session Present flag. */
	enc_u8(e, version > MQTT_V31 && c->session_present ? 0x01 : 0x00);
	enc_u8(e, code);
	if (version == MQTT_V5)
		enc_props(e, &c->props);
}

static void enc_publish(struct enc *e, int version, const struct mqtt_publish *p)
{
	/* Only v5 has Topic Aliases, the one reason for an empty topic. */
	if (p->qos > 2 || (p->dup && p->qos == 0) || (version < MQTT_V5 && p->topic.len == 0))
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
		if (version < MQTT_V5 && code >= 0x80)
			code = 0x80;
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
		flags = (uint8_t)((p->dup ? 0x08 : 0) | p->qos << 1 | (p->retain ? 0x01 : 0));
	}
	return (uint8_t)(pkt->type << 4 | flags);
}

size_t codec_encoded_len(int version, const struct mqtt_packet *pkt)
{
	size_t remaining;
	if (measure(version, pkt, &remaining))
		return 0;
	return 1 + varint_size((uint32_t)remaining) + remaining;
}

int codec_encode(struct buf *out, int version, const struct mqtt_packet *pkt)
{
	size_t remaining;
	int rc = measure(version, pkt, &remaining);
	if (rc)
		return rc;
	/* With the room reserved, the writes below cannot fail half-way. */
	rc = buf_reserve(out, 1 + varint_size((uint32_t)remaining) + remaining);
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
	int rc = buf_reserve(entries, 2 + len + 1);
	if (rc)
		return rc;
	buf_put_lstring(entries, filter, len);
	return type == MQTT_SUBSCRIBE ? buf_put_u8(entries, options) : 0;
}
