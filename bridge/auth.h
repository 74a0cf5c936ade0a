/*
 * bridge/auth.h — access tokens and their ACLs (doc/design.md §4): who may publish and read what.
 *
 * The token table is built from the config and shared by reference: a connection that keeps a
 * token across callbacks (an event stream, an MQTT session) holds a reference to the table it
 * came from, so a SIGHUP reload can build a new table while the old one is still in use, then
 * move each holder over with auth_find_same() (or close it when its token is gone).
 * Pure: no lws, no Paho. Not thread-safe: the service thread owns every table.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A secret printed by auth_new_secret(): "mwb_" and 43 base64url characters (256 bits). */
#define AUTH_SECRET_LEN 47

struct auth_token {
	char *name;
	uint8_t sha256[CONFIG_SHA256_SIZE];
	char **publish; /* filters, "{name}" already replaced by the token's name */
	size_t npublish;
	char **subscribe;
	size_t nsubscribe;
};

struct auth {
	unsigned refs;
	bool enabled; /* auth.mode "tokens" */
	struct auth_token *tokens;
	size_t ntokens;
};

/** A table (one reference) from @cfg's auth section; NULL when out of memory. */
struct auth *auth_new(const struct config *cfg);

/** Takes one more reference; returns @a. */
struct auth *auth_ref(struct auth *a);

/** Drops one reference; the last one frees the table and its tokens. NULL is ignored. */
void auth_unref(struct auth *a);

/**
 * The token whose secret is @secret (@len bytes, any bytes), or NULL. Every token's hash is
 * compared in full, in constant time, so the time taken says nothing about which bytes matched.
 */
const struct auth_token *auth_find(const struct auth *a, const char *secret, size_t len);

/** The token of @a with the name and hash of @old (a token of another table), or NULL. */
const struct auth_token *auth_find_same(const struct auth *a, const struct auth_token *old);

/** May @t publish to the topic name @topic (valid, @len bytes)? */
bool auth_may_publish(const struct auth_token *t, const char *topic, size_t len);

/**
 * May @t subscribe to @filter (valid, @len bytes; "$share/G/F" is judged by F)? Only when every
 * topic the filter can match is inside one of the token's subscribe filters: "sensors/+/temp"
 * inside "sensors/#" yes, "#" inside "sensors/#" no.
 */
bool auth_may_subscribe(const struct auth_token *t, const char *filter, size_t len);

/** SHA-256 of @len bytes at @data into @out. */
void auth_sha256(const void *data, size_t len, uint8_t out[CONFIG_SHA256_SIZE]);

/**
 * A fresh random secret (NUL-terminated, AUTH_SECRET_LEN characters) into @out, which has room
 * for AUTH_SECRET_LEN + 1. 0, or -EIO when the system has no randomness to give.
 */
int auth_new_secret(char *out);
