/* bench/sample.c — payload stamps, duplicate tracking and latency samples of the load tools. */
#include "sample.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void payload_make(void *out, size_t size, unsigned pub, uint32_t seq, int64_t ts)
{
	char head[PAYLOAD_HEAD + 1];

	snprintf(head, sizeof(head), "B%04x%08" PRIx32 "%016" PRIx64, pub & 0xffff, seq,
		 (uint64_t)ts);
	memcpy(out, head, PAYLOAD_HEAD);
	memset((char *)out + PAYLOAD_HEAD, 'x', size - PAYLOAD_HEAD);
}

static bool hexval(const uint8_t *p, int n, uint64_t *v)
{
	uint64_t r = 0;

	for (int i = 0; i < n; i++) {
		unsigned d;
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10u;
		else
			return false;
		r = r << 4 | d;
	}
	*v = r;
	return true;
}

bool payload_parse(const void *payload, size_t len, unsigned *pub, uint32_t *seq, int64_t *ts)
{
	const uint8_t *p = payload;
	uint64_t a, b, t;

	if (len < PAYLOAD_HEAD || p[0] != 'B' || !hexval(p + 1, 4, &a) || !hexval(p + 5, 8, &b) ||
	    !hexval(p + 13, 16, &t))
		return false;
	*pub = (unsigned)a;
	*seq = (uint32_t)b;
	*ts = (int64_t)t;
	return true;
}

bool track_seen(struct track *t, uint32_t seq)
{
	size_t byte = seq / 8;

	if (byte >= t->nbytes) {
		size_t n = t->nbytes ? t->nbytes : 4096;
		while (n <= byte)
			n *= 2;
		uint8_t *bits = realloc(t->seen, n);
		if (!bits)
			abort(); /* a benchmark tool: no sensible way on without its bookkeeping */
		memset(bits + t->nbytes, 0, n - t->nbytes);
		t->seen = bits;
		t->nbytes = n;
	}
	bool was = t->seen[byte] & (1u << (seq & 7));
	t->seen[byte] |= (uint8_t)(1u << (seq & 7));
	return was;
}

int latencies_init(struct latencies *l, size_t cap)
{
	memset(l, 0, sizeof(*l));
	l->cap = cap;
	l->stride = 1;
	l->v = malloc(cap * sizeof(uint64_t));
	return l->v ? 0 : -1;
}

void latencies_add(struct latencies *l, uint64_t ns)
{
	/* Uniform decimation: when full, keep every other sample and take half as many from now on. */
	if (++l->tick < l->stride)
		return;
	l->tick = 0;
	if (l->n == l->cap) {
		for (size_t i = 0; i < l->cap / 2; i++)
			l->v[i] = l->v[2 * i];
		l->n = l->cap / 2;
		l->stride *= 2;
	}
	l->v[l->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void latencies_summary(struct latencies *l, double *p50_us, double *p99_us, double *max_us)
{
	qsort(l->v, l->n, sizeof(uint64_t), cmp_u64);
	*p50_us = l->n ? (double)l->v[l->n / 2] / 1e3 : -1;
	*p99_us = l->n ? (double)l->v[l->n * 99 / 100] / 1e3 : -1;
	*max_us = l->n ? (double)l->v[l->n - 1] / 1e3 : -1;
}

void latencies_free(struct latencies *l)
{
	free(l->v);
	l->v = NULL;
}
