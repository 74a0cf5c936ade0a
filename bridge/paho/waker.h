/*
 * bridge/paho/waker.h — keeps Paho's receive thread from sleeping through new connections.
 *
 * Paho C 1.3's receive thread polls its sockets for reading with a 1 s timeout, and only sees a
 * socket added meanwhile (a new MQTTAsync client connecting) when that poll returns: every
 * browser CONNECT would wait 1-2 s for its CONNACK (paho.mqtt.c issue #1430). The waker is one
 * extra Paho client connected to a tiny local listener of ours; while any upstream connection is
 * being set up, a thread of ours writes a 2-byte PINGRESP to it every few milliseconds, which
 * ends Paho's poll, so the new socket joins the next one at once.
 *
 * Paho's send thread has the same kind of gap: it waits on a condition variable without a
 * predicate, so a request queued just before it goes back to sleep waits up to 1 s. After each
 * request the waker's thread, a few milliseconds later, queues a tiny PUBLISH on the waker's own
 * client, which wakes the send thread again; it then sends everything queued.
 */
#pragma once

struct waker;

/** Startup, before other Paho clients exist. NULL when it cannot be set up (logged): the bridge
 * then works with Paho's slower connects. */
struct waker *waker_new(void);

/** Any thread. A Paho client starts (+1) or ends (-1) connecting. NULL does nothing. */
void waker_connecting(struct waker *w, int delta);

/** Any thread. A request was queued with Paho: make sure its send thread looks soon. */
void waker_kick(struct waker *w);

/** Stops the thread, the Paho client and the listener. NULL does nothing. */
void waker_free(struct waker *w);
