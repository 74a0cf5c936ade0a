/* tests/unit/test_b64.c — base64: RFC 4648 vectors, round trips, and the strict decoder's refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"

/* RFC 4648 §10. */
static const struct {
	const char *bytes;
	const char *text;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

#define NVECTORS (sizeof vectors / sizeof vectors[0])

static void assert_buf(const struct buf *b, const void *want, size_t len)
{
	assert_int_equal(b->len, len);
	if (len)
		assert_memory_equal(b->data, want, len);
}

/* Decoding @text must fail with -EINVAL and leave a buffer holding "keep" as it was. */
static void assert_refused(const char *text, size_t len)
{
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, "keep", 4), 0);
	if (b64_decode(&b, text, len) != -EINVAL)
		fail_msg("accepted \"%.*s\"", (int)len, text);
	assert_buf(&b, "keep", 4);
	buf_clear(&b);
}

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVECTORS; i++) {
		const char *bytes = vectors[i].bytes, *text = vectors[i].text;
		struct buf b = BUF_INIT;
		assert_int_equal(b64_encode(&b, bytes, strlen(bytes)), 0);
		assert_buf(&b, text, strlen(text));
		buf_clear(&b);

		assert_int_equal(b64_decode(&b, text, strlen(text)), 0);
		assert_buf(&b, bytes, strlen(bytes));
		buf_clear(&b);

		/* The same without padding. */
		size_t n = strlen(text);
		while (n && text[n - 1] == '=')
			n--;
		assert_int_equal(b64_decode(&b, text, n), 0);
		assert_buf(&b, bytes, strlen(bytes));
		buf_clear(&b);
	}
}

static void test_round_trip_all_lengths(void **state)
{
	(void)state;
	uint8_t data[300];
	srand(4648);
	for (size_t len = 0; len <= sizeof data; len++) {
		for (size_t i = 0; i < len; i++)
			data[i] = (uint8_t)rand();
		struct buf text = BUF_INIT, back = BUF_INIT;
		assert_int_equal(b64_encode(&text, data, len), 0);
		assert_int_equal(text.len, (len + 2) / 3 * 4);
		for (size_t i = 0; i < text.len; i++) {
			uint8_t c = text.data[i];
			bool pad = c == '=' && i >= text.len - 2;
			assert_true(pad || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				    (c >= '0' && c <= '9') || c == '+' || c == '/');
		}
		assert_int_equal(b64_decode(&back, (const char *)text.data, text.len), 0);
		assert_buf(&back, data, len);
		buf_clear(&back);

		size_t unpadded = text.len;
		while (unpadded && text.data[unpadded - 1] == '=')
			unpadded--;
		assert_int_equal(unpadded, (len * 4 + 2) / 3);
		assert_int_equal(b64_decode(&back, (const char *)text.data, unpadded), 0);
		assert_buf(&back, data, len);
		buf_clear(&back);
		buf_clear(&text);
	}
}

static void test_every_byte_value(void **state)
{
	(void)state;
	uint8_t all[256];
	for (size_t i = 0; i < sizeof all; i++)
		all[i] = (uint8_t)i;
	struct buf text = BUF_INIT, back = BUF_INIT;
	assert_int_equal(b64_encode(&text, all, sizeof all), 0);
	assert_int_equal(b64_decode(&back, (const char *)text.data, text.len), 0);
	assert_buf(&back, all, sizeof all);
	buf_clear(&text);
	buf_clear(&back);

	static const uint8_t ff[] = {0xFF, 0xFE, 0x00};
	assert_int_equal(b64_encode(&text, ff, sizeof ff), 0);
	assert_buf(&text, "//4A", 4);
	buf_clear(&text);
}

static void test_appends(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(buf_append(&b, "x:", 2), 0);
	assert_int_equal(b64_encode(&b, "foob", 4), 0);
	assert_buf(&b, "x:Zm9vYg==", 10);
	assert_int_equal(b64_decode(&b, "Zm8", 3), 0);
	assert_buf(&b, "x:Zm9vYg==fo", 12);
	/* Empty input appends nothing, whether or not the buffer has allocated yet. */
	assert_int_equal(b64_encode(&b, "", 0), 0);
	assert_int_equal(b64_decode(&b, "", 0), 0);
	assert_int_equal(b.len, 12);
	buf_clear(&b);
	assert_int_equal(b64_encode(&b, NULL, 0), 0);
	assert_int_equal(b64_decode(&b, NULL, 0), 0);
	assert_null(b.data);
}

