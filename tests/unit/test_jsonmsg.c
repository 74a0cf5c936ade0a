/* tests/unit/test_jsonmsg.c — publish bodies in, received messages out, and properties both ways.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "jsonmsg.h"
#include "msg.h"
#include "props.h"

/* A byte string literal with its length, NULs included. */
#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1

static struct jsonmsg_batch parse_ok(const char *json, size_t max)
{
	struct jsonmsg_batch b = {NULL, 0, false};
	struct jsonmsg_error err = {0, NULL, ""};
	int rc = jsonmsg_parse(json, strlen(json), max, &b, &err);
	if (rc)
		fail_msg("%s refused: %d %s %s", json, rc, err.code ? err.code : "-", err.message);
	return b;
}

/* Refused with @code at @index; the message is returned for further checks. */
static struct jsonmsg_error parse_bad_n(const char *json, size_t len, size_t max, const char *code,
					long index)
{
	struct jsonmsg_batch b = {NULL, 0, false};
	struct jsonmsg_error err = {99, NULL, ""};
	int rc = jsonmsg_parse(json, len, max, &b, &err);
	if (rc != -EINVAL)
		fail_msg("%.*s: rc %d, wanted -EINVAL", (int)len, json, rc);
	assert_null(b.msgs); /* untouched */
	assert_non_null(err.code);
	if (strcmp(err.code, code) || err.index != index)
		fail_msg("%.*s: %s at %ld (%s), wanted %s at %ld", (int)len, json, err.code,
			 err.index, err.message, code, index);
	assert_true(err.message[0] != '\0');
	assert_true(strlen(err.message) < sizeof err.message);
	return err;
}

static struct jsonmsg_error parse_bad(const char *json, size_t max, const char *code, long index)
{
	return parse_bad_n(json, strlen(json), max, code, index);
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

static void assert_lacks(const char *s, const char *part)
{
	if (strstr(s, part))
		fail_msg("\"%s\" contains \"%s\"", s, part);
}

static void assert_payload(const struct jsonmsg *m, const void *want, size_t len)
{
	if (m->payload_len != len)
		fail_msg("payload of %zu bytes \"%.*s\", wanted %zu \"%.*s\"", m->payload_len,
			 (int)m->payload_len, m->payload ? (const char *)m->payload : "", len,
			 (int)len, (const char *)want);
	if (len)
		assert_memory_equal(m->payload, want, len);
	else
		assert_null(m->payload);
}

static void assert_msg(const struct jsonmsg *m, const char *topic, const char *payload, int qos,
		       bool retain)
{
	assert_string_equal(m->topic, topic);
	assert_payload(m, payload, strlen(payload));
	assert_int_equal(m->qos, qos);
	assert_int_equal(m->retain, retain);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t len)
{
	assert_int_equal(got_len, len);
	if (len)
		assert_memory_equal(got, want, len);
}

/* jsonmsg_write into a NUL-terminated string (free() it); checks it is one line of JSON. */
static char *write_str(const struct msg *m, uint64_t ts)
{
	struct buf b = BUF_INIT;
	assert_int_equal(jsonmsg_write(&b, m, ts), 0);
	assert_int_equal(buf_put_u8(&b, 0), 0);
	char *s = (char *)buf_steal(&b, NULL);
	assert_null(strchr(s, '\n'));
	assert_null(strchr(s, '\r'));
	json_error_t jerr;
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!j)
		fail_msg("not JSON (%s): %s", jerr.text, s);
	json_decref(j);
	return s;
}

static void assert_written(const struct msg *m, uint64_t ts, const char *want)
{
	char *s = write_str(m, ts);
	if (strcmp(s, want))
		fail_msg("wrote\n%s\nwanted\n%s", s, want);
	free(s);
}

/* A struct msg made of a parsed message, as the publish path would send it. */
static struct msg *to_msg(const struct jsonmsg *j)
{
	struct msg *m = msg_new(j->topic, strlen(j->topic), j->payload, j->payload_len, j->props,
				j->props_len, (uint8_t)j->qos, j->retain);
	assert_non_null(m);
	return m;
}

/* Parses the one message of @json and writes it back. */
static char *rewrite(const char *json, uint64_t ts)
{
	struct jsonmsg_batch b = parse_ok(json, 1);
	struct msg *m = to_msg(&b.msgs[0]);
	char *s = write_str(m, ts);
	free(m);
	jsonmsg_batch_clear(&b);
	return s;
}

static void assert_rewritten(const char *json, uint64_t ts, const char *want)
{
	char *s = rewrite(json, ts);
	if (strcmp(s, want))
		fail_msg("%s\nwrote\n%s\nwanted\n%s", json, s, want);
	free(s);
}

/* ---- parsing ---- */

static void test_single_object(void **state)
{
	(void)state;
	struct jsonmsg_batch b =
	    parse_ok("{\"topic\":\"a/b\",\"payload\":\"hi\",\"qos\":1,\"retain\":true}", 1);
	assert_int_equal(b.count, 1);
	assert_false(b.is_array);
	assert_msg(&b.msgs[0], "a/b", "hi", 1, true);
	assert_null(b.msgs[0].props);
	assert_int_equal(b.msgs[0].props_len, 0);
	jsonmsg_batch_clear(&b);
	assert_null(b.msgs);
	assert_int_equal(b.count, 0);

	/* Defaults: empty payload, QoS 0, not retained. */
	b = parse_ok(" {\"topic\" : \"t\"}\n", 1);
	assert_msg(&b.msgs[0], "t", "", 0, false);
	jsonmsg_batch_clear(&b);

	b = parse_ok("{\"topic\":\"$SYS/x\",\"qos\":2,\"retain\":false,\"payload\":\"\"}", 1);
	assert_msg(&b.msgs[0], "$SYS/x", "", 2, false);
	jsonmsg_batch_clear(&b);
}

