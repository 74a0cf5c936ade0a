/* web/outq.h — a connection's outbound bytes, in chunks with LWS_PRE room for lws_write(). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outq_chunk;

struct outq {
	struct outq_chunk *head, *tail;
	size_t bytes;     /* queued, not yet handed to lws */
	size_t max_bytes; /* hard limit */
};

/** Service thread. An empty queue refusing to hold more than @max_bytes. */
void outq_init(struct outq *q, size_t max_bytes);

/**
 * Appends @len bytes; small writes share a chunk so several packets go out in one WebSocket
 * message. 0, -ENOBUFS (over the limit; nothing queued) or -ENOMEM.
 */
int outq_append(struct outq *q, const uint8_t *data, size_t len);

/**
 * The first chunk: *@data points at its bytes with LWS_PRE bytes of room before them. false when
 * empty. The chunk stays queued until outq_pop().
 */
bool outq_front(struct outq *q, uint8_t **data, size_t *len);

/** Drops the first chunk. */
void outq_pop(struct outq *q);

/** Frees everything queued. */
void outq_clear(struct outq *q);
