/* tests/unit/test_ratelimit.c — token buckets: burst, refill, Retry-After, keys apart, bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

#define T0 UINT64_C(1000000)

static long take(struct ratelimit *rl, const char *key, uint64_t now)
{
	return ratelimit_take(rl, key, strlen(key), now);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	assert_null(ratelimit_new(0, 10));
	assert_null(ratelimit_new(-1, 10));
	assert_null(ratelimit_new(10, 0));
	ratelimit_free(NULL);
}

static void test_burst_then_refused(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(5, 100);

	assert_non_null(rl);
	/* A minute's worth at once... */
	for (int i = 0; i < 5; i++)
		assert_int_equal(take(rl, "alice", T0), 0);
	/* ...then one token every 12 s: the answer says how long to wait, rounded up. */
	assert_int_equal(take(rl, "alice", T0), 12);
	assert_int_equal(take(rl, "alice", T0 + 1), 12);
	assert_int_equal(take(rl, "alice", T0 + 11000), 1);
	assert_int_equal(take(rl, "alice", T0 + 11999), 1);
	assert_int_equal(take(rl, "alice", T0 + 12000), 0);
	assert_int_equal(take(rl, "alice", T0 + 12000), 12);
	ratelimit_free(rl);
}

static void test_refill_is_capped(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(3, 100);

	for (int i = 0; i < 3; i++)
		assert_int_equal(take(rl, "k", T0), 0);
	/* An hour idle refills to three, not to sixty times three. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(take(rl, "k", T0 + 3600000), 0);
	assert_true(take(rl, "k", T0 + 3600000) > 0);
	ratelimit_free(rl);
}

static void test_keys_are_apart(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(2, 100);

	assert_int_equal(take(rl, "a", T0), 0);
	assert_int_equal(take(rl, "a", T0), 0);
	assert_true(take(rl, "a", T0) > 0);
	assert_int_equal(take(rl, "b", T0), 0);
	assert_int_equal(take(rl, "b", T0), 0);
	assert_true(take(rl, "b", T0) > 0);
	/* Keys are bytes: an embedded NUL makes another key. */
	assert_int_equal(ratelimit_take(rl, "a\0x", 3, T0), 0);
	ratelimit_free(rl);
}

static void test_high_rate_fractional_refill(void **state)
{
	(void)state;
	/* 6000 a minute: one token every 10 ms; a refused request waits one whole second. */
	struct ratelimit *rl = ratelimit_new(6000, 10);

	for (int i = 0; i < 6000; i++)
		assert_int_equal(take(rl, "fast", T0), 0);
	assert_int_equal(take(rl, "fast", T0), 1);
	assert_int_equal(take(rl, "fast", T0 + 9), 1);
	assert_int_equal(take(rl, "fast", T0 + 10), 0);
	/* 1 ms at a time adds up exactly: no rounding loss. */
	for (uint64_t t = 11; t < 20; t++)
		assert_int_equal(take(rl, "fast", T0 + t), 1);
	assert_int_equal(take(rl, "fast", T0 + 20), 0);
	ratelimit_free(rl);
}

static void test_clock_going_back_adds_nothing(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(1, 10);

	assert_int_equal(take(rl, "k", T0), 0);
	assert_int_equal(take(rl, "k", T0 - 500000), 60);
	assert_int_equal(take(rl, "k", T0 + 59999), 1);
	assert_int_equal(take(rl, "k", T0 + 60000), 0);
	ratelimit_free(rl);
}

static void test_full_buckets_are_dropped(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(60, 1000);
	char key[32];

	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "addr-%d", i);
		assert_int_equal(take(rl, key, T0), 0);
	}
	assert_int_equal(ratelimit_keys(rl), 500);
	/* A second later each has its token back: the next request drops them all. */
	assert_int_equal(take(rl, "late", T0 + 1000), 0);
	assert_int_equal(ratelimit_keys(rl), 1);
	ratelimit_free(rl);
}

static void test_bounded_keys_evict_idle_longest(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(2, 3);

	/* Three keys use their whole minute; none is full again soon. */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(take(rl, "a", T0), 0);
		assert_int_equal(take(rl, "b", T0 + 1), 0);
		assert_int_equal(take(rl, "c", T0 + 2), 0);
	}
	assert_int_equal(ratelimit_keys(rl), 3);
	/* "a" is used again (refused): "b" is now the idle-longest, and makes room for "d". */
	assert_true(take(rl, "a", T0 + 3) > 0);
	assert_int_equal(take(rl, "d", T0 + 4), 0);
	assert_int_equal(ratelimit_keys(rl), 3);
	assert_true(take(rl, "a", T0 + 5) > 0);
	assert_true(take(rl, "c", T0 + 5) > 0);
	/* "b" starts over (evicted), which pushes out "d"... and the count stays bounded. */
	assert_int_equal(take(rl, "b", T0 + 6), 0);
	assert_int_equal(ratelimit_keys(rl), 3);
	for (int i = 0; i < 10000; i++) {
		char key[32];
		snprintf(key, sizeof(key), "flood-%d", i);
		take(rl, key, T0 + 7);
		assert_true(ratelimit_keys(rl) <= 3);
	}
	ratelimit_free(rl);
}

static void test_empty_key(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(1, 4);

	assert_int_equal(ratelimit_take(rl, "", 0, T0), 0);
	assert_int_equal(ratelimit_take(rl, "", 0, T0), 60);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_burst_then_refused),
	    cmocka_unit_test(test_refill_is_capped),
	    cmocka_unit_test(test_keys_are_apart),
	    cmocka_unit_test(test_high_rate_fractional_refill),
	    cmocka_unit_test(test_clock_going_back_adds_nothing),
	    cmocka_unit_test(test_full_buckets_are_dropped),
	    cmocka_unit_test(test_bounded_keys_evict_idle_longest),
	    cmocka_unit_test(test_empty_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
