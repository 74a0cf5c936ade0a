/* bridge/util/buf.c — a growable byte buffer, and the MQTT integer encodings written into it. */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Small packets are the common case: start big enough that most need one allocation. */
#define BUF_MIN_CAP 64

int buf_reserve(struct buf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	size_t need = b->len + extra;
	size_t cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	/* Doubling keeps appends amortised O(1); stop doubling before it overflows. */
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	int rc = buf_reserve(b, len);
	if (rc)
		return rc;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int buf_put_u8(struct buf *b, uint8_t v)
{
	return buf_append(b, &v, 1);
}

int buf_put_u16(struct buf *b, uint16_t v)
{
	uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	return buf_append(b, be, sizeof be);
}

int buf_put_u32(struct buf *b, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return buf_append(b, be, sizeof be);
}

int buf_put_varint(struct buf *b, uint32_t v)
{
	if (v > 268435455u)
		return -ERANGE;
	uint8_t enc[4];
	size_t n = 0;
	do {
		enc[n] = v & 0x7F;
		v >>= 7;
		if (v)
			enc[n] |= 0x80;
		n++;
	} while (v);
	return buf_append(b, enc, n);
}

int buf_get_varint(const uint8_t *p, size_t len, uint32_t *v, size_t *used)
{
	uint32_t value = 0;
	for (size_t i = 0; i < 4; i++) {
		if (i == len)
			return -EAGAIN;
		value |= (uint32_t)(p[i] & 0x7F) << (7 * i);
		if (!(p[i] & 0x80)) {
			/* A last byte of 0 after others means the value fitted in fewer bytes. */
			if (i > 0 && p[i] == 0)
				return -EPROTO;
			*v = value;
			*used = i + 1;
			return 0;
		}
	}
	return -EPROTO;
}

int buf_put_lstring(struct buf *b, const void *data, size_t len)
{
	if (len > UINT16_MAX)
		return -ERANGE;
	/* Reserve both parts first so that a failure leaves @b unchanged. */
	int rc = buf_reserve(b, 2 + len);
	if (rc)
		return rc;
	buf_put_u16(b, (uint16_t)len);
	return buf_append(b, data, len);
}

uint8_t *buf_steal(struct buf *b, size_t *len)
{
	uint8_t *data = b->data;
	if (len)
		*len = b->len;
	*b = (struct buf)BUF_INIT;
	return data;
}

void buf_clear(struct buf *b)
{
	free(b->data);
	*b = (struct buf)BUF_INIT;
}
