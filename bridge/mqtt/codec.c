/*
 * bridge/mqtt/codec.c — MQTT 3.1, 3.1.1 and 5.0 packets: decoding with a server's validation, and
 * encoding.
 *
 * Reason codes on refusal follow MQTT 5 §1.2: 0x81 (malformed) when the bytes cannot be parsed
 * or break a rule the spec calls malformed (fixed-header flags, reserved bits, QoS 3 in a PUBLISH
 * or a will, ill-formed UTF-8, trailing bytes); 0x82 (protocol error) for well-formed data the
 * protocol forbids; 0x8F / 0x90 for bad topic filters / names; 0x85 for a client id that is not
 * valid MQTT UTF-8. In 3.x the reason only reaches the logs.
 *
 * The codec does not know which side sent a packet, so direction rules are the session's: a
 * Subscription Identifier in a PUBLISH from a client, Session Expiry in a DISCONNECT from the
 * server, server-only reason codes in a client's DISCONNECT, server-to-client packet types.
 */
#include "codec.h"

#include <errno.h>
#include <string.h>

#include "topic.h"
#include "utf8.h"

/* Reason codes each v5 packet may carry (MQTT 5 §3.2.2.2, §3.4.2.1, ... §3.15.2.1). */
static const uint8_t rc_connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                     0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                     0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rc_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t rc_pubrel[] = {0x00, 0x92};
static const uint8_t rc_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rc_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t rc_disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                        0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                        0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rc_auth[] = {0x00, 0x18, 0x19};

#define IN_SET(set, rc) (memchr(set, rc, sizeof set) != NULL)

/* May a @type packet of level @version carry @rc? In 3.x only CONNACK and SUBACK have codes. */
static bool reason_allowed(int type, int version, uint8_t rc)
{
	switch (type) {
	case MQTT_CONNACK:
		return version < MQTT_V5 ? rc <= MQTT_CONNACK_NOT_AUTHORIZED
		                         : IN_SET(rc_connack, rc);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
		return IN_SET(rc_puback, rc);
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return IN_SET(rc_pubrel, rc);
	case MQTT_SUBACK:
		/* 3.1 has no failure code, but brokers send 3.1.1's 0x80 there too. */
		return version < MQTT_V5 ? rc <= 2 || rc == 0x80 : IN_SET(rc_suback, rc);
	case MQTT_UNSUBACK:
		return IN_SET(rc_unsuback, rc);
	case MQTT_DISCONNECT:
		return IN_SET(rc_disconnect, rc);
	case MQTT_AUTH:
		return IN_SET(rc_auth, rc);
	default:
		return false;
	}
}

/* ---- decoding ---- */

/* The unread part of a packet. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (r->left < 1)
		return false;
	*v = *r->p++;
	r->left--;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->left < 2)
		return false;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return true;
}

/* A 2-byte length and that many bytes; @r is unchanged when they are not all there. */
static bool rd_lbytes(struct rd *r, struct mqtt_bytes *v)
{
	if (r->left < 2)
		return false;
	size_t n = (size_t)(r->p[0] << 8 | r->p[1]);
	if (n > r->left - 2)
		return false;
	v->data = r->p + 2;
	v->len = n;
	r->p += 2 + n;
	r->left -= 2 + n;
	return true;
}

static void rd_rest(struct rd *r, struct mqtt_bytes *v)
{
	v->data = r->p;
	v->len = r->left;
	r->p += r->left;
	r->left = 0;
}

static int fail(struct codec_error *err, uint8_t reason, const char *msg)
{
	err->reason = reason;
	err->msg = msg;
	return -EPROTO;
}

static int truncated(struct codec_error *err)
{
	return fail(err, MQTT_RC_MALFORMED, "truncated packet");
}

/* An MQTT UTF-8 string (§1.5.4: ill-formed UTF-8 makes the packet malformed). */
static int rd_string(struct rd *r, struct mqtt_bytes *v, struct codec_error *err)
{
	if (!rd_lbytes(r, v))
		return truncated(err);
	if (!utf8_valid_mqtt(v->data, v->len))
		return fail(err, MQTT_RC_MALFORMED, "string not valid MQTT UTF-8");
	return 0;
}

