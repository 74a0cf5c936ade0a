/* tests/unit/test_codec_malformed.c — MQTT packets: what decoding refuses (malformed, protocol
 * errors, bad versions) and what encoding refuses (bad fields, sizes). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

#include "codec_test_util.h"

/* ---- refused packets ---- */

struct bad_case {
	const char *what;
	int version;
	uint8_t first;
	const char *body;
	uint8_t reason; /* -EPROTONOSUPPORT for 0x84, else -EPROTO */
};

/* Short names for the table. */
enum {
	MALFORMED = MQTT_RC_MALFORMED,
	PROTOCOL = MQTT_RC_PROTOCOL_ERROR,
	UNSUPPORTED = MQTT_RC_UNSUPPORTED_VERSION,
	ID_INVALID = MQTT_RC_CLIENT_ID_INVALID,
	NAME_INVALID = MQTT_RC_TOPIC_NAME_INVALID,
	FILTER_INVALID = MQTT_RC_TOPIC_FILTER_INVALID,
};

#define CONNECT5(rest) "00 04 'MQTT' 05 " rest
#define CONNECT4(rest) "00 04 'MQTT' 04 " rest

static const struct bad_case bad[] = {
    {"packet type 0", 4, 0x00, "", MALFORMED},
    {"CONNECT flags", 4, 0x11, CONNECT4("02 00 3C 00 01 'a'"), MALFORMED},
    {"CONNECT flags 8", 4, 0x18, CONNECT4("02 00 3C 00 01 'a'"), MALFORMED},
    {"MQTT level 3", 4, 0x10, "00 04 'MQTT' 03 02 00 3C 00 01 'a'", UNSUPPORTED},
    {"MQTT level 6", 4, 0x10, "00 04 'MQTT' 06 02 00 3C 00 01 'a'", UNSUPPORTED},
    {"MQTT level 0x84", 4, 0x10, "00 04 'MQTT' 84 02 00 3C 00 01 'a'", UNSUPPORTED},
    {"MQIsdp level 4", 3, 0x10, "00 06 'MQIsdp' 04 02 00 3C 00 01 'a'", UNSUPPORTED},
    {"MQIsdp level 5", 3, 0x10, "00 06 'MQIsdp' 05 02 00 3C 00 01 'a'", UNSUPPORTED},
    {"protocol name MQTX", 4, 0x10, "00 04 'MQTX' 04 02 00 3C 00 01 'a'", PROTOCOL},
    {"protocol name mqtt", 4, 0x10, "00 04 'mqtt' 04 02 00 3C 00 01 'a'", PROTOCOL},
    {"protocol name empty", 4, 0x10, "00 00 04 02 00 3C 00 01 'a'", PROTOCOL},
    {"connect reserved flag", 4, 0x10, CONNECT4("03 00 3C 00 01 'a'"), MALFORMED},
    {"connect reserved flag 5", 5, 0x10, CONNECT5("01 00 3C 00 00 01 'a'"), MALFORMED},
    {"will QoS 3", 4, 0x10, CONNECT4("1E 00 3C 00 01 'a' 00 01 't' 00 00"), MALFORMED},
    {"will QoS without will", 4, 0x10, CONNECT4("0A 00 3C 00 01 'a'"), PROTOCOL},
    {"will QoS 2 without will", 5, 0x10, CONNECT5("12 00 3C 00 00 01 'a'"), PROTOCOL},
    {"will retain without will", 4, 0x10, CONNECT4("22 00 3C 00 01 'a'"), PROTOCOL},
    {"password without user 3.1.1", 4, 0x10, CONNECT4("42 00 3C 00 01 'a' 00 01 'p'"), PROTOCOL},
    {"password without user 3.1", 3, 0x10, "00 06 'MQIsdp' 03 42 00 3C 00 01 'a' 00 01 'p'",
     PROTOCOL},
    {"client id bad UTF-8", 4, 0x10, CONNECT4("02 00 3C 00 02 C0 80"), ID_INVALID},
    {"client id control", 5, 0x10, CONNECT5("02 00 3C 00 00 01 01"), ID_INVALID},
    {"will topic +", 4, 0x10, CONNECT4("06 00 3C 00 01 'a' 00 03 'a/+' 00 00"), NAME_INVALID},
    {"will topic #", 5, 0x10, CONNECT5("06 00 3C 00 00 01 'a' 00 00 01 '#' 00 00"), NAME_INVALID},
    {"will topic empty", 4, 0x10, CONNECT4("06 00 3C 00 01 'a' 00 00 00 00"), NAME_INVALID},
    {"will topic bad UTF-8", 4, 0x10, CONNECT4("06 00 3C 00 01 'a' 00 01 FF 00 00"), MALFORMED},
    {"will topic U+0000", 4, 0x10, CONNECT4("06 00 3C 00 01 'a' 00 01 00 00 00"), MALFORMED},
    {"username bad UTF-8", 4, 0x10, CONNECT4("82 00 3C 00 01 'a' 00 02 ED A0"), MALFORMED},
    {"username U+FFFF", 5, 0x10, CONNECT5("82 00 3C 00 00 01 'a' 00 03 EF BF BF"), MALFORMED},
    {"connect trailing byte", 4, 0x10, CONNECT4("02 00 3C 00 01 'a' 00"), MALFORMED},
    {"connect trailing byte 5", 5, 0x10, CONNECT5("02 00 3C 00 00 01 'a' 'x'"), MALFORMED},
    {"connect no client id", 4, 0x10, CONNECT4("02 00 3C"), MALFORMED},
    {"connect no will payload", 4, 0x10, CONNECT4("06 00 3C 00 01 'a' 00 01 't'"), MALFORMED},
    {"connect no username", 4, 0x10, CONNECT4("82 00 3C 00 01 'a'"), MALFORMED},
    {"connect no password", 5, 0x10, CONNECT5("C2 00 3C 00 00 01 'a' 00 01 'u'"), MALFORMED},
    {"connect props past end", 5, 0x10, CONNECT5("02 00 3C 09 11 00 00 00 01"), MALFORMED},
    {"connect props length 5 bytes", 5, 0x10, CONNECT5("02 00 3C 80 80 80 80 00"), MALFORMED},
    {"connect topic alias", 5, 0x10, CONNECT5("02 00 3C 03 23 00 01 00 01 'a'"), PROTOCOL},
    {"connect will delay", 5, 0x10, CONNECT5("02 00 3C 05 18 00 00 00 01 00 01 'a'"), PROTOCOL},
    {"connect duplicate session expiry", 5, 0x10,
     CONNECT5("02 00 3C 0A 11 00 00 00 01 11 00 00 00 01 00 01 'a'"), PROTOCOL},
    {"connect receive maximum 0", 5, 0x10, CONNECT5("02 00 3C 03 21 00 00 00 01 'a'"), PROTOCOL},
    {"connect auth data without method", 5, 0x10, CONNECT5("02 00 3C 04 16 00 01 00 00 01 'a'"),
     PROTOCOL},
    {"will session expiry", 5, 0x10,
     CONNECT5("06 00 3C 00 00 01 'a' 05 11 00 00 00 01 00 01 't' 00 00"), PROTOCOL},
    {"will payload format 2", 5, 0x10, CONNECT5("06 00 3C 00 00 01 'a' 02 01 02 00 01 't' 00 00"),
     PROTOCOL},
    {"will content type bad UTF-8", 5, 0x10,
     CONNECT5("06 00 3C 00 00 01 'a' 04 03 00 01 FF 00 01 't' 00 00"), MALFORMED},

    {"CONNACK flags", 4, 0x21, "00 00", MALFORMED},
    {"CONNACK reserved ack flags", 4, 0x20, "02 00", MALFORMED},
    {"CONNACK code 6", 4, 0x20, "00 06", PROTOCOL},
    {"CONNACK session present refused", 4, 0x20, "01 05", PROTOCOL},
    {"CONNACK 5 code 0x10", 5, 0x20, "00 10 00", PROTOCOL},
    {"CONNACK 5 code 1", 5, 0x20, "00 01 00", PROTOCOL},
    {"CONNACK 5 session present refused", 5, 0x20, "01 80 00", PROTOCOL},
    {"CONNACK 5 without props length", 5, 0x20, "00 00", MALFORMED},
    {"CONNACK 3.1.1 trailing", 4, 0x20, "00 00 00", MALFORMED},
    {"CONNACK 5 maximum QoS 2", 5, 0x20, "00 00 02 24 02", PROTOCOL},
    {"CONNACK 5 will delay", 5, 0x20, "00 00 05 18 00 00 00 01", PROTOCOL},

    {"PUBLISH QoS 3", 4, 0x36, "00 01 'a' 00 01", MALFORMED},
    {"PUBLISH QoS 3 v5", 5, 0x37, "00 01 'a' 00 01 00", MALFORMED},
    {"PUBLISH DUP on QoS 0", 4, 0x38, "00 01 'a'", PROTOCOL},
    {"PUBLISH DUP on QoS 0 v5", 5, 0x38, "00 01 'a' 00", PROTOCOL},
    {"PUBLISH packet id 0", 4, 0x32, "00 01 'a' 00 00", PROTOCOL},
    {"PUBLISH packet id 0 qos 2", 5, 0x34, "00 01 'a' 00 00 00", PROTOCOL},
    {"PUBLISH topic +", 4, 0x30, "00 03 'a/+'", NAME_INVALID},
    {"PUBLISH topic #", 5, 0x30, "00 01 '#' 00", NAME_INVALID},
    {"PUBLISH topic a#", 3, 0x30, "00 02 'a#'", NAME_INVALID},
    {"PUBLISH empty topic 3.1.1", 4, 0x30, "00 00 'x'", NAME_INVALID},
    {"PUBLISH empty topic 3.1", 3, 0x30, "00 00 'x'", NAME_INVALID},
    {"PUBLISH empty topic without alias", 5, 0x30, "00 00 00 'x'", PROTOCOL},
    {"PUBLISH topic bad UTF-8", 4, 0x30, "00 02 C3 28", MALFORMED},
    {"PUBLISH topic surrogate", 5, 0x30, "00 03 ED B0 80 00", MALFORMED},
    {"PUBLISH topic U+0000", 4, 0x30, "00 03 'a' 00 'b'", MALFORMED},
    {"PUBLISH topic past end", 4, 0x30, "00 05 'a/b'", MALFORMED},
    {"PUBLISH no packet id", 4, 0x32, "00 01 'a' 00", MALFORMED},
    {"PUBLISH 5 no props length", 5, 0x30, "00 01 'a'", MALFORMED},
    {"PUBLISH session expiry", 5, 0x30, "00 01 'a' 05 11 00 00 00 01", PROTOCOL},
    {"PUBLISH topic alias 0", 5, 0x30, "00 01 'a' 03 23 00 00", PROTOCOL},
    {"PUBLISH payload format 2", 5, 0x30, "00 01 'a' 02 01 02", PROTOCOL},
    {"PUBLISH response topic filter", 5, 0x30, "00 01 'a' 04 08 00 01 '+'", PROTOCOL},
    {"PUBLISH duplicate alias", 5, 0x30, "00 01 'a' 06 23 00 01 23 00 02", PROTOCOL},
    {"PUBLISH unknown property", 5, 0x30, "00 01 'a' 02 04 00", MALFORMED},

    {"PUBACK flags", 4, 0x42, "00 01", MALFORMED},
    {"PUBREC flags", 5, 0x51, "00 01", MALFORMED},
    {"PUBREL flags 0", 4, 0x60, "00 01", MALFORMED},
    {"PUBREL flags 3", 5, 0x63, "00 01", MALFORMED},
    {"PUBCOMP flags", 4, 0x78, "00 01", MALFORMED},
    {"PUBACK packet id 0", 4, 0x40, "00 00", PROTOCOL},
    {"PUBREL packet id 0", 5, 0x62, "00 00", PROTOCOL},
    {"PUBACK 3.1.1 with reason", 4, 0x40, "00 01 00", MALFORMED},
    {"PUBCOMP 3.1 with reason", 3, 0x70, "00 01 00", MALFORMED},
    {"PUBACK short", 4, 0x40, "00", MALFORMED},
    {"PUBACK reason 0x92", 5, 0x40, "00 01 92", PROTOCOL},
    {"PUBREC reason 0x04", 5, 0x50, "00 01 04", PROTOCOL},
    {"PUBREL reason 0x10", 5, 0x62, "00 01 10", PROTOCOL},
    {"PUBCOMP reason 0x80", 5, 0x70, "00 01 80", PROTOCOL},
    {"PUBACK topic alias", 5, 0x40, "00 01 00 03 23 00 01", PROTOCOL},
    {"PUBACK props past end", 5, 0x40, "00 01 00 04 1F 00 00", MALFORMED},
    {"PUBACK reason string bad UTF-8", 5, 0x40, "00 01 80 04 1F 00 01 C0", MALFORMED},

    {"SUBSCRIBE flags 0", 4, 0x80, "00 01 00 01 'a' 00", MALFORMED},
    {"SUBSCRIBE flags 3", 5, 0x83, "00 01 00 00 01 'a' 00", MALFORMED},
    {"SUBSCRIBE packet id 0", 4, 0x82, "00 00 00 01 'a' 00", PROTOCOL},
    {"SUBSCRIBE no entries", 4, 0x82, "00 01", PROTOCOL},
    {"SUBSCRIBE 5 no entries", 5, 0x82, "00 01 00", PROTOCOL},
    {"SUBSCRIBE bad filter", 4, 0x82, "00 01 00 05 'a/#/b' 00", FILTER_INVALID},
    {"SUBSCRIBE empty filter", 5, 0x82, "00 01 00 00 00 00", FILTER_INVALID},
    {"SUBSCRIBE bad shared", 5, 0x82, "00 01 00 00 08 '$share/g' 00", FILTER_INVALID},
    {"SUBSCRIBE second filter bad", 4, 0x82, "00 01 00 01 'a' 00 00 02 'a+' 00", FILTER_INVALID},
    {"SUBSCRIBE filter bad UTF-8", 4, 0x82, "00 01 00 01 80 00", MALFORMED},
    {"SUBSCRIBE no options", 4, 0x82, "00 01 00 01 'a'", MALFORMED},
    {"SUBSCRIBE 3.1.1 options bit 2", 4, 0x82, "00 01 00 01 'a' 04", MALFORMED},
    {"SUBSCRIBE 3.1.1 options bit 7", 4, 0x82, "00 01 00 01 'a' 80", MALFORMED},
    {"SUBSCRIBE 3.1 options bit 4", 3, 0x82, "00 01 00 01 'a' 10", MALFORMED},
    {"SUBSCRIBE 3.1.1 QoS 3", 4, 0x82, "00 01 00 01 'a' 03", MALFORMED},
    {"SUBSCRIBE 5 options bit 6", 5, 0x82, "00 01 00 00 01 'a' 40", MALFORMED},
    {"SUBSCRIBE 5 options bit 7", 5, 0x82, "00 01 00 00 01 'a' 81", MALFORMED},
    {"SUBSCRIBE 5 QoS 3", 5, 0x82, "00 01 00 00 01 'a' 03", PROTOCOL},
    {"SUBSCRIBE 5 retain handling 3", 5, 0x82, "00 01 00 00 01 'a' 30", PROTOCOL},
    {"SUBSCRIBE 5 no local shared", 5, 0x82, "00 01 00 00 0A '$share/g/a' 04", PROTOCOL},
    {"SUBSCRIBE 5 two subscription ids", 5, 0x82, "00 01 04 0B 01 0B 02 00 01 'a' 00", PROTOCOL},
    {"SUBSCRIBE 5 subscription id 0", 5, 0x82, "00 01 02 0B 00 00 01 'a' 00", PROTOCOL},
    {"SUBSCRIBE 5 subscription id overlong", 5, 0x82, "00 01 03 0B 81 00 00 01 'a' 00", MALFORMED},
    {"SUBSCRIBE 5 reason string", 5, 0x82, "00 01 03 1F 00 00 00 01 'a' 00", PROTOCOL},

    {"UNSUBSCRIBE flags", 4, 0xA0, "00 01 00 01 'a'", MALFORMED},
    {"UNSUBSCRIBE packet id 0", 5, 0xA2, "00 00 00 00 01 'a'", PROTOCOL},
    {"UNSUBSCRIBE no entries", 4, 0xA2, "00 01", PROTOCOL},
    {"UNSUBSCRIBE bad filter", 4, 0xA2, "00 01 00 02 '#a'", FILTER_INVALID},
    {"UNSUBSCRIBE bad UTF-8", 5, 0xA2, "00 01 00 00 01 FE", MALFORMED},
    {"UNSUBSCRIBE filter past end", 4, 0xA2, "00 01 00 03 'a'", MALFORMED},
    {"UNSUBSCRIBE 5 subscription id", 5, 0xA2, "00 01 02 0B 01 00 01 'a'", PROTOCOL},

    {"SUBACK flags", 4, 0x92, "00 01 00", MALFORMED},
    {"SUBACK packet id 0", 4, 0x90, "00 00 00", PROTOCOL},
    {"SUBACK no codes", 4, 0x90, "00 01", PROTOCOL},
    {"SUBACK 5 no codes", 5, 0x90, "00 01 00", PROTOCOL},
    {"SUBACK 3.1.1 code 3", 4, 0x90, "00 01 03", PROTOCOL},
    {"SUBACK 3.1.1 code 0x87", 4, 0x90, "00 01 00 87", PROTOCOL},
    {"SUBACK 5 code 0x10", 5, 0x90, "00 01 00 10", PROTOCOL},
    {"UNSUBACK 3.1.1 with codes", 4, 0xB0, "00 01 00", MALFORMED},
    {"UNSUBACK 5 no codes", 5, 0xB0, "00 01 00", PROTOCOL},
    {"UNSUBACK 5 code 0x01", 5, 0xB0, "00 01 00 01", PROTOCOL},
    {"UNSUBACK flags", 5, 0xB2, "00 01 00 00", MALFORMED},

    {"PINGREQ flags", 4, 0xC1, "", MALFORMED},
    {"PINGREQ with body", 4, 0xC0, "00", MALFORMED},
    {"PINGRESP with body", 5, 0xD0, "00", MALFORMED},
    {"DISCONNECT flags", 4, 0xE2, "", MALFORMED},
    {"DISCONNECT 3.1.1 with reason", 4, 0xE0, "00", MALFORMED},
    {"DISCONNECT 3.1 with body", 3, 0xE0, "04", MALFORMED},
    {"DISCONNECT 5 reason 0x18", 5, 0xE0, "18", PROTOCOL},
    {"DISCONNECT 5 reason 0x01", 5, 0xE0, "01", PROTOCOL},
    {"DISCONNECT 5 topic alias", 5, 0xE0, "00 03 23 00 01", PROTOCOL},
    {"DISCONNECT 5 props past end", 5, 0xE0, "00 03 11 00", MALFORMED},
    {"AUTH 3.1.1", 4, 0xF0, "", PROTOCOL},
    {"AUTH 3.1", 3, 0xF0, "", PROTOCOL},
    {"AUTH flags", 5, 0xF1, "", MALFORMED},
    {"AUTH reason 0x04", 5, 0xF0, "04", PROTOCOL},
    {"AUTH data without method", 5, 0xF0, "18 04 16 00 01 00", PROTOCOL},
    {"AUTH session expiry", 5, 0xF0, "18 05 11 00 00 00 01", PROTOCOL},
};