static void test_array(void **state)
{
	(void)state;
	struct jsonmsg_batch b = parse_ok("[{\"topic\":\"a\",\"payload\":\"1\"},"
					  "{\"topic\":\"b\",\"payload\":\"2\",\"qos\":1},"
					  "{\"topic\":\"a\",\"retain\":true}]",
					  3);
	assert_true(b.is_array);
	assert_int_equal(b.count, 3);
	assert_msg(&b.msgs[0], "a", "1", 0, false);
	assert_msg(&b.msgs[1], "b", "2", 1, false);
	assert_msg(&b.msgs[2], "a", "", 0, true);
	jsonmsg_batch_clear(&b);

	/* An array of one is still an array: the answer must be one too. */
	b = parse_ok("[{\"topic\":\"a\"}]", 1);
	assert_true(b.is_array);
	assert_int_equal(b.count, 1);
	jsonmsg_batch_clear(&b);
	jsonmsg_batch_clear(&b); /* clearing twice is harmless */
}

static const struct {
	const char *payload; /* the JSON value */
	const char *bytes;   /* what is published */
	size_t len;
} payloads[] = {
    {"\"plain\"", "plain", 5},
    {"\"h\\u00e9llo \xE2\x9C\x93 \xF0\x9F\x98\x80\"", "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80",
     15},
    {"\"a\\u0000b\"", "a\0b", 3},
    {"\"line\\nbreak\\t\\\"q\\\"\"", "line\nbreak\t\"q\"", 14},
    {"\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4},
    {"42", "42", 2},
    {"-7", "-7", 2},
    {"0", "0", 1},
    {"9223372036854775807", "9223372036854775807", 19},
    {"21.3", "21.3", 4},
    {"0.1", "0.1", 3},
    {"-0.5", "-0.5", 4},
    {"1.0", "1.0", 3},
    {"1e5", "100000.0", 8},
    {"1.5e300", "1.5e+300", 8},
    {"1e-7", "1e-07", 5},
    {"0.30000000000000004", "0.30000000000000004", 19},
    {"true", "true", 4},
    {"false", "false", 5},
    {"null", "null", 4},
    {"[]", "[]", 2},
    {"{}", "{}", 2},
    {"[1, 2.5, \"x\", null]", "[1,2.5,\"x\",null]", 16},
    {"{ \"z\" : 1, \"a\" : [ true, {\"k\": \"v\\n\\u00e9\"} ] }",
     "{\"z\":1,\"a\":[true,{\"k\":\"v\\n\xC3\xA9\"}]}", 32},
    {"{\"q\":\"\\\"\\\\\\/\"}", "{\"q\":\"\\\"\\\\/\"}", 13},
};

static void test_payload_kinds(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		char json[256];
		snprintf(json, sizeof json, "{\"topic\":\"t\",\"payload\":%s}",
			 payloads[i].payload);
		struct jsonmsg_batch b = parse_ok(json, 1);
		assert_payload(&b.msgs[0], payloads[i].bytes, payloads[i].len);
		jsonmsg_batch_clear(&b);
	}
}

static void test_payload_base64(void **state)
{
	(void)state;
	struct jsonmsg_batch b =
	    parse_ok("{\"topic\":\"t\",\"payload_base64\":\"AAEC/w==\",\"qos\":1}", 1);
	assert_payload(&b.msgs[0], "\x00\x01\x02\xFF", 4);
	jsonmsg_batch_clear(&b);

	b = parse_ok("{\"topic\":\"t\",\"payload_base64\":\"AAEC/w\"}", 1);
	assert_payload(&b.msgs[0], "\x00\x01\x02\xFF", 4);
	jsonmsg_batch_clear(&b);

	b = parse_ok("{\"topic\":\"t\",\"payload_base64\":\"\"}", 1);
	assert_payload(&b.msgs[0], "", 0);
	jsonmsg_batch_clear(&b);
}

static void test_body_errors(void **state)
{
	(void)state;
	struct jsonmsg_error e;

	static const char *const not_json[] = {
	    "",
	    "{\"topic\":\"a\"} {\"topic\":\"b\"}",    /* two bodies */
	    "{\"topic\":\"a\",\"topic\":\"b\"}",      /* duplicate key */
	    "{\"topic\":\"a\",\"payload\":1e999}",    /* no such double */
	    "{\"topic\":\"a\",\"payload\":\"\xFF\"}", /* not UTF-8 */
	    "{\"topic\":\"a\",}",
	};
	for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++)
		parse_bad(not_json[i], 10, "invalid_json", -1);
	e = parse_bad("{", 10, "invalid_json", -1);
	assert_contains(e.message, "line 1");
	e = parse_bad("[{\"topic\":\"a\"},\n{\"topic\":\"b\",}]", 10, "invalid_json", -1);
	assert_contains(e.message, "line 2");
	parse_bad_n("{\"topic\":\"a\"}\0", 14, 10, "invalid_json", -1);

	/* jansson quotes what is near the error: it must not reach the message. */
	e = parse_bad("{\"topic\":\"t\",\"payload\":\"s3cr3t", 10, "invalid_json", -1);
	assert_lacks(e.message, "s3cr3t");
	e = parse_bad("{\"topic\":\"t\",\"payload\":s3cr3t}", 10, "invalid_json", -1);
	assert_lacks(e.message, "s3cr3t");

	parse_bad("42", 10, "invalid_message", -1);
	parse_bad("\"a/b\"", 10, "invalid_message", -1);
	parse_bad("null", 10, "invalid_message", -1);
	e = parse_bad("[]", 10, "invalid_message", -1);
	assert_contains(e.message, "empty");

	e = parse_bad("[{\"topic\":\"a\"},{\"topic\":\"a\"},{\"topic\":\"a\"}]", 2,
		      "too_many_messages", -1);
	assert_contains(e.message, "3");
	parse_bad("{\"topic\":\"a\"}", 0, "too_many_messages", -1);
	/* The limit is checked before any message, so a bad one does not hide it. */
	parse_bad("[1,2,3]", 2, "too_many_messages", -1);
}

