/* tests/unit/test_props.c — MQTT 5 properties: the §2.2.2.2 table, values, iteration, building. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "props.h"

/* MQTT 5 §2.2.2.2, written out per packet rather than per property, to check the table. */
static const struct {
	int where;
	const char *ids; /* the identifiers allowed there */
} allowed[] = {
    {MQTT_CONNECT, "\x11\x15\x16\x17\x19\x21\x22\x26\x27"},
    {MQTT_CONNACK, "\x11\x12\x13\x15\x16\x1A\x1C\x1F\x21\x22\x24\x25\x26\x27\x28\x29\x2A"},
    {MQTT_PUBLISH, "\x01\x02\x03\x08\x09\x0B\x23\x26"},
    {MQTT_PUBACK, "\x1F\x26"},
    {MQTT_PUBREC, "\x1F\x26"},
    {MQTT_PUBREL, "\x1F\x26"},
    {MQTT_PUBCOMP, "\x1F\x26"},
    {MQTT_SUBSCRIBE, "\x0B\x26"},
    {MQTT_SUBACK, "\x1F\x26"},
    {MQTT_UNSUBSCRIBE, "\x26"},
    {MQTT_UNSUBACK, "\x1F\x26"},
    {MQTT_PINGREQ, ""},
    {MQTT_PINGRESP, ""},
    {MQTT_DISCONNECT, "\x11\x1C\x1F\x26"},
    {MQTT_AUTH, "\x15\x16\x1F\x26"},
    {PROPS_IN_WILL, "\x01\x02\x03\x08\x09\x18\x26"},
};

static const struct {
	uint8_t id;
	enum mqtt_prop_type type;
} types[] = {
    {0x01, MQTT_PROP_T_BYTE},   {0x02, MQTT_PROP_T_U32},    {0x03, MQTT_PROP_T_STRING},
    {0x08, MQTT_PROP_T_STRING}, {0x09, MQTT_PROP_T_BINARY}, {0x0B, MQTT_PROP_T_VARINT},
    {0x11, MQTT_PROP_T_U32},    {0x12, MQTT_PROP_T_STRING}, {0x13, MQTT_PROP_T_U16},
    {0x15, MQTT_PROP_T_STRING}, {0x16, MQTT_PROP_T_BINARY}, {0x17, MQTT_PROP_T_BYTE},
    {0x18, MQTT_PROP_T_U32},    {0x19, MQTT_PROP_T_BYTE},   {0x1A, MQTT_PROP_T_STRING},
    {0x1C, MQTT_PROP_T_STRING}, {0x1F, MQTT_PROP_T_STRING}, {0x21, MQTT_PROP_T_U16},
    {0x22, MQTT_PROP_T_U16},    {0x23, MQTT_PROP_T_U16},    {0x24, MQTT_PROP_T_BYTE},
    {0x25, MQTT_PROP_T_BYTE},   {0x26, MQTT_PROP_T_PAIR},   {0x27, MQTT_PROP_T_U32},
    {0x28, MQTT_PROP_T_BYTE},   {0x29, MQTT_PROP_T_BYTE},   {0x2A, MQTT_PROP_T_BYTE},
};

#define NTYPES (sizeof types / sizeof types[0])

static bool is_allowed(uint8_t id, int where)
{
	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
		if (allowed[i].where == where)
			return strchr(allowed[i].ids, id) != NULL && id != 0;
	fail_msg("no row for %d", where);
	return false;
}

/* A valid value of property @i of types[], appended to @b. */
static void put_sample(struct buf *b, size_t i)
{
	uint8_t id = types[i].id;
	switch (types[i].type) {
	case MQTT_PROP_T_BYTE:
		assert_int_equal(props_put_int(b, id, 1), 0);
		break;
	case MQTT_PROP_T_U16:
	case MQTT_PROP_T_U32:
		assert_int_equal(props_put_int(b, id, 10), 0);
		break;
	case MQTT_PROP_T_VARINT:
		assert_int_equal(props_put_int(b, id, 300), 0);
		break;
	case MQTT_PROP_T_STRING:
		assert_int_equal(props_put_bytes(b, id, "a/b", 3), 0);
		break;
	case MQTT_PROP_T_BINARY:
		assert_int_equal(props_put_bytes(b, id, "\x00\xFF", 2), 0);
		break;
	case MQTT_PROP_T_PAIR:
		assert_int_equal(props_put_pair(b, "k", 1, "v", 1), 0);
		break;
	}
}

