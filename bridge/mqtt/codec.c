/*
 * bridge/mqtt/codec.c — what decoding and encoding share (the reason codes each packet may carry,
 * the fixed-header flags) and the names of types, levels and CONNACK codes. Decoding is in
 * codec_decode.c, encoding in codec_encode.c; codec.h is the one public header of all three.
 */
#include "codec.h"

#include <string.h>

#include "codec_int.h"

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

/* The fixed-header flags of every type but PUBLISH (MQTT 5 §2.1.3). */
uint8_t codec_fixed_flags(int type)
{
	return type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ? 0x02 : 0;
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
