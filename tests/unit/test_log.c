/* tests/unit/test_log.c — quoting untrusted values for log lines, and level names. */
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

#include "log.h"

/*
 * Quotes into a heap buffer of exactly @cap bytes, so ASan catches any write past it, and
 * checks what holds for every output: NUL-terminated inside @cap, quoted, and only printable
 * ASCII with no bare quote inside. The caller frees the result.
 */
static char *quote(size_t cap, const void *s, size_t len)
{
	char *dst = malloc(cap);
	size_t n;

	assert_non_null(dst);
	memset(dst, 'Z', cap);
	assert_ptr_equal(log_quote(dst, cap, s, len), dst);
	n = strnlen(dst, cap);
	assert_true(n < cap);
	assert_true(n >= 2);
	assert_int_equal(dst[0], '"');
	assert_int_equal(dst[n - 1], '"');
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = (unsigned char)dst[i];
		assert_true(c >= 0x20 && c < 0x7f);
		if (c == '\\') {
			i++; /* the escaped character */
			assert_true(i + 1 < n);
		} else {
			assert_int_not_equal(c, '"');
		}
	}
	return dst;
}

/* Reads one escape or plain character at @p; returns its length, the byte in *@out. */
static size_t unescape_one(const char *p, unsigned char *out)
{
	static const char hex[] = "0123456789abcdef0123456789ABCDEF";

	if (p[0] != '\\') {
		*out = (unsigned char)p[0];
		return 1;
	}
	switch (p[1]) {
	case '"':
	case '\\':
		*out = (unsigned char)p[1];
		return 2;
	case 'n':
		*out = '\n';
		return 2;
	case 'r':
		*out = '\r';
		return 2;
	case 't':
		*out = '\t';
		return 2;
	case 'x': {
		const char *h = strchr(hex, p[2]), *l = strchr(hex, p[3]);
		assert_true(p[2] && h && p[3] && l);
		*out = (unsigned char)(((h - hex) % 16) << 4 | ((l - hex) % 16));
		return 4;
	}
	default:
		*out = 0;
		fail_msg("unknown escape \\%c", p[1]);
		return 0;
	}
}

/*
 * Decodes @from..@to into @out (at most @cap bytes); returns the byte count, or SIZE_MAX when
 * the text is not a sequence of whole characters and escapes.
 */
static size_t decode(const char *from, const char *to, unsigned char *out, size_t cap)
{
	size_t got = 0;

	while (from < to) {
		unsigned char c;
		from += unescape_one(from, &c);
		if (got == cap)
			return SIZE_MAX;
		out[got++] = c;
	}
	return from == to ? got : SIZE_MAX;
}

/* A whole value: decoding gives back every byte. */
static void assert_roundtrip(size_t cap, const void *s, size_t len)
{
	char *q = quote(cap, s, len);
	size_t n = strlen(q);
	unsigned char *back = malloc(len + 1);

	bool ok;
	char shown[2048];

	assert_non_null(back);
	ok = decode(q + 1, q + n - 1, back, len + 1) == len && !memcmp(back, s, len);
	snprintf(shown, sizeof shown, "%s", q);
	/* Free first: a failing test must not add leak reports to its own message. */
	free(back);
	free(q);
	if (!ok)
		fail_msg("log_quote(cap=%zu, len=%zu) gave %s, not the whole value", cap, len,
			 shown);
}

/* A cut value: it ends in ..." and what comes before decodes to a proper prefix of @s. */
static size_t assert_cut(size_t cap, const void *s, size_t len)
{
	char *q = quote(cap, s, len);
	size_t n = strlen(q), kept = 0;
	unsigned char *back = malloc(len + 1);

	const char *why = NULL;
	char shown[2048];

	assert_non_null(back);
	if (n < 5 || strcmp(q + n - 4, "...\"") != 0) {
		why = "not cut with ...";
	} else {
		kept = decode(q + 1, q + n - 4, back, len + 1);
		if (kept >= len || memcmp(back, s, kept))
			why = "not a prefix";
	}
	snprintf(shown, sizeof shown, "%s", q);
	free(back);
	free(q);
	if (why)
		fail_msg("log_quote(cap=%zu, len=%zu) gave %s, %s", cap, len, shown, why);
	return kept;
}

static void test_plain(void **state)
{
	(void)state;
	char buf[64];

	assert_string_equal(log_quote(buf, sizeof buf, "hello world", 11), "\"hello world\"");
	assert_string_equal(log_quote(buf, sizeof buf, "a=b c/d#+", 9), "\"a=b c/d#+\"");
	assert_string_equal(log_quote(buf, sizeof buf, "", 0), "\"\"");
	/* Only @len bytes count, even when more follow. */
	assert_string_equal(log_quote(buf, sizeof buf, "abcdef", 3), "\"abc\"");
	assert_roundtrip(64, "hello", 5);
	assert_roundtrip(8, "", 0);
}