static void test_message_errors(void **state)
{
	(void)state;
	struct jsonmsg_error e;

	parse_bad("[1]", 10, "invalid_message", 0);
	parse_bad("[{\"topic\":\"a\"},[]]", 10, "invalid_message", 1);
	parse_bad("[{\"topic\":\"a\"},{\"topic\":\"a\"},\"x\"]", 10, "invalid_message", 2);

	e = parse_bad("{\"topic\":\"a\",\"qso\":1}", 10, "invalid_message", 0);
	assert_contains(e.message, "\"qso\"");
	e = parse_bad("[{\"topic\":\"a\"},{\"topic\":\"a\",\"Payload\":\"x\"}]", 10,
		      "invalid_message", 1);
	assert_contains(e.message, "Payload");
	/* An unknown field is reported even when the topic is missing too. */
	parse_bad("{\"ts\":1}", 10, "invalid_message", 0);
	e = parse_bad(
	    "{\"topic\":\"a\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
	    10, "invalid_message", 0);
	assert_contains(e.message, "...");
	e = parse_bad("{\"topic\":\"a\",\"\\n\\u00e9\":1}", 10, "invalid_message", 0);
	assert_lacks(e.message, "\n");

	parse_bad("{\"topic\":\"a\",\"retain\":\"true\"}", 10, "invalid_message", 0);
	parse_bad("{\"topic\":\"a\",\"retain\":1}", 10, "invalid_message", 0);
	parse_bad("[{\"topic\":\"a\"},{\"topic\":\"a\",\"retain\":null}]", 10, "invalid_message",
		  1);
}

static void test_topic_errors(void **state)
{
	(void)state;
	struct jsonmsg_error e;

	e = parse_bad("{\"payload\":\"x\"}", 10, "invalid_topic", 0);
	assert_contains(e.message, "missing");
	parse_bad("{\"topic\":5}", 10, "invalid_topic", 0);
	parse_bad("{\"topic\":null}", 10, "invalid_topic", 0);
	parse_bad("{\"topic\":[\"a\"]}", 10, "invalid_topic", 0);
	parse_bad("{\"topic\":\"\"}", 10, "invalid_topic", 0);
	e = parse_bad("{\"topic\":\"a/+/b\"}", 10, "invalid_topic", 0);
	assert_contains(e.message, "\"a/+/b\"");
	parse_bad("[{\"topic\":\"a\"},{\"topic\":\"a/#\"}]", 10, "invalid_topic", 1);
	parse_bad("{\"topic\":\"#\"}", 10, "invalid_topic", 0);
	parse_bad("{\"topic\":\"a\\u0000b\"}", 10, "invalid_topic", 0);
	e = parse_bad("{\"topic\":\"a\\u0001b\"}", 10, "invalid_topic", 0);
	assert_contains(e.message, "\\x01");
	parse_bad("{\"topic\":\"a\\u007f\"}", 10, "invalid_topic", 0);
	parse_bad("{\"topic\":\"\\ufffe\"}", 10, "invalid_topic", 0);

	/* A long bad topic is cut in the message. */
	static char json[70000];
	int n = snprintf(json, sizeof json, "{\"topic\":\"");
	memset(json + n, 'x', 1000);
	snprintf(json + n + 1000, sizeof json - (size_t)n - 1000, "/+\"}");
	e = parse_bad(json, 10, "invalid_topic", 0);
	assert_contains(e.message, "...");

	/* 65535 bytes is the most an MQTT string holds. */
	memset(json + n, 'x', 65535);
	snprintf(json + n + 65535, sizeof json - (size_t)n - 65535, "\"}");
	struct jsonmsg_batch b = parse_ok(json, 1);
	assert_int_equal(strlen(b.msgs[0].topic), 65535);
	jsonmsg_batch_clear(&b);
	memset(json + n, 'x', 65536);
	snprintf(json + n + 65536, sizeof json - (size_t)n - 65536, "\"}");
	e = parse_bad(json, 10, "invalid_topic", 0);
	assert_contains(e.message, "65535");
}

static void test_qos_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {"3", "-1", "\"1\"", "1.0", "true", "null", "[1]", "256"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char json[64];
		snprintf(json, sizeof json, "{\"topic\":\"a\",\"qos\":%s}", bad[i]);
		parse_bad(json, 10, "invalid_qos", 0);
	}
	parse_bad("[{\"topic\":\"a\",\"qos\":0},{\"topic\":\"a\",\"qos\":4}]", 10, "invalid_qos",
		  1);
}