static void test_bad_packets(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t b[MAX_PKT];
		size_t n = packet(bad[i].first, bad[i].body, b, sizeof b);
		struct mqtt_packet p;
		struct mqtt_packet untouched;
		memset(&p, 0xA5, sizeof p);
		memcpy(&untouched, &p, sizeof p);
		struct codec_error err = {0, NULL};
		uint8_t *copy;
		int rc = decode_copy(b, n, bad[i].version, &p, &err, &copy);
		free(copy);
		int want = bad[i].reason == UNSUPPORTED ? -EPROTONOSUPPORT : -EPROTO;
		if (rc != want || err.reason != bad[i].reason)
			fail_msg("%s: %d 0x%02X (%s), want %d 0x%02X", bad[i].what, rc, err.reason,
				 err.msg ? err.msg : "-", want, bad[i].reason);
		assert_non_null(err.msg);
		assert_memory_equal(&p, &untouched, sizeof p);
	}
}

static void bad_raw(const char *hexbytes, int version, uint8_t reason)
{
	uint8_t b[MAX_PKT];
	size_t n = hex(hexbytes, b, sizeof b);
	struct mqtt_packet p;
	struct codec_error err = {0, NULL};
	uint8_t *copy;
	int rc = decode_copy(b, n, version, &p, &err, &copy);
	free(copy);
	if (rc != -EPROTO || err.reason != reason)
		fail_msg("%s: %d 0x%02X", hexbytes, rc, err.reason);
}

