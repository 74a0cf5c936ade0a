/* tests/unit/test_topic.c — topic name / filter rules, matching and ACL containment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"

struct valid_case {
	const char *s;
	bool valid;
};

static const struct valid_case names[] = {
    {"a", true},
    {"a/b/c", true},
    {"/", true},
    {"//", true},
    {"a/", true},
    {"/a", true},
    {" ", true},
    {"$SYS/broker/load", true},
    {"sensors/kitchen/temp", true},
    {"caf\xC3\xA9", true},
    {"", false},
    {"+", false},
    {"#", false},
    {"a/+", false},
    {"a/#", false},
    {"a+b", false},
    {"a#", false},
    {"$share/g/a", true}, /* a name, not a filter: nothing special */
};

static const struct valid_case filters[] = {
    {"#", true},
    {"+", true},
    {"a", true},
    {"a/#", true},
    {"a/+/c", true},
    {"+/+", true},
    {"/#", true},
    {"+/#", true},
    {"/", true},
    {"a//b", true},
    {"+//+", true},
    {"$SYS/#", true},
    {"$share", true},
    {"$sharex/a", true},
    {"$share/g/a/#", true},
    {"$share/g/#", true},
    {"$share/g/+/x", true},
    {"$share/g//", true},
    {"", false},
    {"a#", false},
    {"#a", false},
    {"a/#/b", false},
    {"#/a", false},
    {"##", false},
    {"a+", false},
    {"+a", false},
    {"a/b+/c", false},
    {"++", false},
    {"a/#/", false},
    {"$share/", false},
    {"$share/g", false},
    {"$share/g/", false},
    {"$share//a", false},
    {"$share/+/a", false},
    {"$share/#/a", false},
    {"$share/g+/a", false},
    {"$share/g/a#", false},
};

static void test_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (topic_name_valid(names[i].s, strlen(names[i].s)) != names[i].valid)
			fail_msg("topic_name_valid(\"%s\") should be %d", names[i].s,
				 names[i].valid);
	assert_false(topic_name_valid("a\0b", 3));
	/* Only @len bytes count: a '+' past it is not part of the name. */
	assert_true(topic_name_valid("a/+", 2));
}

static void test_filters(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
		if (topic_filter_valid(filters[i].s, strlen(filters[i].s)) != filters[i].valid)
			fail_msg("topic_filter_valid(\"%s\") should be %d", filters[i].s,
				 filters[i].valid);
	assert_false(topic_filter_valid("a\0b", 3));
	assert_false(topic_filter_valid("$share/g\0/a", 11));
	assert_true(topic_filter_valid("a/#x", 3));
}

static void test_shared(void **state)
{
	(void)state;
	const char *inner = NULL;
	size_t inner_len = 0;
	const char *f = "$share/group/sensors/+";
	assert_true(topic_filter_is_shared(f, strlen(f), &inner, &inner_len));
	assert_int_equal(inner_len, strlen("sensors/+"));
	assert_memory_equal(inner, "sensors/+", inner_len);
	assert_true(topic_filter_is_shared(f, strlen(f), NULL, NULL));

	inner = NULL;
	assert_false(topic_filter_is_shared("sensors/+", 9, &inner, &inner_len));
	assert_null(inner);
	assert_false(topic_filter_is_shared("$share/g", 8, &inner, &inner_len));
	assert_false(topic_filter_is_shared("$share", 6, &inner, &inner_len));
	assert_false(topic_filter_is_shared("$SHARE/g/a", 10, &inner, &inner_len));
	assert_null(inner);
}

struct match_case {
	const char *filter;
	const char *topic;
	bool match;
};

/* Mostly the examples of MQTT 5 §4.7.1 and §4.7.2. */
static const struct match_case matches[] = {
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/#", "sport", true},
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+", "/finance", false},
    {"#", "a", true},
    {"#", "/", true},
    {"#", "a/b/c", true},
    {"+", "a", true},
    {"+", "a/b", false},
    {"a/b", "a/b", true},
    {"a/b", "a/b/c", false},
    {"a/b", "a", false},
    {"a/b", "a/c", false},
    {"a/b", "a/bc", false},
    {"a/bc", "a/b", false},
    {"a/#", "a/", true},
    {"a/#", "ab", false},
    {"a/+/c", "a//c", true},
    {"a/+/c", "a/b/c", true},
    {"a/+/c", "a/b/d", false},
    {"a/+/#", "a/b", true},
    {"a/+/#", "a", false},
    {"+/+/+", "a/b", false},
    {"a//b", "a//b", true},
    {"a/", "a", false},
    {"#", "$SYS/broker", false},
    {"#", "$SYS", false},
    {"+/broker", "$SYS/broker", false},
    {"+", "$SYS", false},
    {"$SYS/#", "$SYS/broker/load", true},
    {"$SYS/#", "$SYS", true},
    {"$SYS/+", "$SYS/broker", true},
    {"$SYS/broker", "$SYS/broker", true},
    {"a/#", "a/$b", true},
    {"+/$x", "a/$x", true},
};

