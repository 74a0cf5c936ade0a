/* tests/unit/test_outq.c — a connection's outbound bytes: order, LWS_PRE room, limit, merging. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libwebsockets.h>

#include "outq.h"

/* Pops every chunk into @out (checking the LWS_PRE room of each); returns the bytes and chunks. */
static size_t drain(struct outq *q, uint8_t *out, size_t cap, size_t *chunks)
{
	uint8_t *data;
	size_t len, total = 0, n = 0;

	while (outq_front(q, &data, &len)) {
		size_t before = q->bytes;

		assert_non_null(data);
		assert_true(len > 0);
		assert_true(len <= cap - total);
		/* lws_write() writes its header there: the room must be ours to scribble on. */
		memset(data - LWS_PRE, 0xEE, LWS_PRE);
		memcpy(out + total, data, len);
		total += len;
		n++;
		outq_pop(q);
		assert_int_equal(q->bytes, before - len);
	}
	assert_null(q->head);
	assert_int_equal(q->bytes, 0);
	if (chunks)
		*chunks = n;
	return total;
}

static void test_empty(void **state)
{
	(void)state;
	struct outq q;
	uint8_t *data = (uint8_t *)"untouched";
	size_t len = 77;

	outq_init(&q, 1000);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(q.max_bytes, 1000);
	assert_false(outq_front(&q, &data, &len));
	assert_string_equal((char *)data, "untouched");
	assert_int_equal(len, 77);
	outq_pop(&q); /* nothing to drop */
	outq_clear(&q);
	assert_false(outq_front(&q, &data, &len));
}

static void test_append_front_pop(void **state)
{
	(void)state;
	struct outq q;
	static const uint8_t pkt[] = {0x30, 0x05, 0x00, 0x01, 't', 'h', 'i'};
	uint8_t *data;
	size_t len;

	outq_init(&q, 1000);
	assert_int_equal(outq_append(&q, pkt, sizeof pkt), 0);
	assert_int_equal(q.bytes, sizeof pkt);
	assert_true(outq_front(&q, &data, &len));
	assert_int_equal(len, sizeof pkt);
	assert_memory_equal(data, pkt, sizeof pkt);
	memset(data - LWS_PRE, 0, LWS_PRE);
	/* Front does not consume. */
	assert_true(outq_front(&q, &data, &len));
	assert_int_equal(len, sizeof pkt);
	outq_pop(&q);
	assert_int_equal(q.bytes, 0);
	assert_false(outq_front(&q, &data, &len));
	/* Usable again. */
	assert_int_equal(outq_append(&q, pkt, 2), 0);
	assert_true(outq_front(&q, &data, &len));
	assert_int_equal(len, 2);
	outq_clear(&q);
	assert_int_equal(q.bytes, 0);
	assert_false(outq_front(&q, &data, &len));
}

/* Many small packets leave as one chunk, so one WebSocket message carries them all. */
static void test_coalescing(void **state)
{
	(void)state;
	struct outq q;
	uint8_t want[1000], got[1000];
	uint8_t *data;
	size_t len, chunks;

	for (size_t i = 0; i < sizeof want; i++)
		want[i] = (uint8_t)(i * 7 + 1);
	outq_init(&q, 1 << 20);
	for (size_t i = 0; i < sizeof want; i += 10)
		assert_int_equal(outq_append(&q, want + i, 10), 0);
	assert_int_equal(q.bytes, sizeof want);
	assert_true(outq_front(&q, &data, &len));
	assert_int_equal(len, sizeof want);
	assert_int_equal(drain(&q, got, sizeof got, &chunks), sizeof want);
	assert_int_equal(chunks, 1);
	assert_memory_equal(got, want, sizeof want);
}