static int rd_packet_id(struct rd *r, uint16_t *id, struct codec_error *err)
{
	if (!rd_u16(r, id))
		return truncated(err);
	if (*id == 0)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "packet identifier 0");
	return 0;
}

/* A property length and the properties, validated for @where. */
static int rd_props(struct rd *r, int where, struct mqtt_bytes *v, struct codec_error *err)
{
	uint32_t n;
	size_t used;
	int rc = buf_get_varint(r->p, r->left, &n, &used);
	if (rc == -EAGAIN)
		return truncated(err);
	if (rc)
		return fail(err, MQTT_RC_MALFORMED, "bad property length");
	r->p += used;
	r->left -= used;
	if (n > r->left)
		return truncated(err);
	rc = props_validate(r->p, n, where, err);
	if (rc)
		return rc;
	struct mqtt_prop prop;
	if (props_find(r->p, n, MQTT_PROP_AUTH_DATA, &prop) &&
	    !props_find(r->p, n, MQTT_PROP_AUTH_METHOD, &prop))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "authentication data without a method");
	v->data = r->p;
	v->len = n;
	r->p += n;
	r->left -= n;
	return 0;
}

/* The optional v5 tail of acks, DISCONNECT and AUTH: none, a reason code, or both with props. */
static int rd_reason_props(struct rd *r, int type, uint8_t *reason, struct mqtt_bytes *props,
                           struct codec_error *err)
{
	if (!rd_u8(r, reason))
		return 0;
	if (!reason_allowed(type, MQTT_V5, *reason))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "reason code not allowed in this packet");
	return r->left ? rd_props(r, type, props, err) : 0;
}

static bool bytes_is(const struct mqtt_bytes *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static int dec_connect(struct rd *r, struct mqtt_connect *c, struct codec_error *err)
{
	struct mqtt_bytes name;
	uint8_t level;
	uint8_t flags;
	int rc;

	if (!rd_lbytes(r, &name) || !rd_u8(r, &level))
		return truncated(err);
	bool mqtt = bytes_is(&name, "MQTT");
	if (!mqtt && !bytes_is(&name, "MQIsdp"))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "unknown protocol name");
	if (mqtt ? level != MQTT_V311 && level != MQTT_V5 : level != MQTT_V31) {
		fail(err, MQTT_RC_UNSUPPORTED_VERSION, "unsupported protocol level");
		return -EPROTONOSUPPORT;
	}
	if (!rd_u8(r, &flags) || !rd_u16(r, &c->keepalive))
		return truncated(err);
	c->version = level;
	c->clean_start = flags & 0x02;
	c->will = flags & 0x04;
	c->will_qos = (flags >> 3) & 0x03;
	c->will_retain = flags & 0x20;
	c->has_password = flags & 0x40;
	c->has_username = flags & 0x80;
	if (flags & 0x01)
		return fail(err, MQTT_RC_MALFORMED, "reserved connect flag set");
	if (c->will_qos == 3)
		return fail(err, MQTT_RC_MALFORMED, "will QoS 3");
	if (!c->will && (c->will_qos || c->will_retain))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "will QoS or retain without a will");
	/* MQTT 5 allows a password alone (§3.1.2.9); 3.1.1 forbids it ([MQTT-3.1.2-22]). */
	if (level < MQTT_V5 && c->has_password && !c->has_username)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "password without user name");
	if (level == MQTT_V5 && (rc = rd_props(r, MQTT_CONNECT, &c->props, err)))
		return rc;

	if (!rd_lbytes(r, &c->client_id))
		return truncated(err);
	if (!utf8_valid_mqtt(c->client_id.data, c->client_id.len))
		return fail(err, MQTT_RC_CLIENT_ID_INVALID, "client id not valid MQTT UTF-8");
	if (c->will) {
		if (level == MQTT_V5 && (rc = rd_props(r, PROPS_IN_WILL, &c->will_props, err)))
			return rc;
		if ((rc = rd_string(r, &c->will_topic, err)))
			return rc;
		if (!topic_name_valid((const char *)c->will_topic.data, c->will_topic.len))
			return fail(err, MQTT_RC_TOPIC_NAME_INVALID, "will topic not a topic name");
		if (!rd_lbytes(r, &c->will_payload))
			return truncated(err);
	}
	if (c->has_username && (rc = rd_string(r, &c->username, err)))
		return rc;
	if (c->has_password && !rd_lbytes(r, &c->password))
		return truncated(err);
	return 0;
}

