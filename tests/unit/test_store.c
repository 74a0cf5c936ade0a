/* tests/unit/test_store.c — persistent-session leftovers: keeping, taking, eviction, expiry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "msg.h"
#include "store.h"

/* Leftovers with @nmsgs messages and @nqos2 pending PUBREC ids, as a session would leave them. */
static struct leftovers *make_lo(size_t nmsgs, size_t nqos2, uint64_t expires_ms)
{
	struct leftovers *lo = calloc(1, sizeof(*lo));
	struct msg **tail;

	assert_non_null(lo);
	tail = &lo->msgs;
	for (size_t i = 0; i < nmsgs; i++) {
		char topic[32];
		int n = snprintf(topic, sizeof topic, "t/%zu", i);
		struct msg *m = msg_new(topic, (size_t)n, "payload", 7, NULL, 0, 1, false);
		assert_non_null(m);
		m->packet_id = (uint16_t)(i + 1);
		m->state = 2;
		lo->bytes += m->size;
		*tail = m;
		tail = &m->next;
	}
	if (nqos2) {
		lo->qos2_received = calloc(nqos2, sizeof(*lo->qos2_received));
		assert_non_null(lo->qos2_received);
		for (size_t i = 0; i < nqos2; i++)
			lo->qos2_received[i] = (uint16_t)(100 + i);
		lo->nqos2_received = nqos2;
	}
	lo->expires_ms = expires_ms;
	return lo;
}

static void test_msg_new_and_dup(void **state)
{
	(void)state;
	static const uint8_t props[] = {0x01, 0x01};
	struct msg *m = msg_new("a/b", 3, "\0hi\0", 4, props, sizeof props, 2, true);
	struct msg *d;

	assert_non_null(m);
	assert_null(m->next);
	assert_int_equal(m->qos, 2);
	assert_true(m->retain);
	assert_int_equal(m->topic.len, 3);
	assert_memory_equal(m->topic.data, "a/b", 4); /* NUL-terminated */
	assert_int_equal(m->payload.len, 4);
	assert_memory_equal(m->payload.data, "\0hi\0", 4);
	assert_int_equal(m->props.len, sizeof props);
	assert_memory_equal(m->props.data, props, sizeof props);
	assert_true(m->size >= sizeof(*m) + 3 + 1 + 4 + sizeof props);

	m->packet_id = 42;
	m->state = 3;
	m->next = m; /* any link; the copy must not keep it */
	d = msg_dup(m);
	assert_non_null(d);
	assert_null(d->next);
	assert_int_equal(d->packet_id, 42);
	assert_int_equal(d->state, 3);
	assert_int_equal(d->qos, 2);
	assert_true(d->retain);
	assert_int_equal(d->size, m->size);
	/* The copy is its own block, not pointing into @m. */
	assert_ptr_not_equal(d->topic.data, m->topic.data);
	free(m);
	assert_memory_equal(d->topic.data, "a/b", 4);
	assert_memory_equal(d->payload.data, "\0hi\0", 4);
	assert_memory_equal(d->props.data, props, sizeof props);
	free(d);
}

static void test_msg_empty_parts(void **state)
{
	(void)state;
	struct msg *m = msg_new("", 0, "", 0, NULL, 0, 0, false);

	assert_non_null(m);
	assert_int_equal(m->topic.len, 0);
	assert_non_null(m->topic.data);
	assert_int_equal(m->topic.data[0], '\0');
	assert_int_equal(m->payload.len, 0);
	assert_int_equal(m->props.len, 0);
	assert_int_equal(m->qos, 0);
	assert_false(m->retain);
	struct msg *d = msg_dup(m);
	assert_non_null(d);
	assert_int_equal(d->topic.len, 0);
	assert_int_equal(d->topic.data[0], '\0');
	free(d);
	free(m);
}

/* Sizes whose sum would overflow are refused before anything is read. */
static void test_msg_huge_sizes(void **state)
{
	(void)state;
	assert_null(msg_new("t", SIZE_MAX / 4 + 1, "", 0, NULL, 0, 0, false));
	assert_null(msg_new("t", 1, "p", SIZE_MAX / 4 + 1, NULL, 0, 0, false));
	assert_null(msg_new("t", 1, "p", 1, "x", SIZE_MAX, 0, false));
}

static void test_put_take(void **state)
{
	(void)state;
	struct store *st = store_new(10);
	struct leftovers *lo = make_lo(3, 2, 1000), *got;

	assert_non_null(st);
	assert_int_equal(store_count(st), 0);
	assert_null(store_take(st, "nobody"));

	assert_int_equal(store_put(st, "client-1", lo), 0);
	assert_int_equal(store_count(st), 1);
	assert_null(store_take(st, "client-"));
	assert_null(store_take(st, "client-10"));

	got = store_take(st, "client-1");
	assert_ptr_equal(got, lo);
	assert_int_equal(store_count(st), 0);
	assert_null(store_take(st, "client-1"));

	/* Taken as left: messages in order with their state, the QoS 2 ids, the expiry. */
	size_t i = 0;
	for (struct msg *m = got->msgs; m; m = m->next, i++) {
		char topic[32];
		snprintf(topic, sizeof topic, "t/%zu", i);
		assert_string_equal((const char *)m->topic.data, topic);
		assert_int_equal(m->packet_id, i + 1);
		assert_int_equal(m->state, 2);
	}
	assert_int_equal(i, 3);
	assert_int_equal(got->nqos2_received, 2);
	assert_int_equal(got->qos2_received[0], 100);
	assert_int_equal(got->qos2_received[1], 101);
	assert_int_equal(got->expires_ms, 1000);
	leftovers_free(got);
	leftovers_free(NULL);
	store_free(st);
	store_free(NULL);
}

