/* bridge/mqtt/topic.c — MQTT topic names and filters: validation, matching and ACL containment. */
#include "topic.h"

#include <string.h>

#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN (sizeof SHARE_PREFIX - 1)

/* One level of a topic or filter: [start, end) of the whole string, end at a '/' or the end. */
struct level {
	const char *s;
	size_t len;
	size_t start;
	size_t end;
};

static void level_first(struct level *l, const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);
	*l = (struct level){s, len, 0, slash ? (size_t)(slash - s) : len};
}

/* Moves to the next level; false when @l was the last one. */
static bool level_next(struct level *l)
{
	if (l->end == l->len)
		return false;
	l->start = l->end + 1;
	const char *slash = memchr(l->s + l->start, '/', l->len - l->start);
	l->end = slash ? (size_t)(slash - l->s) : l->len;
	return true;
}

static bool level_is(const struct level *l, char c)
{
	return l->end - l->start == 1 && l->s[l->start] == c;
}

static bool level_equal(const struct level *a, const struct level *b)
{
	size_t n = a->end - a->start;
	return n == b->end - b->start && memcmp(a->s + a->start, b->s + b->start, n) == 0;
}

/* Wildcards in the first level do not match topics starting with '$' (MQTT 5 §4.7.2). */
static bool starts_with_wildcard(const char *filter, size_t len)
{
	return len > 0 && (filter[0] == '+' || filter[0] == '#');
}

bool topic_name_valid(const char *topic, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (topic[i] == '+' || topic[i] == '#' || topic[i] == '\0')
			return false;
	return true;
}

static bool plain_filter_valid(const char *filter, size_t len)
{
	if (len == 0)
		return false;
	struct level l;
	level_first(&l, filter, len);
	do {
		for (size_t i = l.start; i < l.end; i++) {
			char c = filter[i];
			if ((c == '+' || c == '#') && l.end - l.start != 1)
				return false;
		}
		if (level_is(&l, '#') && l.end != len)
			return false;
	} while (level_next(&l));
	return true;
}

static bool has_share_prefix(const char *filter, size_t len)
{
	return len >= SHARE_PREFIX_LEN && memcmp(filter, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0;
}

bool topic_filter_is_shared(const char *filter, size_t len, const char **inner, size_t *inner_len)
{
	if (!has_share_prefix(filter, len))
		return false;
	const char *name = filter + SHARE_PREFIX_LEN;
	const char *slash = memchr(name, '/', len - SHARE_PREFIX_LEN);
	if (!slash)
		return false;
	if (inner)
		*inner = slash + 1;
	if (inner_len)
		*inner_len = len - (size_t)(slash + 1 - filter);
	return true;
}

bool topic_filter_valid(const char *filter, size_t len)
{
	const char *inner;
	size_t inner_len;
	if (len == 0 || memchr(filter, '\0', len))
		return false;
	/* Brokers read "$share/" as a shared subscription at every level, so it must be one. */
	if (!has_share_prefix(filter, len))
		return plain_filter_valid(filter, len);
	if (!topic_filter_is_shared(filter, len, &inner, &inner_len))
		return false;
	const char *name = filter + SHARE_PREFIX_LEN;
	size_t name_len = (size_t)(inner - 1 - name);
	if (name_len == 0 || memchr(name, '+', name_len) || memchr(name, '#', name_len))
		return false;
	return plain_filter_valid(inner, inner_len);
}

bool topic_matches(const char *filter, size_t filter_len, const char *topic, size_t topic_len)
{
	if (topic_len > 0 && topic[0] == '$' && starts_with_wildcard(filter, filter_len))
		return false;
	struct level f, t;
	level_first(&f, filter, filter_len);
	level_first(&t, topic, topic_len);
	for (;;) {
		if (level_is(&f, '#'))
			return true;
		if (!level_is(&f, '+') && !level_equal(&f, &t))
			return false;
		bool more_filter = level_next(&f);
		bool more_topic = level_next(&t);
		if (!more_filter)
			return !more_topic;
		/* "a/#" also matches "a", the parent level. */
		if (!more_topic)
			return level_is(&f, '#');
	}
}

bool topic_filter_within(const char *inner, size_t inner_len, const char *outer, size_t outer_len)
{
	/* @inner can match $-topics only when its first level is a literal starting with '$'. */
	if (inner_len > 0 && inner[0] == '$' && starts_with_wildcard(outer, outer_len))
		return false;
	/* A first-level "#" has no parent topic to match: it is "+/#", which "+/#" then covers. */
	if (inner_len == 1 && inner[0] == '#') {
		static const char any_below_first[] = "+/#";
		inner = any_below_first;
		inner_len = sizeof any_below_first - 1;
	}
	struct level in, out;
	level_first(&in, inner, inner_len);
	level_first(&out, outer, outer_len);
	for (;;) {
		if (level_is(&out, '#'))
			return true;
		/* Inner '#' reaches any depth, which only an outer '#' covers. */
		if (level_is(&in, '#'))
			return false;
		if (!level_is(&out, '+') && (level_is(&in, '+') || !level_equal(&in, &out)))
			return false;
		bool more_in = level_next(&in);
		bool more_out = level_next(&out);
		if (!more_out)
			return !more_in;
		/* Inner ended: only a trailing "/#" also matches its parent level. */
		if (!more_in)
			return level_is(&out, '#');
	}
}
