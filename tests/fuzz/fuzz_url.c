/*
 * tests/fuzz/fuzz_url.c — libFuzzer target for what the bridge does with URL-derived strings.
 *
 * libwebsockets percent-decodes the path and the query before the bridge sees them, so the input
 * is a URL as lws hands it over: "PATH?NAME=VALUE&NAME=VALUE", cut at the first NUL as a C string
 * would be. The topic in the path (after /publish/, /topics/ or /request/, with or without
 * /api/v1) and every query value go through the bridge's own pipeline as web/rest.c and
 * web/sse.c run it: query_restore_plus(), then MQTT UTF-8 and topic name / filter validation.
 *
 * Checked against the headers: query_restore_plus() turns exactly the one-space levels into '+'
 * and nothing else; utf8.h, topic_name_valid(), topic_filter_valid() and topic_matches() agree
 * with small reference versions written from the header comments; a valid name (not
 * "$share/...") is a valid filter that matches itself; topic_filter_within(F, F) holds;
 * within(T, F) is matches(F, T) for a name T; within is transitive, and sound: within(A, B) and
 * A matching T imply B matching T, for topics made from A by filling in its wildcards.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "topic.h"
#include "utf8.h"

#include "fuzz.h"

#define MAX_STRINGS 8  /* URL strings per input: pairs and triples of them stay cheap */
#define MAX_TOPICS  64 /* topics made from the filters' wildcards */

/* ---- references, from the header comments alone ---- */

static bool in(uint32_t c, uint32_t lo, uint32_t hi)
{
	return c >= lo && c <= hi;
}

/*
 * Well-formed UTF-8 as the Unicode standard's table 3-7 lists it: -1 when ill-formed, else 1
 * when every code point is one MQTT allows in a string (utf8.h), else 0.
 */
static int ref_utf8(const uint8_t *s, size_t len)
{
	int mqtt_ok = 1;
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		size_t n;
		uint8_t lo = 0x80, hi = 0xBF; /* the second byte's range */
		if (c < 0x80) {
			n = 1;
		} else if (in(c, 0xC2, 0xDF)) {
			n = 2;
		} else if (in(c, 0xE0, 0xEF)) {
			n = 3;
			lo = c == 0xE0 ? 0xA0 : 0x80;
			hi = c == 0xED ? 0x9F : 0xBF;
		} else if (in(c, 0xF0, 0xF4)) {
			n = 4;
			lo = c == 0xF0 ? 0x90 : 0x80;
			hi = c == 0xF4 ? 0x8F : 0xBF;
		} else {
			return -1;
		}
		if (n > len - i)
			return -1;
		uint32_t cp = n == 1 ? c : c & (0xFFu >> (n + 1));
		for (size_t k = 1; k < n; k++) {
			if (!in(s[i + k], k == 1 ? lo : 0x80, k == 1 ? hi : 0xBF))
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3Fu);
		}
		if (cp <= 0x1F || in(cp, 0x7F, 0x9F) || in(cp, 0xFDD0, 0xFDEF) ||
		    (cp & 0xFFFF) >= 0xFFFE)
			mqtt_ok = 0;
		i += n;
	}
	return mqtt_ok;
}

/* Level @i (0-based) of @s: *@start and *@len; false when @s has fewer levels. */
static bool ref_level(const char *s, size_t len, size_t i, size_t *start, size_t *n)
{
	size_t pos = 0;
	for (; i > 0; i--) {
		const char *slash = memchr(s + pos, '/', len - pos);
		if (!slash)
			return false;
		pos = (size_t)(slash - s) + 1;
	}
	const char *slash = memchr(s + pos, '/', len - pos);
	*start = pos;
	*n = slash ? (size_t)(slash - s) - pos : len - pos;
	return true;
}

static bool ref_level_is(const char *s, size_t start, size_t n, char c)
{
	return n == 1 && s[start] == c;
}

static bool ref_name_valid(const char *t, size_t len)
{
	return len > 0 && !memchr(t, '+', len) && !memchr(t, '#', len) && !memchr(t, '\0', len);
}

/* A filter without "$share/": '#' only as the whole last level, '+' only as a whole level. */
static bool ref_plain_filter_valid(const char *f, size_t len)
{
	size_t start, n;
	if (len == 0 || memchr(f, '\0', len))
		return false;
	for (size_t i = 0; ref_level(f, len, i, &start, &n); i++) {
		bool wild = memchr(f + start, '+', n) || memchr(f + start, '#', n);
		if (wild && n != 1)
			return false;
		if (ref_level_is(f, start, n, '#') && start + n != len)
			return false;
	}
	return true;
}