static void test_client_ids(void **state)
{
	(void)state;
	struct store *st = store_new(10);
	struct leftovers *a = make_lo(0, 0, 1), *b = make_lo(0, 0, 2), *c = make_lo(0, 0, 3);

	assert_non_null(st);
	/* MQTT allows an empty client id; prefixes are distinct ids. */
	assert_int_equal(store_put(st, "", a), 0);
	assert_int_equal(store_put(st, "a", b), 0);
	assert_int_equal(store_put(st, "ab", c), 0);
	assert_int_equal(store_count(st), 3);
	assert_ptr_equal(store_take(st, "ab"), c);
	assert_ptr_equal(store_take(st, ""), a);
	assert_ptr_equal(store_take(st, "a"), b);
	leftovers_free(a);
	leftovers_free(b);
	leftovers_free(c);
	store_free(st);
}

/* A second put for the same client id replaces (and frees) the first: LSan checks. */
static void test_replace(void **state)
{
	(void)state;
	struct store *st = store_new(2);
	struct leftovers *first = make_lo(2, 1, 500), *second = make_lo(1, 0, 100);
	struct leftovers *other = make_lo(0, 0, 50);

	assert_non_null(st);
	assert_int_equal(store_put(st, "c", first), 0);
	assert_int_equal(store_put(st, "o", other), 0);
	/* Full, but replacing "c" must not evict "o" (which expires first). */
	assert_int_equal(store_put(st, "c", second), 0);
	assert_int_equal(store_count(st), 2);
	assert_ptr_equal(store_take(st, "c"), second);
	assert_ptr_equal(store_take(st, "o"), other);
	leftovers_free(second);
	leftovers_free(other);
	store_free(st);
}

/* Full: the kept session expiring first makes room; exactly @max_sessions stay. */
static void test_evicts_soonest(void **state)
{
	(void)state;
	struct store *st = store_new(3);
	struct leftovers *a = make_lo(1, 0, 300), *b = make_lo(1, 0, 100);
	struct leftovers *c = make_lo(1, 0, UINT64_MAX), *d = make_lo(1, 0, 400);
	struct leftovers *e = make_lo(1, 0, 1000);

	assert_non_null(st);
	assert_int_equal(store_put(st, "a", a), 0);
	assert_int_equal(store_put(st, "b", b), 0);
	assert_int_equal(store_put(st, "c", c), 0);
	assert_int_equal(store_count(st), 3); /* exactly at the bound: nothing goes */

	assert_int_equal(store_put(st, "d", d), 0);
	assert_int_equal(store_count(st), 3);
	assert_null(store_take(st, "b"));

	assert_int_equal(store_put(st, "e", e), 0);
	assert_int_equal(store_count(st), 3);
	assert_null(store_take(st, "a"));

	/* "never" expires last of all. */
	assert_ptr_equal(store_take(st, "c"), c);
	assert_ptr_equal(store_take(st, "d"), d);
	assert_ptr_equal(store_take(st, "e"), e);
	leftovers_free(c);
	leftovers_free(d);
	leftovers_free(e);
	store_free(st);
}

static void test_bound_of_one(void **state)
{
	(void)state;
	struct store *st = store_new(1);

	assert_non_null(st);
	for (uint64_t i = 0; i < 10; i++) {
		char id[16];
		snprintf(id, sizeof id, "c%u", (unsigned)i);
		assert_int_equal(store_put(st, id, make_lo(1, 1, 1000 - i)), 0);
		assert_int_equal(store_count(st), 1);
	}
	struct leftovers *lo = store_take(st, "c9");
	assert_non_null(lo);
	assert_int_equal(lo->expires_ms, 991);
	leftovers_free(lo);
	store_free(st);
}