static void test_quotes_and_backslashes(void **state)
{
	(void)state;
	char buf[64];

	assert_string_equal(log_quote(buf, sizeof buf, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	assert_string_equal(log_quote(buf, sizeof buf, "\"", 1), "\"\\\"\"");
	assert_string_equal(log_quote(buf, sizeof buf, "\\", 1), "\"\\\\\"");
	/* A value cannot end the quoted string early or forge another key=value pair. */
	assert_roundtrip(64, "x\" admin=\"1", 11);
	assert_roundtrip(64, "\\\"\\\"", 4);
}

static void test_control_and_non_ascii(void **state)
{
	(void)state;
	static const unsigned char all[] = {0x00, 0x01, '\t', '\n', '\r', 0x1b, 0x1f,
					    0x20, 0x7e, 0x7f, 0x80, 0xc3, 0xa9, 0xff};
	unsigned char every[256];
	char buf[64];

	assert_roundtrip(256, all, sizeof all);
	/* A line break in a value must not start a new log line. */
	log_quote(buf, sizeof buf, "a\nb", 3);
	assert_null(strchr(buf, '\n'));
	/* Embedded NULs are data, not the end. */
	assert_roundtrip(64, "a\0b", 3);
	log_quote(buf, sizeof buf, "\0", 1);
	assert_true(strlen(buf) > 2);

	for (size_t i = 0; i < 256; i++)
		every[i] = (unsigned char)i;
	assert_roundtrip(4 * 256 + 3, every, sizeof every);
}

/* Long values are cut with "..." at an escape boundary, never past @cap. */
static void test_truncation(void **state)
{
	(void)state;
	char big[1000], quotes[100];
	unsigned char bin[1000];

	memset(big, 'a', sizeof big);
	memset(quotes, '"', sizeof quotes);
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (unsigned char)(i * 37); /* a mix of plain and escaped bytes */

	for (size_t cap = 8; cap <= 80; cap++) {
		size_t kept = assert_cut(cap, big, sizeof big);
		/* Something useful survives unless the buffer is tiny. */
		if (cap >= 16)
			assert_true(kept > 0);
		assert_cut(cap, bin, sizeof bin);
		assert_cut(cap, quotes, sizeof quotes);
	}
	assert_cut(256, bin, sizeof bin);
}

/* A value whose quoted form fits exactly is written whole; one byte more and it is cut. */
static void test_exact_fit(void **state)
{
	(void)state;
	char s[100];

	memset(s, 'x', sizeof s);
	/* Largest first, so a failure names the telling case; small caps have their own test. */
	for (size_t len = 60; len >= 5; len--) {
		/* Quote, len bytes, quote, NUL. */
		size_t cap = len + 3;
		assert_roundtrip(cap, s, len);
		assert_cut(cap, s, len + 1);
	}
	/* Escapes count with their full width. */
	assert_roundtrip(1 + 4 + 2 + 1 + 1, "\x01\"", 2);
	assert_roundtrip(1 + 8 + 1 + 1, "\xff\xfe", 2);
	assert_cut(1 + 8 + 1 + 1 - 1, "\xff\xfe", 2);
}

/* The smallest allowed buffer still gives a well-formed value, short ones in full. */
static void test_small_caps(void **state)
{
	(void)state;
	assert_roundtrip(8, "", 0);
	assert_roundtrip(8, "a", 1);
	assert_roundtrip(8, "abcd", 4); /* "abcd" + NUL = 7 */
	assert_roundtrip(8, "\n", 1);   /* "\x0a" + NUL = 7 */
	assert_cut(8, "abcdefgh", 8);
	assert_cut(8, "\x01\x02\x03", 3);
	assert_cut(9, "\"\"\"\"\"", 5);
}

static void test_level_names(void **state)
{
	(void)state;
	static const struct {
		enum log_level level;
		const char *name;
	} levels[] = {
	    {LOG_ERROR, "error"},
	    {LOG_WARN, "warn"},
	    {LOG_INFO, "info"},
	    {LOG_DEBUG, "debug"},
	};

	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		enum log_level got = (enum log_level)99;
		assert_string_equal(log_level_name(levels[i].level), levels[i].name);
		assert_int_equal(log_level_parse(levels[i].name, &got), 0);
		assert_int_equal(got, levels[i].level);
	}
	/* Out of range: still a printable string, not a crash. */
	assert_non_null(log_level_name((enum log_level)4));
	assert_non_null(log_level_name((enum log_level)(-1)));
}

static void test_level_parse_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {"",    "warning", "inf",   "infos",   "info ", " info",
					  "err", "errors",  "trace", "debug\n", "0",     "3"};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum log_level out = LOG_DEBUG;
		assert_int_equal(log_level_parse(bad[i], &out), -EINVAL);
		/* Out-params are written only on success. */
		assert_int_equal(out, LOG_DEBUG);
	}
}

static void test_enabled(void **state)
{
	(void)state;
	log_set_level(LOG_WARN);
	assert_true(log_enabled(LOG_ERROR));
	assert_true(log_enabled(LOG_WARN));
	assert_false(log_enabled(LOG_INFO));
	assert_false(log_enabled(LOG_DEBUG));
	log_set_level(LOG_DEBUG);
	assert_true(log_enabled(LOG_DEBUG));
	log_set_level(LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_quotes_and_backslashes),
	    cmocka_unit_test(test_control_and_non_ascii),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_exact_fit),
	    cmocka_unit_test(test_small_caps),
	    cmocka_unit_test(test_level_names),
	    cmocka_unit_test(test_level_parse_rejects),
	    cmocka_unit_test(test_enabled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
