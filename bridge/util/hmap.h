/* bridge/util/hmap.h — a hash map from byte strings to pointers (session ids, client ids, filters). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/*
 * Keys are copied in; values are borrowed pointers the map never frees. Keys come from the
 * network (client ids, topic filters), so the hash is SipHash with a per-map random key: a
 * client cannot pick keys that collide. One thread at a time.
 */
struct hmap;

/** NULL when out of memory. */
struct hmap *hmap_new(void);

/** The value stored under @key, or NULL. */
void *hmap_get(const struct hmap *m, const void *key, size_t len);

/** Stores @value under @key, replacing any value there. 0 or -ENOMEM (then @m is unchanged). */
int hmap_put(struct hmap *m, const void *key, size_t len, void *value);

/** Removes @key (which may point at the map's own copy of it); returns its value, or NULL. */
void *hmap_remove(struct hmap *m, const void *key, size_t len);

size_t hmap_count(const struct hmap *m);

/** Calls @fn for each entry until it returns false. @fn must not change @m. */
void hmap_foreach(const struct hmap *m,
		  bool (*fn)(const void *key, size_t len, void *value, void *user), void *user);

/** Frees the map (not the values). NULL does nothing. */
void hmap_free(struct hmap *m);