/* Packets whose remaining length itself is wrong. */
static void test_bad_remaining_length(void **state)
{
	(void)state;
	bad_raw("", 4, MQTT_RC_MALFORMED);
	bad_raw("C0", 4, MQTT_RC_MALFORMED);
	bad_raw("C0 00 00", 4, MQTT_RC_MALFORMED);
	bad_raw("30 05 00 01 'a'", 4, MQTT_RC_MALFORMED);
	bad_raw("30 80 00", 4, MQTT_RC_MALFORMED);
	bad_raw("30 81 00 00 01 'a'", 4, MQTT_RC_MALFORMED);
	bad_raw("30 FF FF FF FF 01", 4, MQTT_RC_MALFORMED);
	bad_raw("30 80 80 80 80 00", 5, MQTT_RC_MALFORMED);
	bad_raw("30 80", 4, MQTT_RC_MALFORMED);
}

static void test_version_argument(void **state)
{
	(void)state;
	uint8_t ping[] = {0xC0, 0x00};
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	struct codec_error err;
	assert_int_equal(codec_decode(ping, sizeof ping, 2, &p, &err), -EINVAL);
	assert_int_equal(codec_decode(ping, sizeof ping, 6, &p, &err), -EINVAL);
	assert_int_equal(codec_decode(ping, sizeof ping, 4, &p, NULL), 0);
	/* CONNECT states its own level, whatever the connection thinks. */
	size_t n = packet(0x10, "00 04 'MQTT' 05 02 00 3C 00 00 01 'a'", b, sizeof b);
	assert_int_equal(codec_decode(b, n, 0, &p, &err), 0);
	assert_int_equal(p.u.connect.version, MQTT_V5);
	assert_int_equal(codec_decode(b, n, MQTT_V311, &p, &err), 0);
	assert_int_equal(p.u.connect.version, MQTT_V5);
	/* @err may be NULL on failure too. */
	uint8_t bad_ping[] = {0xC1, 0x00};
	assert_int_equal(codec_decode(bad_ping, sizeof bad_ping, 4, &p, NULL), -EPROTO);
}

