/* tests/unit/test_jsonmsg_write.c — received messages out (JSON and SSE), and parsed
 * messages written back. */
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
