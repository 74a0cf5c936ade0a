/* bridge/util/evq.c — a locked FIFO of items with one wake-up per batch, not per item. */
#include "evq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct evq {
	pthread_mutex_t lock;
	struct evq_item *head;
	struct evq_item **tail;
	/* Set by the push that finds the queue idle; cleared when the service thread takes the
	 * batch. Waking once per batch keeps lws_cancel_service()'s pipe write off the per-message
	 * path under load. */
	bool wake_pending;
	void (*wake)(void *user);
	void *user;
};

struct evq *evq_new(void (*wake)(void *user), void *user)
{
	struct evq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	if (pthread_mutex_init(&q->lock, NULL)) {
		free(q);
		return NULL;
	}
	q->tail = &q->head;
	q->wake = wake;
	q->user = user;
	return q;
}

void evq_push(struct evq *q, struct evq_item *item)
{
	bool wake;

	item->next = NULL;
	pthread_mutex_lock(&q->lock);
	*q->tail = item;
	q->tail = &item->next;
	wake = !q->wake_pending;
	q->wake_pending = true;
	pthread_mutex_unlock(&q->lock);
	if (wake && q->wake)
		q->wake(q->user);
}

struct evq_item *evq_take_all(struct evq *q)
{
	struct evq_item *list;

	pthread_mutex_lock(&q->lock);
	list = q->head;
	q->head = NULL;
	q->tail = &q->head;
	q->wake_pending = false;
	pthread_mutex_unlock(&q->lock);
	return list;
}

void evq_free(struct evq *q)
{
	struct evq_item *it, *next;

	if (!q)
		return;
	for (it = q->head; it; it = next) {
		next = it->next;
		free(it);
	}
	pthread_mutex_destroy(&q->lock);
	free(q);
}