/* ---- encoding errors ---- */

static void encode_fails(int version, const struct mqtt_packet *p, int rc)
{
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, "keep", 4), 0);
	int got = codec_encode(&b, version, p);
	if (got != rc)
		fail_msg("encode %s v%d: %d, want %d", codec_type_name(p->type), version, got, rc);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "keep", 4);
	assert_int_equal(codec_encoded_len(version, p), 0);
	buf_clear(&b);
}

static void test_encode_errors(void **state)
{
	(void)state;
	struct mqtt_packet q = {.type = MQTT_AUTH};
	encode_fails(MQTT_V311, &q, -EINVAL);
	encode_fails(MQTT_V31, &q, -EINVAL);
	q.type = MQTT_PINGREQ;
	encode_fails(2, &q, -EINVAL);
	encode_fails(6, &q, -EINVAL);
	q.type = 0;
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.type = 16;
	encode_fails(MQTT_V5, &q, -EINVAL);

	q = (struct mqtt_packet){.type = MQTT_PUBLISH};
	q.u.publish.topic = str("t");
	q.u.publish.qos = 3;
	q.u.publish.packet_id = 1;
	encode_fails(MQTT_V311, &q, -EINVAL);
	q.u.publish.qos = 0;
	q.u.publish.dup = true;
	encode_fails(MQTT_V311, &q, -EINVAL);
	q.u.publish.dup = false;
	q.u.publish.qos = 1;
	q.u.publish.packet_id = 0;
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.u.publish.qos = 0;
	q.u.publish.topic = str("");
	encode_fails(MQTT_V311, &q, -EINVAL);

	q = (struct mqtt_packet){.type = MQTT_PUBACK};
	encode_fails(MQTT_V311, &q, -EINVAL);
	q.u.ack.packet_id = 1;
	q.u.ack.reason = MQTT_RC_PACKET_ID_NOT_FOUND;
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.type = MQTT_PUBREL;
	q.u.ack.reason = MQTT_RC_NOT_AUTHORIZED;
	encode_fails(MQTT_V5, &q, -EINVAL);

	q = (struct mqtt_packet){.type = MQTT_SUBSCRIBE};
	q.u.sub.packet_id = 1;
	encode_fails(MQTT_V311, &q, -EINVAL);
	static const uint8_t cut_entry[] = {0x00, 0x01, 'a'};
	q.u.sub.entries = (struct mqtt_bytes){cut_entry, sizeof cut_entry};
	encode_fails(MQTT_V311, &q, -EINVAL);
	q.type = MQTT_UNSUBSCRIBE;
	q.u.sub.packet_id = 0;
	encode_fails(MQTT_V311, &q, -EINVAL);

	q = (struct mqtt_packet){.type = MQTT_SUBACK};
	q.u.suback.packet_id = 1;
	encode_fails(MQTT_V311, &q, -EINVAL);
	static const uint8_t bad_code[] = {0x03};
	q.u.suback.codes = (struct mqtt_bytes){bad_code, sizeof bad_code};
	encode_fails(MQTT_V311, &q, -EINVAL);
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.type = MQTT_UNSUBACK;
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.u.suback.codes = (struct mqtt_bytes){NULL, 0};
	encode_fails(MQTT_V5, &q, -EINVAL);

	q = (struct mqtt_packet){.type = MQTT_CONNACK};
	q.u.connack.code = 6;
	encode_fails(MQTT_V311, &q, -EINVAL);
	q.u.connack.code = MQTT_CONNACK_BAD_CREDENTIALS;
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.u.connack.code = MQTT_RC_NOT_AUTHORIZED;
	q.u.connack.session_present = true;
	encode_fails(MQTT_V5, &q, -EINVAL);
	encode_fails(MQTT_V311, &q, -EINVAL);

	q = (struct mqtt_packet){.type = MQTT_DISCONNECT};
	q.u.disconnect.reason = MQTT_RC_CONTINUE_AUTH;
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.type = MQTT_AUTH;
	q.u.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
	encode_fails(MQTT_V5, &q, -EINVAL);

	q = (struct mqtt_packet){.type = MQTT_CONNECT};
	q.u.connect.will = true;
	q.u.connect.will_qos = 3;
	encode_fails(MQTT_V5, &q, -EINVAL);
	q.u.connect.will = false;
	q.u.connect.will_qos = 0;
	q.u.connect.has_password = true;
	encode_fails(MQTT_V311, &q, -EINVAL);
	encode_fails(MQTT_V31, &q, -EINVAL);
}

