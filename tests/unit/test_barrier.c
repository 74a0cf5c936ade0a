/* tests/unit/test_barrier.c — the hub's markers: shared waits, the next marker, cancel, loss. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "barrier.h"

struct wire {
	int sent;
	uint64_t last_id;
	int fail; /* the next sends fail */
};

static int send_marker(void *user, struct mqtt_bytes payload)
{
	struct wire *w = user;

	if (w->fail)
		return -1;
	assert_int_equal(payload.len, sizeof(uint64_t));
	memcpy(&w->last_id, payload.data, sizeof(uint64_t));
	w->sent++;
	return 0;
}

static void back(struct barrier *b, uint64_t id)
{
	barrier_seen(b, (struct mqtt_bytes){(const uint8_t *)&id, sizeof(id)});
}

static int calls[8];

static void on_caught_up(void *user)
{
	calls[(intptr_t)user]++;
}

static void reset(void)
{
	memset(calls, 0, sizeof(calls));
}

static void test_waits_share_a_marker_and_later_ones_the_next(void **state)
{
	struct wire w = {0};
	struct barrier *b = barrier_new(send_marker, &w);

	(void)state;
	reset();
	assert_non_null(barrier_wait(b, on_caught_up, (void *)1));
	assert_non_null(barrier_wait(b, on_caught_up, (void *)2));
	assert_int_equal(w.sent, 1);
	uint64_t first = w.last_id;
	back(b, first + 7); /* not ours */
	back(b, first - 1);
	assert_int_equal(calls[1] + calls[2], 0);
	back(b, first);
	/* 1 came before the marker went out; 2 came after, so it waits for the next one */
	assert_int_equal(calls[1], 1);
	assert_int_equal(calls[2], 0);
	assert_int_equal(w.sent, 2);
	assert_true(w.last_id != first);
	back(b, first); /* a second copy of the old one */
	assert_int_equal(calls[2], 0);
	back(b, w.last_id);
	assert_int_equal(calls[2], 1);
	assert_int_equal(w.sent, 2); /* nobody waits: no marker */
	barrier_free(b);
}

static void test_cancel(void **state)
{
	struct wire w = {0};
	struct barrier *b = barrier_new(send_marker, &w);
	struct barrier_wait *a, *c;

	(void)state;
	reset();
	a = barrier_wait(b, on_caught_up, (void *)1);
	c = barrier_wait(b, on_caught_up, (void *)2);
	barrier_cancel(b, a);
	barrier_cancel(b, c);
	back(b, w.last_id);
	assert_int_equal(calls[1] + calls[2], 0);
	assert_int_equal(w.sent, 1); /* the cancelled next one sends nothing */
	barrier_free(b);
}

static void test_unsent_marker(void **state)
{
	struct wire w = {.fail = 1};
	struct barrier *b = barrier_new(send_marker, &w);

	(void)state;
	reset();
	assert_null(barrier_wait(b, on_caught_up, (void *)1));
	assert_int_equal(calls[1], 0); /* the caller goes on itself */
	w.fail = 0;
	assert_non_null(barrier_wait(b, on_caught_up, (void *)1));
	assert_non_null(barrier_wait(b, on_caught_up, (void *)2));
	w.fail = 1;
	back(b, w.last_id);
	/* the next marker could not go out: its waiter goes on */
	assert_int_equal(calls[1], 1);
	assert_int_equal(calls[2], 1);
	barrier_free(b);
}

static void test_link_down_and_lost_marker(void **state)
{
	struct wire w = {0};
	struct barrier *b = barrier_new(send_marker, &w);

	(void)state;
	reset();
	barrier_wait(b, on_caught_up, (void *)1);
	barrier_wait(b, on_caught_up, (void *)2);
	barrier_release_all(b);
	assert_int_equal(calls[1], 1);
	assert_int_equal(calls[2], 1);
	back(b, w.last_id); /* late: nothing more */
	assert_int_equal(calls[1] + calls[2], 2);

	barrier_wait(b, on_caught_up, (void *)3);
	barrier_tick(b, UINT64_MAX);
	assert_int_equal(calls[3], 1);
	barrier_free(b);
}

static void test_free_with_waiters(void **state)
{
	struct wire w = {0};
	struct barrier *b = barrier_new(send_marker, &w);

	(void)state;
	reset();
	barrier_wait(b, on_caught_up, (void *)1);
	barrier_wait(b, on_caught_up, (void *)2);
	barrier_free(b); /* no calls, no leaks (ASan) */
	assert_int_equal(calls[1] + calls[2], 0);
	barrier_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_waits_share_a_marker_and_later_ones_the_next),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_unsent_marker),
	    cmocka_unit_test(test_link_down_and_lost_marker),
	    cmocka_unit_test(test_free_with_waiters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
