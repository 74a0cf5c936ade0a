/*
 * bridge/session/store.h — what a persistent session leaves behind in this bridge instance.
 *
 * Paho acknowledges a QoS 1/2 message to the broker as soon as it arrives, so when a browser
 * leaves before acknowledging it, the broker considers it delivered. The bridge keeps such
 * messages (and the QoS 2 packet ids it must still answer) per client id until the session
 * expires or the client comes back. This lives in memory, in this instance only.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct leftovers {
	struct msg *msgs; /* oldest first; msg->state and packet_id as the session left them */
	size_t bytes;
	/* the browser's QoS 2 packet ids answered with PUBREC, no PUBREL yet */
	uint16_t *qos2_received;
	size_t nqos2_received;
	uint64_t expires_ms; /* CLOCK_MONOTONIC milliseconds; UINT64_MAX: never */
};

struct store;

/** NULL when out of memory. At most @max_sessions are kept; the one expiring first goes. */
struct store *store_new(size_t max_sessions);

/**
 * Keeps @lo (the store owns it from now on, also on error) for @client_id, replacing what was
 * kept for it. 0, or -ENOMEM (then @lo is freed and counted as lost).
 */
int store_put(struct store *st, const char *client_id, struct leftovers *lo);

/** Takes what is kept for @client_id (the caller owns it), or NULL. */
struct leftovers *store_take(struct store *st, const char *client_id);

/** Drops what expired at @now_ms. Returns how many sessions were dropped. */
size_t store_expire(struct store *st, uint64_t now_ms);

/** Sessions kept. */
size_t store_count(const struct store *st);

/** Frees @lo and its messages. NULL does nothing. */
void leftovers_free(struct leftovers *lo);

void store_free(struct store *st);
