/* tests/unit/test_codec_decode.c — MQTT packets: framing, valid packets decoded and re-encoded
 * (whole, cut short, mutated), and the names and texts of types, versions and codes. */
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

/* CONNECT is encoded at the level it states. */
static int level_of(const struct mqtt_packet *p, int version)
{
	return p->type == MQTT_CONNECT ? p->u.connect.version : version;
}

/*
 * Decoding succeeded: encoding the result succeeds, decodes again, and encodes to the same bytes.
 * With @canonical, the first encoding is @bytes itself.
 */
static void check_reencode(const uint8_t *bytes, size_t len, int version,
			   const struct mqtt_packet *p, bool canonical)
{
	struct buf a = BUF_INIT;
	struct buf b = BUF_INIT;
	struct mqtt_packet q;
	struct codec_error err;
	int level = level_of(p, version);
	encode_ok(level, p, &a);
	if (canonical) {
		assert_int_equal(a.len, len);
		assert_memory_equal(a.data, bytes, len);
	}
	assert_int_equal(codec_decode(a.data, a.len, level, &q, &err), 0);
	assert_int_equal(q.type, p->type);
	encode_ok(level, &q, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	buf_clear(&a);
	buf_clear(&b);
}

/* ---- framing ---- */

static void frame(const char *hexbytes, int rc, size_t want_len)
{
	uint8_t b[16];
	size_t n = hex(hexbytes, b, sizeof b);
	size_t len = 12345;
	assert_int_equal(codec_frame(b, n, &len), rc);
	assert_int_equal(len, rc ? 12345 : want_len);
}

static void test_frame(void **state)
{
	(void)state;
	frame("", -EAGAIN, 0);
	frame("30", -EAGAIN, 0);
	frame("30 80", -EAGAIN, 0);
	frame("30 FF FF FF", -EAGAIN, 0);
	frame("C0 00", 0, 2);
	frame("30 7F", 0, 2 + 127);
	frame("30 80 01", 0, 3 + 128);
	frame("30 FF 7F 00 00", 0, 3 + 16383);
	frame("30 80 80 01", 0, 4 + 16384);
	frame("30 FF FF FF 7F", 0, 5 + 268435455);
	/* Framing needs only the header: what follows may still be on its way. */
	frame("30 05 00", 0, 7);
	frame("30 FF FF FF FF", -EPROTO, 0);
	frame("30 FF FF FF FF 7F", -EPROTO, 0);
	frame("30 80 80 80 80 01", -EPROTO, 0);
	frame("30 80 00", -EPROTO, 0);
	frame("30 FF 80 00", -EPROTO, 0);
}

/* ---- valid packets: decoded, re-encoded, cut short, mutated ---- */

struct good_case {
	const char *what;
	int version;
	uint8_t first;
	const char *body;
	bool canonical; /* encoding the decoded packet gives these bytes back */
};

static const struct good_case good[] = {
    {"CONNECT 3.1", 3, 0x10, "00 06 'MQIsdp' 03 02 00 3C 00 01 'a'", true},
    {"CONNECT 3.1.1", 4, 0x10, "00 04 'MQTT' 04 02 00 3C 00 01 'a'", true},
    {"CONNECT 3.1.1 empty id", 4, 0x10, "00 04 'MQTT' 04 02 00 00 00 00", true},
    {"CONNECT 3.1.1 all fields", 4, 0x10,
     "00 04 'MQTT' 04 F6 FF FF 00 03 'cid' 00 03 'w/t' 00 02 00 FF 00 01 'u' 00 01 'p'", true},
    {"CONNECT 3.1 user and password", 3, 0x10,
     "00 06 'MQIsdp' 03 C0 00 0A 00 01 'a' 00 01 'u' 00 00", true},
    {"CONNECT 5", 5, 0x10, "00 04 'MQTT' 05 02 00 3C 00 00 01 'a'", true},
    {"CONNECT 5 password only", 5, 0x10, "00 04 'MQTT' 05 40 00 3C 00 00 01 'a' 00 02 'pw'", true},
    {"CONNECT 5 all fields", 5, 0x10,
     "00 04 'MQTT' 05 EE 00 1E 08 11 00 00 0E 10 21 00 14 00 03 'cid' "
     "09 18 00 00 00 05 03 00 01 't' 00 03 'w/t' 00 03 'bye' 00 01 'u' 00 01 'p'",
     true},
    {"CONNECT 5 auth", 5, 0x10,
     "00 04 'MQTT' 05 00 00 00 0A 15 00 02 'sc' 16 00 02 01 02 00 01 'a'", true},
    {"CONNACK 3.1", 3, 0x20, "00 05", true},
    {"CONNACK 3.1.1", 4, 0x20, "01 00", true},
    {"CONNACK 5", 5, 0x20, "00 00 00", true},
    {"CONNACK 5 refused", 5, 0x20, "00 86 05 1F 00 02 'no'", true},
    {"CONNACK 5 props", 5, 0x20, "01 00 08 24 01 22 00 0A 13 00 1E", true},
    {"PUBLISH 3.1 qos 0", 3, 0x30, "00 03 'a/b' 'hi'", true},
    {"PUBLISH 3.1.1 qos 0", 4, 0x30, "00 03 'a/b' 'hi'", true},
    {"PUBLISH 3.1.1 qos 2 retain", 4, 0x35, "00 01 'a' FF FF", true},
    {"PUBLISH 3.1.1 empty payload", 4, 0x32, "00 01 'a' 00 07", true},
    {"PUBLISH 5 qos 1 dup retain", 5, 0x3B, "00 01 'a' 00 0A 03 23 00 05 'x'", true},
    {"PUBLISH 5 alias only", 5, 0x30, "00 00 03 23 00 01 'z'", true},
    {"PUBLISH 5 props", 5, 0x32,
     "00 03 'a/b' 12 34 16 01 01 02 00 00 00 3C 08 00 01 'r' 09 00 01 07 26 00 01 'k' 00 01 'v' "
     "'{}'",
     true},
    {"PUBLISH 5 from server", 5, 0x30, "00 01 'a' 04 0B 01 0B 02 'p'", true},
    {"PUBACK 3.1.1", 4, 0x40, "00 01", true},
    {"PUBACK 5 short", 5, 0x40, "00 01", true},
    {"PUBACK 5 reason", 5, 0x40, "00 01 10", true},
    {"PUBACK 5 props", 5, 0x40, "00 01 10 03 1F 00 00", true},
    {"PUBACK 5 reason 0 with empty props", 5, 0x40, "00 01 00 00", false},
    {"PUBREC 3.1", 3, 0x50, "12 34", true},
    {"PUBREC 5", 5, 0x50, "12 34 97", true},
    {"PUBREL 3.1.1", 4, 0x62, "00 01", true},
    {"PUBREL 5", 5, 0x62, "00 01 92", true},
    {"PUBCOMP 3.1.1", 4, 0x70, "FF FF", true},
    {"PUBCOMP 5", 5, 0x70, "00 01 92 06 26 00 01 'k' 00 00", true},
    {"SUBSCRIBE 3.1", 3, 0x82, "00 01 00 01 'a' 01", true},
    {"SUBSCRIBE 3.1.1", 4, 0x82, "00 01 00 01 'a' 01 00 03 'b/#' 02 00 01 '+' 00", true},
    {"SUBSCRIBE 5", 5, 0x82, "00 02 02 0B 05 00 03 'a/+' 2D 00 01 '#' 00", true},
    {"SUBSCRIBE 5 shared", 5, 0x82, "00 02 00 00 0A '$share/g/#' 1A", true},
    {"SUBSCRIBE 5 user props", 5, 0x82, "00 02 05 26 00 00 00 00 00 01 'a' 02", true},
    {"SUBACK 3.1", 3, 0x90, "00 01 00 01 02", true},
    {"SUBACK 3.1.1", 4, 0x90, "00 01 01 80", true},
    {"SUBACK 5", 5, 0x90, "00 01 00 00 87 A2", true},
    {"UNSUBSCRIBE 3.1.1", 4, 0xA2, "00 01 00 01 'a' 00 03 'b/+'", true},
    {"UNSUBSCRIBE 5", 5, 0xA2, "00 01 00 00 01 'a'", true},
    {"UNSUBACK 3.1.1", 4, 0xB0, "00 01", true},
    {"UNSUBACK 5", 5, 0xB0, "00 01 00 00 11", true},
    {"PINGREQ", 4, 0xC0, "", true},
    {"PINGRESP", 5, 0xD0, "", true},
    {"DISCONNECT 3.1.1", 4, 0xE0, "", true},
    {"DISCONNECT 5 short", 5, 0xE0, "", true},
    {"DISCONNECT 5 with will", 5, 0xE0, "04", true},
    {"DISCONNECT 5 props", 5, 0xE0, "00 05 11 00 00 00 00", true},
    {"DISCONNECT 5 taken over", 5, 0xE0, "8E 00", false},
    {"DISCONNECT 5 server moved", 5, 0xE0, "9D 06 1C 00 03 'h:1'", true},
    {"AUTH 5 short", 5, 0xF0, "", true},
    {"AUTH 5", 5, 0xF0, "18 05 15 00 02 'ab'", true},
};

#define NGOOD (sizeof good / sizeof good[0])

static void test_good_packets(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOOD; i++) {
		uint8_t b[MAX_PKT];
		size_t n = packet(good[i].first, good[i].body, b, sizeof b);
		struct mqtt_packet p;
		struct codec_error err = {0, NULL};
		int rc = codec_decode(b, n, good[i].version, &p, &err);
		if (rc)
			fail_msg("%s: %d (%s)", good[i].what, rc, err.msg);
		assert_int_equal(p.type, good[i].first >> 4);
		check_reencode(b, n, good[i].version, &p, good[i].canonical);
	}
}

