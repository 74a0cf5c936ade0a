/*
 * bridge/hub/retained.h — reading the broker's retained messages (GET /api/v1/topics, and streams
 * opened with ?retained=true).
 *
 * A read subscribes to the filter on a link of its own, with a fresh MQTT 5 Subscription
 * Identifier, and publishes a marker to the link's own sync topic behind it. Brokers send a
 * subscription's retained messages before they handle the client's next packet, so when the
 * marker comes back the read is complete. One marker is out at a time; the reads that start
 * meanwhile share the next one, and the reads one marker ends leave in one UNSUBSCRIBE. Reads of
 * the same filter at the same time share one subscription. Service thread only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "link.h"
#include "msg.h"
#include "upstream.h"

struct retained;

struct retained_req;

struct retained_config {
	struct link_config link; /* its own link; the reader names it itself */
	size_t max_messages;     /* per read */
	size_t max_bytes;        /* per read */
};

/**
 * The end of a read: @msgs[0..n) sorted by topic (borrowed), @complete when the marker confirmed
 * nothing else is retained (false after retained_finish() or when a limit cut it), or @ok false
 * when the link went down first.
 */
typedef void (*retained_fn)(void *user, bool ok, bool complete, struct msg *const *msgs, size_t n);

struct retained *retained_new(const struct retained_config *cfg);

/** Pending reads end with @ok false. */
void retained_free(struct retained *r);

bool retained_connected(const struct retained *r);

/** About once a second: reconnect backoff. */
void retained_tick(struct retained *r);

/**
 * Starts a read of the valid filter @filter returning at most @limit messages. A read of the same
 * filter under way is shared when it started after @since (a retained_mark(); 0: any): a shared
 * session passes the mark of when its live messages started, so its read sees every retained
 * value set before. NULL when the link is down (then @fn is not called).
 */
struct retained_req *retained_get(struct retained *r, const char *filter, size_t limit,
				  uint64_t since, retained_fn fn, void *user);

/** Now, as retained_get() compares it: reads started from now on are after it. */
uint64_t retained_mark(const struct retained *r);

/** Ends @q now with what has arrived (@complete false); the handle is gone afterwards. */
void retained_finish(struct retained *r, struct retained_req *q);

/** Forgets @q: its callback will not be called. */
void retained_cancel(struct retained *r, struct retained_req *q);