static void test_payload_errors(void **state)
{
	(void)state;
	struct jsonmsg_error e;

	e = parse_bad("{\"topic\":\"a\",\"payload\":\"x\",\"payload_base64\":\"eA==\"}", 10,
		      "invalid_payload", 0);
	assert_lacks(e.message, "eA==");
	e = parse_bad("{\"topic\":\"a\",\"payload_base64\":\"c2VjcmV0$\"}", 10, "invalid_payload",
		      0);
	assert_lacks(e.message, "c2VjcmV0");
	parse_bad("{\"topic\":\"a\",\"payload_base64\":\"AAEC /w==\"}", 10, "invalid_payload", 0);
	parse_bad("{\"topic\":\"a\",\"payload_base64\":\"A\"}", 10, "invalid_payload", 0);
	parse_bad("{\"topic\":\"a\",\"payload_base64\":\"-_8=\"}", 10, "invalid_payload", 0);
	parse_bad("{\"topic\":\"a\",\"payload_base64\":5}", 10, "invalid_payload", 0);
	parse_bad("{\"topic\":\"a\",\"payload_base64\":null}", 10, "invalid_payload", 0);
	parse_bad(
	    "[{\"topic\":\"a\"},{\"topic\":\"a\"},{\"topic\":\"a\",\"payload_base64\":\"==\"}]", 10,
	    "invalid_payload", 2);
}

/* ---- properties ---- */

/* jsonmsg_props_from_json on the JSON text @json; the bytes are appended to @out. */
static int props_from(const char *json, struct buf *out, struct jsonmsg_error *err)
{
	json_error_t jerr;
	json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!j)
		fail_msg("bad test JSON %s: %s", json, jerr.text);
	int rc = jsonmsg_props_from_json(j, out, err);
	json_decref(j);
	return rc;
}

static void assert_props(const char *json, const uint8_t *want, size_t len)
{
	struct buf b = BUF_INIT;
	struct jsonmsg_error err = {0, NULL, ""};
	int rc = props_from(json, &b, &err);
	if (rc)
		fail_msg("%s refused: %d %s", json, rc, err.message);
	assert_bytes(b.data, b.len, want, len);
	struct codec_error cerr;
	if (len)
		assert_int_equal(props_validate(b.data, b.len, MQTT_PUBLISH, &cerr), 0);
	buf_clear(&b);
}

static void test_props_to_bytes(void **state)
{
	(void)state;
	assert_props("{}", NULL, 0);
	assert_props("{\"content_type\":\"text/plain\"}", BYTES("\x03\x00\x0a"
								"text/plain"));
	assert_props("{\"response_topic\":\"r/t\"}", BYTES("\x08\x00\x03r/t"));
	assert_props("{\"message_expiry_interval\":60}", BYTES("\x02\x00\x00\x00\x3c"));
	assert_props("{\"message_expiry_interval\":0}", BYTES("\x02\x00\x00\x00\x00"));
	assert_props("{\"message_expiry_interval\":4294967295}", BYTES("\x02\xff\xff\xff\xff"));
	assert_props("{\"payload_format_indicator\":1}", BYTES("\x01\x01"));
	assert_props("{\"payload_format_indicator\":0}", BYTES("\x01\x00"));
	assert_props("{\"correlation_data\":\"id-1\"}", BYTES("\x09\x00\x04id-1"));
	assert_props("{\"correlation_data\":\"a\\u0000\\n\"}", BYTES("\x09\x00\x03"
								     "a\0\n"));
	assert_props("{\"correlation_data_base64\":\"AAEC\"}", BYTES("\x09\x00\x03\x00\x01\x02"));
	assert_props("{\"correlation_data_base64\":\"\"}", BYTES("\x09\x00\x00"));
	/* Pairs keep their order and their duplicates. */
	assert_props("{\"user_properties\":[[\"a\",\"1\"],[\"a\",\"2\"],[\"b\",\"\"]]}",
		     BYTES("\x26\x00\x01"
			   "a\x00\x01"
			   "1"
			   "\x26\x00\x01"
			   "a\x00\x01"
			   "2"
			   "\x26\x00\x01"
			   "b\x00\x00"));
	assert_props("{\"user_properties\":{\"y\":\"2\",\"x\":\"\\u00e9\"}}",
		     BYTES("\x26\x00\x01"
			   "y\x00\x01"
			   "2"
			   "\x26\x00\x01"
			   "x\x00\x02\xC3\xA9"));
	assert_props("{\"user_properties\":[]}", NULL, 0);
	assert_props("{\"user_properties\":{}}", NULL, 0);
	/* Several: in the order they are written. */
	assert_props("{\"payload_format_indicator\":1,\"content_type\":\"a\","
		     "\"user_properties\":{\"k\":\"v\"},\"message_expiry_interval\":1}",
		     BYTES("\x01\x01"
			   "\x03\x00\x01"
			   "a"
			   "\x26\x00\x01"
			   "k\x00\x01"
			   "v"
			   "\x02\x00\x00\x00\x01"));
}

static void assert_props_refused(const char *json, const char *named)
{
	struct buf b = BUF_INIT;
	struct jsonmsg_error err = {99, NULL, ""};
	/* What was there before stays, and nothing is left behind. */
	assert_int_equal(buf_append(&b, "keep", 4), 0);
	int rc = props_from(json, &b, &err);
	if (rc != -EINVAL)
		fail_msg("%s: %d, wanted -EINVAL", json, rc);
	assert_string_equal(err.code, "invalid_properties");
	assert_int_equal(err.index, -1);
	assert_contains(err.message, named);
	assert_bytes(b.data, b.len, BYTES("keep"));
	buf_clear(&b);
}