static void expect(const uint8_t *p, size_t len, int where, int rc, uint8_t reason)
{
	struct codec_error err = {0, NULL};
	int got = props_validate(p, len, where, &err);
	if (got != rc)
		fail_msg("props_validate(where %d, first id 0x%02X): %d, want %d", where,
			 len ? p[0] : 0, got, rc);
	if (rc == -EPROTO) {
		assert_int_equal(err.reason, reason);
		assert_non_null(err.msg);
	}
}

static void expect_bytes(const char *bytes, size_t len, int where, int rc, uint8_t reason)
{
	expect((const uint8_t *)bytes, len, where, rc, reason);
}

static void test_types(void **state)
{
	(void)state;
	for (unsigned id = 0; id < 256; id++) {
		enum mqtt_prop_type want = 0;
		for (size_t i = 0; i < NTYPES; i++)
			if (types[i].id == id)
				want = types[i].type;
		if (props_type((uint8_t)id) != want)
			fail_msg("props_type(0x%02X)", id);
	}
}

/* Every property in every packet: allowed where the table says, a protocol error elsewhere. */
static void test_every_property_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		struct buf b = BUF_INIT;
		put_sample(&b, i);
		for (int where = 1; where <= PROPS_IN_WILL; where++) {
			bool ok = is_allowed(types[i].id, where);
			expect(b.data, b.len, where, ok ? 0 : -EPROTO, MQTT_RC_PROTOCOL_ERROR);
		}
		buf_clear(&b);
	}
}

static void test_unknown_ids(void **state)
{
	(void)state;
	for (unsigned id = 0; id < 256; id++) {
		if (props_type((uint8_t)id))
			continue;
		uint8_t p[] = {(uint8_t)id, 0, 0, 0, 0};
		for (int where = 1; where <= PROPS_IN_WILL; where++)
			expect(p, sizeof p, where, -EPROTO, MQTT_RC_MALFORMED);
	}
}

static int first_allowed_where(uint8_t id)
{
	for (int where = 1; where <= PROPS_IN_WILL; where++)
		if (is_allowed(id, where))
			return where;
	fail_msg("0x%02X allowed nowhere", id);
	return 0;
}

static void test_truncated(void **state)
{
	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		struct buf b = BUF_INIT;
		put_sample(&b, i);
		int where = first_allowed_where(types[i].id);
		expect(b.data, 0, where, 0, 0);
		for (size_t cut = 1; cut < b.len; cut++)
			expect(b.data, cut, where, -EPROTO, MQTT_RC_MALFORMED);
		buf_clear(&b);
	}
}

static void test_duplicates(void **state)
{
	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		struct buf b = BUF_INIT;
		put_sample(&b, i);
		put_sample(&b, i);
		uint8_t id = types[i].id;
		for (int where = 1; where <= PROPS_IN_WILL; where++) {
			if (!is_allowed(id, where))
				continue;
			bool twice = id == MQTT_PROP_USER_PROPERTY ||
				     (id == MQTT_PROP_SUBSCRIPTION_ID && where == MQTT_PUBLISH);
			expect(b.data, b.len, where, twice ? 0 : -EPROTO, MQTT_RC_PROTOCOL_ERROR);
		}
		buf_clear(&b);
	}
}

/* A duplicate is found even with other properties between the two. */
static void test_duplicate_apart(void **state)
{
	(void)state;
	expect_bytes("\x11\x00\x00\x00\x01"
		     "\x26\x00\x01k\x00\x01v"
		     "\x11\x00\x00\x00\x02",
		     17, MQTT_CONNECT, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
}

static void test_flag_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < NTYPES; i++) {
		if (types[i].type != MQTT_PROP_T_BYTE)
			continue;
		int where = first_allowed_where(types[i].id);
		for (unsigned v = 0; v < 256; v++) {
			uint8_t p[] = {types[i].id, (uint8_t)v};
			expect(p, sizeof p, where, v <= 1 ? 0 : -EPROTO, MQTT_RC_PROTOCOL_ERROR);
		}
	}
}

