/* bridge/util/buf.h — a growable byte buffer for building packets and JSON text. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                   \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/** Any thread (a buf belongs to one thread). 0, or -ENOMEM (then @b is unchanged). */
int buf_reserve(struct buf *b, size_t extra);

/** Appends @len bytes. 0, or -ENOMEM (then @b is unchanged). */
int buf_append(struct buf *b, const void *data, size_t len);

/** Appends one byte. 0 or -ENOMEM. */
int buf_put_u8(struct buf *b, uint8_t v);

/** Appends a big-endian 16-bit integer. 0 or -ENOMEM. */
int buf_put_u16(struct buf *b, uint16_t v);

/** Appends a big-endian 32-bit integer. 0 or -ENOMEM. */
int buf_put_u32(struct buf *b, uint32_t v);

/** Appends an MQTT variable byte integer (v <= 268435455). 0, -ERANGE or -ENOMEM. */
int buf_put_varint(struct buf *b, uint32_t v);

/**
 * Pure. Reads an MQTT variable byte integer from @p[0..len) into *@v and *@used (its size).
 * 0; -EAGAIN when @len ends inside it; -EPROTO when it has a fifth byte or is not in shortest
 * form (MQTT 5 §1.5.5 allows neither).
 */
int buf_get_varint(const uint8_t *p, size_t len, uint32_t *v, size_t *used);

/** Appends an MQTT string / binary: 2-byte length then the bytes. 0, -ERANGE (len > 65535), -ENOMEM. */
int buf_put_lstring(struct buf *b, const void *data, size_t len);

/**
 * Hands the bytes to the caller (who frees them with free()) and empties @b. NULL when @b never
 * allocated. @len may be NULL.
 */
uint8_t *buf_steal(struct buf *b, size_t *len);

/** Frees the bytes; @b becomes empty and reusable. */
void buf_clear(struct buf *b);