/* Every proper prefix of a valid packet is refused as malformed, and read within its bounds. */
static void test_truncated_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOOD; i++) {
		uint8_t b[MAX_PKT];
		size_t n = packet(good[i].first, good[i].body, b, sizeof b);
		for (size_t cut = 0; cut < n; cut++) {
			struct mqtt_packet p;
			struct codec_error err = {0, NULL};
			uint8_t *copy;
			int rc = decode_copy(b, cut, good[i].version, &p, &err, &copy);
			free(copy);
			if (rc != -EPROTO || err.reason != MQTT_RC_MALFORMED)
				fail_msg("%s cut at %zu: %d 0x%02X", good[i].what, cut, rc,
					 err.reason);
		}
	}
}

/*
 * The body cut short with the remaining length made to agree, so that field parsing meets the
 * end: refused or (payload, optional tails) accepted, never read out of bounds.
 */
static void test_short_bodies(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOOD; i++) {
		uint8_t body[MAX_PKT];
		size_t n = hex(good[i].body, body, sizeof body);
		for (size_t cut = 0; cut < n; cut++) {
			struct buf b = BUF_INIT;
			assert_int_equal(buf_put_u8(&b, good[i].first), 0);
			assert_int_equal(buf_put_varint(&b, (uint32_t)cut), 0);
			assert_int_equal(buf_append(&b, body, cut), 0);
			struct mqtt_packet p;
			struct codec_error err = {0, NULL};
			uint8_t *copy;
			int rc = decode_copy(b.data, b.len, good[i].version, &p, &err, &copy);
			if (rc == 0)
				check_reencode(copy, b.len, good[i].version, &p, false);
			else if (rc != -EPROTO)
				fail_msg("%s body cut at %zu: %d", good[i].what, cut, rc);
			free(copy);
			buf_clear(&b);
		}
	}
}

