/*
 * bridge/mqtt/codec.h — MQTT 3.1, 3.1.1 and 5.0 packets, every type both ways, as pure functions.
 *
 * Decoding never copies: a decoded packet points into the bytes it came from and is valid while
 * they are. Decoding validates the packet as a server must (remaining length, reserved flags,
 * UTF-8 strings, topic and filter rules, properties, QoS 3, packet id 0), so code that gets a
 * decoded packet can trust its fields. Encoding appends to a struct buf.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "props.h"

/* Protocol levels as CONNECT carries them. */
enum mqtt_version {
	MQTT_V31 = 3,  /* "MQIsdp", WebSocket subprotocol mqttv3.1 */
	MQTT_V311 = 4, /* "MQTT" */
	MQTT_V5 = 5,   /* "MQTT" */
};

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15,
};

/* MQTT 3.1.1 CONNACK return codes. */
enum mqtt_connack_v3 {
	MQTT_CONNACK_ACCEPTED = 0,
	MQTT_CONNACK_BAD_VERSION = 1,
	MQTT_CONNACK_ID_REJECTED = 2,
	MQTT_CONNACK_UNAVAILABLE = 3,
	MQTT_CONNACK_BAD_CREDENTIALS = 4,
	MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

/* MQTT 5 reason codes (§2.4). */
enum mqtt_rc {
	MQTT_RC_SUCCESS = 0x00, /* also normal disconnection, granted QoS 0 */
	MQTT_RC_GRANTED_QOS1 = 0x01,
	MQTT_RC_GRANTED_QOS2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTH = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED = 0x80,
	MQTT_RC_MALFORMED = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPL_SPECIFIC = 0x83,
	MQTT_RC_UNSUPPORTED_VERSION = 0x84,
	MQTT_RC_CLIENT_ID_INVALID = 0x85,
	MQTT_RC_BAD_CREDENTIALS = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8A,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MQTT_RC_BAD_AUTH_METHOD = 0x8C,
	MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PACKET_ID_IN_USE = 0x91,
	MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMIN_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
	MQTT_RC_SERVER_MOVED = 0x9D,
	MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MQTT_RC_MAX_CONNECT_TIME = 0xA0,
	MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* Subscription options byte (MQTT 5 §3.8.3.1); in 3.1.1 only the QoS bits exist. */
#define MQTT_SUBOPT_QOS_MASK           0x03
#define MQTT_SUBOPT_NO_LOCAL           0x04
#define MQTT_SUBOPT_RETAIN_AS_PUB      0x08
#define MQTT_SUBOPT_RETAIN_HANDLING(o) (((o) >> 4) & 0x03)

/* Subscription options bits that each level reserves. */
#define MQTT_SUBOPT_RESERVED_V5 0xC0
#define MQTT_SUBOPT_RESERVED_V3 0xFC

/* The highest QoS, and the highest Retain Handling of MQTT 5 subscription options. */
#define MQTT_QOS_MAX             2
#define MQTT_RETAIN_HANDLING_MAX 2

/* The first byte of a packet: the type in the high four bits, the flags in the low four. */
#define MQTT_TYPE_SHIFT 4
#define MQTT_FLAGS_MASK 0x0F
/* The flags of PUBLISH (MQTT 5 §3.3.1); PUBREL, SUBSCRIBE and UNSUBSCRIBE have fixed ones. */
#define MQTT_PUBLISH_DUP       0x08
#define MQTT_PUBLISH_QOS_SHIFT 1
#define MQTT_PUBLISH_RETAIN    0x01
#define MQTT_FLAGS_FIXED_0010  0x02

/* CONNECT flags (MQTT 5 §3.1.2.3). */
#define MQTT_CONNECT_RESERVED       0x01
#define MQTT_CONNECT_CLEAN_START    0x02
#define MQTT_CONNECT_WILL           0x04
#define MQTT_CONNECT_WILL_QOS_SHIFT 3
#define MQTT_CONNECT_WILL_RETAIN    0x20
#define MQTT_CONNECT_PASSWORD       0x40
#define MQTT_CONNECT_USERNAME       0x80

/* CONNACK acknowledge flags: all but Session Present are reserved. */
#define MQTT_CONNACK_SESSION_PRESENT 0x01

/* The two bytes that give the length of a string or binary field, or a packet identifier. */
#define MQTT_U16_SIZE 2

/* Largest remaining length a variable byte integer can carry. */
#define MQTT_MAX_REMAINING_LENGTH 268435455u

/* A view into packet bytes; not owned, not NUL-terminated. */
struct mqtt_bytes {
	const uint8_t *data;
	size_t len;
};

struct mqtt_connect {
	uint8_t version;  /* enum mqtt_version, from the name and level; encode uses its @version */
	bool clean_start; /* clean session in 3.1/3.1.1 */
	uint16_t keepalive;
	struct mqtt_bytes props; /* v5 */
	struct mqtt_bytes client_id;
	bool will;
	uint8_t will_qos;
	bool will_retain;
	struct mqtt_bytes will_props; /* v5 */
	struct mqtt_bytes will_topic;
	struct mqtt_bytes will_payload;
	bool has_username;
	struct mqtt_bytes username;
	bool has_password;
	struct mqtt_bytes password;
};

struct mqtt_connack {
	bool session_present;
	uint8_t code; /* 3.1.1 return code or v5 reason code */
	struct mqtt_bytes props;
};

struct mqtt_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t packet_id;      /* QoS 1 and 2 only */
	struct mqtt_bytes topic; /* may be empty in v5 when a Topic Alias is given */
	struct mqtt_bytes props;
	struct mqtt_bytes payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct mqtt_ack {
	uint16_t packet_id;
	uint8_t reason; /* v5; 0 when absent */
	struct mqtt_bytes props;
};

/*
 * SUBSCRIBE and UNSUBSCRIBE. @entries holds the encoded topic filters (each followed by its
 * options byte in SUBSCRIBE): walk them with codec_next_entry(), build them with codec_put_entry().
 */
struct mqtt_subscribe {
	uint16_t packet_id;
	struct mqtt_bytes props;
	struct mqtt_bytes entries;
	size_t count;
};

/* SUBACK and UNSUBACK: one code per filter (3.1.1 UNSUBACK has none). */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_bytes props;
	struct mqtt_bytes codes;
};

/* DISCONNECT and AUTH. */
struct mqtt_disconnect {
	uint8_t reason;
	struct mqtt_bytes props;
};

struct mqtt_packet {
	enum mqtt_type type;
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;
		struct mqtt_subscribe sub;         /* SUBSCRIBE, UNSUBSCRIBE */
		struct mqtt_suback suback;         /* SUBACK, UNSUBACK */
		struct mqtt_disconnect disconnect; /* DISCONNECT, AUTH */
	} u;
};