static int dec_connack(struct rd *r, int version, struct mqtt_connack *c, struct codec_error *err)
{
	uint8_t flags;
	if (!rd_u8(r, &flags) || !rd_u8(r, &c->code))
		return truncated(err);
	/* In 3.1 the first byte is unused; later levels reserve all but Session Present. */
	if (version > MQTT_V31) {
		if (flags & 0xFE)
			return fail(err, MQTT_RC_MALFORMED, "reserved CONNACK flags set");
		c->session_present = flags & 0x01;
	}
	if (!reason_allowed(MQTT_CONNACK, version, c->code))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "unknown CONNACK code");
	if (c->session_present && c->code)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "session present on a refused connection");
	return version == MQTT_V5 ? rd_props(r, MQTT_CONNACK, &c->props, err) : 0;
}

static int dec_publish(struct rd *r, uint8_t flags, int version, struct mqtt_publish *p,
                       struct codec_error *err)
{
	int rc;
	p->dup = flags & 0x08;
	p->qos = (flags >> 1) & 0x03;
	p->retain = flags & 0x01;
	if (p->qos == 3)
		return fail(err, MQTT_RC_MALFORMED, "PUBLISH QoS 3");
	if (p->dup && p->qos == 0)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "DUP set on QoS 0");
	if ((rc = rd_string(r, &p->topic, err)))
		return rc;
	/* An empty topic is v5's way of using a Topic Alias alone (§3.3.2.1). */
	if ((p->topic.len > 0 || version < MQTT_V5) &&
	    !topic_name_valid((const char *)p->topic.data, p->topic.len))
		return fail(err, MQTT_RC_TOPIC_NAME_INVALID, "topic name invalid");
	if (p->qos && (rc = rd_packet_id(r, &p->packet_id, err)))
		return rc;
	if (version == MQTT_V5) {
		if ((rc = rd_props(r, MQTT_PUBLISH, &p->props, err)))
			return rc;
		struct mqtt_prop alias;
		if (p->topic.len == 0 &&
		    !props_find(p->props.data, p->props.len, MQTT_PROP_TOPIC_ALIAS, &alias))
			return fail(err, MQTT_RC_PROTOCOL_ERROR, "empty topic without topic alias");
	}
	rd_rest(r, &p->payload);
	return 0;
}

static int dec_ack(struct rd *r, int type, int version, struct mqtt_ack *a, struct codec_error *err)
{
	int rc = rd_packet_id(r, &a->packet_id, err);
	if (rc || version < MQTT_V5)
		return rc;
	return rd_reason_props(r, type, &a->reason, &a->props, err);
}

/*
 * Reserved bits are malformed in both levels ([MQTT-3-8.3-4], [MQTT-3.8.3-5]); QoS 3 is
 * malformed in 3.1.1 but a protocol error in v5 (§3.8.3.1), as is Retain Handling 3.
 */
static int check_sub_options(uint8_t o, int version, const struct mqtt_bytes *filter,
                             struct codec_error *err)
{
	bool v5 = version == MQTT_V5;
	if (o & (v5 ? 0xC0 : 0xFC))
		return fail(err, MQTT_RC_MALFORMED, "reserved subscription option bits set");
	if ((o & MQTT_SUBOPT_QOS_MASK) == 3)
		return fail(err, v5 ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED,
		            "subscription QoS 3");
	if (MQTT_SUBOPT_RETAIN_HANDLING(o) == 3)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "retain handling 3");
	if ((o & MQTT_SUBOPT_NO_LOCAL) &&
	    topic_filter_is_shared((const char *)filter->data, filter->len, NULL, NULL))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription");
	return 0;
}