static void test_encode_sizes(void **state)
{
	(void)state;
	char *big = calloc(1, 65536);
	assert_non_null(big);
	struct mqtt_packet q = {.type = MQTT_PUBLISH};
	q.u.publish.topic = (struct mqtt_bytes){(const uint8_t *)big, 65536};
	encode_fails(MQTT_V311, &q, -ERANGE);
	q.type = MQTT_CONNECT;
	q.u.connect = (struct mqtt_connect){.client_id = {(const uint8_t *)big, 65536}};
	encode_fails(MQTT_V5, &q, -ERANGE);
	q.u.connect.client_id.len = 65535;
	struct buf b = BUF_INIT;
	encode_ok(MQTT_V5, &q, &b);
	buf_clear(&b);

	/* Over the largest remaining length: refused before a byte of the payload is read. */
	static const uint8_t one = 0;
	q = (struct mqtt_packet){.type = MQTT_PUBLISH};
	q.u.publish.topic = str("t");
	q.u.publish.payload = (struct mqtt_bytes){&one, MQTT_MAX_REMAINING_LENGTH - 2};
	encode_fails(MQTT_V311, &q, -ERANGE);
	q.u.publish.payload.len = MQTT_MAX_REMAINING_LENGTH - 3;
	assert_int_equal(codec_encoded_len(MQTT_V311, &q), 1 + 4 + MQTT_MAX_REMAINING_LENGTH);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_packets),      cmocka_unit_test(test_bad_remaining_length),
	    cmocka_unit_test(test_version_argument), cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_encode_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
