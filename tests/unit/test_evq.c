/* tests/unit/test_evq.c — the producer → service thread hand-off: order, ownership, wake-ups. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "evq.h"

/* Items are the producer's own struct with the evq_item first, as upstream.c does. */
struct item {
	struct evq_item base;
	unsigned producer;
	unsigned seq;
};

static struct evq_item *new_item(unsigned producer, unsigned seq)
{
	struct item *it = malloc(sizeof(*it));

	assert_non_null(it);
	memset(it, 0, sizeof(*it));
	it->base.target = producer + 1;
	it->base.kind = seq;
	it->producer = producer;
	it->seq = seq;
	/* A stale link must not matter: the queue owns ->next. */
	it->base.next = (struct evq_item *)(uintptr_t)0xdeadbeef;
	return &it->base;
}

static void free_list(struct evq_item *it)
{
	while (it) {
		struct evq_item *next = it->next;
		free(it);
		it = next;
	}
}

static void count_wake(void *user)
{
	atomic_fetch_add((atomic_uint *)user, 1);
}

static void test_empty(void **state)
{
	(void)state;
	atomic_uint wakes = 0;
	struct evq *q = evq_new(count_wake, &wakes);

	assert_non_null(q);
	assert_null(evq_take_all(q));
	assert_null(evq_take_all(q));
	assert_int_equal(atomic_load(&wakes), 0);
	evq_free(q);
	evq_free(NULL);
}

/* Oldest first, one wake for the batch, and the next push after a take wakes again. */
static void test_batch_order_and_wake(void **state)
{
	(void)state;
	atomic_uint wakes = 0;
	struct evq *q = evq_new(count_wake, &wakes);
	struct evq_item *list, *it;
	unsigned n = 0;

	assert_non_null(q);
	for (unsigned i = 0; i < 5; i++)
		evq_push(q, new_item(0, i));
	assert_int_equal(atomic_load(&wakes), 1);

	list = evq_take_all(q);
	for (it = list; it; it = it->next, n++) {
		assert_int_equal(((struct item *)it)->seq, n);
		assert_int_equal(it->kind, n);
		assert_int_equal(it->target, 1);
	}
	assert_int_equal(n, 5);
	free_list(list);

	/* An empty take does not wake anyone, and does not swallow the next wake. */
	assert_null(evq_take_all(q));
	assert_int_equal(atomic_load(&wakes), 1);
	evq_push(q, new_item(0, 5));
	assert_int_equal(atomic_load(&wakes), 2);
	evq_push(q, new_item(0, 6));
	assert_int_equal(atomic_load(&wakes), 2);

	list = evq_take_all(q);
	assert_non_null(list);
	assert_int_equal(((struct item *)list)->seq, 5);
	assert_non_null(list->next);
	assert_int_equal(((struct item *)list->next)->seq, 6);
	assert_null(list->next->next);
	free_list(list);

	/* One item: a batch of its own, a wake of its own. */
	evq_push(q, new_item(0, 7));
	assert_int_equal(atomic_load(&wakes), 3);
	list = evq_take_all(q);
	assert_non_null(list);
	assert_null(list->next);
	free_list(list);
	assert_null(evq_take_all(q));
	evq_free(q);
}

/* Items still queued at shutdown are freed by evq_free() (LSan checks). */
static void test_free_with_queued_items(void **state)
{
	(void)state;
	atomic_uint wakes = 0;
	struct evq *q = evq_new(count_wake, &wakes);

	assert_non_null(q);
	for (unsigned i = 0; i < 100; i++)
		evq_push(q, new_item(0, i));
	evq_free(q);
	assert_int_equal(atomic_load(&wakes), 1);
}

/* The multi-threaded test: producers push, the main thread plays a slow service thread. */
#define PRODUCERS    4
#define PER_PRODUCER 20000

struct mt {
	struct evq *q;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned wakes; /* under lock */
};

struct producer {
	struct mt *mt;
	unsigned id;
	pthread_t thread;
};

static void mt_wake(void *user)
{
	struct mt *mt = user;

	pthread_mutex_lock(&mt->lock);
	mt->wakes++;
	pthread_cond_signal(&mt->cond);
	pthread_mutex_unlock(&mt->lock);
}

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		struct item *it = malloc(sizeof(*it));
		if (!it)
			abort();
		it->base.target = p->id + 1;
		it->base.kind = i;
		it->producer = p->id;
		it->seq = i;
		evq_push(p->mt->q, &it->base);
		/* Bursts with gaps, so batches both accumulate and drain. */
		if (i % 1000 == 999)
			sched_yield();
	}
	return NULL;
}

static void test_threads_batches(void **state)
{
	(void)state;
	struct mt mt;
	struct producer prod[PRODUCERS];
	unsigned next_seq[PRODUCERS] = {0};
	unsigned received = 0, seen_wakes = 0, batches = 0, final_wakes;
	const unsigned total = PRODUCERS * PER_PRODUCER;
	struct timespec deadline;

	memset(&mt, 0, sizeof(mt));
	assert_int_equal(pthread_mutex_init(&mt.lock, NULL), 0);
	assert_int_equal(pthread_cond_init(&mt.cond, NULL), 0);
	mt.q = evq_new(mt_wake, &mt);
	assert_non_null(mt.q);

	for (unsigned i = 0; i < PRODUCERS; i++) {
		prod[i].mt = &mt;
		prod[i].id = i;
		assert_int_equal(pthread_create(&prod[i].thread, NULL, produce, &prod[i]), 0);
	}

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 60; /* a lost wake fails the test instead of hanging it */
	while (received < total) {
		struct evq_item *list, *it;

		/* Like lws: sleep until woken, then take everything. */
		pthread_mutex_lock(&mt.lock);
		while (mt.wakes == seen_wakes) {
			int rc = pthread_cond_timedwait(&mt.cond, &mt.lock, &deadline);
			if (rc == ETIMEDOUT) {
				pthread_mutex_unlock(&mt.lock);
				fail_msg("no wake-up with %u of %u items received", received,
					 total);
			}
		}
		seen_wakes = mt.wakes;
		pthread_mutex_unlock(&mt.lock);

		/* A slow service thread: items pile up meanwhile. */
		nanosleep(&(struct timespec){0, 200000}, NULL);

		list = evq_take_all(mt.q);
		if (list)
			batches++;
		for (it = list; it; it = it->next) {
			struct item *x = (struct item *)it;
			assert_true(x->producer < PRODUCERS);
			assert_int_equal(it->target, x->producer + 1);
			/* Exactly once and in each producer's order. */
			assert_int_equal(x->seq, next_seq[x->producer]);
			next_seq[x->producer]++;
			received++;
		}
		free_list(list);
	}
	for (unsigned i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_join(prod[i].thread, NULL), 0);

	for (unsigned i = 0; i < PRODUCERS; i++)
		assert_int_equal(next_seq[i], PER_PRODUCER);
	assert_int_equal(received, total);
	assert_null(evq_take_all(mt.q));

	pthread_mutex_lock(&mt.lock);
	final_wakes = mt.wakes;
	pthread_mutex_unlock(&mt.lock);
	/* Every non-empty batch was announced by a wake... */
	assert_true(final_wakes >= batches);
	/* ...but not every item: the consumer was slow, so items shared batches. */
	assert_true(final_wakes < total / 10);
	assert_true(batches < total / 10);

	evq_free(mt.q);
	pthread_cond_destroy(&mt.cond);
	pthread_mutex_destroy(&mt.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_batch_order_and_wake),
	    cmocka_unit_test(test_free_with_queued_items),
	    cmocka_unit_test(test_threads_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
