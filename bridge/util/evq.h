/* bridge/util/evq.h — the hand-off from Paho's threads to the lws service thread
 * (doc/design.md §3.2). */
#pragma once
#include <stddef.h>
#include <stdint.h>

/*
 * Producers (Paho callbacks) push items and the queue wakes the service thread once per batch
 * through @wake (main wires it to lws_cancel_service()). The service thread takes every queued
 * item at once and handles them in order. Items are allocated by the producer with malloc and
 * freed by whoever handles them.
 */
struct evq;

struct evq_item {
	struct evq_item *next; /* the queue's link */
	uint64_t target;       /* who handles it: a session id, or EVQ_TARGET_HUB */
	uint32_t kind;         /* what it is, defined by the producer's module */
};

#define EVQ_TARGET_HUB UINT64_C(0)

/** Any thread. NULL when out of memory. @wake is called from producer threads. */
struct evq *evq_new(void (*wake)(void *user), void *user);

/** Any thread. Queues @item (the queue owns it until taken) and wakes the service thread. */
void evq_push(struct evq *q, struct evq_item *item);

/** Service thread. Everything queued, oldest first (NULL when empty); the caller owns the list. */
struct evq_item *evq_take_all(struct evq *q);

/** After the producers have stopped. Frees queued items (with free()) and @q. NULL does nothing. */
void evq_free(struct evq *q);
