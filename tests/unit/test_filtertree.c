/*
 * tests/unit/test_filtertree.c — the hub's filter trie against topic_matches(), the one rule
 * of MQTT 5 §4.7 the rest of the bridge uses: every filter of a table is stored, and for every
 * topic the tree must name exactly the filters topic_matches() accepts, as they are added and
 * removed in turn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filtertree.h"
#include "topic.h"

static const char *const filters[] = {
    "#",         "+",
    "+/+",       "/+",
    "+/",        "a",
    "a/",        "a/#",
    "a/+",       "a/b",
    "a/b/c",     "a/+/c",
    "a/+/#",     "+/b/#",
    "a//c",      "a/b/#",
    "$SYS/#",    "$SYS/+",
    "$SYS",      "+/#",
    "x/y/z/#",   "",
    "/",         "sensors/+/temp",
    "sensors/#", "caf\xC3\xA9/+",
};

static const char *const topics[] = {
    "a",
    "a/",
    "/",
    "//",
    "a/b",
    "a/b/c",
    "a/x/c",
    "a//c",
    "a/b/c/d",
    "b",
    "/a",
    "x/y/z",
    "x/y",
    "$SYS",
    "$SYS/broker",
    "$SYS/broker/load",
    "$other/a",
    "sensors/kitchen/temp",
    "sensors/kitchen/hum",
    "caf\xC3\xA9/x",
    " ",
    "a/b/",
};

#define NFILTERS (sizeof(filters) / sizeof(*filters))
#define NTOPICS  (sizeof(topics) / sizeof(*topics))

struct seen {
	int count[NFILTERS];
};

static void mark(void *value, void *user)
{
	struct seen *s = user;

	s->count[(const char *const *)value - filters]++;
}

/* Every topic finds exactly the stored filters that match it, each once. */
static void check(const struct filtertree *t, const bool *stored)
{
	for (size_t i = 0; i < NTOPICS; i++) {
		struct seen s;
		memset(&s, 0, sizeof(s));
		assert_int_equal(filtertree_match(t, topics[i], strlen(topics[i]), mark, &s), 0);
		for (size_t j = 0; j < NFILTERS; j++) {
			bool want = stored[j] && *filters[j] &&
				    topic_matches(filters[j], strlen(filters[j]), topics[i],
						  strlen(topics[i]));
			if (s.count[j] != (want ? 1 : 0))
				fail_msg("topic '%s' filter '%s': %d matches, want %d", topics[i],
					 filters[j], s.count[j], want);
		}
	}
}

static void test_matches_like_topic_matches(void **state)
{
	struct filtertree *t = filtertree_new();
	bool stored[NFILTERS] = {false};

	(void)state;
	assert_non_null(t);
	/* "" is not a valid filter: left out of the tree and of the oracle. */
	for (size_t j = 0; j < NFILTERS; j++) {
		if (!*filters[j])
			continue;
		assert_int_equal(filtertree_add(t, filters[j], strlen(filters[j]),
						(void *)&filters[j]),
				 0);
		stored[j] = true;
		check(t, stored);
	}
	for (size_t j = NFILTERS; j-- > 0;) {
		if (!stored[j] || j % 2)
			continue;
		filtertree_remove(t, filters[j], strlen(filters[j]), (void *)&filters[j]);
		stored[j] = false;
		check(t, stored);
	}
	filtertree_free(t);
}

static void test_values_share_a_filter(void **state)
{
	struct filtertree *t = filtertree_new();
	struct seen s;
	bool stored[NFILTERS] = {false};

	(void)state;
	/* Two values under one filter (a shared subscription and a plain one of the same F). */
	assert_int_equal(filtertree_add(t, "a/+", 3, (void *)&filters[0]), 0);
	assert_int_equal(filtertree_add(t, "a/+", 3, (void *)&filters[1]), 0);
	memset(&s, 0, sizeof(s));
	filtertree_match(t, "a/b", 3, mark, &s);
	assert_int_equal(s.count[0], 1);
	assert_int_equal(s.count[1], 1);
	filtertree_remove(t, "a/+", 3, (void *)&filters[0]);
	memset(&s, 0, sizeof(s));
	filtertree_match(t, "a/b", 3, mark, &s);
	assert_int_equal(s.count[0], 0);
	assert_int_equal(s.count[1], 1);
	filtertree_remove(t, "a/+", 3, (void *)&filters[1]);
	check(t, stored); /* empty again: nothing matches anything */
	/* Removing what is not there changes nothing. */
	filtertree_remove(t, "no/such", 7, (void *)&filters[0]);
	filtertree_free(t);
}

static void test_deep_topic(void **state)
{
	struct filtertree *t = filtertree_new();
	size_t len = 60000;
	char *deep = malloc(len);
	struct seen s;

	(void)state;
	assert_non_null(deep);
	/* As many levels as bytes: the walk must not recurse per level. */
	memset(deep, '/', len);
	assert_int_equal(filtertree_add(t, "#", 1, (void *)&filters[0]), 0);
	assert_int_equal(filtertree_add(t, deep, len, (void *)&filters[1]), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(filtertree_match(t, deep, len, mark, &s), 0);
	assert_int_equal(s.count[0], 1);
	assert_int_equal(s.count[1], 1);
	filtertree_remove(t, deep, len, (void *)&filters[1]);
	free(deep);
	filtertree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matches_like_topic_matches),
	    cmocka_unit_test(test_values_share_a_filter),
	    cmocka_unit_test(test_deep_topic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
