/*
 * tests/unit/test_auth.c — tokens from the config: hashing, finding by secret, {name} in ACLs,
 * what a token may publish and subscribe, reload matching, fresh secrets.
 */
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

#include "auth.h"
#include "config.h"

/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void hex(const uint8_t *h, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

static void test_sha256_vector(void **state)
{
	uint8_t h[32];
	char text[65];

	(void)state;
	auth_sha256("abc", 3, h);
	hex(h, text);
	assert_string_equal(text, abc_hex);
	auth_sha256("", 0, h);
	hex(h, text);
	assert_string_equal(text,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* The table of a config with tokens "alice" (secret "s3cret-a") and "bob" (secret "abc"), bob
 * publishing to the filters @extra_bob (JSON list items). */
static struct auth *table(const char *extra_bob)
{
	struct config cfg;
	struct auth *a;
	uint8_t h[32];
	char ha[65], text[2048], err[256];

	auth_sha256("s3cret-a", 8, h);
	hex(h, ha);
	snprintf(text, sizeof text,
		 "{\"auth\": {\"mode\": \"tokens\", \"tokens\": ["
		 "{\"name\": \"alice\", \"sha256\": \"%s\","
		 " \"publish\": [\"devices/{name}/#\", \"chat/{name}/{name}\"],"
		 " \"subscribe\": [\"sensors/#\", \"devices/+/status\", \"users/{name}/#\"]},"
		 "{\"name\": \"bob\", \"sha256\": \"%s\", \"publish\": [%s], \"subscribe\": []}]}}",
		 ha, abc_hex, extra_bob);
	assert_int_equal(config_init(&cfg), 0);
	if (config_load_text(&cfg, text, strlen(text), "t.json", err, sizeof err))
		fail_msg("%s", err);
	a = auth_new(&cfg);
	config_clear(&cfg);
	assert_non_null(a);
	return a;
}

static void test_find(void **state)
{
	struct auth *a;
	const struct auth_token *t;

	(void)state;
	a = table("");
	assert_non_null(a);
	assert_true(a->enabled);
	t = auth_find(a, "s3cret-a", 8);
	assert_non_null(t);
	assert_string_equal(t->name, "alice");
	t = auth_find(a, "abc", 3);
	assert_non_null(t);
	assert_string_equal(t->name, "bob");
	assert_null(auth_find(a, "s3cret-", 7));
	assert_null(auth_find(a, "s3cret-a ", 9));
	assert_null(auth_find(a, "", 0));
	assert_null(auth_find(a, NULL, 0));
	/* Any bytes: a NUL inside is part of the secret. */
	assert_null(auth_find(a, "abc\0", 4));
	assert_null(auth_find(NULL, "abc", 3));
	auth_unref(a);
}

static void test_name_substituted(void **state)
{
	struct auth *a;
	const struct auth_token *t;

	(void)state;
	a = table("");
	t = auth_find(a, "s3cret-a", 8);
	assert_int_equal(t->npublish, 2);
	assert_string_equal(t->publish[0], "devices/alice/#");
	assert_string_equal(t->publish[1], "chat/alice/alice");
	assert_string_equal(t->subscribe[2], "users/alice/#");
	auth_unref(a);
}

#define PUB(t, s) auth_may_publish(t, s, strlen(s))
#define SUB(t, s) auth_may_subscribe(t, s, strlen(s))

static void test_acl(void **state)
{
	struct auth *a;
	const struct auth_token *alice, *bob;

	(void)state;
	a = table("");
	alice = auth_find(a, "s3cret-a", 8);
	bob = auth_find(a, "abc", 3);

	assert_true(PUB(alice, "devices/alice"));
	assert_true(PUB(alice, "devices/alice/led"));
	assert_true(PUB(alice, "chat/alice/alice"));
	assert_false(PUB(alice, "devices/bob/led"));
	assert_false(PUB(alice, "devices/alicex/led"));
	assert_false(PUB(alice, "sensors/x"));
	assert_false(PUB(alice, "devices/{name}/led"));
	assert_false(PUB(bob, "devices/bob/led"));
	assert_false(PUB(NULL, "a"));

	assert_true(SUB(alice, "sensors/#"));
	assert_true(SUB(alice, "sensors/+/temp"));
	assert_true(SUB(alice, "sensors"));
	assert_true(SUB(alice, "devices/+/status"));
	assert_true(SUB(alice, "devices/kitchen/status"));
	assert_true(SUB(alice, "users/alice/#"));
	assert_true(SUB(alice, "$share/g/sensors/+"));
	assert_false(SUB(alice, "#"));
	assert_false(SUB(alice, "+/temp"));
	assert_false(SUB(alice, "devices/+/#"));
	assert_false(SUB(alice, "devices/#"));
	assert_false(SUB(alice, "users/bob/#"));
	assert_false(SUB(alice, "$share/g/#"));
	assert_false(SUB(alice, "$SYS/#"));
	assert_false(SUB(bob, "sensors/#"));
	auth_unref(a);
}

/* "#" allows every topic except those starting with '$', like a broker's own matching. */
static void test_acl_hash_excludes_dollar(void **state)
{
	struct auth *a;
	const struct auth_token *bob;

	(void)state;
	a = table("\"#\"");
	bob = auth_find(a, "abc", 3);
	assert_true(PUB(bob, "a/b"));
	assert_true(PUB(bob, "x"));
	assert_false(PUB(bob, "$SYS/x"));
	auth_unref(a);
}

static void test_reload_same(void **state)
{
	struct config cfg;
	struct auth *old, *cur;
	const struct auth_token *alice, *bob;

	(void)state;
	old = table("");
	/* The same tokens, bob allowed more: both carry over, with the new ACL. */
	cur = table("\"x/#\"");
	alice = auth_find(old, "s3cret-a", 8);
	bob = auth_find(old, "abc", 3);
	assert_ptr_equal(auth_find_same(cur, alice), auth_find(cur, "s3cret-a", 8));
	assert_true(PUB(auth_find_same(cur, bob), "x/y"));
	auth_unref(cur);

	/* bob gone (a new secret for him is a different token), alice still there. */
	assert_int_equal(config_init(&cfg), 0);
	char err[256], text[512];
	snprintf(text, sizeof text,
		 "{\"auth\": {\"mode\": \"tokens\", \"tokens\": [{\"name\": \"bob\", \"sha256\": "
		 "\"%064d\"}]}}",
		 0);
	assert_int_equal(config_load_text(&cfg, text, strlen(text), "t.json", err, sizeof err), 0);
	cur = auth_new(&cfg);
	config_clear(&cfg);
	assert_null(auth_find_same(cur, alice));
	assert_null(auth_find_same(cur, bob));
	assert_null(auth_find_same(NULL, bob));
	auth_unref(cur);
	auth_unref(old);
}

static void test_refs(void **state)
{
	struct config cfg;
	struct auth *a;

	(void)state;
	assert_int_equal(config_init(&cfg), 0);
	a = auth_new(&cfg);
	config_clear(&cfg);
	assert_non_null(a);
	assert_false(a->enabled);
	assert_int_equal(a->ntokens, 0);
	assert_ptr_equal(auth_ref(a), a);
	auth_unref(a);
	auth_unref(a);
	auth_unref(NULL);
}

static void test_new_secret(void **state)
{
	char s1[AUTH_SECRET_LEN + 1], s2[AUTH_SECRET_LEN + 1];

	(void)state;
	assert_int_equal(auth_new_secret(s1), 0);
	assert_int_equal(auth_new_secret(s2), 0);
	assert_int_equal(strlen(s1), AUTH_SECRET_LEN);
	assert_memory_equal(s1, "mwb_", 4);
	assert_int_equal(strspn(s1 + 4,
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
			 AUTH_SECRET_LEN - 4);
	assert_string_not_equal(s1, s2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_vector),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_name_substituted),
	    cmocka_unit_test(test_acl),
	    cmocka_unit_test(test_acl_hash_excludes_dollar),
	    cmocka_unit_test(test_reload_same),
	    cmocka_unit_test(test_refs),
	    cmocka_unit_test(test_new_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