static void test_props_refused(void **state)
{
	(void)state;
	assert_props_refused("[]", "properties");
	assert_props_refused("null", "properties");
	assert_props_refused("{\"content_type\":5}", "content_type");
	assert_props_refused("{\"content_type\":null}", "content_type");
	assert_props_refused("{\"content_type\":\"a\\u0001\"}", "content_type");
	assert_props_refused("{\"content_type\":\"a\\u0000\"}", "content_type");
	assert_props_refused("{\"content_type\":\"ok\",\"response_topic\":\"a/+\"}",
			     "response_topic");
	assert_props_refused("{\"response_topic\":\"#\"}", "response_topic");
	assert_props_refused("{\"response_topic\":\"\"}", "response_topic");
	assert_props_refused("{\"response_topic\":[]}", "response_topic");
	assert_props_refused("{\"message_expiry_interval\":4294967296}", "message_expiry_interval");
	assert_props_refused("{\"message_expiry_interval\":-1}", "message_expiry_interval");
	assert_props_refused("{\"message_expiry_interval\":1.5}", "message_expiry_interval");
	assert_props_refused("{\"message_expiry_interval\":\"60\"}", "message_expiry_interval");
	assert_props_refused("{\"payload_format_indicator\":2}", "payload_format_indicator");
	assert_props_refused("{\"payload_format_indicator\":true}", "payload_format_indicator");
	assert_props_refused("{\"payload_format_indicator\":\"1\"}", "payload_format_indicator");
	assert_props_refused("{\"correlation_data\":1}", "correlation_data");
	assert_props_refused("{\"correlation_data_base64\":\"AA=A\"}", "correlation_data_base64");
	assert_props_refused("{\"correlation_data_base64\":[]}", "correlation_data_base64");
	assert_props_refused("{\"correlation_data\":\"a\",\"correlation_data_base64\":\"YQ==\"}",
			     "correlation_data_base64");
	assert_props_refused("{\"user_properties\":\"a=b\"}", "user_properties");
	assert_props_refused("{\"user_properties\":[\"a\",\"b\"]}", "user_properties");
	assert_props_refused("{\"user_properties\":[[\"a\"]]}", "user_properties");
	assert_props_refused("{\"user_properties\":[[\"a\",\"b\",\"c\"]]}", "user_properties");
	assert_props_refused("{\"user_properties\":[[\"a\",1]]}", "user_properties");
	assert_props_refused("{\"user_properties\":[[1,\"a\"]]}", "user_properties");
	assert_props_refused("{\"user_properties\":[[\"a\",\"b\"],[\"a\\u0001\",\"b\"]]}",
			     "item 1");
	assert_props_refused("{\"user_properties\":[[\"a\",\"b\\u0000\"]]}", "user_properties");
	assert_props_refused("{\"user_properties\":{\"a\":1}}", "\"a\"");
	assert_props_refused("{\"user_properties\":{\"a\":\"\\u0085\"}}", "user_properties");
	assert_props_refused("{\"user_properties\":{\"a\\u0002\":\"b\"}}", "user_properties");
	/* Not settable from JSON: the broker's or the link's business. */
	assert_props_refused("{\"subscription_identifiers\":[1]}", "subscription_identifiers");
	assert_props_refused("{\"subscription_identifier\":1}", "\"subscription_identifier\"");
	assert_props_refused("{\"topic_alias\":1}", "\"topic_alias\"");
	assert_props_refused("{\"content_type\":\"a\",\"Content_Type\":\"b\"}", "\"Content_Type\"");
	assert_props_refused("{\"user_property\":[]}", "\"user_property\"");

	/* A user property value is never echoed: it may be a token. */
	struct buf b = BUF_INIT;
	struct jsonmsg_error err;
	assert_int_equal(props_from("{\"user_properties\":{\"auth\":\"s3cr3t\\u0001\"}}", &b, &err),
			 -EINVAL);
	assert_lacks(err.message, "s3cr3t");
	buf_clear(&b);
}

static void test_props_too_long(void **state)
{
	(void)state;
	static char json[70100];
	char *x = malloc(65536);
	assert_non_null(x);
	memset(x, 'x', 65536);

	snprintf(json, sizeof json, "{\"content_type\":\"%.65535s\"}", x);
	struct buf b = BUF_INIT;
	struct jsonmsg_error err;
	assert_int_equal(props_from(json, &b, &err), 0);
	assert_int_equal(b.len, 1 + 2 + 65535);
	buf_clear(&b);
	snprintf(json, sizeof json, "{\"content_type\":\"%.65536s\"}", x);
	assert_props_refused(json, "content_type");
	snprintf(json, sizeof json, "{\"correlation_data\":\"%.65536s\"}", x);
	assert_props_refused(json, "correlation_data");
	snprintf(json, sizeof json, "{\"user_properties\":[[\"%.65536s\",\"v\"]]}", x);
	assert_props_refused(json, "user_properties");
	snprintf(json, sizeof json, "{\"user_properties\":{\"k\":\"%.65536s\"}}", x);
	assert_props_refused(json, "user_properties");
	free(x);
}