static int dec_subscribe(struct rd *r, int type, int version, struct mqtt_subscribe *s,
                         struct codec_error *err)
{
	int rc = rd_packet_id(r, &s->packet_id, err);
	if (rc)
		return rc;
	if (version == MQTT_V5 && (rc = rd_props(r, type, &s->props, err)))
		return rc;
	s->entries.data = r->p;
	s->entries.len = r->left;
	while (r->left) {
		struct mqtt_bytes filter;
		uint8_t options;
		if ((rc = rd_string(r, &filter, err)))
			return rc;
		if (!topic_filter_valid((const char *)filter.data, filter.len))
			return fail(err, MQTT_RC_TOPIC_FILTER_INVALID, "topic filter invalid");
		if (type == MQTT_SUBSCRIBE) {
			if (!rd_u8(r, &options))
				return truncated(err);
			if ((rc = check_sub_options(options, version, &filter, err)))
				return rc;
		}
		s->count++;
	}
	if (s->count == 0)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "no topic filter");
	return 0;
}

static int dec_suback(struct rd *r, int type, int version, struct mqtt_suback *s,
                      struct codec_error *err)
{
	int rc = rd_packet_id(r, &s->packet_id, err);
	if (rc)
		return rc;
	if (version == MQTT_V5 && (rc = rd_props(r, type, &s->props, err)))
		return rc;
	/* A 3.x UNSUBACK is the packet id alone. */
	if (type == MQTT_UNSUBACK && version < MQTT_V5)
		return 0;
	rd_rest(r, &s->codes);
	if (s->codes.len == 0)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "no reason codes");
	for (size_t i = 0; i < s->codes.len; i++)
		if (!reason_allowed(type, version, s->codes.data[i]))
			return fail(err, MQTT_RC_PROTOCOL_ERROR,
			            "reason code not allowed in this packet");
	return 0;
}

/* The fixed-header flags of every type but PUBLISH (MQTT 5 §2.1.3). */
static uint8_t fixed_flags(int type)
{
	return type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ? 0x02 : 0;
}

int codec_frame(const uint8_t *buf, size_t len, size_t *packet_len)
{
	uint32_t rl;
	size_t used;
	if (len < 2)
		return -EAGAIN;
	int rc = buf_get_varint(buf + 1, len - 1, &rl, &used);
	if (rc)
		return rc;
	*packet_len = 1 + used + rl;
	return 0;
}

static int dec_body(struct rd *r, uint8_t flags, int version, struct mqtt_packet *pkt,
                    struct codec_error *err)
{
	switch (pkt->type) {
	case MQTT_CONNECT:
		return dec_connect(r, &pkt->u.connect, err);
	case MQTT_CONNACK:
		return dec_connack(r, version, &pkt->u.connack, err);
	case MQTT_PUBLISH:
		return dec_publish(r, flags, version, &pkt->u.publish, err);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return dec_ack(r, pkt->type, version, &pkt->u.ack, err);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return dec_subscribe(r, pkt->type, version, &pkt->u.sub, err);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return dec_suback(r, pkt->type, version, &pkt->u.suback, err);
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		if (version < MQTT_V5)
			return 0;
		return rd_reason_props(r, pkt->type, &pkt->u.disconnect.reason,
		                       &pkt->u.disconnect.props, err);
	default: /* PINGREQ, PINGRESP: nothing but the fixed header */
		return 0;
	}
}

int codec_decode(const uint8_t *buf, size_t len, int version, struct mqtt_packet *out,
                 struct codec_error *err)
{
	struct codec_error ignored;
	uint32_t rl;
	size_t used;

	if (!err)
		err = &ignored;
	if (len < 2)
		return truncated(err);
	int rc = buf_get_varint(buf + 1, len - 1, &rl, &used);
	if (rc == -EAGAIN)
		return truncated(err);
	if (rc)
		return fail(err, MQTT_RC_MALFORMED, "bad remaining length");
	if (rl > len - 1 - used)
		return truncated(err);
	if (rl < len - 1 - used)
		return fail(err, MQTT_RC_MALFORMED, "bytes after the packet");

	uint8_t type = buf[0] >> 4;
	uint8_t flags = buf[0] & 0x0F;
	if (type != MQTT_CONNECT && (version < MQTT_V31 || version > MQTT_V5))
		return -EINVAL;
	if (type == 0)
		return fail(err, MQTT_RC_MALFORMED, "reserved packet type 0");
	if (type != MQTT_PUBLISH && flags != fixed_flags(type))
		return fail(err, MQTT_RC_MALFORMED, "bad fixed header flags");
	if (type == MQTT_AUTH && version < MQTT_V5)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "AUTH before MQTT 5");

	struct rd r = {buf + 1 + used, rl};
	struct mqtt_packet pkt = {.type = (enum mqtt_type)type};
	rc = dec_body(&r, flags, version, &pkt, err);
	if (rc)
		return rc;
	if (r.left)
		return fail(err, MQTT_RC_MALFORMED, "bytes after the last field");
	*out = pkt;
	return 0;
}

