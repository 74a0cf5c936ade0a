/*
 * bridge/mqtt/filtertree.h — topic filters by level, so that a topic finds the filters that match
 * it without looking at the others: the cost of a message grows with the levels of its topic and
 * the filters that match, not with how many filters there are (the hub's, one per distinct
 * filter of every browser and stream).
 *
 * Filters are valid and non-shared (a shared subscription is stored under its inner filter).
 * Several values may share one filter. Not thread-safe; one thread at a time.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct filtertree;

/** NULL when out of memory. */
struct filtertree *filtertree_new(void);

/** Frees the tree (not the values). NULL does nothing. */
void filtertree_free(struct filtertree *t);

/** Stores @value under @filter[0..len). 0 or -ENOMEM (then @t is unchanged). */
int filtertree_add(struct filtertree *t, const char *filter, size_t len, void *value);

/** Takes @value out from under @filter; nodes left empty go. */
void filtertree_remove(struct filtertree *t, const char *filter, size_t len, void *value);

/**
 * Calls @fn with each value whose filter matches the valid topic @topic[0..len) (MQTT 5 §4.7:
 * '+' one level, '#' the parent and all below; a topic starting with '$' is not matched by a
 * first-level wildcard). @fn must not change @t. 0, or -ENOMEM (some matches may be missing).
 */
int filtertree_match(const struct filtertree *t, const char *topic, size_t len,
		     void (*fn)(void *value, void *user), void *user);
