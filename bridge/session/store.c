/* bridge/session/store.c — leftovers of persistent sessions, keyed by client id, bounded in number. */
#include "store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "log.h"

struct store {
	struct hmap *by_client;
	size_t max_sessions;
};

void leftovers_free(struct leftovers *lo)
{
	struct msg *m, *next;

	if (!lo)
		return;
	for (m = lo->msgs; m; m = next) {
		next = m->next;
		free(m);
	}
	free(lo->qos2_received);
	free(lo);
}

struct store *store_new(size_t max_sessions)
{
	struct store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->by_client = hmap_new();
	if (!st->by_client) {
		free(st);
		return NULL;
	}
	st->max_sessions = max_sessions ? max_sessions : 1;
	return st;
}

struct soonest {
	const void *key;
	size_t len;
	uint64_t expires_ms;
};

static bool find_soonest(const void *key, size_t len, void *value, void *user)
{
	struct leftovers *lo = value;
	struct soonest *s = user;

	if (!s->key || lo->expires_ms < s->expires_ms) {
		s->key = key;
		s->len = len;
		s->expires_ms = lo->expires_ms;
	}
	return true;
}

int store_put(struct store *st, const char *client_id, struct leftovers *lo)
{
	size_t len = strlen(client_id);

	leftovers_free(hmap_remove(st->by_client, client_id, len));
	if (hmap_count(st->by_client) >= st->max_sessions) {
		struct soonest s = {NULL, 0, 0};
		hmap_foreach(st->by_client, find_soonest, &s);
		if (s.key) {
			log_msg(LOG_WARN, "store", "session-evicted reason=store-full");
			leftovers_free(hmap_remove(st->by_client, s.key, s.len));
		}
	}
	if (hmap_put(st->by_client, client_id, len, lo)) {
		log_msg(LOG_WARN, "store", "session-lost reason=out-of-memory");
		leftovers_free(lo);
		return -ENOMEM;
	}
	return 0;
}

struct leftovers *store_take(struct store *st, const char *client_id)
{
	return hmap_remove(st->by_client, client_id, strlen(client_id));
}

struct expired {
	uint64_t now_ms;
	const void *key;
	size_t len;
};

static bool find_expired(const void *key, size_t len, void *value, void *user)
{
	struct leftovers *lo = value;
	struct expired *e = user;

	if (lo->expires_ms == UINT64_MAX || lo->expires_ms > e->now_ms)
		return true;
	e->key = key;
	e->len = len;
	return false;
}

size_t store_expire(struct store *st, uint64_t now_ms)
{
	size_t dropped = 0;

	/* One at a time: the map cannot change while it is being walked. Expiry is rare. */
	for (;;) {
		struct expired e = {now_ms, NULL, 0};
		hmap_foreach(st->by_client, find_expired, &e);
		if (!e.key)
			break;
		leftovers_free(hmap_remove(st->by_client, e.key, e.len));
		dropped++;
	}
	return dropped;
}

size_t store_count(const struct store *st)
{
	return hmap_count(st->by_client);
}

static bool free_entry(const void *key, size_t len, void *value, void *user)
{
	(void)key;
	(void)len;
	(void)user;
	leftovers_free(value);
	return true;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	hmap_foreach(st->by_client, free_entry, NULL);
	hmap_free(st->by_client);
	free(st);
}
