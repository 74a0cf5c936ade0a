/*
 * bridge/mqtt/codec.c — what decoding and encoding share (the reason codes each packet may carry,
 * the fixed-header flags) and the names of types, levels and CONNACK codes. Decoding is in
 * codec_decode.c, encoding in codec_encode.c; codec.h is the one public header of all three.
 */
#include "codec.h"

#include <string.h>

#include "codec_int.h"

/* Reason codes each v5 packet may carry (MQTT 5 §3.2.2.2, §3.4.2.1, ... §3.15.2.1). */
static const uint8_t rc_connack[] = {MQTT_RC_SUCCESS,
				     MQTT_RC_UNSPECIFIED,
				     MQTT_RC_MALFORMED,
				     MQTT_RC_PROTOCOL_ERROR,
				     MQTT_RC_IMPL_SPECIFIC,
				     MQTT_RC_UNSUPPORTED_VERSION,
				     MQTT_RC_CLIENT_ID_INVALID,
				     MQTT_RC_BAD_CREDENTIALS,
				     MQTT_RC_NOT_AUTHORIZED,
				     MQTT_RC_SERVER_UNAVAILABLE,
				     MQTT_RC_SERVER_BUSY,
				     MQTT_RC_BANNED,
				     MQTT_RC_BAD_AUTH_METHOD,
				     MQTT_RC_TOPIC_NAME_INVALID,
				     MQTT_RC_PACKET_TOO_LARGE,
				     MQTT_RC_QUOTA_EXCEEDED,
				     MQTT_RC_PAYLOAD_FORMAT_INVALID,
				     MQTT_RC_RETAIN_NOT_SUPPORTED,
				     MQTT_RC_QOS_NOT_SUPPORTED,
				     MQTT_RC_USE_ANOTHER_SERVER,
				     MQTT_RC_SERVER_MOVED,
				     MQTT_RC_CONNECTION_RATE_EXCEEDED};
static const uint8_t rc_puback[] =
    {MQTT_RC_SUCCESS,          MQTT_RC_NO_MATCHING_SUBSCRIBERS, MQTT_RC_UNSPECIFIED,
     MQTT_RC_IMPL_SPECIFIC,    MQTT_RC_NOT_AUTHORIZED,          MQTT_RC_TOPIC_NAME_INVALID,
     MQTT_RC_PACKET_ID_IN_USE, MQTT_RC_QUOTA_EXCEEDED,          MQTT_RC_PAYLOAD_FORMAT_INVALID};
static const uint8_t rc_pubrel[] = {MQTT_RC_SUCCESS, MQTT_RC_PACKET_ID_NOT_FOUND};
static const uint8_t rc_suback[] = {MQTT_RC_SUCCESS,
				    MQTT_RC_GRANTED_QOS1,
				    MQTT_RC_GRANTED_QOS2,
				    MQTT_RC_UNSPECIFIED,
				    MQTT_RC_IMPL_SPECIFIC,
				    MQTT_RC_NOT_AUTHORIZED,
				    MQTT_RC_TOPIC_FILTER_INVALID,
				    MQTT_RC_PACKET_ID_IN_USE,
				    MQTT_RC_QUOTA_EXCEEDED,
				    MQTT_RC_SHARED_SUBS_NOT_SUPPORTED,
				    MQTT_RC_SUB_IDS_NOT_SUPPORTED,
				    MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED};
static const uint8_t rc_unsuback[] = {MQTT_RC_SUCCESS,         MQTT_RC_NO_SUBSCRIPTION_EXISTED,
				      MQTT_RC_UNSPECIFIED,     MQTT_RC_IMPL_SPECIFIC,
				      MQTT_RC_NOT_AUTHORIZED,  MQTT_RC_TOPIC_FILTER_INVALID,
				      MQTT_RC_PACKET_ID_IN_USE};
