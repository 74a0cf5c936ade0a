/* bridge/hub/barrier.c — markers the hub sends itself, to know it is caught up (barrier.h). */
#include "barrier.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

/* A marker not back by then was lost (it goes at QoS 0): its waiters go on. */
#define BARRIER_TIMEOUT_MS 1000

struct barrier_wait {
	struct barrier_wait *next;
	barrier_fn fn;
	void *user;
};

struct barrier {
	barrier_send_fn send;
	void *user;
	uint64_t next_id;
	uint64_t out_id; /* the marker out; 0: none */
	uint64_t sent_ms;
	struct barrier_wait *out;  /* waiting for the marker out */
	struct barrier_wait *next; /* waiting for the one after it */
	bool firing;
};

struct barrier *barrier_new(barrier_send_fn send, void *user)
{
	struct barrier *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->send = send;
	b->user = user;
	return b;
}

static void free_list(struct barrier_wait *w)
{
	for (struct barrier_wait *next; w; w = next) {
		next = w->next;
		free(w);
	}
}

void barrier_free(struct barrier *b)
{
	if (!b)
		return;
	free_list(b->out);
	free_list(b->next);
	free(b);
}

static void start(struct barrier *b);

/* The marker out is back (or counts as back): its waiters go on, then the next one goes out. */
static void fire(struct barrier *b)
{
	struct barrier_wait *w;

	b->out_id = 0;
	b->firing = true;
	while ((w = b->out)) {
		b->out = w->next;
		w->fn(w->user);
		free(w);
	}
	b->firing = false;
	if (b->next)
		start(b);
}

/* A new marker goes out; 0 when it did (it is then b->out_id). */
static int send_marker(struct barrier *b)
{
	uint64_t id = b->next_id + 1;
	uint8_t payload[sizeof(id)];

	memcpy(payload, &id, sizeof(payload));
	if (b->send(b->user, (struct mqtt_bytes){payload, sizeof(payload)})) {
		log_msg(LOG_DEBUG, "hub", "barrier-unsent id=%llu", (unsigned long long)id);
		return -1;
	}
	b->next_id = id;
	b->out_id = id;
	b->sent_ms = clock_mono_ms();
	return 0;
}

/* Those waiting for the next marker wait for one that goes out now (or go on, if it cannot). */
static void start(struct barrier *b)
{
	b->out = b->next;
	b->next = NULL;
	if (send_marker(b))
		fire(b);
}

struct barrier_wait *barrier_wait(struct barrier *b, barrier_fn fn, void *user)
{
	struct barrier_wait *w = malloc(sizeof(*w));

	if (!w)
		return NULL;
	w->fn = fn;
	w->user = user;
	if (!b->out_id && !b->firing) {
		if (send_marker(b)) {
			free(w);
			return NULL;
		}
		w->next = b->out;
		b->out = w;
		return w;
	}
	w->next = b->next;
	b->next = w;
	return w;
}

static bool unlink_from(struct barrier_wait **pp, struct barrier_wait *w)
{
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return true;
		}
	}
	return false;
}

void barrier_cancel(struct barrier *b, struct barrier_wait *w)
{
	if (unlink_from(&b->out, w) || unlink_from(&b->next, w))
		free(w);
}

void barrier_seen(struct barrier *b, struct mqtt_bytes payload)
{
	uint64_t id;

	if (payload.len != sizeof(id))
		return;
	memcpy(&id, payload.data, sizeof(id));
	if (id && id == b->out_id)
		fire(b);
}

void barrier_release_all(struct barrier *b)
{
	/* Everyone goes on, those waiting for the next marker as well; waits made meanwhile
	 * start a marker of their own after (which fails at once while the link is down). */
	while (b->next) {
		struct barrier_wait *w = b->next;
		b->next = w->next;
		w->next = b->out;
		b->out = w;
	}
	if (b->out)
		fire(b);
	b->out_id = 0;
}

void barrier_tick(struct barrier *b, uint64_t now)
{
	if (b->out_id && now - b->sent_ms >= BARRIER_TIMEOUT_MS) {
		log_msg(LOG_DEBUG, "hub", "barrier-late id=%llu", (unsigned long long)b->out_id);
		fire(b);
	}
}
