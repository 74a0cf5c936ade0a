/* web/outq.c — chunked byte queue; coalescing keeps one lws_write() per many small packets. */
#include "outq.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

/* Packets smaller than this are packed together into chunks of this size. */
#define CHUNK_SIZE 16384

struct outq_chunk {
	struct outq_chunk *next;
	size_t len;
	size_t cap;
	uint8_t buf[]; /* LWS_PRE bytes of room, then the data */
};

void outq_init(struct outq *q, size_t max_bytes)
{
	memset(q, 0, sizeof(*q));
	q->max_bytes = max_bytes;
}

int outq_append(struct outq *q, const uint8_t *data, size_t len)
{
	struct outq_chunk *c = q->tail;

	if (len > q->max_bytes - q->bytes || q->bytes > q->max_bytes)
		return -ENOBUFS;
	if (!len)
		return 0;
	/* lws_write() copies what the socket does not take, so any chunk may still grow. */
	if (!c || c->cap - c->len < len) {
		size_t cap = len > CHUNK_SIZE ? len : CHUNK_SIZE;
		c = malloc(sizeof(*c) + LWS_PRE + cap);
		if (!c)
			return -ENOMEM;
		c->next = NULL;
		c->len = 0;
		c->cap = cap;
		if (q->tail)
			q->tail->next = c;
		else
			q->head = c;
		q->tail = c;
	}
	memcpy(c->buf + LWS_PRE + c->len, data, len);
	c->len += len;
	q->bytes += len;
	return 0;
}

bool outq_front(struct outq *q, uint8_t **data, size_t *len)
{
	if (!q->head)
		return false;
	*data = q->head->buf + LWS_PRE;
	*len = q->head->len;
	return true;
}

void outq_pop(struct outq *q)
{
	struct outq_chunk *c = q->head;

	if (!c)
		return;
	q->head = c->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= c->len;
	free(c);
}

void outq_clear(struct outq *q)
{
	while (q->head)
		outq_pop(q);
}