/* Every byte of every valid packet set to every value: no crash, and what decodes re-encodes. */
static void test_mutations(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOOD; i++) {
		uint8_t b[MAX_PKT];
		size_t n = packet(good[i].first, good[i].body, b, sizeof b);
		for (size_t pos = 0; pos < n; pos++) {
			for (unsigned v = 0; v < 256; v++) {
				uint8_t m[MAX_PKT];
				memcpy(m, b, n);
				m[pos] = (uint8_t)v;
				struct mqtt_packet p;
				struct codec_error err = {0, NULL};
				uint8_t *copy;
				int rc = decode_copy(m, n, good[i].version, &p, &err, &copy);
				if (rc == 0)
					check_reencode(copy, n, good[i].version, &p, false);
				else if (rc != -EPROTO && rc != -EPROTONOSUPPORT)
					fail_msg("%s [%zu]=%02X: %d", good[i].what, pos, v, rc);
				else
					assert_non_null(err.msg);
				free(copy);
			}
		}
	}
}

/* ---- names and texts ---- */

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(codec_type_name(MQTT_CONNECT), "CONNECT");
	assert_string_equal(codec_type_name(MQTT_PUBLISH), "PUBLISH");
	assert_string_equal(codec_type_name(MQTT_UNSUBACK), "UNSUBACK");
	assert_string_equal(codec_type_name(MQTT_AUTH), "AUTH");
	assert_string_equal(codec_type_name(0), "?");
	assert_string_equal(codec_type_name(16), "?");
	assert_string_equal(codec_type_name(-1), "?");
	for (int t = MQTT_CONNECT; t <= MQTT_AUTH; t++)
		assert_non_null(codec_type_name(t));
}

static void test_version_and_connack_texts(void **state)
{
	(void)state;
	assert_string_equal(codec_version_name(MQTT_V5), "5");
	assert_string_equal(codec_version_name(MQTT_V311), "3.1.1");
	assert_string_equal(codec_version_name(MQTT_V31), "3.1");
	assert_string_equal(codec_version_name(6), "?");
	assert_string_equal(codec_connack_text(MQTT_V311, 5), "not authorized");
	assert_string_equal(codec_connack_text(MQTT_V31, 1), "unacceptable protocol version");
	assert_string_equal(codec_connack_text(MQTT_V311, 6), "unknown return code");
	assert_string_equal(codec_connack_text(MQTT_V5, 0x86), "bad user name or password");
	assert_string_equal(codec_connack_text(MQTT_V5, 0x84), "unsupported protocol version");
	assert_string_equal(codec_connack_text(MQTT_V5, 0x05), "unknown reason code");
	assert_int_equal(codec_connack_v5_code(0), 0x00);
	assert_int_equal(codec_connack_v5_code(1), 0x84);
	assert_int_equal(codec_connack_v5_code(2), 0x85);
	assert_int_equal(codec_connack_v5_code(3), 0x88);
	assert_int_equal(codec_connack_v5_code(4), 0x86);
	assert_int_equal(codec_connack_v5_code(5), 0x87);
	assert_int_equal(codec_connack_v5_code(6), 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame),
	    cmocka_unit_test(test_good_packets),
	    cmocka_unit_test(test_truncated_everywhere),
	    cmocka_unit_test(test_short_bodies),
	    cmocka_unit_test(test_mutations),
	    cmocka_unit_test(test_type_names),
	    cmocka_unit_test(test_version_and_connack_texts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
