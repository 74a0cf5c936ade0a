/*
 * bridge/util/ratelimit.c — token buckets per key in a hash map, kept in least-recently-used order so
 * that the buckets most likely to be full (the idle ones) are at hand for dropping.
 *
 * Levels are integers in 1/60000 of a token: a bucket refills @per_minute units per millisecond,
 * so no rounding error accumulates and a whole token is ONE units.
 */
#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

#define ONE UINT64_C(60000)

struct bucket {
	struct bucket *prev, *next; /* prev: used less recently */
	uint64_t level;             /* units, at most rl->capacity */
	uint64_t last_ms;           /* when level was computed */
	size_t len;
	unsigned char key[];
};

struct ratelimit {
	struct hmap *map; /* key -> struct bucket */
	struct bucket *lru, *mru;
	uint64_t per_minute;
	uint64_t capacity; /* per_minute whole tokens */
	size_t max_keys;
};

struct ratelimit *ratelimit_new(long per_minute, size_t max_keys)
{
	struct ratelimit *rl;

	if (per_minute < 1 || !max_keys)
		return NULL;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	rl->map = hmap_new();
	if (!rl->map) {
		free(rl);
		return NULL;
	}
	rl->per_minute = (uint64_t)per_minute;
	rl->capacity = rl->per_minute * ONE;
	rl->max_keys = max_keys;
	return rl;
}

/* The level of @b at @now_ms; a clock that went back adds nothing. */
static uint64_t level_at(const struct ratelimit *rl, const struct bucket *b, uint64_t now_ms)
{
	uint64_t elapsed = now_ms > b->last_ms ? now_ms - b->last_ms : 0;

	/* A minute refills any bucket; the cap also keeps the product below overflow. */
	if (elapsed >= 60000)
		return rl->capacity;
	if (elapsed * rl->per_minute >= rl->capacity - b->level)
		return rl->capacity;
	return b->level + elapsed * rl->per_minute;
}

static void unlink_bucket(struct ratelimit *rl, struct bucket *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		rl->lru = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		rl->mru = b->prev;
	b->prev = b->next = NULL;
}

static void push_mru(struct ratelimit *rl, struct bucket *b)
{
	b->prev = rl->mru;
	b->next = NULL;
	if (rl->mru)
		rl->mru->next = b;
	else
		rl->lru = b;
	rl->mru = b;
}

static void drop(struct ratelimit *rl, struct bucket *b)
{
	unlink_bucket(rl, b);
	hmap_remove(rl->map, b->key, b->len);
	free(b);
}

long ratelimit_take(struct ratelimit *rl, const void *key, size_t len, uint64_t now_ms)
{
	struct bucket *b = hmap_get(rl->map, key, len);

	/* Idle-longest first: while those are full again, they are worth nothing. */
	while (rl->lru && rl->lru != b && level_at(rl, rl->lru, now_ms) == rl->capacity)
		drop(rl, rl->lru);
	if (!b) {
		if (hmap_count(rl->map) >= rl->max_keys)
			drop(rl, rl->lru);
		b = malloc(sizeof(*b) + (len ? len : 1));
		if (!b)
			return -ENOMEM;
		memcpy(b->key, key, len);
		b->len = len;
		b->level = rl->capacity;
		b->last_ms = now_ms;
		if (hmap_put(rl->map, b->key, len, b)) {
			free(b);
			return -ENOMEM;
		}
		push_mru(rl, b);
	} else {
		unlink_bucket(rl, b);
		push_mru(rl, b);
	}
	b->level = level_at(rl, b, now_ms);
	if (now_ms > b->last_ms)
		b->last_ms = now_ms;
	if (b->level >= ONE) {
		b->level -= ONE;
		return 0;
	}
	/* ONE - level units at per_minute units a millisecond, in whole seconds rounded up. */
	return (long)((ONE - b->level + rl->per_minute * 1000 - 1) / (rl->per_minute * 1000));
}

size_t ratelimit_keys(const struct ratelimit *rl)
{
	return hmap_count(rl->map);
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	while (rl->lru)
		drop(rl, rl->lru);
	hmap_free(rl->map);
	free(rl);
}