static void test_zero_values(void **state)
{
	(void)state;
	expect_bytes("\x21\x00\x00", 3, MQTT_CONNECT, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
	expect_bytes("\x27\x00\x00\x00\x00", 5, MQTT_CONNACK, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
	expect_bytes("\x23\x00\x00", 3, MQTT_PUBLISH, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
	expect_bytes("\x0B\x00", 2, MQTT_SUBSCRIBE, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
	expect_bytes("\x0B\x00", 2, MQTT_PUBLISH, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
	/* Zero is fine for these. */
	expect_bytes("\x22\x00\x00", 3, MQTT_CONNECT, 0, 0);
	expect_bytes("\x13\x00\x00", 3, MQTT_CONNACK, 0, 0);
	expect_bytes("\x11\x00\x00\x00\x00", 5, MQTT_DISCONNECT, 0, 0);
	expect_bytes("\x02\x00\x00\x00\x00", 5, MQTT_PUBLISH, 0, 0);
	expect_bytes("\x18\x00\x00\x00\x00", 5, PROPS_IN_WILL, 0, 0);
}

static void test_subscription_id_encoding(void **state)
{
	(void)state;
	expect_bytes("\x0B\x01", 2, MQTT_SUBSCRIBE, 0, 0);
	expect_bytes("\x0B\xFF\xFF\xFF\x7F", 5, MQTT_SUBSCRIBE, 0, 0);
	expect_bytes("\x0B\x80\x00", 3, MQTT_SUBSCRIBE, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x0B\x81\x80\x00", 4, MQTT_SUBSCRIBE, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x0B\xFF\xFF\xFF\xFF\x01", 6, MQTT_SUBSCRIBE, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x0B\x80", 2, MQTT_SUBSCRIBE, -EPROTO, MQTT_RC_MALFORMED);
}

static void test_strings(void **state)
{
	(void)state;
	expect_bytes("\x03\x00\x02\xC0\x80", 5, MQTT_PUBLISH, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x03\x00\x01\x00", 4, MQTT_PUBLISH, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x1F\x00\x01\x01", 4, MQTT_PUBACK, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x15\x00\x03\xED\xA0\x80", 6, MQTT_CONNECT, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x26\x00\x01\xFF\x00\x01v", 7, MQTT_PUBLISH, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x26\x00\x01k\x00\x01\xFF", 7, MQTT_PUBLISH, -EPROTO, MQTT_RC_MALFORMED);
	expect_bytes("\x26\x00\x00\x00\x00", 5, MQTT_PUBLISH, 0, 0);
	expect_bytes("\x1F\x00\x00", 3, MQTT_PUBACK, 0, 0);
	/* Binary data is not UTF-8. */
	expect_bytes("\x09\x00\x03\x00\xFF\xC0", 6, MQTT_PUBLISH, 0, 0);
	expect_bytes("\x16\x00\x01\x00", 4, MQTT_AUTH, 0, 0);
}

static void test_response_topic(void **state)
{
	(void)state;
	expect_bytes("\x08\x00\x03"
		     "a/b",
		     6, MQTT_PUBLISH, 0, 0);
	expect_bytes("\x08\x00\x03"
		     "a/+",
		     6, MQTT_PUBLISH, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
	expect_bytes("\x08\x00\x01#", 4, PROPS_IN_WILL, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
	expect_bytes("\x08\x00\x00", 3, MQTT_PUBLISH, -EPROTO, MQTT_RC_PROTOCOL_ERROR);
}

static void test_where_range(void **state)
{
	(void)state;
	struct codec_error err = {0, NULL};
	assert_int_equal(props_validate(NULL, 0, 0, &err), -EINVAL);
	assert_int_equal(props_validate(NULL, 0, PROPS_IN_WILL + 1, &err), -EINVAL);
	assert_int_equal(props_validate(NULL, 0, -1, &err), -EINVAL);
	for (int where = 1; where <= PROPS_IN_WILL; where++)
		assert_int_equal(props_validate(NULL, 0, where, &err), 0);
}

static void test_iterate_and_find(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(props_put_int(&b, MQTT_PROP_PAYLOAD_FORMAT, 1), 0);
	assert_int_equal(props_put_int(&b, MQTT_PROP_MESSAGE_EXPIRY, 3600), 0);
	assert_int_equal(props_put_bytes(&b, MQTT_PROP_CONTENT_TYPE, "text/plain", 10), 0);
	assert_int_equal(props_put_int(&b, MQTT_PROP_SUBSCRIPTION_ID, 200), 0);
	assert_int_equal(props_put_pair(&b, "k1", 2, "v1", 2), 0);
	assert_int_equal(props_put_pair(&b, "k2", 2, "", 0), 0);
	assert_int_equal(props_put_bytes(&b, MQTT_PROP_CORRELATION_DATA, "\x01\x02", 2), 0);
	assert_int_equal(props_put_int(&b, MQTT_PROP_TOPIC_ALIAS, 65535), 0);
	expect(b.data, b.len, MQTT_PUBLISH, 0, 0);

	struct props_iter it;
	struct mqtt_prop p;
	props_iter_init(&it, b.data, b.len);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.id, MQTT_PROP_PAYLOAD_FORMAT);
	assert_int_equal(p.value, 1);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.value, 3600);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.id, MQTT_PROP_CONTENT_TYPE);
	assert_int_equal(p.len, 10);
	assert_memory_equal(p.data, "text/plain", 10);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.value, 200);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.id, MQTT_PROP_USER_PROPERTY);
	assert_memory_equal(p.data, "k1", 2);
	assert_int_equal(p.len2, 2);
	assert_memory_equal(p.data2, "v1", 2);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.len2, 0);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.id, MQTT_PROP_CORRELATION_DATA);
	assert_int_equal(p.len, 2);
	assert_true(props_next(&it, &p));
	assert_int_equal(p.value, 65535);
	assert_false(props_next(&it, &p));

	assert_true(props_find(b.data, b.len, MQTT_PROP_USER_PROPERTY, &p));
	assert_memory_equal(p.data, "k1", 2);
	assert_true(props_find(b.data, b.len, MQTT_PROP_TOPIC_ALIAS, &p));
	assert_int_equal(p.value, 65535);
	p.id = 0x77;
	assert_false(props_find(b.data, b.len, MQTT_PROP_RESPONSE_TOPIC, &p));
	assert_int_equal(p.id, 0x77);
	assert_false(props_find(NULL, 0, MQTT_PROP_RESPONSE_TOPIC, &p));
	buf_clear(&b);
}

static void assert_built(const struct buf *b, const char *want, size_t len)
{
	assert_int_equal(b->len, len);
	assert_memory_equal(b->data, want, len);
}

static void test_build_exact_bytes(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(props_put_int(&b, MQTT_PROP_SESSION_EXPIRY, 0x12345678), 0);
	assert_int_equal(props_put_int(&b, MQTT_PROP_SUBSCRIPTION_ID, 200), 0);
	assert_int_equal(props_put_int(&b, MQTT_PROP_RECEIVE_MAXIMUM, 0x1234), 0);
	assert_int_equal(props_put_int(&b, MQTT_PROP_REQUEST_PROBLEM_INFO, 1), 0);
	assert_int_equal(props_put_bytes(&b, MQTT_PROP_REASON_STRING, "ab", 2), 0);
	assert_int_equal(props_put_pair(&b, "a", 1, "b", 1), 0);
	assert_built(&b,
		     "\x11\x12\x34\x56\x78"
		     "\x0B\xC8\x01"
		     "\x21\x12\x34"
		     "\x17\x01"
		     "\x1F\x00\x02"
		     "ab"
		     "\x26\x00\x01"
		     "a\x00\x01"
		     "b",
		     5 + 3 + 3 + 2 + 5 + 7);
	buf_clear(&b);
}

static void test_build_errors(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(props_put_int(&b, MQTT_PROP_PAYLOAD_FORMAT, 0), 0);
	size_t len = b.len;
	assert_int_equal(props_put_int(&b, MQTT_PROP_CONTENT_TYPE, 1), -EINVAL);
	assert_int_equal(props_put_int(&b, MQTT_PROP_USER_PROPERTY, 1), -EINVAL);
	assert_int_equal(props_put_int(&b, 0x00, 1), -EINVAL);
	assert_int_equal(props_put_int(&b, MQTT_PROP_PAYLOAD_FORMAT, 256), -EINVAL);
	assert_int_equal(props_put_int(&b, MQTT_PROP_RECEIVE_MAXIMUM, 65536), -EINVAL);
	assert_int_equal(props_put_int(&b, MQTT_PROP_SUBSCRIPTION_ID, 268435456), -EINVAL);
	assert_int_equal(props_put_bytes(&b, MQTT_PROP_PAYLOAD_FORMAT, "a", 1), -EINVAL);
	assert_int_equal(props_put_bytes(&b, MQTT_PROP_USER_PROPERTY, "a", 1), -EINVAL);
	assert_int_equal(props_put_bytes(&b, 0x04, "a", 1), -EINVAL);
	char *big = calloc(1, 65536);
	assert_non_null(big);
	assert_int_equal(props_put_bytes(&b, MQTT_PROP_CONTENT_TYPE, big, 65536), -ERANGE);
	assert_int_equal(props_put_pair(&b, big, 65536, "v", 1), -ERANGE);
	assert_int_equal(props_put_pair(&b, "k", 1, big, 65536), -ERANGE);
	assert_int_equal(b.len, len);
	assert_int_equal(props_put_int(&b, MQTT_PROP_MESSAGE_EXPIRY, UINT32_MAX), 0);
	assert_int_equal(props_put_bytes(&b, MQTT_PROP_CORRELATION_DATA, big, 65535), 0);
	assert_int_equal(b.len, len + 5 + 3 + 65535);
	free(big);
	buf_clear(&b);
}

static void test_copy_except(void **state)
{
	(void)state;
	struct buf in = BUF_INIT;
	assert_int_equal(props_put_int(&in, MQTT_PROP_PAYLOAD_FORMAT, 1), 0);
	assert_int_equal(props_put_pair(&in, "a", 1, "b", 1), 0);
	assert_int_equal(props_put_int(&in, MQTT_PROP_TOPIC_ALIAS, 7), 0);
	assert_int_equal(props_put_int(&in, MQTT_PROP_MESSAGE_EXPIRY, 60), 0);
	assert_int_equal(props_put_pair(&in, "c", 1, "d", 1), 0);
	expect(in.data, in.len, MQTT_PUBLISH, 0, 0);

	static const uint8_t drop[] = {MQTT_PROP_TOPIC_ALIAS, MQTT_PROP_USER_PROPERTY};
	struct buf out = BUF_INIT;
	assert_int_equal(props_put_int(&out, MQTT_PROP_PAYLOAD_FORMAT, 0), 0); /* kept as it was */
	assert_int_equal(props_copy_except(&out, in.data, in.len, drop, sizeof drop), 0);
	assert_built(&out,
		     "\x01\x00"
		     "\x01\x01"
		     "\x02\x00\x00\x00\x3C",
		     9);
	buf_clear(&out);

	assert_int_equal(props_copy_except(&out, in.data, in.len, NULL, 0), 0);
	assert_built(&out, (const char *)in.data, in.len);
	buf_clear(&out);

	static const uint8_t all[] = {0x01, 0x02, 0x23, 0x26};
	assert_int_equal(props_copy_except(&out, in.data, in.len, all, sizeof all), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(props_copy_except(&out, NULL, 0, all, sizeof all), 0);
	assert_int_equal(out.len, 0);
	buf_clear(&out);
	buf_clear(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_types),
	    cmocka_unit_test(test_every_property_everywhere),
	    cmocka_unit_test(test_unknown_ids),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_duplicate_apart),
	    cmocka_unit_test(test_flag_values),
	    cmocka_unit_test(test_zero_values),
	    cmocka_unit_test(test_subscription_id_encoding),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_response_topic),
	    cmocka_unit_test(test_where_range),
	    cmocka_unit_test(test_iterate_and_find),
	    cmocka_unit_test(test_build_exact_bytes),
	    cmocka_unit_test(test_build_errors),
	    cmocka_unit_test(test_copy_except),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
