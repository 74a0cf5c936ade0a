/* bridge/mqtt/props.c — MQTT 5 properties: the table of §2.2.2.2, validation, iteration, building.
 */
#include "props.h"

#include <errno.h>
#include <string.h>

#include "codec.h"
#include "topic.h"
#include "utf8.h"

#define IN(t) (1u << (t))
#define WILL  IN(PROPS_IN_WILL)
#define ACKS  (IN(MQTT_PUBACK) | IN(MQTT_PUBREC) | IN(MQTT_PUBREL) | IN(MQTT_PUBCOMP))
#define REASON_STRING_IN                                                                           \
	(IN(MQTT_CONNACK) | ACKS | IN(MQTT_SUBACK) | IN(MQTT_UNSUBACK) | IN(MQTT_DISCONNECT) |     \
	 IN(MQTT_AUTH))
#define USER_PROPERTY_IN                                                                           \
	(REASON_STRING_IN | IN(MQTT_CONNECT) | IN(MQTT_PUBLISH) | WILL | IN(MQTT_SUBSCRIBE) |      \
	 IN(MQTT_UNSUBSCRIBE))

/* Values the spec forbids beyond what the type allows. */
#define NONZERO 0x01 /* 0 is a protocol error */

struct prop_rule {
	uint8_t type;   /* enum mqtt_prop_type; 0: no such property */
	uint8_t flags;  /* NONZERO */
	uint32_t where; /* IN() bits of the packets that may carry it */
};

static const struct prop_rule rules[] = {
    [MQTT_PROP_PAYLOAD_FORMAT] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_PUBLISH) | WILL},
    [MQTT_PROP_MESSAGE_EXPIRY] = {MQTT_PROP_T_U32, 0, IN(MQTT_PUBLISH) | WILL},
    [MQTT_PROP_CONTENT_TYPE] = {MQTT_PROP_T_STRING, 0, IN(MQTT_PUBLISH) | WILL},
    [MQTT_PROP_RESPONSE_TOPIC] = {MQTT_PROP_T_STRING, 0, IN(MQTT_PUBLISH) | WILL},
    [MQTT_PROP_CORRELATION_DATA] = {MQTT_PROP_T_BINARY, 0, IN(MQTT_PUBLISH) | WILL},
    [MQTT_PROP_SUBSCRIPTION_ID] = {MQTT_PROP_T_VARINT, NONZERO,
				   IN(MQTT_PUBLISH) | IN(MQTT_SUBSCRIBE)},
    [MQTT_PROP_SESSION_EXPIRY] = {MQTT_PROP_T_U32, 0,
				  IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT)},
    [MQTT_PROP_ASSIGNED_CLIENT_ID] = {MQTT_PROP_T_STRING, 0, IN(MQTT_CONNACK)},
    [MQTT_PROP_SERVER_KEEP_ALIVE] = {MQTT_PROP_T_U16, 0, IN(MQTT_CONNACK)},
    [MQTT_PROP_AUTH_METHOD] = {MQTT_PROP_T_STRING, 0,
			       IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH)},
    [MQTT_PROP_AUTH_DATA] = {MQTT_PROP_T_BINARY, 0,
			     IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH)},
    [MQTT_PROP_REQUEST_PROBLEM_INFO] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_CONNECT)},
    [MQTT_PROP_WILL_DELAY] = {MQTT_PROP_T_U32, 0, WILL},
    [MQTT_PROP_REQUEST_RESPONSE_INFO] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_CONNECT)},
    [MQTT_PROP_RESPONSE_INFO] = {MQTT_PROP_T_STRING, 0, IN(MQTT_CONNACK)},
    [MQTT_PROP_SERVER_REFERENCE] = {MQTT_PROP_T_STRING, 0, IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT)},
    [MQTT_PROP_REASON_STRING] = {MQTT_PROP_T_STRING, 0, REASON_STRING_IN},
    [MQTT_PROP_RECEIVE_MAXIMUM] = {MQTT_PROP_T_U16, NONZERO, IN(MQTT_CONNECT) | IN(MQTT_CONNACK)},
    [MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = {MQTT_PROP_T_U16, 0, IN(MQTT_CONNECT) | IN(MQTT_CONNACK)},
    [MQTT_PROP_TOPIC_ALIAS] = {MQTT_PROP_T_U16, NONZERO, IN(MQTT_PUBLISH)},
    [MQTT_PROP_MAXIMUM_QOS] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_CONNACK)},
    [MQTT_PROP_RETAIN_AVAILABLE] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_CONNACK)},
    [MQTT_PROP_USER_PROPERTY] = {MQTT_PROP_T_PAIR, 0, USER_PROPERTY_IN},
    [MQTT_PROP_MAXIMUM_PACKET_SIZE] = {MQTT_PROP_T_U32, NONZERO,
				       IN(MQTT_CONNECT) | IN(MQTT_CONNACK)},
    [MQTT_PROP_WILDCARD_SUB_AVAILABLE] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_CONNACK)},
    [MQTT_PROP_SUB_ID_AVAILABLE] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_CONNACK)},
    [MQTT_PROP_SHARED_SUB_AVAILABLE] = {MQTT_PROP_T_BYTE, 0, IN(MQTT_CONNACK)},
};