static void test_invalid_characters(void **state)
{
	(void)state;
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (int c = 0; c < 256; c++) {
		if (c != 0 && strchr(alphabet, c))
			continue;
		/* In each position of a full quantum and of a short tail. */
		for (size_t pos = 0; pos < 8; pos++) {
			char text[8];
			memcpy(text, "Zm9vYmFy", 8);
			text[pos] = (char)c;
			assert_refused(text, 8);
			if (pos < 7)
				assert_refused(text, 7); /* tail of three */
			if (pos < 6)
				assert_refused(text, 6); /* tail of two */
		}
	}
	/* The URL-safe alphabet is another encoding. */
	assert_refused("-_-_", 4);
	assert_refused("ab-c", 4);
	assert_refused("ab_c", 4);
}

static void test_whitespace_refused(void **state)
{
	(void)state;
	static const char *const texts[] = {
	    "Zm9v\nYmFy", "Zm9v\r\nYmFy", " Zm9vYmFy", "Zm9vYmFy ", "Zm9v YmFy",
	    "Zm9v\tYmFy", "Zg==\n",       "Zg==  ",    "\nZg==",    "Zm\n9v",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		assert_refused(texts[i], strlen(texts[i]));
}

static void test_padding(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
	    {"Zg=", "padding that does not complete the quantum"},
	    {"Zm8==", "padding past the quantum"},
	    {"Zg===", "padding past the quantum"},
	    {"Zm9vYg=", "padding that does not complete the quantum"},
	    {"Z===", "three padding characters"},
	    {"====", "padding only"},
	    {"=", "padding only"},
	    {"==", "padding only"},
	    {"=Zg=", "padding first"},
	    {"Zm=v", "padding in the middle"},
	    {"Z=9v", "padding in the middle"},
	    {"Zg=a", "padding in the middle"},
	    {"Zg==Zg==", "padding between quanta"},
	    {"Zm9v=", "padding after a full quantum"},
	    {"Zm9v====", "a quantum of padding"},
	    {"Z", "one character is not a byte"},
	    {"Zm9vY", "one character is not a byte"},
	    {"Zm9vY===", "one character is not a byte"},
	    {"Zh==", "bits below the last byte not zero"},
	    {"Zh", "bits below the last byte not zero"},
	    {"Zm9=", "bits below the last byte not zero"},
	    {"Zm9", "bits below the last byte not zero"},
	    {"Zm9vYmF", "bits below the last byte not zero"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct buf b = BUF_INIT;
		if (b64_decode(&b, bad[i].text, strlen(bad[i].text)) != -EINVAL)
			fail_msg("accepted \"%s\": %s", bad[i].text, bad[i].why);
		assert_refused(bad[i].text, strlen(bad[i].text));
		buf_clear(&b);
	}

	/* The canonical forms next to them are fine. */
	struct buf b = BUF_INIT;
	assert_int_equal(b64_decode(&b, "Zm9vYmE=", 8), 0);
	assert_int_equal(b64_decode(&b, "Zm9vYmE", 7), 0);
	assert_buf(&b, "foobafooba", 10);
	buf_clear(&b);
}

/* A failure after whole quanta were decoded must still leave the buffer as it was. */
static void test_late_failure_keeps_buffer(void **state)
{
	(void)state;
	char text[4001];
	memset(text, 'A', sizeof text - 1);
	text[sizeof text - 2] = '*';
	assert_refused(text, sizeof text - 1);
	text[sizeof text - 2] = '=';
	text[sizeof text - 3] = '=';
	text[sizeof text - 4] = '=';
	assert_refused(text, sizeof text - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors),
	    cmocka_unit_test(test_round_trip_all_lengths),
	    cmocka_unit_test(test_every_byte_value),
	    cmocka_unit_test(test_appends),
	    cmocka_unit_test(test_invalid_characters),
	    cmocka_unit_test(test_whitespace_refused),
	    cmocka_unit_test(test_padding),
	    cmocka_unit_test(test_late_failure_keeps_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