bool codec_next_entry(struct mqtt_bytes *cursor, enum mqtt_type type, struct codec_entry *e)
{
	struct rd r = {cursor->data, cursor->len};
	struct codec_entry entry = {0};
	if (!rd_lbytes(&r, &entry.filter))
		return false;
	if (type == MQTT_SUBSCRIBE && !rd_u8(&r, &entry.options))
		return false;
	cursor->data = r.p;
	cursor->len = r.left;
	*e = entry;
	return true;
}

/* ---- encoding ---- */

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
	if (!reason_allowed(type, MQTT_V5, reason))
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
	if (!reason_allowed(MQTT_CONNACK, version, code) || (c->session_present && code))
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
		if (!reason_allowed(type, version, code))
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
	uint8_t flags = fixed_flags(pkt->type);
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

const char *codec_version_name(int version)
{
	return version == MQTT_V5     ? "5"
	       : version == MQTT_V311 ? "3.1.1"
	       : version == MQTT_V31  ? "3.1"
				      : "?";
}

const char *codec_connack_text(int version, uint8_t code)
{
	static const char *const v3[] = {"accepted", "unacceptable protocol version",
					 "identifier rejected", "server unavailable",
					 "bad user name or password", "not authorized"};

	if (version != MQTT_V5)
		return code < sizeof(v3) / sizeof(*v3) ? v3[code] : "unknown return code";
	switch (code) {
	case 0x00: return "success";
	case 0x80: return "unspecified error";
	case 0x81: return "malformed packet";
	case 0x82: return "protocol error";
	case 0x83: return "implementation specific error";
	case 0x84: return "unsupported protocol version";
	case 0x85: return "client identifier not valid";
	case 0x86: return "bad user name or password";
	case 0x87: return "not authorized";
	case 0x88: return "server unavailable";
	case 0x89: return "server busy";
	case 0x8A: return "banned";
	case 0x8C: return "bad authentication method";
	case 0x90: return "topic name invalid";
	case 0x95: return "packet too large";
	case 0x97: return "quota exceeded";
	case 0x99: return "payload format invalid";
	case 0x9A: return "retain not supported";
	case 0x9B: return "QoS not supported";
	case 0x9C: return "use another server";
	case 0x9D: return "server moved";
	case 0x9F: return "connection rate exceeded";
	default: return "unknown reason code";
	}
}

uint8_t codec_connack_v5_code(uint8_t v3_code)
{
	static const uint8_t v5[] = {MQTT_RC_SUCCESS,
				     MQTT_RC_UNSUPPORTED_VERSION,
				     MQTT_RC_CLIENT_ID_INVALID,
				     MQTT_RC_SERVER_UNAVAILABLE,
				     MQTT_RC_BAD_CREDENTIALS,
				     MQTT_RC_NOT_AUTHORIZED};

	return v3_code < sizeof(v5) ? v5[v3_code] : MQTT_RC_UNSPECIFIED;
}

const char *codec_type_name(int type)
{
	static const char *const names[] = {
	    [MQTT_CONNECT] = "CONNECT",   [MQTT_CONNACK] = "CONNACK",
	    [MQTT_PUBLISH] = "PUBLISH",   [MQTT_PUBACK] = "PUBACK",
	    [MQTT_PUBREC] = "PUBREC",     [MQTT_PUBREL] = "PUBREL",
	    [MQTT_PUBCOMP] = "PUBCOMP",   [MQTT_SUBSCRIBE] = "SUBSCRIBE",
	    [MQTT_SUBACK] = "SUBACK",     [MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE",
	    [MQTT_UNSUBACK] = "UNSUBACK", [MQTT_PINGREQ] = "PINGREQ",
	    [MQTT_PINGRESP] = "PINGRESP", [MQTT_DISCONNECT] = "DISCONNECT",
	    [MQTT_AUTH] = "AUTH",
	};
	return type >= MQTT_CONNECT && type <= MQTT_AUTH ? names[type] : "?";
}