static bool ref_filter_valid(const char *f, size_t len)
{
	if (len < 7 || memcmp(f, "$share/", 7) != 0)
		return ref_plain_filter_valid(f, len);
	const char *name = f + 7;
	const char *slash = memchr(name, '/', len - 7);
	if (!slash || slash == name || memchr(name, '+', (size_t)(slash - name)) ||
	    memchr(name, '#', (size_t)(slash - name)) || memchr(f, '\0', len))
		return false;
	return ref_plain_filter_valid(slash + 1, len - (size_t)(slash + 1 - f));
}

static bool ref_matches(const char *f, size_t flen, const char *t, size_t tlen)
{
	size_t fs, fn, ts, tn;
	if (tlen > 0 && t[0] == '$' && flen > 0 && (f[0] == '+' || f[0] == '#'))
		return false;
	for (size_t i = 0; ref_level(f, flen, i, &fs, &fn); i++) {
		if (ref_level_is(f, fs, fn, '#'))
			return true; /* this level and everything below, or the parent */
		if (!ref_level(t, tlen, i, &ts, &tn))
			return false;
		if (!ref_level_is(f, fs, fn, '+') && (fn != tn || memcmp(f + fs, t + ts, fn)))
			return false;
	}
	/* Every filter level matched: the topic must not have more. */
	size_t last = 0;
	while (ref_level(f, flen, last + 1, &fs, &fn))
		last++;
	return !ref_level(t, tlen, last + 1, &ts, &tn);
}

/* ---- the pipeline ---- */

struct str {
	char *s;
	size_t len;
	bool name;   /* utf8_valid_mqtt and topic_name_valid, as rest.c's valid_topic() */
	bool filter; /* utf8_valid_mqtt and topic_filter_valid, as valid_filter() */
};

static bool share_prefixed(const char *s, size_t len)
{
	return len >= 7 && memcmp(s, "$share/", 7) == 0;
}

/* query_restore_plus() on a copy of @v: exactly the one-space levels become '+'. */
static void restore_checked(struct str *out, const char *v, size_t len)
{
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, v, len);
	s[len] = '\0';
	query_restore_plus(s);
	CHECK(strlen(s) == len);
	for (size_t i = 0; i < len; i++) {
		bool lone_space =
		    v[i] == ' ' && (i == 0 || v[i - 1] == '/') && (i + 1 == len || v[i + 1] == '/');
		CHECK(s[i] == (lone_space ? '+' : v[i]));
	}
	/* Again: nothing is left to restore. */
	char *again = strdup(s);
	if (!again)
		abort();
	query_restore_plus(again);
	CHECK(strcmp(again, s) == 0);
	free(again);

	const uint8_t *u = (const uint8_t *)s;
	int ref = ref_utf8(u, len);
	CHECK(utf8_valid(u, len) == (ref >= 0));
	CHECK(utf8_valid_mqtt(u, len) == (ref == 1));
	CHECK(topic_name_valid(s, len) == ref_name_valid(s, len));
	CHECK(topic_filter_valid(s, len) == ref_filter_valid(s, len));
	const char *inner = NULL;
	size_t inner_len = 0;
	bool shared = topic_filter_is_shared(s, len, &inner, &inner_len);
	if (topic_filter_valid(s, len) && share_prefixed(s, len)) {
		CHECK(shared && inner && inner_len > 0 && inner + inner_len == s + len);
		CHECK(ref_plain_filter_valid(inner, inner_len));
	}
	out->s = s;
	out->len = len;
	out->name = len && ref == 1 && topic_name_valid(s, len);
	out->filter = len && ref == 1 && topic_filter_valid(s, len);
}

/* A valid filter the matching functions take: not shared, or the FILTER of a shared one. */
static bool plain_filter(const struct str *x, const char **f, size_t *len)
{
	if (!x->filter)
		return false;
	if (!topic_filter_is_shared(x->s, x->len, f, len)) {
		*f = x->s;
		*len = x->len;
	}
	/* "$share/a/$share/b/c": FILTER is itself shared-looking, which brokers refuse. */
	return !share_prefixed(*f, *len);
}

/*
 * Topics @f matches, made by filling each '+' with @fill and '#' with "@fill/@fill" or with
 * nothing (the parent level). Appended to @topics when they are valid names; @n grows.
 */
static void make_topics(const char *f, size_t len, const char *fill, char **topics, size_t *n)
{
	for (int parent = 0; parent < 2 && *n < MAX_TOPICS; parent++) {
		size_t cap = len * (2 * strlen(fill) + 2) + 1, o = 0;
		char *t = malloc(cap);
		if (!t)
			abort();
		for (size_t i = 0; i < len; i++) {
			bool whole =
			    (i == 0 || f[i - 1] == '/') && (i + 1 == len || f[i + 1] == '/');
			if (whole && f[i] == '+') {
				memcpy(t + o, fill, strlen(fill));
				o += strlen(fill);
			} else if (whole && f[i] == '#' && parent) {
				if (o > 0)
					o--; /* "a/#" matches "a" */
			} else if (whole && f[i] == '#') {
				o += (size_t)sprintf(t + o, "%s/%s", fill, fill);
			} else {
				t[o++] = f[i];
			}
		}
		t[o] = '\0';
		if (o > 0 && topic_name_valid(t, o) && utf8_valid_mqtt((uint8_t *)t, o))
			topics[(*n)++] = t;
		else
			free(t);
	}
}