/* Whatever the sizes, the bytes come out once each and in order, each chunk with its room. */
static void test_stream_integrity(void **state)
{
	(void)state;
	enum { TOTAL = 1 << 21 };
	struct outq q;
	uint8_t *want = malloc(TOTAL), *got = malloc(TOTAL);
	size_t used = 0, chunks, appends = 0;
	uint32_t x = 2463534242u;

	assert_non_null(want);
	assert_non_null(got);
	for (size_t i = 0; i < TOTAL; i++)
		want[i] = (uint8_t)(i ^ (i >> 8) ^ (i >> 16));
	outq_init(&q, TOTAL);
	while (used < TOTAL) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		/* Mostly small packets, sometimes one bigger than any chunk. */
		size_t n = x % 16 == 0 ? 1 + x % 70000 : 1 + x % 300;
		if (n > TOTAL - used)
			n = TOTAL - used;
		assert_int_equal(outq_append(&q, want + used, n), 0);
		used += n;
		appends++;
		assert_int_equal(q.bytes, used);
	}
	/* Exactly at the limit: nothing more fits. */
	assert_int_equal(outq_append(&q, want, 1), -ENOBUFS);
	assert_int_equal(q.bytes, TOTAL);
	assert_int_equal(drain(&q, got, TOTAL, &chunks), TOTAL);
	assert_memory_equal(got, want, TOTAL);
	print_message("%zu appends in %zu chunks\n", appends, chunks);
	assert_true(chunks < appends / 2);
	free(want);
	free(got);
}

/* Popping part of the queue while appending: order holds across chunk boundaries. */
static void test_interleaved_pop(void **state)
{
	(void)state;
	enum { TOTAL = 300000 };
	struct outq q;
	uint8_t *want = malloc(TOTAL), *got = malloc(TOTAL);
	size_t in = 0, out = 0, step = 0;
	uint8_t *data;
	size_t len;

	assert_non_null(want);
	assert_non_null(got);
	for (size_t i = 0; i < TOTAL; i++)
		want[i] = (uint8_t)(i * 131 + 17);
	outq_init(&q, 50000);
	while (out < TOTAL) {
		size_t n = 1 + (step * 7919) % 5000;
		step++;
		if (n > TOTAL - in)
			n = TOTAL - in;
		if (n && outq_append(&q, want + in, n) == 0) {
			in += n;
		} else if (outq_front(&q, &data, &len)) {
			assert_true(len <= TOTAL - out);
			memcpy(got + out, data, len);
			out += len;
			outq_pop(&q);
		} else {
			fail_msg("empty queue refused %zu bytes", n);
		}
		assert_int_equal(q.bytes, in - out);
		assert_true(q.bytes <= q.max_bytes);
	}
	assert_memory_equal(got, want, TOTAL);
	assert_false(outq_front(&q, &data, &len));
	free(want);
	free(got);
}

/* The hard limit, exactly at its boundary; a refused append changes nothing. */
static void test_limit(void **state)
{
	(void)state;
	struct outq q;
	uint8_t buf[200], got[200];
	size_t chunks;

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)i;
	outq_init(&q, 100);
	assert_int_equal(outq_append(&q, buf, 101), -ENOBUFS);
	assert_int_equal(q.bytes, 0);
	assert_null(q.head);
	assert_int_equal(outq_append(&q, buf, 60), 0);
	assert_int_equal(outq_append(&q, buf + 60, 41), -ENOBUFS);
	assert_int_equal(q.bytes, 60);
	assert_int_equal(outq_append(&q, buf + 60, 40), 0);
	assert_int_equal(q.bytes, 100);
	assert_int_equal(outq_append(&q, buf, 1), -ENOBUFS);
	/* Overflow-safe: a huge length is refused, not wrapped (and never read). */
	assert_int_equal(outq_append(&q, buf, SIZE_MAX), -ENOBUFS);
	assert_int_equal(outq_append(&q, buf, SIZE_MAX - 99), -ENOBUFS);
	assert_int_equal(q.bytes, 100);
	assert_int_equal(drain(&q, got, sizeof got, &chunks), 100);
	assert_memory_equal(got, buf, 100);

	/* After popping there is room again; one append of exactly the limit fits. */
	assert_int_equal(outq_append(&q, buf, 100), 0);
	assert_int_equal(q.bytes, 100);
	outq_clear(&q);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(outq_append(&q, buf, 100), 0);
	outq_clear(&q);
}

