/* bridge/mqtt/props.h — MQTT 5 properties: validation per packet, iteration, building (MQTT 5
 * §2.2.2). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Property identifiers (MQTT 5 §2.2.2.2). */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAXIMUM_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER_PROPERTY = 0x26,
	MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/* How a property's value is encoded. */
enum mqtt_prop_type {
	MQTT_PROP_T_BYTE = 1,
	MQTT_PROP_T_U16,
	MQTT_PROP_T_U32,
	MQTT_PROP_T_VARINT,
	MQTT_PROP_T_STRING, /* UTF-8 string */
	MQTT_PROP_T_BINARY,
	MQTT_PROP_T_PAIR, /* UTF-8 string pair (user property) */
};

/* Where properties appear: a packet type (1..15, see codec.h) or the will properties of CONNECT. */
#define PROPS_IN_WILL 16

/* Why a packet was refused: the MQTT 5 reason code to answer with, and a static text for logs. */
struct codec_error {
	uint8_t reason;  /* e.g. 0x81 malformed packet, 0x82 protocol error */
	const char *msg; /* static string, e.g. "duplicate property 0x11" */
};

/* One property, pointing into the property bytes it was read from. */
struct mqtt_prop {
	uint8_t id;
	uint32_t value;      /* BYTE, U16, U32, VARINT */
	const uint8_t *data; /* STRING, BINARY; the name of a PAIR */
	size_t len;
	const uint8_t *data2; /* the value of a PAIR */
	size_t len2;
};

struct props_iter {
	const uint8_t *pos;
	const uint8_t *end;
};

/** Pure. The type of property @id, or 0 when @id is not an MQTT 5 property. */
enum mqtt_prop_type props_type(uint8_t id);

/**
 * Pure. Checks the property bytes @p[0..len) (after the property length) as found in @where (a
 * packet type or PROPS_IN_WILL): each identifier known and allowed there, no duplicates but for
 * User Property and (in PUBLISH) Subscription Identifier, values in range (0/1 flags, non-zero
 * Receive Maximum / Maximum Packet Size / Topic Alias / Subscription Identifier, variable byte
 * integers in shortest form), strings valid UTF-8, nothing truncated.
 * 0, or -EPROTO with @err set (0x81 malformed for bad encoding, 0x82 protocol error otherwise),
 * or -EINVAL when @where is not 1..PROPS_IN_WILL.
 */
int props_validate(const uint8_t *p, size_t len, int where, struct codec_error *err);

/** Starts iterating validated property bytes. */
void props_iter_init(struct props_iter *it, const uint8_t *p, size_t len);

/** Pure. Next property of validated bytes into *@out; false at the end. */
bool props_next(struct props_iter *it, struct mqtt_prop *out);

/** Pure. The first property @id in validated bytes into *@out; false when absent. */
bool props_find(const uint8_t *p, size_t len, uint8_t id, struct mqtt_prop *out);

/**
 * Appends a numeric property, encoded as its type says. 0, -EINVAL (not numeric, or @value does
 * not fit the type), -ENOMEM.
 */
int props_put_int(struct buf *b, uint8_t id, uint32_t value);

/** Appends a string or binary property. 0, -EINVAL, -ERANGE (> 65535 bytes), -ENOMEM. */
int props_put_bytes(struct buf *b, uint8_t id, const void *data, size_t len);

/** Appends a user property. 0, -ERANGE, -ENOMEM. */
int props_put_pair(struct buf *b, const void *name, size_t name_len, const void *value,
		   size_t value_len);

/**
 * Appends the validated properties @p[0..len) except those whose identifier is in
 * @drop[0..ndrop). 0 or -ENOMEM.
 */
int props_copy_except(struct buf *b, const uint8_t *p, size_t len, const uint8_t *drop,
		      size_t ndrop);