static const uint8_t rc_disconnect[] = {MQTT_RC_SUCCESS,
					MQTT_RC_DISCONNECT_WITH_WILL,
					MQTT_RC_UNSPECIFIED,
					MQTT_RC_MALFORMED,
					MQTT_RC_PROTOCOL_ERROR,
					MQTT_RC_IMPL_SPECIFIC,
					MQTT_RC_NOT_AUTHORIZED,
					MQTT_RC_SERVER_BUSY,
					MQTT_RC_SERVER_SHUTTING_DOWN,
					MQTT_RC_KEEP_ALIVE_TIMEOUT,
					MQTT_RC_SESSION_TAKEN_OVER,
					MQTT_RC_TOPIC_FILTER_INVALID,
					MQTT_RC_TOPIC_NAME_INVALID,
					MQTT_RC_RECEIVE_MAX_EXCEEDED,
					MQTT_RC_TOPIC_ALIAS_INVALID,
					MQTT_RC_PACKET_TOO_LARGE,
					MQTT_RC_MESSAGE_RATE_TOO_HIGH,
					MQTT_RC_QUOTA_EXCEEDED,
					MQTT_RC_ADMIN_ACTION,
					MQTT_RC_PAYLOAD_FORMAT_INVALID,
					MQTT_RC_RETAIN_NOT_SUPPORTED,
					MQTT_RC_QOS_NOT_SUPPORTED,
					MQTT_RC_USE_ANOTHER_SERVER,
					MQTT_RC_SERVER_MOVED,
					MQTT_RC_SHARED_SUBS_NOT_SUPPORTED,
					MQTT_RC_CONNECTION_RATE_EXCEEDED,
					MQTT_RC_MAX_CONNECT_TIME,
					MQTT_RC_SUB_IDS_NOT_SUPPORTED,
					MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED};
static const uint8_t rc_auth[] = {MQTT_RC_SUCCESS, MQTT_RC_CONTINUE_AUTH, MQTT_RC_REAUTHENTICATE};

#define IN_SET(set, rc) (memchr(set, rc, sizeof set) != NULL)

/* May a @type packet of level @version carry @rc? In 3.x only CONNACK and SUBACK have codes. */
bool codec_reason_allowed(int type, int version, uint8_t rc)
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
		return version < MQTT_V5 ? rc <= MQTT_RC_GRANTED_QOS2 || rc == MQTT_RC_UNSPECIFIED
					 : IN_SET(rc_suback, rc);
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

/* The fixed-header flags of every type but PUBLISH (MQTT 5 §2.1.3). */
uint8_t codec_fixed_flags(int type)
{
	return type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE
		   ? MQTT_FLAGS_FIXED_0010
		   : 0;
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
	static const char *const v3[] = {"accepted",
					 "unacceptable protocol version",
					 "identifier rejected",
					 "server unavailable",
					 "bad user name or password",
					 "not authorized"};
	/* The reason codes a v5 CONNACK may carry (rc_connack). */
	static const char *const v5[] = {
	    [MQTT_RC_SUCCESS] = "success",
	    [MQTT_RC_UNSPECIFIED] = "unspecified error",
	    [MQTT_RC_MALFORMED] = "malformed packet",
	    [MQTT_RC_PROTOCOL_ERROR] = "protocol error",
	    [MQTT_RC_IMPL_SPECIFIC] = "implementation specific error",
	    [MQTT_RC_UNSUPPORTED_VERSION] = "unsupported protocol version",
	    [MQTT_RC_CLIENT_ID_INVALID] = "client identifier not valid",
	    [MQTT_RC_BAD_CREDENTIALS] = "bad user name or password",
	    [MQTT_RC_NOT_AUTHORIZED] = "not authorized",
	    [MQTT_RC_SERVER_UNAVAILABLE] = "server unavailable",
	    [MQTT_RC_SERVER_BUSY] = "server busy",
	    [MQTT_RC_BANNED] = "banned",
	    [MQTT_RC_BAD_AUTH_METHOD] = "bad authentication method",
	    [MQTT_RC_TOPIC_NAME_INVALID] = "topic name invalid",
	    [MQTT_RC_PACKET_TOO_LARGE] = "packet too large",
	    [MQTT_RC_QUOTA_EXCEEDED] = "quota exceeded",
	    [MQTT_RC_PAYLOAD_FORMAT_INVALID] = "payload format invalid",
	    [MQTT_RC_RETAIN_NOT_SUPPORTED] = "retain not supported",
	    [MQTT_RC_QOS_NOT_SUPPORTED] = "QoS not supported",
	    [MQTT_RC_USE_ANOTHER_SERVER] = "use another server",
	    [MQTT_RC_SERVER_MOVED] = "server moved",
	    [MQTT_RC_CONNECTION_RATE_EXCEEDED] = "connection rate exceeded",
	};

	if (version != MQTT_V5)
		return code < sizeof(v3) / sizeof(*v3) ? v3[code] : "unknown return code";
	const char *text = code < sizeof(v5) / sizeof(*v5) ? v5[code] : NULL;
	return text ? text : "unknown reason code";
}

uint8_t codec_connack_v5_code(uint8_t v3_code)
{
	static const uint8_t v5[] = {MQTT_RC_SUCCESS,           MQTT_RC_UNSUPPORTED_VERSION,
				     MQTT_RC_CLIENT_ID_INVALID, MQTT_RC_SERVER_UNAVAILABLE,
				     MQTT_RC_BAD_CREDENTIALS,   MQTT_RC_NOT_AUTHORIZED};

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
