/* tests/unit/test_utf8.c — UTF-8 well-formedness and the MQTT string rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

struct utf8_case {
	const char *what;
	const char *bytes;
	size_t len; /* 0: strlen(bytes) */
	bool valid; /* utf8_valid() */
	bool mqtt;  /* utf8_valid_mqtt() */
};

static const struct utf8_case cases[] = {
    {"empty", "", 0, true, true},
    {"ascii", "hello/world", 0, true, true},
    {"space and tilde", " ~", 0, true, true},
    {"U+0000", "a\0b", 3, true, false},
    {"U+0001", "\x01", 0, true, false},
    {"U+001F", "\x1F", 0, true, false},
    {"U+007F", "\x7F", 0, true, false},
    {"U+0080", "\xC2\x80", 0, true, false},
    {"U+009F", "\xC2\x9F", 0, true, false},
    {"U+00A0", "\xC2\xA0", 0, true, true},
    {"U+00E9", "\xC3\xA9", 0, true, true},
    {"U+07FF", "\xDF\xBF", 0, true, true},
    {"U+0800", "\xE0\xA0\x80", 0, true, true},
    {"U+20AC", "\xE2\x82\xAC", 0, true, true},
    {"U+D7FF", "\xED\x9F\xBF", 0, true, true},
    {"U+D800 surrogate", "\xED\xA0\x80", 0, false, false},
    {"U+DBFF surrogate", "\xED\xAF\xBF", 0, false, false},
    {"U+DC00 surrogate", "\xED\xB0\x80", 0, false, false},
    {"U+DFFF surrogate", "\xED\xBF\xBF", 0, false, false},
    {"CESU pair", "\xED\xA0\xBD\xED\xB8\x80", 0, false, false},
    {"U+E000", "\xEE\x80\x80", 0, true, true},
    {"U+FDCF", "\xEF\xB7\x8F", 0, true, true},
    {"U+FDD0 non-character", "\xEF\xB7\x90", 0, true, false},
    {"U+FDEF non-character", "\xEF\xB7\xAF", 0, true, false},
    {"U+FDF0", "\xEF\xB7\xB0", 0, true, true},
    {"U+FFFD", "\xEF\xBF\xBD", 0, true, true},
    {"U+FFFE non-character", "\xEF\xBF\xBE", 0, true, false},
    {"U+FFFF non-character", "\xEF\xBF\xBF", 0, true, false},
    {"U+10000", "\xF0\x90\x80\x80", 0, true, true},
    {"U+1F600", "\xF0\x9F\x98\x80", 0, true, true},
    {"U+1FFFE non-character", "\xF0\x9F\xBF\xBE", 0, true, false},
    {"U+10FFFD largest allowed", "\xF4\x8F\xBF\xBD", 0, true, true},
    {"U+10FFFF", "\xF4\x8F\xBF\xBF", 0, true, false},
    {"U+110000", "\xF4\x90\x80\x80", 0, false, false},
    {"F5 lead", "\xF5\x80\x80\x80", 0, false, false},
    {"FF byte", "\xFF", 0, false, false},
    {"FE byte", "\xFE", 0, false, false},
    {"5-byte form", "\xF8\x88\x80\x80\x80", 0, false, false},
    {"overlong NUL C0 80", "\xC0\x80", 0, false, false},
    {"overlong C1 BF", "\xC1\xBF", 0, false, false},
    {"overlong 3-byte", "\xE0\x80\xAF", 0, false, false},
    {"overlong U+07FF", "\xE0\x9F\xBF", 0, false, false},
    {"overlong 4-byte", "\xF0\x80\x80\xAF", 0, false, false},
    {"overlong U+FFFF", "\xF0\x8F\xBF\xBF", 0, false, false},
    {"stray continuation", "\x80", 0, false, false},
    {"continuation after ascii", "a\xBF", 0, false, false},
    {"bad continuation", "\xC3\x28", 0, false, false},
    {"truncated 2-byte", "\xC3", 0, false, false},
    {"truncated 3-byte", "\xE2\x82", 0, false, false},
    {"truncated 4-byte", "\xF0\x9F\x98", 0, false, false},
    {"truncated at end", "ok\xE2\x82", 0, false, false},
    {"valid then invalid", "\xC3\xA9\xED\xA0\x80", 0, false, false},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct utf8_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->bytes);
		const uint8_t *s = (const uint8_t *)c->bytes;
		if (utf8_valid(s, len) != c->valid)
			fail_msg("utf8_valid(%s) should be %d", c->what, c->valid);
		if (utf8_valid_mqtt(s, len) != c->mqtt)
			fail_msg("utf8_valid_mqtt(%s) should be %d", c->what, c->mqtt);
	}
}

/* The bytes must not be read past @len: a valid lead at the very end is truncated. */
static void test_length_is_respected(void **state)
{
	(void)state;
	const uint8_t s[] = {'a', 0xE2, 0x82, 0xAC};
	assert_true(utf8_valid_mqtt(s, 1));
	assert_false(utf8_valid_mqtt(s, 2));
	assert_false(utf8_valid_mqtt(s, 3));
	assert_true(utf8_valid_mqtt(s, 4));
	assert_true(utf8_valid(NULL, 0));
	assert_true(utf8_valid_mqtt(NULL, 0));
}

static size_t encode(uint32_t cp, uint8_t out[4])
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xC0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xE0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (uint8_t)(0xF0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

/* Every code point, against the rules as the header states them. */
static void test_every_code_point(void **state)
{
	(void)state;
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		uint8_t s[4];
		size_t n = encode(cp, s);
		bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
		bool control = cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F);
		bool nonchar = (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
		if (utf8_valid(s, n) != !surrogate)
			fail_msg("utf8_valid(U+%04X)", (unsigned)cp);
		if (utf8_valid_mqtt(s, n) != !(surrogate || control || nonchar))
			fail_msg("utf8_valid_mqtt(U+%04X)", (unsigned)cp);
	}
}

/* Every two-byte sequence: only well-formed ones pass (cross-checks the lead-byte ranges). */
static void test_every_byte_pair(void **state)
{
	(void)state;
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			uint8_t s[2] = {(uint8_t)a, (uint8_t)b};
			bool ascii = a < 0x80 && b < 0x80;
			bool two = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
			if (utf8_valid(s, 2) != (ascii || two))
				fail_msg("utf8_valid(%02X %02X)", a, b);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_length_is_respected),
	    cmocka_unit_test(test_every_code_point),
	    cmocka_unit_test(test_every_byte_pair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