enum mqtt_prop_type props_type(uint8_t id)
{
	return id < sizeof rules / sizeof rules[0] ? (enum mqtt_prop_type)rules[id].type : 0;
}

static uint32_t get_be(const uint8_t *p, size_t n)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Reads a 2-byte length and that many bytes. */
static bool read_lbytes(const uint8_t **pos, const uint8_t *end, const uint8_t **data, size_t *len)
{
	if (end - *pos < MQTT_U16_SIZE)
		return false;
	size_t n = get_be(*pos, MQTT_U16_SIZE);
	if (n > (size_t)(end - *pos) - MQTT_U16_SIZE)
		return false;
	*data = *pos + MQTT_U16_SIZE;
	*len = n;
	*pos += MQTT_U16_SIZE + n;
	return true;
}

/*
 * Reads one property at *@pos (before @end) into *@out and advances *@pos. NULL on success,
 * else why the bytes cannot be read (all malformed-packet cases).
 */
static const char *read_prop(const uint8_t **pos, const uint8_t *end, struct mqtt_prop *out)
{
	const uint8_t *p = *pos;
	struct mqtt_prop prop = {.id = *p++};
	size_t avail = (size_t)(end - p);
	size_t n = 0;
	switch (props_type(prop.id)) {
	case MQTT_PROP_T_BYTE:
		n = sizeof(uint8_t);
		break;
	case MQTT_PROP_T_U16:
		n = sizeof(uint16_t);
		break;
	case MQTT_PROP_T_U32:
		n = sizeof(uint32_t);
		break;
	case MQTT_PROP_T_VARINT: {
		int rc = buf_get_varint(p, avail, &prop.value, &n);
		if (rc == -EAGAIN)
			return "truncated property";
		if (rc)
			return "bad variable byte integer in property";
		p += n;
		n = 0;
		break;
	}
	case MQTT_PROP_T_STRING:
	case MQTT_PROP_T_BINARY:
		if (!read_lbytes(&p, end, &prop.data, &prop.len))
			return "truncated property";
		break;
	case MQTT_PROP_T_PAIR:
		if (!read_lbytes(&p, end, &prop.data, &prop.len) ||
		    !read_lbytes(&p, end, &prop.data2, &prop.len2))
			return "truncated property";
		break;
	default:
		return "unknown property";
	}
	if (n > avail)
		return "truncated property";
	if (n) {
		prop.value = get_be(p, n);
		p += n;
	}
	*pos = p;
	*out = prop;
	return NULL;
}

static int fail(struct codec_error *err, uint8_t reason, const char *msg)
{
	err->reason = reason;
	err->msg = msg;
	return -EPROTO;
}

/* The checks that need the value: flags are 0/1, NONZERO ones are not 0, strings are UTF-8. */
static int check_value(const struct mqtt_prop *p, struct codec_error *err)
{
	const struct prop_rule *rule = &rules[p->id];
	if (rule->type == MQTT_PROP_T_BYTE && p->value > 1)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "property flag not 0 or 1");
	if ((rule->flags & NONZERO) && p->value == 0)
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "property value 0 not allowed");
	if ((rule->type == MQTT_PROP_T_STRING || rule->type == MQTT_PROP_T_PAIR) &&
	    !utf8_valid_mqtt(p->data, p->len))
		return fail(err, MQTT_RC_MALFORMED, "property string not valid UTF-8");
	if (rule->type == MQTT_PROP_T_PAIR && !utf8_valid_mqtt(p->data2, p->len2))
		return fail(err, MQTT_RC_MALFORMED, "user property value not valid UTF-8");
	if (p->id == MQTT_PROP_RESPONSE_TOPIC && !topic_name_valid((const char *)p->data, p->len))
		return fail(err, MQTT_RC_PROTOCOL_ERROR, "response topic is not a topic name");
	return 0;
}