static void test_props_in_messages(void **state)
{
	(void)state;
	struct jsonmsg_batch b = parse_ok(
	    "[{\"topic\":\"a\"},{\"topic\":\"b\",\"properties\":{\"content_type\":\"c\"}}]", 2);
	assert_null(b.msgs[0].props);
	assert_bytes(b.msgs[1].props, b.msgs[1].props_len,
		     BYTES("\x03\x00\x01"
			   "c"));
	jsonmsg_batch_clear(&b);

	b = parse_ok("{\"topic\":\"a\",\"properties\":{}}", 1);
	assert_null(b.msgs[0].props);
	assert_int_equal(b.msgs[0].props_len, 0);
	jsonmsg_batch_clear(&b);

	struct jsonmsg_error e =
	    parse_bad("[{\"topic\":\"a\"},{\"topic\":\"b\",\"properties\":{\"x\":1}}]", 10,
		      "invalid_properties", 1);
	assert_contains(e.message, "\"x\"");
	parse_bad("{\"topic\":\"a\",\"properties\":[]}", 10, "invalid_properties", 0);
	parse_bad("{\"topic\":\"a\",\"properties\":null}", 10, "invalid_properties", 0);
}

/* ---- writing ---- */

static void test_write_basic(void **state)
{
	(void)state;
	struct msg *m = msg_new("a/b", 3, "hello", 5, NULL, 0, 1, false);
	assert_non_null(m);
	assert_written(m, 0,
		       "{\"topic\":\"a/b\",\"payload\":\"hello\",\"qos\":1,\"retain\":false}");
	assert_written(m, 1700000000123ull,
		       "{\"topic\":\"a/b\",\"payload\":\"hello\",\"qos\":1,"
		       "\"retain\":false,\"ts\":1700000000123}");
	assert_written(m, 253402300799999ull, /* the last ms of 9999 */
		       "{\"topic\":\"a/b\",\"payload\":\"hello\",\"qos\":1,"
		       "\"retain\":false,\"ts\":253402300799999}");
	free(m);

	m = msg_new("t", 1, "", 0, NULL, 0, 0, true);
	assert_written(m, 0, "{\"topic\":\"t\",\"payload\":\"\",\"qos\":0,\"retain\":true}");
	free(m);

	/* Appends after what is there: the caller may have written "data: " first. */
	m = msg_new("t", 1, "x", 1, NULL, 0, 2, false);
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, "data: ", 6), 0);
	assert_int_equal(jsonmsg_write(&b, m, 0), 0);
	assert_int_equal(buf_put_u8(&b, 0), 0);
	assert_string_equal((char *)b.data,
			    "data: {\"topic\":\"t\",\"payload\":\"x\",\"qos\":2,\"retain\":false}");
	buf_clear(&b);
	free(m);
}

static void test_write_escaping(void **state)
{
	(void)state;
	static const char payload[] = "q\" b\\ s/ \n\r\t\b\f \x01\x1f\x7f \0 \xC3\xA9 \xE2\x80\xA8 "
				      "\xF0\x9F\x98\x80 \xC2\x85";
	struct msg *m =
	    msg_new("a\"b\\c/\xC3\xA9", 8, payload, sizeof payload - 1, NULL, 0, 0, false);
	assert_written(m, 0,
		       "{\"topic\":\"a\\\"b\\\\c/\xC3\xA9\",\"payload\":\"q\\\" b\\\\ s/ "
		       "\\n\\r\\t\\b\\f \\u0001\\u001f\x7f \\u0000 \xC3\xA9 \xE2\x80\xA8 "
		       "\xF0\x9F\x98\x80 \xC2\x85\",\"qos\":0,\"retain\":false}");
	free(m);

	/* Every control character is escaped. */
	char ctl[32];
	for (int i = 0; i < 32; i++)
		ctl[i] = (char)i;
	m = msg_new("t", 1, ctl, sizeof ctl, NULL, 0, 0, false);
	assert_written(m, 0,
		       "{\"topic\":\"t\",\"payload\":\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005"
		       "\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012"
		       "\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c"
		       "\\u001d\\u001e\\u001f\",\"qos\":0,\"retain\":false}");
	free(m);
}

static void test_write_binary_payload(void **state)
{
	(void)state;
	static const struct {
		const char *payload;
		size_t len;
		const char *b64;
	} bin[] = {
	    {"\xFF\xFE\x00", 3, "//4A"},
	    {"ok\x80", 3, "b2uA"},               /* a lone continuation byte */
	    {"\xC0\x80", 2, "wIA="},             /* overlong U+0000 */
	    {"\xED\xA0\x80", 3, "7aCA"},         /* a surrogate */
	    {"\xF4\x90\x80\x80", 4, "9JCAgA=="}, /* past U+10FFFF */
	    {"abc\xE2\x82", 5, "YWJj4oI="},      /* cut in a character */
	};
	for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
		struct msg *m = msg_new("t", 1, bin[i].payload, bin[i].len, NULL, 0, 1, true);
		char want[128];
		snprintf(want, sizeof want,
			 "{\"topic\":\"t\",\"payload_base64\":\"%s\",\"qos\":1,\"retain\":true}",
			 bin[i].b64);
		assert_written(m, 0, want);
		free(m);
	}
}

/* A topic that is not UTF-8 cannot come from the codec; if it did, the output is still JSON. */
static void test_write_bad_topic_bytes(void **state)
{
	(void)state;
	struct msg *m = msg_new("a\xFF\xC3/\xE2\x82", 6, "", 0, NULL, 0, 0, false);
	assert_written(m, 0,
		       "{\"topic\":\"a\\ufffd\\ufffd/\\ufffd\\ufffd\",\"payload\":\"\",\"qos\":0,"
		       "\"retain\":false}");
	free(m);
}

