/* tests/unit/test_codec.c — MQTT packets: framing, decoding with validation, encoding. */
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

#define MAX_PKT 512

/* Packet bytes written as hex pairs and 'quoted text', e.g. "00 04 'MQTT' 04". */
static size_t hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (*s) {
		if (*s == ' ') {
			s++;
		} else if (*s == '\'') {
			for (s++; *s && *s != '\''; s++) {
				assert_true(n < cap);
				out[n++] = (uint8_t)*s;
			}
			assert_int_equal(*s, '\'');
			s++;
		} else {
			char pair[3] = {s[0], s[1], 0};
			char *end;
			assert_true(n < cap);
			out[n++] = (uint8_t)strtoul(pair, &end, 16);
			assert_ptr_equal(end, pair + 2);
			s += 2;
		}
	}
	return n;
}

/* A whole packet: @first, the remaining length worked out, then @body. */
static size_t packet(uint8_t first, const char *body, uint8_t *out, size_t cap)
{
	uint8_t b[MAX_PKT];
	size_t n = hex(body, b, sizeof b);
	struct buf x = BUF_INIT;
	assert_int_equal(buf_put_u8(&x, first), 0);
	assert_int_equal(buf_put_varint(&x, (uint32_t)n), 0);
	assert_int_equal(buf_append(&x, b, n), 0);
	assert_true(x.len <= cap);
	memcpy(out, x.data, x.len);
	n = x.len;
	buf_clear(&x);
	return n;
}

static struct mqtt_bytes str(const char *s)
{
	return (struct mqtt_bytes){(const uint8_t *)s, strlen(s)};
}

static void assert_bytes(struct mqtt_bytes b, const char *want)
{
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
}

/* Decodes from an exactly sized heap copy, so that the sanitizer sees any read past the end. */
static int decode_copy(const uint8_t *bytes, size_t len, int version, struct mqtt_packet *out,
		       struct codec_error *err, uint8_t **copy)
{
	*copy = malloc(len ? len : 1);
	assert_non_null(*copy);
	if (len)
		memcpy(*copy, bytes, len);
	return codec_decode(*copy, len, version, out, err);
}

/* CONNECT is encoded at the level it states. */
static int level_of(const struct mqtt_packet *p, int version)
{
	return p->type == MQTT_CONNECT ? p->u.connect.version : version;
}

