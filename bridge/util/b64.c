/*
 * bridge/util/b64.c — base64 for binary payloads in JSON. Decoding is strict (RFC 4648 §3.3, §3.5):
 * one text per byte string, so a corrupted or truncated value is refused rather than guessed at.
 */
#include "b64.h"

#include <errno.h>
#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Each character's value plus one, so that the zero of the rest of the table means "not in the
 * alphabet" (padding included: it is handled before lookup). */
static const uint8_t values[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

int b64_encode(struct buf *out, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t groups = len / 3 + (len % 3 != 0);

	if (len == 0)
		return 0; /* out->data may still be NULL, and NULL + 0 is undefined */
	if (groups > SIZE_MAX / 4)
		return -ENOMEM;
	/* Reserving the whole text first lets the appends below not fail half-way. */
	int rc = buf_reserve(out, groups * 4);
	if (rc)
		return rc;
	uint8_t *o = out->data + out->len;
	size_t i = 0;
	for (; len - i >= 3; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = (uint8_t)alphabet[v >> 18];
		*o++ = (uint8_t)alphabet[(v >> 12) & 63];
		*o++ = (uint8_t)alphabet[(v >> 6) & 63];
		*o++ = (uint8_t)alphabet[v & 63];
	}
	if (len - i > 0) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (len - i == 2)
			v |= (uint32_t)p[i + 1] << 8;
		*o++ = (uint8_t)alphabet[v >> 18];
		*o++ = (uint8_t)alphabet[(v >> 12) & 63];
		*o++ = len - i == 2 ? (uint8_t)alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	out->len += groups * 4;
	return 0;
}

int b64_decode(struct buf *out, const char *text, size_t len)
{
	const uint8_t *t = (const uint8_t *)text;

	/* Padding is optional, but when present it must complete the last quantum. */
	if (len % 4 == 0 && len >= 1 && t[len - 1] == '=') {
		len--;
		if (t[len - 1] == '=')
			len--;
	}
	/* One leftover character carries 6 bits: not even a byte, so the text was cut. */
	if (len % 4 == 1)
		return -EINVAL;
	if (len == 0)
		return 0; /* out->data may still be NULL, and NULL + 0 is undefined */
	size_t tail = len % 4;
	size_t n = len / 4 * 3 + (tail ? tail - 1 : 0);
	int rc = buf_reserve(out, n);
	if (rc)
		return rc;
	uint8_t *o = out->data + out->len;
	size_t i = 0;
	for (; len - i >= 4; i += 4) {
		int a = values[t[i]] - 1, b = values[t[i + 1]] - 1, c = values[t[i + 2]] - 1,
		    d = values[t[i + 3]] - 1;
		if ((a | b | c | d) < 0)
			return -EINVAL;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		*o++ = (uint8_t)(v >> 16);
		*o++ = (uint8_t)(v >> 8);
		*o++ = (uint8_t)v;
	}
	if (tail) {
		int a = values[t[i]] - 1, b = values[t[i + 1]] - 1,
		    c = tail == 3 ? values[t[i + 2]] - 1 : 0;
		if ((a | b | c) < 0)
			return -EINVAL;
		/* The bits below the last byte must be zero (§3.5), or two texts would decode
		 * to the same bytes. */
		if (tail == 2 ? (b & 0x0F) : (c & 0x03))
			return -EINVAL;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
		*o++ = (uint8_t)(v >> 16);
		if (tail == 3)
			*o++ = (uint8_t)(v >> 8);
	}
	/* Only now: on -EINVAL above, the bytes written past out->len do not count. */
	out->len += n;
	return 0;
}
