/* tests/unit/test_wheel.c — deadlines: fire once, never early, at most a slot late; move, cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wheel.h"

#define T0 1000003 /* not on a slot boundary */

struct rec {
	struct wheel_entry e;
	int fired;
	int64_t at; /* the now of the expire call that fired it */
};

struct run {
	struct wheel *w;
	int64_t now;
	int64_t rearm_by;   /* >0: each fired entry is armed again this much later, once */
	struct rec *cancel; /* cancelled by the first callback */
};

static void on_expired(struct wheel_entry *e, void *arg)
{
	struct run *r = arg;
	struct rec *x = (struct rec *)e;

	x->fired++;
	x->at = r->now;
	if (r->rearm_by && x->fired == 1)
		wheel_set(r->w, e, r->now + r->rearm_by);
	if (r->cancel) {
		wheel_cancel(r->w, &r->cancel->e);
		r->cancel = NULL;
	}
}

/* Steps time from @from to @to in @step increments, expiring at each. */
static size_t advance(struct run *r, int64_t from, int64_t to, int64_t step)
{
	size_t n = 0;

	for (r->now = from; r->now <= to; r->now += step)
		n += wheel_expire(r->w, r->now, on_expired, r);
	return n;
}

static void test_fires_once_not_early_at_most_a_slot_late(void **state)
{
	static struct wheel w;
	struct rec recs[6];
	/* Due times: within the first slot, on a boundary, a few slots on, past a whole turn. */
	int64_t due[6] = {T0 + 10,
			  T0 + 49997,
			  T0 + 3 * WHEEL_SLOT_US,
			  T0 + 90 * 1000000LL,
			  T0 + 2 * WHEEL_SLOTS * (int64_t)WHEEL_SLOT_US + 7,
			  T0};
	struct run r = {.w = &w};

	(void)state;
	memset(recs, 0, sizeof(recs));
	wheel_init(&w, T0);
	for (int i = 0; i < 6; i++)
		wheel_set(&w, &recs[i].e, due[i]);
	assert_int_equal(w.armed, 6);
	assert_int_equal(advance(&r, T0, T0 + 120 * 1000000LL, 1000), 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(recs[i].fired, 1);
		assert_true(recs[i].at >= due[i]);
		assert_true(recs[i].at <= due[i] + WHEEL_SLOT_US + 1000);
		assert_null(recs[i].e.next);
	}
	assert_int_equal(w.armed, 0);
}

static void test_moved_and_cancelled(void **state)
{
	static struct wheel w;
	struct rec a = {0}, b = {0}, c = {0};
	struct run r = {.w = &w};

	(void)state;
	wheel_init(&w, T0);
	wheel_set(&w, &a.e, T0 + 100000);
	wheel_set(&w, &b.e, T0 + 100000);
	wheel_set(&w, &a.e, T0 + 5000000); /* moved later: not fired at the first time */
	wheel_cancel(&w, &b.e);
	wheel_cancel(&w, &b.e); /* twice: nothing */
	wheel_set(&w, &c.e, T0 + 200000);
	assert_int_equal(w.armed, 2);
	advance(&r, T0, T0 + 4000000, 10000);
	assert_int_equal(a.fired, 0);
	assert_int_equal(b.fired, 0);
	assert_int_equal(c.fired, 1);
	advance(&r, T0 + 4000000, T0 + 6000000, 10000);
	assert_int_equal(a.fired, 1);
	assert_true(a.at >= T0 + 5000000);
	assert_int_equal(b.fired, 0);
}

static void test_callbacks_rearm_and_cancel_others(void **state)
{
	static struct wheel w;
	struct rec a = {0}, b = {0};
	struct run r = {.w = &w, .rearm_by = 300000};

	(void)state;
	wheel_init(&w, T0);
	wheel_set(&w, &a.e, T0 + 100000);
	wheel_set(&w, &b.e, T0 + 100000);
	r.cancel = &b; /* whichever fires first cancels b, even when b is due in the same step */
	advance(&r, T0, T0 + 2000000, 20000);
	assert_int_equal(a.fired, 2); /* fired, re-armed by its callback, fired again */
	assert_int_equal(b.fired, 0);
	assert_int_equal(w.armed, 0);
}

static void test_past_due_and_stall(void **state)
{
	static struct wheel w;
	struct rec a = {0}, b = {0};
	struct run r = {.w = &w};

	(void)state;
	wheel_init(&w, T0);
	advance(&r, T0, T0 + 1000000, 100000);
	wheel_set(&w, &a.e, T0 - 5000000); /* already past: fires at the next step */
	r.now = T0 + 1000000 + WHEEL_SLOT_US;
	assert_int_equal(wheel_expire(&w, r.now, on_expired, &r), 1);
	assert_int_equal(a.fired, 1);
	/* The loop stalls for several turns: the entry fires on the first call after it. */
	wheel_set(&w, &b.e, r.now + 2000000);
	r.now += 10LL * WHEEL_SLOTS * WHEEL_SLOT_US;
	assert_int_equal(wheel_expire(&w, r.now, on_expired, &r), 1);
	assert_int_equal(b.fired, 1);
	/* ...and the wheel goes on from there. */
	wheel_set(&w, &b.e, r.now + 70000);
	assert_int_equal(advance(&r, r.now, r.now + 200000, 10000), 1);
	assert_int_equal(b.fired, 2);
}

static void test_many_entries(void **state)
{
	static struct wheel w;
	enum { N = 20000 };
	struct rec *recs = calloc(N, sizeof(*recs));
	struct run r = {.w = &w};

	(void)state;
	assert_non_null(recs);
	wheel_init(&w, T0);
	for (int i = 0; i < N; i++)
		wheel_set(&w, &recs[i].e, T0 + (int64_t)(i % 997) * 90331);
	assert_int_equal(advance(&r, T0, T0 + 100 * 1000000LL, 50000), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(recs[i].fired, 1);
	free(recs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fires_once_not_early_at_most_a_slot_late),
	    cmocka_unit_test(test_moved_and_cancelled),
	    cmocka_unit_test(test_callbacks_rearm_and_cancel_others),
	    cmocka_unit_test(test_past_due_and_stall),
	    cmocka_unit_test(test_many_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