/* Encodes @p, checking that codec_encoded_len() is what codec_encode() appends. */
static void encode_ok(int version, const struct mqtt_packet *p, struct buf *b)
{
	size_t before = b->len;
	size_t want = codec_encoded_len(version, p);
	int rc = codec_encode(b, version, p);
	if (rc)
		fail_msg("encode %s v%d: %d", codec_type_name(p->type), version, rc);
	assert_int_equal(b->len - before, want);
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

/* ---- decoded fields, and byte-exact encodings written out from the spec ---- */

static void decode_hex(const char *hexbytes, int version, uint8_t *b, struct mqtt_packet *p)
{
	size_t n = hex(hexbytes, b, MAX_PKT);
	struct codec_error err = {0, NULL};
	int rc = codec_decode(b, n, version, p, &err);
	if (rc)
		fail_msg("%s: %d (%s)", hexbytes, rc, err.msg);
}

static void encode_exact(int version, const struct mqtt_packet *p, const char *hexbytes)
{
	uint8_t want[MAX_PKT];
	size_t n = hex(hexbytes, want, sizeof want);
	struct buf b = BUF_INIT;
	assert_int_equal(buf_put_u8(&b, 0xEE), 0); /* encoding appends */
	encode_ok(version, p, &b);
	assert_int_equal(b.len, 1 + n);
	assert_int_equal(b.data[0], 0xEE);
	if (memcmp(b.data + 1, want, n) != 0)
		fail_msg("encoding differs from %s", hexbytes);
	buf_clear(&b);
}

#define CONNECT311_A "10 0D 00 04 'MQTT' 04 02 00 3C 00 01 'a'"

static void test_connect_311(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex(CONNECT311_A, 0, b, &p);
	assert_int_equal(p.type, MQTT_CONNECT);
	const struct mqtt_connect *c = &p.u.connect;
	assert_int_equal(c->version, MQTT_V311);
	assert_true(c->clean_start);
	assert_int_equal(c->keepalive, 60);
	assert_bytes(c->client_id, "a");
	assert_false(c->will);
	assert_false(c->has_username);
	assert_false(c->has_password);
	assert_int_equal(c->props.len, 0);

	struct mqtt_packet q = {.type = MQTT_CONNECT};
	q.u.connect.clean_start = true;
	q.u.connect.keepalive = 60;
	q.u.connect.client_id = str("a");
	encode_exact(MQTT_V311, &q, CONNECT311_A);
	encode_exact(MQTT_V31, &q, "10 0F 00 06 'MQIsdp' 03 02 00 3C 00 01 'a'");
	encode_exact(MQTT_V5, &q, "10 0E 00 04 'MQTT' 05 02 00 3C 00 00 01 'a'");
}

#define CONNECT5_FULL                                                                              \
	"10 32 00 04 'MQTT' 05 EE 00 1E 08 11 00 00 0E 10 21 00 14 00 03 'cid' "                   \
	"09 18 00 00 00 05 03 00 01 't' 00 03 'w/t' 00 03 'bye' 00 01 'u' 00 01 'p'"

static void test_connect_5_full(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex(CONNECT5_FULL, MQTT_V5, b, &p);
	const struct mqtt_connect *c = &p.u.connect;
	assert_int_equal(c->version, MQTT_V5);
	assert_true(c->clean_start);
	assert_int_equal(c->keepalive, 30);
	assert_bytes(c->client_id, "cid");
	assert_true(c->will);
	assert_int_equal(c->will_qos, 1);
	assert_true(c->will_retain);
	assert_bytes(c->will_topic, "w/t");
	assert_bytes(c->will_payload, "bye");
	assert_true(c->has_username);
	assert_bytes(c->username, "u");
	assert_true(c->has_password);
	assert_bytes(c->password, "p");
	struct mqtt_prop prop;
	assert_true(props_find(c->props.data, c->props.len, MQTT_PROP_SESSION_EXPIRY, &prop));
	assert_int_equal(prop.value, 3600);
	assert_true(props_find(c->props.data, c->props.len, MQTT_PROP_RECEIVE_MAXIMUM, &prop));
	assert_int_equal(prop.value, 20);
	assert_true(props_find(c->will_props.data, c->will_props.len, MQTT_PROP_WILL_DELAY, &prop));
	assert_int_equal(prop.value, 5);

	/* Built from fields with the props API, it is the same packet. */
	struct buf props = BUF_INIT;
	struct buf will_props = BUF_INIT;
	assert_int_equal(props_put_int(&props, MQTT_PROP_SESSION_EXPIRY, 3600), 0);
	assert_int_equal(props_put_int(&props, MQTT_PROP_RECEIVE_MAXIMUM, 20), 0);
	assert_int_equal(props_put_int(&will_props, MQTT_PROP_WILL_DELAY, 5), 0);
	assert_int_equal(props_put_bytes(&will_props, MQTT_PROP_CONTENT_TYPE, "t", 1), 0);
	struct mqtt_packet q = {.type = MQTT_CONNECT};
	struct mqtt_connect *w = &q.u.connect;
	w->clean_start = true;
	w->keepalive = 30;
	w->props = (struct mqtt_bytes){props.data, props.len};
	w->client_id = str("cid");
	w->will = true;
	w->will_qos = 1;
	w->will_retain = true;
	w->will_props = (struct mqtt_bytes){will_props.data, will_props.len};
	w->will_topic = str("w/t");
	w->will_payload = str("bye");
	w->has_username = true;
	w->username = str("u");
	w->has_password = true;
	w->password = str("p");
	encode_exact(MQTT_V5, &q, CONNECT5_FULL);
	/* 3.1.1 has no properties. */
	encode_exact(MQTT_V311, &q,
		     "10 1F 00 04 'MQTT' 04 EE 00 1E 00 03 'cid' 00 03 'w/t' 00 03 'bye' "
		     "00 01 'u' 00 01 'p'");
	buf_clear(&props);
	buf_clear(&will_props);
}

static void test_connect_empty_client_id(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("10 0C 00 04 'MQTT' 04 00 00 00 00 00", MQTT_V311, b, &p);
	assert_int_equal(p.u.connect.client_id.len, 0);
	assert_false(p.u.connect.clean_start);
	decode_hex("10 0E 00 06 'MQIsdp' 03 02 00 00 00 00", MQTT_V31, b, &p);
	assert_int_equal(p.u.connect.version, MQTT_V31);
	assert_int_equal(p.u.connect.client_id.len, 0);
}

static void test_publish(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("30 07 00 03 'a/b' 'hi'", MQTT_V311, b, &p);
	const struct mqtt_publish *m = &p.u.publish;
	assert_int_equal(m->qos, 0);
	assert_false(m->dup);
	assert_false(m->retain);
	assert_int_equal(m->packet_id, 0);
	assert_bytes(m->topic, "a/b");
	assert_bytes(m->payload, "hi");

	decode_hex("3B 0A 00 01 'a' 00 0A 03 23 00 05 'x'", MQTT_V5, b, &p);
	assert_int_equal(m->qos, 1);
	assert_true(m->dup);
	assert_true(m->retain);
	assert_int_equal(m->packet_id, 10);
	assert_bytes(m->payload, "x");
	struct mqtt_prop alias;
	assert_true(props_find(m->props.data, m->props.len, MQTT_PROP_TOPIC_ALIAS, &alias));
	assert_int_equal(alias.value, 5);

	struct mqtt_packet q = {.type = MQTT_PUBLISH};
	struct mqtt_publish *w = &q.u.publish;
	w->qos = 2;
	w->packet_id = 0x1234;
	w->topic = str("t");
	w->payload = str("pl");
	static const uint8_t ct[] = {0x03, 0x00, 0x01, 'j'};
	w->props = (struct mqtt_bytes){ct, sizeof ct};
	encode_exact(MQTT_V5, &q, "34 0C 00 01 't' 12 34 04 03 00 01 'j' 'pl'");
	encode_exact(MQTT_V311, &q, "34 07 00 01 't' 12 34 'pl'");
	encode_exact(MQTT_V31, &q, "34 07 00 01 't' 12 34 'pl'");
	w->qos = 0;
	w->retain = true;
	encode_exact(MQTT_V311, &q, "31 05 00 01 't' 'pl'");
}

static void test_publish_large_payload(void **state)
{
	(void)state;
	size_t payload_len = 200000; /* a three-byte remaining length */
	struct mqtt_packet q = {.type = MQTT_PUBLISH};
	uint8_t *payload = calloc(1, payload_len);
	assert_non_null(payload);
	q.u.publish.topic = str("big");
	q.u.publish.payload = (struct mqtt_bytes){payload, payload_len};
	struct buf b = BUF_INIT;
	encode_ok(MQTT_V311, &q, &b);
	assert_int_equal(b.len, 1 + 3 + 5 + payload_len);
	size_t frame_len;
	assert_int_equal(codec_frame(b.data, b.len, &frame_len), 0);
	assert_int_equal(frame_len, b.len);
	struct mqtt_packet p;
	struct codec_error err;
	assert_int_equal(codec_decode(b.data, b.len, MQTT_V311, &p, &err), 0);
	assert_int_equal(p.u.publish.payload.len, payload_len);
	buf_clear(&b);
	free(payload);
}

/* The remaining length at each boundary of the variable byte integer sizes. */
static void test_remaining_length_boundaries(void **state)
{
	(void)state;
	static const size_t lengths[] = {0, 127, 128, 16383, 16384, 2097151, 2097152};
	uint8_t *payload = calloc(1, 2097152);
	assert_non_null(payload);
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		struct mqtt_packet q = {.type = MQTT_DISCONNECT};
		size_t rl = lengths[i];
		if (rl > 0) {
			/* A PUBLISH of topic "t" (3 bytes) and the rest as payload. */
			q.type = MQTT_PUBLISH;
			q.u.publish.topic = str("t");
			q.u.publish.payload = (struct mqtt_bytes){payload, rl - 3};
		}
		struct buf b = BUF_INIT;
		encode_ok(MQTT_V311, &q, &b);
		size_t header = rl < 128 ? 2 : rl < 16384 ? 3 : rl < 2097152 ? 4 : 5;
		assert_int_equal(b.len, header + rl);
		size_t frame_len;
		assert_int_equal(codec_frame(b.data, b.len, &frame_len), 0);
		assert_int_equal(frame_len, b.len);
		struct mqtt_packet p;
		struct codec_error err;
		assert_int_equal(codec_decode(b.data, b.len, MQTT_V311, &p, &err), 0);
		buf_clear(&b);
	}
	free(payload);
}

