/* tests/unit/test_buf.c — the growable buffer and the MQTT integer encodings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void assert_buf(const struct buf *b, const uint8_t *want, size_t len)
{
	assert_int_equal(b->len, len);
	assert_memory_equal(b->data, want, len);
}

static void test_fixed_width_big_endian(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_put_u8(&b, 0xAB), 0);
	assert_int_equal(buf_put_u16(&b, 0x1234), 0);
	assert_int_equal(buf_put_u32(&b, 0x89ABCDEF), 0);
	static const uint8_t want[] = {0xAB, 0x12, 0x34, 0x89, 0xAB, 0xCD, 0xEF};
	assert_buf(&b, want, sizeof want);
	buf_clear(&b);
}

/* Boundaries of each varint size (MQTT 5 §1.5.5 table). */
static const struct {
	uint32_t v;
	uint8_t enc[4];
	size_t len;
} varints[] = {
    {0, {0x00}, 1},
    {127, {0x7F}, 1},
    {128, {0x80, 0x01}, 2},
    {16383, {0xFF, 0x7F}, 2},
    {16384, {0x80, 0x80, 0x01}, 3},
    {2097151, {0xFF, 0xFF, 0x7F}, 3},
    {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
    {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
};

static void test_varint_put_and_get(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof varints / sizeof varints[0]; i++) {
		struct buf b = BUF_INIT;
		assert_int_equal(buf_put_varint(&b, varints[i].v), 0);
		assert_buf(&b, varints[i].enc, varints[i].len);

		uint32_t v = 0;
		size_t used = 0;
		assert_int_equal(buf_get_varint(b.data, b.len, &v, &used), 0);
		assert_int_equal(v, varints[i].v);
		assert_int_equal(used, varints[i].len);
		/* Every shorter prefix is incomplete, not wrong. */
		for (size_t cut = 0; cut < b.len; cut++)
			assert_int_equal(buf_get_varint(b.data, cut, &v, &used), -EAGAIN);
		buf_clear(&b);
	}
}

static void test_varint_range(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_put_u8(&b, 1), 0);
	assert_int_equal(buf_put_varint(&b, 268435456), -ERANGE);
	assert_int_equal(buf_put_varint(&b, UINT32_MAX), -ERANGE);
	assert_int_equal(b.len, 1);
	buf_clear(&b);
}

static void test_varint_malformed(void **state)
{
	(void)state;
	static const uint8_t five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
	static const uint8_t four_cont[] = {0x80, 0x80, 0x80, 0x80};
	static const uint8_t overlong2[] = {0x80, 0x00};
	static const uint8_t overlong3[] = {0xFF, 0x80, 0x00};
	static const uint8_t overlong4[] = {0x80, 0x80, 0x80, 0x00};
	uint32_t v = 7;
	size_t used = 7;
	assert_int_equal(buf_get_varint(five, sizeof five, &v, &used), -EPROTO);
	assert_int_equal(buf_get_varint(four_cont, sizeof four_cont, &v, &used), -EPROTO);
	assert_int_equal(buf_get_varint(overlong2, sizeof overlong2, &v, &used), -EPROTO);
	assert_int_equal(buf_get_varint(overlong3, sizeof overlong3, &v, &used), -EPROTO);
	assert_int_equal(buf_get_varint(overlong4, sizeof overlong4, &v, &used), -EPROTO);
	/* Out-params untouched on failure. */
	assert_int_equal(v, 7);
	assert_int_equal(used, 7);
}

static void test_varint_stops_at_last_byte(void **state)
{
	(void)state;
	static const uint8_t bytes[] = {0x81, 0x01, 0xEE, 0xEE};
	uint32_t v;
	size_t used;
	assert_int_equal(buf_get_varint(bytes, sizeof bytes, &v, &used), 0);
	assert_int_equal(v, 129);
	assert_int_equal(used, 2);
}

static void test_lstring(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_put_lstring(&b, "ab", 2), 0);
	assert_int_equal(buf_put_lstring(&b, NULL, 0), 0);
	static const uint8_t want[] = {0x00, 0x02, 'a', 'b', 0x00, 0x00};
	assert_buf(&b, want, sizeof want);

	char *big = calloc(1, 65536);
	assert_non_null(big);
	assert_int_equal(buf_put_lstring(&b, big, 65536), -ERANGE);
	assert_int_equal(b.len, sizeof want);
	assert_int_equal(buf_put_lstring(&b, big, 65535), 0);
	assert_int_equal(b.len, sizeof want + 2 + 65535);
	assert_int_equal(b.data[sizeof want], 0xFF);
	assert_int_equal(b.data[sizeof want + 1], 0xFF);
	free(big);
	buf_clear(&b);
}

static void test_growth_keeps_contents(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(buf_put_u8(&b, (uint8_t)i), 0);
	assert_int_equal(b.len, 10000);
	assert_true(b.cap >= b.len);
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(b.data[i], (uint8_t)i);
	buf_clear(&b);
}

static void test_reserve(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_reserve(&b, 0), 0);
	assert_null(b.data);
	assert_int_equal(buf_reserve(&b, 100), 0);
	assert_true(b.cap >= 100);
	uint8_t *before = b.data;
	assert_int_equal(buf_append(&b, "xyz", 3), 0);
	assert_ptr_equal(b.data, before);
	/* Impossible sizes fail cleanly and leave the buffer as it was. */
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 2), -ENOMEM);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "xyz", 3);
	buf_clear(&b);
}

static void test_append_empty_allocates_nothing(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, NULL, 0), 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void test_steal_and_clear(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t len = 99;
	assert_null(buf_steal(&b, &len));
	assert_int_equal(len, 0);

	assert_int_equal(buf_append(&b, "hello", 5), 0);
	uint8_t *data = buf_steal(&b, &len);
	assert_non_null(data);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(data);

	assert_int_equal(buf_append(&b, "again", 5), 0);
	buf_clear(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	buf_clear(&b);
	assert_int_equal(buf_append(&b, "reuse", 5), 0);
	assert_int_equal(b.len, 5);
	free(buf_steal(&b, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixed_width_big_endian),
	    cmocka_unit_test(test_varint_put_and_get),
	    cmocka_unit_test(test_varint_range),
	    cmocka_unit_test(test_varint_malformed),
	    cmocka_unit_test(test_varint_stops_at_last_byte),
	    cmocka_unit_test(test_lstring),
	    cmocka_unit_test(test_growth_keeps_contents),
	    cmocka_unit_test(test_reserve),
	    cmocka_unit_test(test_append_empty_allocates_nothing),
	    cmocka_unit_test(test_steal_and_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