/* Many puts into a small store, checked against a model of "evict the soonest kept". */
static void test_eviction_model(void **state)
{
	(void)state;
	enum { MAX = 50, N = 2000 };
	struct store *st = store_new(MAX);
	uint64_t model[N];
	bool kept[N] = {false};
	size_t nkept = 0;
	uint64_t x = 88172645463325252ULL;

	assert_non_null(st);
	for (size_t i = 0; i < N; i++) {
		char id[16];
		/* xorshift: distinct-enough expiries, repeatable. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		model[i] = (x % 1000000) * N + i; /* unique */
		snprintf(id, sizeof id, "id%zu", i);
		if (nkept == MAX) {
			size_t soon = N;
			for (size_t j = 0; j < i; j++)
				if (kept[j] && (soon == N || model[j] < model[soon]))
					soon = j;
			kept[soon] = false;
			nkept--;
		}
		assert_int_equal(store_put(st, id, make_lo(0, 0, model[i])), 0);
		kept[i] = true;
		nkept++;
		assert_int_equal(store_count(st), nkept);
	}
	for (size_t i = 0; i < N; i++) {
		char id[16];
		snprintf(id, sizeof id, "id%zu", i);
		struct leftovers *lo = store_take(st, id);
		if (kept[i]) {
			assert_non_null(lo);
			assert_int_equal(lo->expires_ms, model[i]);
			leftovers_free(lo);
		} else {
			assert_null(lo);
		}
	}
	assert_int_equal(store_count(st), 0);
	store_free(st);
}

static void test_expire(void **state)
{
	(void)state;
	struct store *st = store_new(10);

	assert_non_null(st);
	assert_int_equal(store_expire(st, 0), 0);
	assert_int_equal(store_put(st, "a", make_lo(2, 1, 100)), 0);
	assert_int_equal(store_put(st, "b", make_lo(0, 0, 200)), 0);
	assert_int_equal(store_put(st, "b2", make_lo(1, 0, 200)), 0);
	assert_int_equal(store_put(st, "c", make_lo(1, 3, 300)), 0);
	assert_int_equal(store_put(st, "never", make_lo(1, 0, UINT64_MAX)), 0);

	assert_int_equal(store_expire(st, 0), 0);
	assert_int_equal(store_expire(st, 99), 0);
	assert_int_equal(store_count(st), 5);
	/* Expiring at @now_ms counts as expired. */
	assert_int_equal(store_expire(st, 100), 1);
	assert_int_equal(store_count(st), 4);
	assert_null(store_take(st, "a"));
	assert_int_equal(store_expire(st, 100), 0);
	assert_int_equal(store_expire(st, 250), 2);
	assert_int_equal(store_count(st), 2);
	assert_int_equal(store_expire(st, UINT64_MAX - 1), 1);
	assert_int_equal(store_count(st), 1);

	struct leftovers *lo = store_take(st, "never");
	assert_non_null(lo);
	leftovers_free(lo);
	assert_int_equal(store_expire(st, UINT64_MAX - 1), 0);
	store_free(st); /* empty */
}

/* UINT64_MAX means "never": not even at the largest clock value. */
static void test_never_expires(void **state)
{
	(void)state;
	struct store *st = store_new(10);

	assert_non_null(st);
	assert_int_equal(store_put(st, "never", make_lo(1, 0, UINT64_MAX)), 0);
	assert_int_equal(store_put(st, "soon", make_lo(1, 0, 5)), 0);
	size_t dropped = store_expire(st, UINT64_MAX), left = store_count(st);
	struct leftovers *never = store_take(st, "never");
	bool kept = never != NULL;
	/* Free first: a failing test must not add leak reports to its own message. */
	leftovers_free(never);
	store_free(st);
	assert_int_equal(dropped, 1);
	assert_int_equal(left, 1);
	assert_true(kept);
}

/* Expiring most of many sessions at once (the store removes by the map's own keys). */
static void test_expire_many(void **state)
{
	(void)state;
	enum { N = 3000 };
	struct store *st = store_new(N);

	assert_non_null(st);
	for (size_t i = 0; i < N; i++) {
		char id[16];
		snprintf(id, sizeof id, "s%zu", i);
		assert_int_equal(store_put(st, id, make_lo(i % 3, i % 2, i)), 0);
	}
	assert_int_equal(store_count(st), N);
	assert_int_equal(store_expire(st, N / 2 - 1), N / 2);
	assert_int_equal(store_count(st), N - N / 2);
	for (size_t i = 0; i < N; i++) {
		char id[16];
		snprintf(id, sizeof id, "s%zu", i);
		struct leftovers *lo = store_take(st, id);
		if (i < N / 2) {
			assert_null(lo);
		} else {
			assert_non_null(lo);
			assert_int_equal(lo->expires_ms, i);
			/* Put it back so store_free() has something to free. */
			assert_int_equal(store_put(st, id, lo), 0);
		}
	}
	store_free(st); /* frees N/2 leftovers with their messages: LSan checks */
}

int main(void)
{
	/* Eviction logs a warning; keep the test output readable. */
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_msg_new_and_dup), cmocka_unit_test(test_msg_empty_parts),
	    cmocka_unit_test(test_msg_huge_sizes),  cmocka_unit_test(test_put_take),
	    cmocka_unit_test(test_client_ids),      cmocka_unit_test(test_replace),
	    cmocka_unit_test(test_evicts_soonest),  cmocka_unit_test(test_bound_of_one),
	    cmocka_unit_test(test_eviction_model),  cmocka_unit_test(test_expire),
	    cmocka_unit_test(test_never_expires),   cmocka_unit_test(test_expire_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