static void test_acks(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("40 02 00 01", MQTT_V5, b, &p);
	assert_int_equal(p.u.ack.packet_id, 1);
	assert_int_equal(p.u.ack.reason, 0);
	assert_int_equal(p.u.ack.props.len, 0);
	decode_hex("50 03 00 02 10", MQTT_V5, b, &p);
	assert_int_equal(p.type, MQTT_PUBREC);
	assert_int_equal(p.u.ack.reason, MQTT_RC_NO_MATCHING_SUBSCRIBERS);
	decode_hex("62 07 00 03 92 03 1F 00 00", MQTT_V5, b, &p);
	assert_int_equal(p.type, MQTT_PUBREL);
	assert_int_equal(p.u.ack.packet_id, 3);
	assert_int_equal(p.u.ack.reason, MQTT_RC_PACKET_ID_NOT_FOUND);
	assert_int_equal(p.u.ack.props.len, 3);

	struct mqtt_packet q = {.type = MQTT_PUBACK};
	q.u.ack.packet_id = 1;
	encode_exact(MQTT_V5, &q, "40 02 00 01");
	q.u.ack.reason = MQTT_RC_NOT_AUTHORIZED;
	encode_exact(MQTT_V5, &q, "40 03 00 01 87");
	static const uint8_t rs[] = {0x1F, 0x00, 0x01, 'x'};
	q.u.ack.props = (struct mqtt_bytes){rs, sizeof rs};
	encode_exact(MQTT_V5, &q, "40 08 00 01 87 04 1F 00 01 'x'");
	/* 3.x has neither reason nor properties. */
	encode_exact(MQTT_V311, &q, "40 02 00 01");
	q.type = MQTT_PUBREL;
	q.u.ack.reason = 0;
	q.u.ack.props = (struct mqtt_bytes){NULL, 0};
	encode_exact(MQTT_V311, &q, "62 02 00 01");
	encode_exact(MQTT_V5, &q, "62 02 00 01");
	q.type = MQTT_PUBCOMP;
	encode_exact(MQTT_V31, &q, "70 02 00 01");
	q.type = MQTT_PUBREC;
	q.u.ack.props = (struct mqtt_bytes){rs, sizeof rs};
	encode_exact(MQTT_V5, &q, "50 08 00 01 00 04 1F 00 01 'x'");
}

