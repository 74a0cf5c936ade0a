/*
 * bridge/hub/barrier.h — "the hub has received everything the broker sent it before now".
 *
 * The hub and the retained reader are two connections, and Paho reads their sockets in its own
 * order: the reader may hand over a retained value before the hub hands over a live message the
 * broker sent it earlier. A barrier is a marker the hub publishes to a topic only it subscribes
 * to; the broker queues it behind everything it already routed to the hub, so when it comes back
 * the hub is caught up. Waiters that arrive while a marker is out share the next one. Service
 * thread only.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "codec.h"

struct barrier;
struct barrier_wait;

/* Publishes the marker @payload; 0 when it went out. */
typedef int (*barrier_send_fn)(void *user, struct mqtt_bytes payload);
typedef void (*barrier_fn)(void *user);

/** NULL when out of memory. @send publishes a marker for @user. */
struct barrier *barrier_new(barrier_send_fn send, void *user);

/** Drops every waiter without calling it. NULL is fine. */
void barrier_free(struct barrier *b);

/**
 * @fn(@user) once a marker published after this call has come back (or is late, or the link
 * went down). NULL when that cannot be waited for (out of memory, the marker did not go out):
 * the caller goes on at once. The wait is the caller's until @fn runs or it cancels it.
 */
struct barrier_wait *barrier_wait(struct barrier *b, barrier_fn fn, void *user);

/** Forgets @w without calling it. Not from inside its own callback. */
void barrier_cancel(struct barrier *b, struct barrier_wait *w);

/** A marker came back (the hub's own marker topic) with @payload. */
void barrier_seen(struct barrier *b, struct mqtt_bytes payload);

/** The link went down: every waiter goes on now. */
void barrier_release_all(struct barrier *b);

/** About once a second: a marker out for longer than the bound counts as back (a lost QoS 0). */
void barrier_tick(struct barrier *b, uint64_t now_ms);
