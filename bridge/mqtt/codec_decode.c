/*
 * bridge/mqtt/codec_decode.c — MQTT 3.1, 3.1.1 and 5.0 packets: decoding with a server's
 * validation.
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

#include "codec_int.h"
#include "topic.h"
#include "utf8.h"

/* The shortest fixed header: the type byte and a one-byte remaining length. */
#define FIXED_HEADER_MIN 2

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

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->left < MQTT_U16_SIZE)
		return false;
	*v = get_u16(r->p);
	r->p += MQTT_U16_SIZE;
	r->left -= MQTT_U16_SIZE;
	return true;
}

/* A 2-byte length and that many bytes; @r is unchanged when they are not all there. */
static bool rd_lbytes(struct rd *r, struct mqtt_bytes *v)
{
	if (r->left < MQTT_U16_SIZE)
		return false;
	size_t n = get_u16(r->p);
	if (n > r->left - MQTT_U16_SIZE)
		return false;
	v->data = r->p + MQTT_U16_SIZE;
	v->len = n;
	r->p += MQTT_U16_SIZE + n;
	r->left -= MQTT_U16_SIZE + n;
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
	if (!codec_reason_allowed(type, MQTT_V5, *reason))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "reason code not allowed in this packet");
	return r->left ? rd_props(r, type, props, err) : 0;
}

static bool bytes_is(const struct mqtt_bytes *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

/* The CONNECT flags byte of protocol level @level, into @c. */
static int connect_flags(uint8_t flags, uint8_t level, struct mqtt_connect *c,
			 struct codec_error *err)
{
	c->clean_start = flags & MQTT_CONNECT_CLEAN_START;
	c->will = flags & MQTT_CONNECT_WILL;
	c->will_qos = (flags >> MQTT_CONNECT_WILL_QOS_SHIFT) & MQTT_SUBOPT_QOS_MASK;
	c->will_retain = flags & MQTT_CONNECT_WILL_RETAIN;
	c->has_password = flags & MQTT_CONNECT_PASSWORD;
	c->has_username = flags & MQTT_CONNECT_USERNAME;
	if (flags & MQTT_CONNECT_RESERVED)
		return fail(err, MQTT_RC_MALFORMED, "reserved connect flag set");
	if (c->will_qos > MQTT_QOS_MAX)
		return fail(err, MQTT_RC_MALFORMED, "will QoS 3");
	if (!c->will && (c->will_qos || c->will_retain))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "will QoS or retain without a will");
	/* MQTT 5 allows a password alone (§3.1.2.9); 3.1.1 forbids it ([MQTT-3.1.2-22]). */
	if (level < MQTT_V5 && c->has_password && !c->has_username)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "password without user name");
	return 0;
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
	if ((rc = connect_flags(flags, level, c, err)))
		return rc;
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
		if (flags & ~MQTT_CONNACK_SESSION_PRESENT)
			return fail(err, MQTT_RC_MALFORMED, "reserved CONNACK flags set");
		c->session_present = flags & MQTT_CONNACK_SESSION_PRESENT;
	}
	if (!codec_reason_allowed(MQTT_CONNACK, version, c->code))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "unknown CONNACK code");
	if (c->session_present && c->code)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "session present on a refused connection");
	return version == MQTT_V5 ? rd_props(r, MQTT_CONNACK, &c->props, err) : 0;
}

static int dec_publish(struct rd *r, uint8_t flags, int version, struct mqtt_publish *p,
		       struct codec_error *err)
{
	int rc;
	p->dup = flags & MQTT_PUBLISH_DUP;
	p->qos = (flags >> MQTT_PUBLISH_QOS_SHIFT) & MQTT_SUBOPT_QOS_MASK;
	p->retain = flags & MQTT_PUBLISH_RETAIN;
	if (p->qos > MQTT_QOS_MAX)
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
	if (o & (v5 ? MQTT_SUBOPT_RESERVED_V5 : MQTT_SUBOPT_RESERVED_V3))
		return fail(err, MQTT_RC_MALFORMED, "reserved subscription option bits set");
	if ((o & MQTT_SUBOPT_QOS_MASK) > MQTT_QOS_MAX)
		return fail(err, v5 ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED,
			    "subscription QoS 3");
	if (MQTT_SUBOPT_RETAIN_HANDLING(o) > MQTT_RETAIN_HANDLING_MAX)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "retain handling 3");
	if ((o & MQTT_SUBOPT_NO_LOCAL) &&
	    topic_filter_is_shared((const char *)filter->data, filter->len, NULL, NULL))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription");
	return 0;
}

/* The packet identifier, then in v5 the properties: how (UN)SUBSCRIBE and (UN)SUBACK begin. */
static int rd_id_props(struct rd *r, int type, int version, uint16_t *id, struct mqtt_bytes *props,
		       struct codec_error *err)
{
	int rc = rd_packet_id(r, id, err);
	if (rc || version < MQTT_V5)
		return rc;
	return rd_props(r, type, props, err);
}

static int dec_subscribe(struct rd *r, int type, int version, struct mqtt_subscribe *s,
			 struct codec_error *err)
{
	int rc = rd_id_props(r, type, version, &s->packet_id, &s->props, err);
	if (rc)
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
	int rc = rd_id_props(r, type, version, &s->packet_id, &s->props, err);
	if (rc)
		return rc;
	/* A 3.x UNSUBACK is the packet id alone. */
	if (type == MQTT_UNSUBACK && version < MQTT_V5)
		return 0;
	rd_rest(r, &s->codes);
	if (s->codes.len == 0)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "no reason codes");
	for (size_t i = 0; i < s->codes.len; i++)
		if (!codec_reason_allowed(type, version, s->codes.data[i]))
			return fail(err, MQTT_RC_PROTOCOL_ERROR,
				    "reason code not allowed in this packet");
	return 0;
}

int codec_frame(const uint8_t *buf, size_t len, size_t *packet_len)
{
	uint32_t rl;
	size_t used;
	if (len < FIXED_HEADER_MIN)
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
	if (len < FIXED_HEADER_MIN)
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

	uint8_t type = buf[0] >> MQTT_TYPE_SHIFT;
	uint8_t flags = buf[0] & MQTT_FLAGS_MASK;
	if (type != MQTT_CONNECT && (version < MQTT_V31 || version > MQTT_V5))
		return -EINVAL;
	if (type == 0)
		return fail(err, MQTT_RC_MALFORMED, "reserved packet type 0");
	if (type != MQTT_PUBLISH && flags != codec_fixed_flags(type))
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