static void test_subscribe(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("82 0F 00 02 02 0B 05 00 03 'a/+' 2D 00 01 '#' 00", MQTT_V5, b, &p);
	const struct mqtt_subscribe *s = &p.u.sub;
	assert_int_equal(s->packet_id, 2);
	assert_int_equal(s->count, 2);
	struct mqtt_prop id;
	assert_true(props_find(s->props.data, s->props.len, MQTT_PROP_SUBSCRIPTION_ID, &id));
	assert_int_equal(id.value, 5);
	struct mqtt_bytes cursor = s->entries;
	struct codec_entry e;
	assert_true(codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e));
	assert_bytes(e.filter, "a/+");
	assert_int_equal(e.options & MQTT_SUBOPT_QOS_MASK, 1);
	assert_true(e.options & MQTT_SUBOPT_NO_LOCAL);
	assert_true(e.options & MQTT_SUBOPT_RETAIN_AS_PUB);
	assert_int_equal(MQTT_SUBOPT_RETAIN_HANDLING(e.options), 2);
	assert_true(codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e));
	assert_bytes(e.filter, "#");
	assert_int_equal(e.options, 0);
	assert_false(codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e));

	/* Re-encoded for 3.1.1: no properties, options cut to the QoS bits. */
	encode_exact(MQTT_V311, &p, "82 0C 00 02 00 03 'a/+' 01 00 01 '#' 00");
	encode_exact(MQTT_V5, &p, "82 0F 00 02 02 0B 05 00 03 'a/+' 2D 00 01 '#' 00");

	decode_hex("A2 0A 00 07 00 01 'a' 00 03 'b/#'", MQTT_V311, b, &p);
	assert_int_equal(p.type, MQTT_UNSUBSCRIBE);
	assert_int_equal(p.u.sub.count, 2);
	cursor = p.u.sub.entries;
	assert_true(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	assert_bytes(e.filter, "a");
	assert_true(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	assert_bytes(e.filter, "b/#");
	assert_false(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	encode_exact(MQTT_V5, &p, "A2 0B 00 07 00 00 01 'a' 00 03 'b/#'");
}

static void test_entries(void **state)
{
	(void)state;
	struct buf entries = BUF_INIT;
	assert_int_equal(codec_put_entry(&entries, MQTT_SUBSCRIBE, "a/b", 3, 0x01), 0);
	assert_int_equal(codec_put_entry(&entries, MQTT_SUBSCRIBE, "$share/g/x", 10, 0x22), 0);
	static const char want[] = "\x00\x03"
				   "a/b"
				   "\x01"
				   "\x00\x0A"
				   "$share/g/x"
				   "\x22";
	assert_int_equal(entries.len, sizeof want - 1);
	assert_memory_equal(entries.data, want, entries.len);

	struct mqtt_packet q = {.type = MQTT_SUBSCRIBE};
	q.u.sub.packet_id = 9;
	q.u.sub.entries = (struct mqtt_bytes){entries.data, entries.len};
	q.u.sub.count = 2;
	struct buf b = BUF_INIT;
	encode_ok(MQTT_V5, &q, &b);
	struct mqtt_packet p;
	struct codec_error err;
	assert_int_equal(codec_decode(b.data, b.len, MQTT_V5, &p, &err), 0);
	assert_int_equal(p.u.sub.count, 2);
	assert_int_equal(p.u.sub.entries.len, entries.len);
	assert_memory_equal(p.u.sub.entries.data, entries.data, entries.len);
	buf_clear(&b);
	buf_clear(&entries);

	assert_int_equal(codec_put_entry(&entries, MQTT_UNSUBSCRIBE, "x", 1, 0xFF), 0);
	assert_int_equal(entries.len, 3);
	assert_memory_equal(entries.data, "\x00\x01x", 3);
	char *big = calloc(1, 65536);
	assert_non_null(big);
	assert_int_equal(codec_put_entry(&entries, MQTT_UNSUBSCRIBE, big, 65536, 0), -ERANGE);
	assert_int_equal(entries.len, 3);
	free(big);
	buf_clear(&entries);

	struct mqtt_bytes empty = {NULL, 0};
	struct codec_entry e;
	assert_false(codec_next_entry(&empty, MQTT_SUBSCRIBE, &e));
	static const uint8_t cut[] = {0x00, 0x05, 'a'};
	struct mqtt_bytes cursor = {cut, sizeof cut};
	assert_false(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	assert_int_equal(cursor.len, sizeof cut);
}

static void test_suback(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("90 05 00 01 00 00 87", MQTT_V5, b, &p);
	assert_int_equal(p.u.suback.packet_id, 1);
	assert_int_equal(p.u.suback.codes.len, 2);
	assert_int_equal(p.u.suback.codes.data[1], MQTT_RC_NOT_AUTHORIZED);

	/* In 3.x every v5 failure becomes 0x80. */
	static const uint8_t codes[] = {0x00, 0x01, 0x02, 0x80, 0x87, 0x8F, 0x97, 0xA2};
	struct mqtt_packet q = {.type = MQTT_SUBACK};
	q.u.suback.packet_id = 0x0102;
	q.u.suback.codes = (struct mqtt_bytes){codes, sizeof codes};
	encode_exact(MQTT_V311, &q, "90 0A 01 02 00 01 02 80 80 80 80 80");
	encode_exact(MQTT_V31, &q, "90 0A 01 02 00 01 02 80 80 80 80 80");
	encode_exact(MQTT_V5, &q, "90 0B 01 02 00 00 01 02 80 87 8F 97 A2");

	static const uint8_t uncodes[] = {0x00, 0x11};
	q.type = MQTT_UNSUBACK;
	q.u.suback.codes = (struct mqtt_bytes){uncodes, sizeof uncodes};
	encode_exact(MQTT_V311, &q, "B0 02 01 02");
	encode_exact(MQTT_V5, &q, "B0 05 01 02 00 00 11");
	decode_hex("B0 02 01 02", MQTT_V311, b, &p);
	assert_int_equal(p.u.suback.codes.len, 0);
}

static void test_connack(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("20 02 01 00", MQTT_V311, b, &p);
	assert_true(p.u.connack.session_present);
	assert_int_equal(p.u.connack.code, 0);
	decode_hex("20 02 01 05", MQTT_V31, b, &p);
	assert_false(p.u.connack.session_present); /* 3.1 has no such flag */
	assert_int_equal(p.u.connack.code, MQTT_CONNACK_NOT_AUTHORIZED);

	struct mqtt_packet q = {.type = MQTT_CONNACK};
	q.u.connack.session_present = true;
	encode_exact(MQTT_V311, &q, "20 02 01 00");
	encode_exact(MQTT_V31, &q, "20 02 00 00");
	encode_exact(MQTT_V5, &q, "20 03 01 00 00");
	q.u.connack.session_present = false;

	/* v5 reasons map to the nearest 3.1.1 code. */
	static const struct {
		uint8_t v5;
		uint8_t v3;
	} map[] = {
	    {0x00, 0}, {0x80, 3}, {0x81, 3}, {0x82, 3}, {0x83, 3}, {0x84, 1}, {0x85, 2},
	    {0x86, 4}, {0x87, 5}, {0x88, 3}, {0x89, 3}, {0x8A, 5}, {0x8C, 4}, {0x9F, 3},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		char want[32];
		q.u.connack.code = map[i].v5;
		snprintf(want, sizeof want, "20 02 00 %02X", map[i].v3);
		encode_exact(MQTT_V311, &q, want);
		snprintf(want, sizeof want, "20 03 00 %02X 00", map[i].v5);
		encode_exact(MQTT_V5, &q, want);
	}
	/* 3.1.1 codes pass through in 3.x. */
	q.u.connack.code = MQTT_CONNACK_BAD_CREDENTIALS;
	encode_exact(MQTT_V311, &q, "20 02 00 04");
}

static void test_ping_disconnect_auth(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	struct mqtt_packet q = {.type = MQTT_PINGREQ};
	for (int v = MQTT_V31; v <= MQTT_V5; v++)
		encode_exact(v, &q, "C0 00");
	q.type = MQTT_PINGRESP;
	encode_exact(MQTT_V5, &q, "D0 00");

	q.type = MQTT_DISCONNECT;
	encode_exact(MQTT_V5, &q, "E0 00");
	q.u.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
	encode_exact(MQTT_V5, &q, "E0 01 04");
	encode_exact(MQTT_V311, &q, "E0 00");
	static const uint8_t se[] = {0x11, 0x00, 0x00, 0x00, 0x00};
	q.u.disconnect.reason = 0;
	q.u.disconnect.props = (struct mqtt_bytes){se, sizeof se};
	encode_exact(MQTT_V5, &q, "E0 07 00 05 11 00 00 00 00");

	decode_hex("E0 02 8E 00", MQTT_V5, b, &p);
	assert_int_equal(p.u.disconnect.reason, MQTT_RC_SESSION_TAKEN_OVER);
	assert_int_equal(p.u.disconnect.props.len, 0);
	encode_exact(MQTT_V5, &p, "E0 01 8E");

	decode_hex("F0 07 18 05 15 00 02 'ab'", MQTT_V5, b, &p);
	assert_int_equal(p.type, MQTT_AUTH);
	assert_int_equal(p.u.disconnect.reason, MQTT_RC_CONTINUE_AUTH);
	assert_int_equal(p.u.disconnect.props.len, 5);
	q.type = MQTT_AUTH;
	q.u.disconnect.reason = 0;
	q.u.disconnect.props = (struct mqtt_bytes){NULL, 0};
	encode_exact(MQTT_V5, &q, "F0 00");
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
	    cmocka_unit_test(test_bad_packets),
	    cmocka_unit_test(test_bad_remaining_length),
	    cmocka_unit_test(test_version_argument),
	    cmocka_unit_test(test_connect_311),
	    cmocka_unit_test(test_connect_5_full),
	    cmocka_unit_test(test_connect_empty_client_id),
	    cmocka_unit_test(test_publish),
	    cmocka_unit_test(test_publish_large_payload),
	    cmocka_unit_test(test_remaining_length_boundaries),
	    cmocka_unit_test(test_acks),
	    cmocka_unit_test(test_subscribe),
	    cmocka_unit_test(test_entries),
	    cmocka_unit_test(test_suback),
	    cmocka_unit_test(test_connack),
	    cmocka_unit_test(test_ping_disconnect_auth),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_encode_sizes),
	    cmocka_unit_test(test_type_names),
	    cmocka_unit_test(test_version_and_connack_texts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
