/*
 * bridge/session/shared_int.h — what the files of shared sessions (shared.c, shared_deliver.c,
 * shared_retained.c) share: the record of one subscription and the held messages. Not for
 * other modules. Service thread only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session_int.h"

/* Own publishes remembered for no-local. */
#define ECHO_MAX 64
/* msg->state of a held message: the publisher set retain (its retained value replaces any). */
#define HELD_RETAINED 1

struct shared_sub {
	struct hub_member member;
	struct session *s;
	char *filter;
	size_t len;
	uint8_t options;
	uint8_t granted;
	uint32_t sub_id; /* 0: none */
	bool hold;       /* live messages wait for this subscription's SUBACK and retained ones */
	bool want_retained;
	struct sub_op *op; /* the SUBSCRIBE whose SUBACK has not gone out yet */
	size_t op_index;
	struct retained_req *read;
	/* What the read found, waiting for the hub to catch up (hub_barrier()) */
	struct barrier_wait *barrier;
	struct msg *found;
	bool read_wanted; /* the reader was not up yet: shared_tick() tries again */
	uint64_t joined;  /* retained_mark() when its live messages started */
	uint64_t read_since_ms;
};

struct shared_echoes {
	size_t head, n;
	struct {
		uint64_t hash;
		uint64_t expires_ms;
	} e[ECHO_MAX];
};

static inline struct shared_sub *sub_of(struct hub_member *m)
{
	return (struct shared_sub *)((char *)m - offsetof(struct shared_sub, member));
}

static inline struct session *session_of(struct hub_receiver *r)
{
	return (struct session *)((char *)r - offsetof(struct session, rcv));
}

static inline uint8_t min_qos(uint8_t a, uint8_t b)
{
	return a < b ? a : b;
}

/* Messages from the hub (shared_deliver.c). */
void shared_deliver(struct hub_receiver *r, struct hub_event *ev, struct hub_member *matches);
/** A copy of @m as this browser gets it, with @ids as its subscription identifiers. NULL when
 * out of memory. */
struct msg *shared_copy_for(const struct msg *m, uint8_t qos, bool retain, const uint32_t *ids,
			    size_t nids);
void shared_free_list(struct msg *m);
/** Delivers the held messages, in order. */
void shared_flush_held(struct session *s);
/** @ss no longer holds the live messages back; the last one to let go flushes them. */
void shared_release_hold(struct shared_sub *ss);

/* No-local (shared.c). */
/** Is @m the browser's own publish coming back? Then it is forgotten. */
bool shared_echo_take(struct session *s, const struct msg *m);
