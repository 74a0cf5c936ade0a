/* tests/unit/test_hmap.c — the byte-string hash map: lookups, growth, removal, iteration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"

#define MANY 100000

/* Values are small integers disguised as pointers; 0 would read as "missing". */
static void *val(size_t i)
{
	return (void *)(uintptr_t)(i + 1);
}

static size_t key_of(char *dst, size_t cap, size_t i)
{
	int n = snprintf(dst, cap, "client-%zu", i);

	assert_true(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

static void test_put_get_replace_remove(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	int a, b;

	assert_non_null(m);
	assert_int_equal(hmap_count(m), 0);
	assert_null(hmap_get(m, "k", 1));
	assert_null(hmap_remove(m, "k", 1));

	assert_int_equal(hmap_put(m, "k", 1, &a), 0);
	assert_int_equal(hmap_count(m), 1);
	assert_ptr_equal(hmap_get(m, "k", 1), &a);

	/* Replacing keeps one entry. */
	assert_int_equal(hmap_put(m, "k", 1, &b), 0);
	assert_int_equal(hmap_count(m), 1);
	assert_ptr_equal(hmap_get(m, "k", 1), &b);

	assert_ptr_equal(hmap_remove(m, "k", 1), &b);
	assert_int_equal(hmap_count(m), 0);
	assert_null(hmap_get(m, "k", 1));
	assert_null(hmap_remove(m, "k", 1));

	/* Usable again after becoming empty. */
	assert_int_equal(hmap_put(m, "k", 1, &a), 0);
	assert_ptr_equal(hmap_get(m, "k", 1), &a);
	hmap_free(m);
	hmap_free(NULL);
}

/* Keys are (pointer, length) byte strings: NULs, prefixes and lengths all matter. */
static void test_byte_string_keys(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	static const char k_nul[] = {'a', '\0', 'b'};
	static const char k_nul2[] = {'a', '\0', 'c'};
	int v[6];

	assert_non_null(m);
	assert_int_equal(hmap_put(m, "ab", 2, &v[0]), 0);
	assert_int_equal(hmap_put(m, "ab\0", 3, &v[1]), 0);
	assert_int_equal(hmap_put(m, "a", 1, &v[2]), 0);
	assert_int_equal(hmap_put(m, k_nul, sizeof k_nul, &v[3]), 0);
	assert_int_equal(hmap_put(m, k_nul2, sizeof k_nul2, &v[4]), 0);
	assert_int_equal(hmap_put(m, "AB", 2, &v[5]), 0);
	assert_int_equal(hmap_count(m), 6);

	assert_ptr_equal(hmap_get(m, "ab", 2), &v[0]);
	assert_ptr_equal(hmap_get(m, "ab\0", 3), &v[1]);
	assert_ptr_equal(hmap_get(m, "a", 1), &v[2]);
	assert_ptr_equal(hmap_get(m, k_nul, sizeof k_nul), &v[3]);
	assert_ptr_equal(hmap_get(m, k_nul2, sizeof k_nul2), &v[4]);
	assert_ptr_equal(hmap_get(m, "AB", 2), &v[5]);
	assert_null(hmap_get(m, "abc", 3));
	assert_null(hmap_get(m, "b", 1));
	/* Only the first @len bytes count. */
	assert_ptr_equal(hmap_get(m, "abXYZ", 2), &v[0]);

	assert_ptr_equal(hmap_remove(m, "ab", 2), &v[0]);
	assert_ptr_equal(hmap_get(m, "ab\0", 3), &v[1]);
	assert_ptr_equal(hmap_get(m, "a", 1), &v[2]);
	hmap_free(m);
}

static void test_empty_key(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	int a, b;

	assert_non_null(m);
	assert_null(hmap_get(m, "", 0));
	assert_int_equal(hmap_put(m, "", 0, &a), 0);
	assert_int_equal(hmap_put(m, "\0", 1, &b), 0);
	assert_int_equal(hmap_count(m), 2);
	assert_ptr_equal(hmap_get(m, "", 0), &a);
	/* Any pointer with length 0 is the empty key. */
	assert_ptr_equal(hmap_get(m, "whatever", 0), &a);
	assert_ptr_equal(hmap_get(m, "\0", 1), &b);
	assert_ptr_equal(hmap_remove(m, "x", 0), &a);
	assert_null(hmap_get(m, "", 0));
	assert_ptr_equal(hmap_get(m, "\0", 1), &b);
	assert_int_equal(hmap_count(m), 1);
	hmap_free(m);
}

/* The map keeps its own copy: the caller's buffer may change or go away. */
static void test_key_is_copied(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	char *k = malloc(8);
	int a;

	assert_non_null(m);
	assert_non_null(k);
	memcpy(k, "session", 8);
	assert_int_equal(hmap_put(m, k, 7, &a), 0);
	memcpy(k, "XXXXXXX", 8);
	assert_null(hmap_get(m, k, 7));
	free(k);
	assert_ptr_equal(hmap_get(m, "session", 7), &a);
	hmap_free(m);
}

/* Every length up to a few SipHash blocks, so each tail length is hashed and compared. */
static void test_key_lengths(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	unsigned char key[80];

	assert_non_null(m);
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (unsigned char)(0xA5 ^ i);
	for (size_t len = 0; len <= sizeof key; len++)
		assert_int_equal(hmap_put(m, key, len, val(len)), 0);
	assert_int_equal(hmap_count(m), sizeof key + 1);
	for (size_t len = 0; len <= sizeof key; len++)
		assert_ptr_equal(hmap_get(m, key, len), val(len));
	/* Same length, last byte different: a different key. */
	for (size_t len = 1; len <= sizeof key; len++) {
		unsigned char other[sizeof key];
		memcpy(other, key, len);
		other[len - 1] ^= 1;
		assert_null(hmap_get(m, other, len));
	}
	hmap_free(m);
}

struct seen {
	unsigned char *hit; /* per index: how many times foreach reported it */
	size_t calls;
};

static bool mark(const void *key, size_t len, void *value, void *user)
{
	struct seen *s = user;
	size_t i = (size_t)(uintptr_t)value - 1;
	char want[32];

	assert_true(i < MANY);
	assert_int_equal(len, key_of(want, sizeof want, i));
	assert_memory_equal(key, want, len);
	s->hit[i]++;
	s->calls++;
	return true;
}

/* 100k keys force many doublings; everything must survive each rehash. */
static void test_many_keys_growth(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	struct seen s = {calloc(MANY, 1), 0};
	char k[32];

	assert_non_null(m);
	assert_non_null(s.hit);
	for (size_t i = 0; i < MANY; i++) {
		size_t len = key_of(k, sizeof k, i);
		assert_int_equal(hmap_put(m, k, len, val(i)), 0);
		assert_int_equal(hmap_count(m), i + 1);
	}
	for (size_t i = 0; i < MANY; i++) {
		size_t len = key_of(k, sizeof k, i);
		assert_ptr_equal(hmap_get(m, k, len), val(i));
	}
	for (size_t i = MANY; i < MANY + 1000; i++) {
		size_t len = key_of(k, sizeof k, i);
		assert_null(hmap_get(m, k, len));
	}

	hmap_foreach(m, mark, &s);
	assert_int_equal(s.calls, MANY);
	for (size_t i = 0; i < MANY; i++)
		assert_int_equal(s.hit[i], 1);

	/* Remove the even ones after growth; the odd ones stay reachable. */
	for (size_t i = 0; i < MANY; i += 2) {
		size_t len = key_of(k, sizeof k, i);
		assert_ptr_equal(hmap_remove(m, k, len), val(i));
	}
	assert_int_equal(hmap_count(m), MANY / 2);
	for (size_t i = 0; i < MANY; i++) {
		size_t len = key_of(k, sizeof k, i);
		if (i % 2)
			assert_ptr_equal(hmap_get(m, k, len), val(i));
		else
			assert_null(hmap_get(m, k, len));
	}

	/* Put them back (the map does not shrink), then empty it completely. */
	for (size_t i = 0; i < MANY; i += 2) {
		size_t len = key_of(k, sizeof k, i);
		assert_int_equal(hmap_put(m, k, len, val(i)), 0);
	}
	assert_int_equal(hmap_count(m), MANY);
	for (size_t i = 0; i < MANY; i++) {
		size_t len = key_of(k, sizeof k, i);
		assert_ptr_equal(hmap_remove(m, k, len), val(i));
	}
	assert_int_equal(hmap_count(m), 0);
	s.calls = 0;
	hmap_foreach(m, mark, &s);
	assert_int_equal(s.calls, 0);
	free(s.hit);
	hmap_free(m);
}

/* Removals interleaved with insertions, so entries are removed while resizes happen. */
static void test_remove_during_growth(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	char k[32];
	size_t len;

	assert_non_null(m);
	for (size_t i = 0; i < MANY; i++) {
		len = key_of(k, sizeof k, i);
		assert_int_equal(hmap_put(m, k, len, val(i)), 0);
		/* Every third key leaves again one step later. */
		if (i > 0 && (i - 1) % 3 == 0) {
			len = key_of(k, sizeof k, i - 1);
			assert_ptr_equal(hmap_remove(m, k, len), val(i - 1));
		}
	}
	size_t expect = 0;
	for (size_t i = 0; i < MANY; i++) {
		len = key_of(k, sizeof k, i);
		bool removed = i % 3 == 0 && i + 1 < MANY;
		if (removed) {
			assert_null(hmap_get(m, k, len));
		} else {
			assert_ptr_equal(hmap_get(m, k, len), val(i));
			expect++;
		}
	}
	assert_int_equal(hmap_count(m), expect);
	hmap_free(m);
}

struct grab {
	const void *key;
	size_t len;
	void *value;
};

static bool grab_first(const void *key, size_t len, void *value, void *user)
{
	struct grab *g = user;

	g->key = key;
	g->len = len;
	g->value = value;
	return false;
}

/* hmap_remove() may be given the map's own copy of the key (as store_expire() does). */
static void test_remove_with_own_key(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	char k[32];
	size_t n = 5000;

	assert_non_null(m);
	for (size_t i = 0; i < n; i++) {
		size_t len = key_of(k, sizeof k, i);
		assert_int_equal(hmap_put(m, k, len, val(i)), 0);
	}
	/* Empty key too: its copy has no bytes at all. */
	assert_int_equal(hmap_put(m, "", 0, val(n)), 0);
	while (hmap_count(m) > 0) {
		struct grab g = {NULL, 0, NULL};
		size_t before = hmap_count(m);
		hmap_foreach(m, grab_first, &g);
		assert_non_null(g.key);
		assert_ptr_equal(hmap_remove(m, g.key, g.len), g.value);
		assert_int_equal(hmap_count(m), before - 1);
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = key_of(k, sizeof k, i);
		assert_null(hmap_get(m, k, len));
	}
	assert_null(hmap_get(m, "", 0));
	hmap_free(m);
}

static bool stop_after_three(const void *key, size_t len, void *value, void *user)
{
	size_t *calls = user;

	(void)key;
	(void)len;
	(void)value;
	return ++*calls < 3;
}

static void test_foreach_stops(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	char k[32];
	size_t calls = 0;

	assert_non_null(m);
	hmap_foreach(m, stop_after_three, &calls);
	assert_int_equal(calls, 0);
	for (size_t i = 0; i < 100; i++) {
		size_t len = key_of(k, sizeof k, i);
		assert_int_equal(hmap_put(m, k, len, val(i)), 0);
	}
	hmap_foreach(m, stop_after_three, &calls);
	assert_int_equal(calls, 3);
	hmap_free(m);
}

/* Values are borrowed: freeing the map leaves them alone (LSan would see a double free). */
static void test_values_not_freed(void **state)
{
	(void)state;
	struct hmap *m = hmap_new();
	char *v = strdup("still mine");

	assert_non_null(m);
	assert_non_null(v);
	assert_int_equal(hmap_put(m, "k", 1, v), 0);
	hmap_free(m);
	assert_string_equal(v, "still mine");
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_replace_remove),
	    cmocka_unit_test(test_byte_string_keys),
	    cmocka_unit_test(test_empty_key),
	    cmocka_unit_test(test_key_is_copied),
	    cmocka_unit_test(test_key_lengths),
	    cmocka_unit_test(test_many_keys_growth),
	    cmocka_unit_test(test_remove_during_growth),
	    cmocka_unit_test(test_remove_with_own_key),
	    cmocka_unit_test(test_foreach_stops),
	    cmocka_unit_test(test_values_not_freed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