static void test_matches(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
		const struct match_case *m = &matches[i];
		if (topic_matches(m->filter, strlen(m->filter), m->topic, strlen(m->topic)) !=
		    m->match)
			fail_msg("topic_matches(\"%s\", \"%s\") should be %d", m->filter, m->topic,
				 m->match);
	}
}

struct within_case {
	const char *inner;
	const char *outer;
	bool within;
};

static const struct within_case withins[] = {
    {"a/+/c", "a/#", true},
    {"a/#", "a/+", false},
    {"#", "a/#", false},
    {"a/b", "a/+", true},
    {"a/#", "a/#", true},
    {"+/x", "#", true},
    {"$SYS/#", "#", false},
    {"$SYS/x", "+/x", false},
    {"$SYS/#", "$SYS/#", true},
    {"$SYS/a", "$SYS/+", true},
    {"sensors/+/temp", "sensors/#", true},
    {"a", "a", true},
    {"a", "b", false},
    {"a", "a/#", true},
    {"a", "+/#", true},
    {"a", "#", true},
    {"a/b", "a", false},
    {"a", "a/b", false},
    {"a", "a/+", false},
    {"a/b/#", "a/b/#", true},
    {"a/b/#", "a/#", true},
    {"a/b/#", "a/b", false},
    {"a/#", "a/b/#", false},
    {"+", "+", true},
    {"+", "a", false},
    {"+", "#", true},
    {"+/+", "+/#", true},
    {"+/#", "+/+", false},
    {"#", "#", true},
    {"#", "+/#", true},
    {"#", "+", false},
    {"a/+", "+/+", true},
    {"+/+", "a/+", false},
    {"a//b", "a/+/b", true},
    {"a/+/b", "a//b", false},
};

static void test_within(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof withins / sizeof withins[0]; i++) {
		const struct within_case *w = &withins[i];
		if (topic_filter_within(w->inner, strlen(w->inner), w->outer, strlen(w->outer)) !=
		    w->within)
			fail_msg("topic_filter_within(\"%s\", \"%s\") should be %d", w->inner,
				 w->outer, w->within);
	}
}

/*
 * Containment agrees with matching: whenever inner is within outer, every topic of a sample
 * set that inner matches is matched by outer.
 */
static void test_within_agrees_with_matches(void **state)
{
	(void)state;
	static const char *const sample_filters[] = {
	    "#",   "+",     "a",      "a/#",    "a/+",   "+/b", "a/b", "+/+",
	    "+/#", "a/+/#", "$SYS/#", "$SYS/+", "a/b/c", "/#",  "/+",  "+/b/#",
	};
	static const char *const topics[] = {
	    "a", "b",  "a/b", "a/c",  "b/b",    "a/b/c",    "a/b/c/d",
	    "/", "/a", "a/",  "$SYS", "$SYS/b", "$SYS/a/b", "x/b/y",
	};
	size_t nf = sizeof sample_filters / sizeof sample_filters[0];
	size_t nt = sizeof topics / sizeof topics[0];
	for (size_t i = 0; i < nf; i++) {
		for (size_t o = 0; o < nf; o++) {
			const char *in = sample_filters[i];
			const char *out = sample_filters[o];
			if (!topic_filter_within(in, strlen(in), out, strlen(out)))
				continue;
			for (size_t t = 0; t < nt; t++) {
				const char *topic = topics[t];
				if (topic_matches(in, strlen(in), topic, strlen(topic)) &&
				    !topic_matches(out, strlen(out), topic, strlen(topic)))
					fail_msg("\"%s\" within \"%s\" but \"%s\" escapes", in, out,
						 topic);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),  cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_shared), cmocka_unit_test(test_matches),
	    cmocka_unit_test(test_within), cmocka_unit_test(test_within_agrees_with_matches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