/* Relations between the strings of one URL. */
static void check_relations(struct str *v, size_t nv)
{
	static const char *const fills[] = {"x", "", "$x", "a/b"};
	char *topics[MAX_TOPICS];
	size_t nt = 0;

	for (size_t i = 0; i < nv; i++) {
		const char *f;
		size_t flen;
		if (v[i].name && !share_prefixed(v[i].s, v[i].len)) {
			CHECK(v[i].filter);
			CHECK(topic_matches(v[i].s, v[i].len, v[i].s, v[i].len));
		}
		if (plain_filter(&v[i], &f, &flen)) {
			CHECK(topic_filter_within(f, flen, f, flen));
			for (size_t k = 0; k < sizeof fills / sizeof fills[0]; k++)
				make_topics(f, flen, fills[k], topics, &nt);
		}
		if (v[i].name && nt < MAX_TOPICS) {
			char *t = strdup(v[i].s);
			if (!t)
				abort();
			topics[nt++] = t;
		}
	}

	for (size_t a = 0; a < nv; a++) {
		const char *fa, *fb, *fc;
		size_t la, lb, lc;
		if (!plain_filter(&v[a], &fa, &la))
			continue;
		for (size_t k = 0; k < nt; k++) {
			size_t tl = strlen(topics[k]);
			bool m = topic_matches(fa, la, topics[k], tl);
			CHECK(m == ref_matches(fa, la, topics[k], tl));
			if (!share_prefixed(topics[k], tl))
				CHECK(topic_filter_within(topics[k], tl, fa, la) == m);
		}
		for (size_t b = 0; b < nv; b++) {
			if (!plain_filter(&v[b], &fb, &lb) || !topic_filter_within(fa, la, fb, lb))
				continue;
			/* Sound: what A lets through, B lets through too. */
			for (size_t k = 0; k < nt; k++) {
				size_t tl = strlen(topics[k]);
				if (topic_matches(fa, la, topics[k], tl))
					CHECK(topic_matches(fb, lb, topics[k], tl));
			}
			for (size_t c = 0; c < nv; c++) {
				if (plain_filter(&v[c], &fc, &lc) &&
				    topic_filter_within(fb, lb, fc, lc))
					CHECK(topic_filter_within(fa, la, fc, lc));
			}
		}
	}
	for (size_t k = 0; k < nt; k++)
		free(topics[k]);
}

/* The topic part of a path, as rest_route() takes it; else the path without its first '/'. */
static size_t path_topic(const char *path, size_t len)
{
	static const char *const routes[] = {"/publish/", "/topics/", "/request/"};
	size_t skip = len >= 7 && !memcmp(path, "/api/v1", 7) ? 7 : 0;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		size_t n = strlen(routes[i]);
		if (len - skip >= n && !memcmp(path + skip, routes[i], n))
			return skip + n;
	}
	return len > 0 && path[0] == '/' ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str v[MAX_STRINGS];
	size_t nv = 0;

	/* utf8.h on bytes that may hold NULs, before the URL is cut at one. */
	int ref = ref_utf8(data, size);
	CHECK(utf8_valid(data, size) == (ref >= 0));
	CHECK(utf8_valid_mqtt(data, size) == (ref == 1));

	const char *url = (const char *)data;
	size_t len = strnlen(url, size);
	const char *q = memchr(url, '?', len);
	size_t path_len = q ? (size_t)(q - url) : len;
	size_t skip = path_topic(url, path_len);
	restore_checked(&v[nv++], url + skip, path_len - skip);

	/* lws hands the query over as '&'-separated fragments; each value is a candidate. */
	for (const char *p = q ? q + 1 : url + len; p < url + len && nv < MAX_STRINGS;) {
		const char *amp = memchr(p, '&', (size_t)(url + len - p));
		size_t n = amp ? (size_t)(amp - p) : (size_t)(url + len - p);
		const char *eq = memchr(p, '=', n);
		const char *value = eq ? eq + 1 : p + n;
		restore_checked(&v[nv++], value, (size_t)(p + n - value));
		p += n + 1;
	}

	check_relations(v, nv);
	for (size_t i = 0; i < nv; i++)
		free(v[i].s);
	return 0;
}
