/* tests/unit/test_jsonmsg_read.c — publish bodies in: messages parsed and refused, and
 * properties from JSON. */
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

#include "jsonmsg_test_util.h"

/* A byte string literal with its length, NULs included. */
#define BYTES(s) (const uint8_t *)(s), sizeof(s) - 1

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

static void assert_msg(const struct jsonmsg *m, const char *topic, const char *payload, int qos,
		       bool retain)
{
	assert_string_equal(m->topic, topic);
	assert_payload(m, payload, strlen(payload));
	assert_int_equal(m->qos, qos);
	assert_int_equal(m->retain, retain);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_object),     cmocka_unit_test(test_array),
	    cmocka_unit_test(test_payload_kinds),     cmocka_unit_test(test_payload_base64),
	    cmocka_unit_test(test_body_errors),       cmocka_unit_test(test_message_errors),
	    cmocka_unit_test(test_topic_errors),      cmocka_unit_test(test_qos_errors),
	    cmocka_unit_test(test_payload_errors),    cmocka_unit_test(test_props_to_bytes),
	    cmocka_unit_test(test_props_refused),     cmocka_unit_test(test_props_too_long),
	    cmocka_unit_test(test_props_in_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