int props_validate(const uint8_t *p, size_t len, int where, struct codec_error *err)
{
	if (where < 1 || where > PROPS_IN_WILL)
		return -EINVAL;
	struct props_iter it;
	props_iter_init(&it, p, len);
	uint64_t seen = 0;
	while (it.pos < it.end) {
		struct mqtt_prop prop;
		const char *why = read_prop(&it.pos, it.end, &prop);
		if (why)
			return fail(err, MQTT_RC_MALFORMED, why);
		if (!(rules[prop.id].where & IN(where)))
			return fail(err, MQTT_RC_PROTOCOL_ERROR,
				    "property not allowed in this packet");
		bool repeatable = prop.id == MQTT_PROP_USER_PROPERTY ||
				  (prop.id == MQTT_PROP_SUBSCRIPTION_ID && where == MQTT_PUBLISH);
		if ((seen & (1ull << prop.id)) && !repeatable)
			return fail(err, MQTT_RC_PROTOCOL_ERROR, "duplicate property");
		seen |= 1ull << prop.id;
		int rc = check_value(&prop, err);
		if (rc)
			return rc;
	}
	return 0;
}

void props_iter_init(struct props_iter *it, const uint8_t *p, size_t len)
{
	it->pos = p;
	it->end = len ? p + len : p; /* NULL + 0 is undefined */
}

bool props_next(struct props_iter *it, struct mqtt_prop *out)
{
	return it->pos < it->end && read_prop(&it->pos, it->end, out) == NULL;
}

bool props_find(const uint8_t *p, size_t len, uint8_t id, struct mqtt_prop *out)
{
	struct props_iter it;
	struct mqtt_prop prop;
	props_iter_init(&it, p, len);
	while (props_next(&it, &prop)) {
		if (prop.id == id) {
			*out = prop;
			return true;
		}
	}
	return false;
}

int props_put_int(struct buf *b, uint8_t id, uint32_t value)
{
	static const uint32_t max[] = {
	    [MQTT_PROP_T_BYTE] = UINT8_MAX,
	    [MQTT_PROP_T_U16] = UINT16_MAX,
	    [MQTT_PROP_T_U32] = UINT32_MAX,
	    [MQTT_PROP_T_VARINT] = MQTT_MAX_REMAINING_LENGTH,
	};
	enum mqtt_prop_type type = props_type(id);
	if (type == 0 || type > MQTT_PROP_T_VARINT || value > max[type])
		return -EINVAL;
	/* Room for the largest case (the id byte and four) first, so that no partial property is
	 * left behind. */
	int rc = buf_reserve(b, 1 + sizeof(uint32_t));
	if (rc)
		return rc;
	buf_put_u8(b, id);
	switch (type) {
	case MQTT_PROP_T_BYTE:
		return buf_put_u8(b, (uint8_t)value);
	case MQTT_PROP_T_U16:
		return buf_put_u16(b, (uint16_t)value);
	case MQTT_PROP_T_U32:
		return buf_put_u32(b, value);
	default:
		return buf_put_varint(b, value);
	}
}

int props_put_bytes(struct buf *b, uint8_t id, const void *data, size_t len)
{
	enum mqtt_prop_type type = props_type(id);
	if (type != MQTT_PROP_T_STRING && type != MQTT_PROP_T_BINARY)
		return -EINVAL;
	if (len > UINT16_MAX)
		return -ERANGE;
	int rc = buf_reserve(b, 1 + MQTT_U16_SIZE + len); /* the id byte, the length, the bytes */
	if (rc)
		return rc;
	buf_put_u8(b, id);
	return buf_put_lstring(b, data, len);
}

int props_put_pair(struct buf *b, const void *name, size_t name_len, const void *value,
		   size_t value_len)
{
	if (name_len > UINT16_MAX || value_len > UINT16_MAX)
		return -ERANGE;
	int rc = buf_reserve(b, 1 + MQTT_U16_SIZE + name_len + MQTT_U16_SIZE + value_len);
	if (rc)
		return rc;
	buf_put_u8(b, MQTT_PROP_USER_PROPERTY);
	buf_put_lstring(b, name, name_len);
	return buf_put_lstring(b, value, value_len);
}

int props_copy_except(struct buf *b, const uint8_t *p, size_t len, const uint8_t *drop,
		      size_t ndrop)
{
	/* The copy is never longer than @p: reserving it all first makes the appends infallible. */
	int rc = buf_reserve(b, len);
	if (rc)
		return rc;
	struct props_iter it;
	struct mqtt_prop prop;
	props_iter_init(&it, p, len);
	const uint8_t *start = it.pos;
	while (props_next(&it, &prop)) {
		if (ndrop == 0 || !memchr(drop, prop.id, ndrop))
			buf_append(b, start, (size_t)(it.pos - start));
		start = it.pos;
	}
	return 0;
}