static void test_write_properties(void **state)
{
	(void)state;
	struct buf p = BUF_INIT;
	/* Out of the written order, with a Topic Alias that JSON does not show. */
	assert_int_equal(props_put_pair(&p, "k", 1, "v1", 2), 0);
	assert_int_equal(props_put_int(&p, MQTT_PROP_SUBSCRIPTION_ID, 7), 0);
	assert_int_equal(props_put_int(&p, MQTT_PROP_TOPIC_ALIAS, 3), 0);
	assert_int_equal(props_put_bytes(&p, MQTT_PROP_CORRELATION_DATA, "\x00\xFF", 2), 0);
	assert_int_equal(props_put_int(&p, MQTT_PROP_PAYLOAD_FORMAT, 1), 0);
	assert_int_equal(props_put_pair(&p, "k", 1, "v\"2", 3), 0);
	assert_int_equal(props_put_int(&p, MQTT_PROP_MESSAGE_EXPIRY, 4294967295u), 0);
	assert_int_equal(props_put_bytes(&p, MQTT_PROP_RESPONSE_TOPIC, "r/\xC3\xA9", 4), 0);
	assert_int_equal(props_put_int(&p, MQTT_PROP_SUBSCRIPTION_ID, 268435455), 0);
	assert_int_equal(props_put_bytes(&p, MQTT_PROP_CONTENT_TYPE, "application/json", 16), 0);
	struct codec_error cerr;
	assert_int_equal(props_validate(p.data, p.len, MQTT_PUBLISH, &cerr), 0);

	struct msg *m = msg_new("t", 1, "{}", 2, p.data, p.len, 1, false);
	assert_written(m, 5,
		       "{\"topic\":\"t\",\"payload\":\"{}\",\"qos\":1,\"retain\":false,\"ts\":5,"
		       "\"properties\":{\"content_type\":\"application/json\","
		       "\"response_topic\":\"r/\xC3\xA9\",\"message_expiry_interval\":4294967295,"
		       "\"payload_format_indicator\":1,\"correlation_data_base64\":\"AP8=\","
		       "\"user_properties\":[[\"k\",\"v1\"],[\"k\",\"v\\\"2\"]]}}");
	free(m);
	buf_clear(&p);

	/* Text correlation data; a subscription identifier, not shown. */
	assert_int_equal(props_put_bytes(&p, MQTT_PROP_CORRELATION_DATA, "req\n1", 5), 0);
	assert_int_equal(props_put_int(&p, MQTT_PROP_SUBSCRIPTION_ID, 1), 0);
	m = msg_new("t", 1, "", 0, p.data, p.len, 0, false);
	assert_written(m, 0,
		       "{\"topic\":\"t\",\"payload\":\"\",\"qos\":0,\"retain\":false,"
		       "\"properties\":{\"correlation_data\":\"req\\n1\"}}");
	free(m);
	buf_clear(&p);

	/* Only what JSON does not show: no "properties" at all. */
	assert_int_equal(props_put_int(&p, MQTT_PROP_TOPIC_ALIAS, 9), 0);
	m = msg_new("t", 1, "", 0, p.data, p.len, 0, false);
	assert_written(m, 0, "{\"topic\":\"t\",\"payload\":\"\",\"qos\":0,\"retain\":false}");
	free(m);
	buf_clear(&p);
}

/* ---- both ways ---- */

static void test_parse_then_write(void **state)
{
	(void)state;
	assert_rewritten(
	    "{\"retain\":true,\"qos\":2,\"payload\":{\"t\": 21.3},\"topic\":\"home/kitchen\","
	    "\"properties\":{\"user_properties\":{\"unit\":\"\\u00b0C\",\"src\":\"x\"},"
	    "\"correlation_data\":\"r-1\",\"payload_format_indicator\":1,"
	    "\"message_expiry_interval\":30,\"response_topic\":\"reply/me\","
	    "\"content_type\":\"application/json\"}}",
	    1,
	    "{\"topic\":\"home/"
	    "kitchen\",\"payload\":\"{\\\"t\\\":21.3}\",\"qos\":2,\"retain\":true,"
	    "\"ts\":1,\"properties\":{\"content_type\":\"application/json\","
	    "\"response_topic\":\"reply/me\",\"message_expiry_interval\":30,"
	    "\"payload_format_indicator\":1,\"correlation_data\":\"r-1\","
	    "\"user_properties\":[[\"unit\",\"\xC2\xB0"
	    "C\"],[\"src\",\"x\"]]}}");
	assert_rewritten("{\"topic\":\"b\",\"payload_base64\":\"/wEC\",\"properties\":"
			 "{\"correlation_data_base64\":\"/w==\",\"user_properties\":"
			 "[[\"a\",\"1\"],[\"a\",\"1\"]]}}",
			 0,
			 "{\"topic\":\"b\",\"payload_base64\":\"/wEC\",\"qos\":0,\"retain\":false,"
			 "\"properties\":{\"correlation_data_base64\":\"/w==\","
			 "\"user_properties\":[[\"a\",\"1\"],[\"a\",\"1\"]]}}");
	/* Base64 of text comes back as text. */
	assert_rewritten("{\"topic\":\"b\",\"payload_base64\":\"aGk=\",\"properties\":"
			 "{\"correlation_data_base64\":\"aGk=\"}}",
			 0,
			 "{\"topic\":\"b\",\"payload\":\"hi\",\"qos\":0,\"retain\":false,"
			 "\"properties\":{\"correlation_data\":\"hi\"}}");
	assert_rewritten("{\"topic\":\"b\",\"payload\":\"a\\u0000\\u2028\"}", 0,
			 "{\"topic\":\"b\",\"payload\":\"a\\u0000\xE2\x80\xA8\",\"qos\":0,"
			 "\"retain\":false}");
}