static void test_zero_limit(void **state)
{
	(void)state;
	struct outq q;
	uint8_t *data;
	size_t len;

	outq_init(&q, 0);
	assert_int_equal(outq_append(&q, (const uint8_t *)"x", 1), -ENOBUFS);
	assert_int_equal(outq_append(&q, (const uint8_t *)"x", SIZE_MAX), -ENOBUFS);
	assert_int_equal(q.bytes, 0);
	assert_false(outq_front(&q, &data, &len));
	outq_clear(&q);
}

/* Appending nothing queues nothing: no empty chunk for lws_write() to send. */
static void test_zero_length_append(void **state)
{
	(void)state;
	struct outq q;
	uint8_t *data;
	size_t len;

	outq_init(&q, 100);
	assert_int_equal(outq_append(&q, (const uint8_t *)"", 0), 0);
	assert_int_equal(q.bytes, 0);
	if (outq_front(&q, &data, &len)) {
		outq_clear(&q);
		fail_msg("an empty append left a %zu-byte chunk at the front", len);
	}

	/* Onto a non-empty queue: contents unchanged. */
	assert_int_equal(outq_append(&q, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(outq_append(&q, (const uint8_t *)"", 0), 0);
	assert_int_equal(q.bytes, 3);
	assert_true(outq_front(&q, &data, &len));
	assert_int_equal(len, 3);
	assert_memory_equal(data, "abc", 3);
	outq_clear(&q);

	/* At the limit, nothing still fits. */
	outq_init(&q, 3);
	assert_int_equal(outq_append(&q, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(outq_append(&q, (const uint8_t *)"", 0), 0);
	assert_int_equal(q.bytes, 3);
	outq_clear(&q);
}

/* A write larger than a chunk is kept whole and in order with its neighbours. */
static void test_large_write(void **state)
{
	(void)state;
	enum { BIG = 200000 };
	struct outq q;
	uint8_t *big = malloc(BIG), *got = malloc(BIG + 20);
	uint8_t *data;
	size_t len;

	assert_non_null(big);
	assert_non_null(got);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i % 251);
	outq_init(&q, BIG + 20);
	assert_int_equal(outq_append(&q, (const uint8_t *)"head------", 10), 0);
	assert_int_equal(outq_append(&q, big, BIG), 0);
	assert_int_equal(outq_append(&q, (const uint8_t *)"tail------", 10), 0);
	assert_int_equal(q.bytes, BIG + 20);
	assert_true(outq_front(&q, &data, &len));
	assert_int_equal(drain(&q, got, BIG + 20, NULL), BIG + 20);
	assert_memory_equal(got, "head------", 10);
	assert_memory_equal(got + 10, big, BIG);
	assert_memory_equal(got + 10 + BIG, "tail------", 10);
	free(big);
	free(got);
}

/* outq_clear() frees what is queued (LSan checks) and leaves a usable queue. */
static void test_clear_frees(void **state)
{
	(void)state;
	struct outq q;
	uint8_t buf[5000];
	uint8_t *data;
	size_t len;

	memset(buf, 'q', sizeof buf);
	outq_init(&q, 10 << 20);
	for (int i = 0; i < 500; i++)
		assert_int_equal(outq_append(&q, buf, sizeof buf - (size_t)i), 0);
	outq_clear(&q);
	assert_int_equal(q.bytes, 0);
	assert_false(outq_front(&q, &data, &len));
	assert_int_equal(outq_append(&q, buf, 1), 0);
	outq_clear(&q);
	outq_clear(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),           cmocka_unit_test(test_append_front_pop),
	    cmocka_unit_test(test_coalescing),      cmocka_unit_test(test_stream_integrity),
	    cmocka_unit_test(test_interleaved_pop), cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_zero_limit),      cmocka_unit_test(test_zero_length_append),
	    cmocka_unit_test(test_large_write),     cmocka_unit_test(test_clear_frees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
