/* tests/unit/codec_test_util.h — helpers shared by the codec tests (test_codec_*.c). */
#ifndef CODEC_TEST_UTIL_H
#define CODEC_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

#define MAX_PKT 512

/* Packet bytes written as hex pairs and 'quoted text', e.g. "00 04 'MQTT' 04". */
static inline size_t hex(const char *s, uint8_t *out, size_t cap)
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
static inline size_t packet(uint8_t first, const char *body, uint8_t *out, size_t cap)
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

static inline struct mqtt_bytes str(const char *s)
{
	return (struct mqtt_bytes){(const uint8_t *)s, strlen(s)};
}

/* Decodes from an exactly sized heap copy, so that the sanitizer sees any read past the end. */
static inline int decode_copy(const uint8_t *bytes, size_t len, int version,
			      struct mqtt_packet *out, struct codec_error *err, uint8_t **copy)
{
	*copy = malloc(len ? len : 1);
	assert_non_null(*copy);
	if (len)
		memcpy(*copy, bytes, len);
	return codec_decode(*copy, len, version, out, err);
}

/* Encodes @p, checking that codec_encoded_len() is what codec_encode() appends. */
static inline void encode_ok(int version, const struct mqtt_packet *p, struct buf *b)
{
	size_t before = b->len;
	size_t want = codec_encoded_len(version, p);
	int rc = codec_encode(b, version, p);
	if (rc)
		fail_msg("encode %s v%d: %d", codec_type_name(p->type), version, rc);
	assert_int_equal(b->len - before, want);
}

#endif