/* write(parse(write(m))) == write(m), for payloads of every kind. */
static void test_round_trip(void **state)
{
	(void)state;
	srand(2028);
	for (int round = 0; round < 2000; round++) {
		uint8_t payload[64];
		size_t len = (size_t)rand() % sizeof payload;
		for (size_t i = 0; i < len; i++) {
			switch (round % 4) {
			case 0: /* any bytes: mostly base64 */
				payload[i] = (uint8_t)rand();
				break;
			case 1: /* ASCII with control characters */
				payload[i] = (uint8_t)(rand() % 128);
				break;
			case 2: /* JSON's special characters */
				payload[i] = (uint8_t) "\"\\/\n\r\t\b\f\x01 a"[rand() % 11];
				break;
			default: /* multi-byte UTF-8 */
				if (len - i >= 3) {
					memcpy(payload + i,
					       rand() % 2 ? "\xE2\x82\xAC" : "\xC3\xA9\x41", 3);
					i += 2;
				} else {
					payload[i] = 'z';
				}
			}
		}
		struct buf p = BUF_INIT;
		assert_int_equal(props_put_bytes(&p, MQTT_PROP_CORRELATION_DATA, payload, len % 9),
				 0);
		assert_int_equal(props_put_pair(&p, "k", 1, "v", 1), 0);
		struct msg *m =
		    msg_new("r/t", 3, payload, len, p.data, p.len, (uint8_t)(round % 3), round % 2);
		char *first = write_str(m, 0);

		struct jsonmsg_batch b = parse_ok(first, 1);
		assert_payload(&b.msgs[0], payload, len);
		assert_bytes(b.msgs[0].props, b.msgs[0].props_len, p.data, p.len);
		struct msg *again = to_msg(&b.msgs[0]);
		char *second = write_str(again, 0);
		assert_string_equal(first, second);

		free(second);
		free(again);
		jsonmsg_batch_clear(&b);
		free(first);
		free(m);
		buf_clear(&p);
	}
}

/* Linear, not quadratic: a large payload full of escapes is written in one go. */
static void test_write_large(void **state)
{
	(void)state;
	size_t len = 4u << 20;
	char *payload = malloc(len);
	assert_non_null(payload);
	for (size_t i = 0; i < len; i++)
		payload[i] = i % 3 ? 'a' : '\n';
	struct msg *m = msg_new("t", 1, payload, len, NULL, 0, 0, false);
	assert_non_null(m);
	struct buf b = BUF_INIT;
	assert_int_equal(jsonmsg_write(&b, m, 0), 0);
	assert_null(memchr(b.data, '\n', b.len));
	assert_int_equal(b.len,
			 strlen("{\"topic\":\"t\",\"payload\":\"\",\"qos\":0,\"retain\":false}") +
			     len + (len + 2) / 3);
	buf_clear(&b);
	free(m);
	free(payload);
}

static void test_sse_event(void **state)
{
	struct msg *m = msg_new("a/b", 3, "line1\nline2", 11, NULL, 0, 1, true);
	struct buf b = BUF_INIT;

	(void)state;
	assert_non_null(m);
	assert_int_equal(jsonmsg_sse(&b, "inst-7", m, 1700000000123ull), 0);
	assert_int_equal(b.len, strlen("id: inst-7\ndata: {\"topic\":\"a/b\",\"payload\":"
				       "\"line1\\nline2\",\"qos\":1,\"retain\":true,"
				       "\"ts\":1700000000123}\n\n"));
	assert_memory_equal(b.data,
			    "id: inst-7\ndata: {\"topic\":\"a/b\",\"payload\":\"line1\\nline2\","
			    "\"qos\":1,\"retain\":true,\"ts\":1700000000123}\n\n",
			    b.len);
	/* Without an id (retained values), appended after what is there. */
	{
		static const char want[] = "data: {\"topic\":\"a/b\",\"payload\":\"line1\\nline2\","
					   "\"qos\":1,\"retain\":true}\n\n";
		size_t before = b.len;
		assert_int_equal(jsonmsg_sse(&b, NULL, m, 0), 0);
		assert_int_equal(b.len - before, sizeof(want) - 1);
		assert_memory_equal(b.data + before, want, sizeof(want) - 1);
	}
	buf_clear(&b);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_object),
	    cmocka_unit_test(test_array),
	    cmocka_unit_test(test_payload_kinds),
	    cmocka_unit_test(test_payload_base64),
	    cmocka_unit_test(test_body_errors),
	    cmocka_unit_test(test_message_errors),
	    cmocka_unit_test(test_topic_errors),
	    cmocka_unit_test(test_qos_errors),
	    cmocka_unit_test(test_payload_errors),
	    cmocka_unit_test(test_props_to_bytes),
	    cmocka_unit_test(test_props_refused),
	    cmocka_unit_test(test_props_too_long),
	    cmocka_unit_test(test_props_in_messages),
	    cmocka_unit_test(test_write_basic),
	    cmocka_unit_test(test_write_escaping),
	    cmocka_unit_test(test_write_binary_payload),
	    cmocka_unit_test(test_write_bad_topic_bytes),
	    cmocka_unit_test(test_write_properties),
	    cmocka_unit_test(test_sse_event),
	    cmocka_unit_test(test_parse_then_write),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_write_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
