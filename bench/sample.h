/*
 * bench/sample.h — what the two load tools (loadgen, pahoprobe) share: the payload stamp that
 * carries publisher, sequence number and send time, per-publisher duplicate tracking, and the
 * latency sample.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "B" + publisher (4 hex) + sequence (8 hex) + CLOCK_MONOTONIC send time in ns (16 hex). */
#define PAYLOAD_HEAD 29

/* What one subscriber saw of one publisher. */
struct track {
	uint32_t last;
	uint8_t *seen; /* bitmap by sequence number, grown on demand */
	size_t nbytes;
};

/* Publish-to-receive latencies, decimated uniformly once @cap are held. */
struct latencies {
	uint64_t *v;
	size_t n, cap;
	unsigned stride, tick;
};

/** Writes the stamp and pads with 'x' to @size (>= PAYLOAD_HEAD) bytes. */
void payload_make(void *out, size_t size, unsigned pub, uint32_t seq, int64_t ts);

/** false: not a stamp of ours. */
bool payload_parse(const void *payload, size_t len, unsigned *pub, uint32_t *seq, int64_t *ts);

/** Marks @seq seen; true when it had been seen already (a duplicate). Aborts out of memory. */
bool track_seen(struct track *t, uint32_t seq);

/** 0, or -1 out of memory. */
int latencies_init(struct latencies *l, size_t cap);
void latencies_add(struct latencies *l, uint64_t ns);
/** Sorts; µs, or -1 each when there is no sample. */
void latencies_summary(struct latencies *l, double *p50_us, double *p99_us, double *max_us);
void latencies_free(struct latencies *l);