struct codec_entry {
	struct mqtt_bytes filter;
	uint8_t options; /* SUBSCRIBE only */
};

/**
 * Pure. Reads the fixed header at @buf[0..len).
 * 0: *@packet_len is the size of the whole packet (header + remaining length), which may be more
 * than @len. -EAGAIN: the fixed header is not complete yet. -EPROTO: the remaining length is
 * malformed (a fifth length byte, or a non-minimal encoding such as 0x80 0x00: MQTT allows none).
 */
int codec_frame(const uint8_t *buf, size_t len, size_t *packet_len);

/**
 * Pure. Decodes the one whole packet @buf[0..len) (as codec_frame() measured it) sent on a
 * connection of protocol level @version (3, 4 or 5; CONNECT is decoded whatever @version is, as
 * it states its own). *@out points into @buf.
 * 0 on success. -EPROTO: malformed or a protocol error, @err says which (reason 0x81 or 0x82 or
 * a more precise one such as 0x8F / 0x90). -EPROTONOSUPPORT: a CONNECT with the right protocol
 * name but an unsupported level (answer CONNACK 1 / 0x84). -EINVAL: @version is not 3, 4 or 5
 * and the packet is not a CONNECT. @out is written only on success; @err may be NULL.
 */
int codec_decode(const uint8_t *buf, size_t len, int version, struct mqtt_packet *out,
		 struct codec_error *err);

/**
 * Appends @pkt encoded for protocol level @version to @out. In 3.1/3.1.1 properties and reason
 * codes that the level has no room for are left out (a v5 CONNACK reason becomes the nearest
 * 3.1.1 code, a v5 SUBACK failure 0x80, v5 subscription options keep their QoS bits); v5 acks
 * with reason 0 and no properties use the short form. Numbers and reason codes are checked,
 * strings and properties are not. 0, -EINVAL (a field out of range, a reason code the packet
 * cannot carry, or AUTH below v5), -ERANGE (remaining length over the maximum, a string over
 * 65535 bytes), -ENOMEM. On error @out is as it was.
 */
int codec_encode(struct buf *out, int version, const struct mqtt_packet *pkt);

/** Pure. The number of bytes codec_encode() would append, or 0 when it would fail. */
size_t codec_encoded_len(int version, const struct mqtt_packet *pkt);

/**
 * Pure. Walks the validated entries of a decoded SUBSCRIBE or UNSUBSCRIBE (@type): *@cursor starts
 * as the packet's entries and advances. false when no entry is left.
 */
bool codec_next_entry(struct mqtt_bytes *cursor, enum mqtt_type type, struct codec_entry *e);

/** Appends one entry for a SUBSCRIBE (with @options) or UNSUBSCRIBE. 0, -ERANGE, -ENOMEM. */
int codec_put_entry(struct buf *entries, enum mqtt_type type, const void *filter, size_t len,
		    uint8_t options);

/** Pure. "PUBLISH", "CONNACK", ...; "?" for anything else. */
const char *codec_type_name(int type);

/** Pure. "5", "3.1.1", "3.1" for protocol level 5, 4, 3; "?" for anything else. */
const char *codec_version_name(int version);

/** Pure. What a CONNACK's return code (3.1.x) or reason code (5) @code means, in words. */
const char *codec_connack_text(int version, uint8_t code);

/** The MQTT 5 reason code that says what the 3.1/3.1.1 CONNACK return code @v3_code says. */
uint8_t codec_connack_v5_code(uint8_t v3_code);
