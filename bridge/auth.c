/*
 * bridge/auth.c — access tokens and their ACLs. See auth.h.
 */
#include "auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "topic.h"

#define NAME_MARK "{name}"

/* A secret: this prefix, then SECRET_BYTES random bytes in base64url (6 bits a character). */
#define SECRET_PREFIX "mwb_"
#define SECRET_BYTES  32
#define B64_BITS      6
#define B64_MASK      ((1u << B64_BITS) - 1)

static void free_strings(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void token_clear(struct auth_token *t)
{
	free(t->name);
	free_strings(t->publish, t->npublish);
	free_strings(t->subscribe, t->nsubscribe);
}

/* @filter with every "{name}" replaced by @name; NULL when out of memory. */
static char *substitute(const char *filter, const char *name)
{
	size_t marks = 0, name_len = strlen(name), mark_len = strlen(NAME_MARK);
	const char *p;
	char *out, *o;

	for (p = filter; (p = strstr(p, NAME_MARK)); p += mark_len)
		marks++;
	out = malloc(strlen(filter) + marks * name_len + 1);
	if (!out)
		return NULL;
	o = out;
	while ((p = strstr(filter, NAME_MARK))) {
		memcpy(o, filter, (size_t)(p - filter));
		o += p - filter;
		memcpy(o, name, name_len);
		o += name_len;
		filter = p + mark_len;
	}
	strcpy(o, filter);
	return out;
}

static int copy_filters(char ***out, size_t *nout, char *const *in, size_t n, const char *name)
{
	*out = calloc(n ? n : 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	for (*nout = 0; *nout < n; (*nout)++)
		if (!((*out)[*nout] = substitute(in[*nout], name)))
			return -ENOMEM;
	return 0;
}

struct auth *auth_new(const struct config *cfg)
{
	struct auth *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->refs = 1;
	a->enabled = cfg->auth.mode == AUTH_TOKENS;
	a->tokens = calloc(cfg->auth.ntokens ? cfg->auth.ntokens : 1, sizeof(*a->tokens));
	if (!a->tokens)
		goto fail;
	for (size_t i = 0; i < cfg->auth.ntokens; i++) {
		const struct config_token *c = &cfg->auth.tokens[i];
		struct auth_token *t = &a->tokens[i];

		a->ntokens = i + 1;
		memcpy(t->sha256, c->sha256, sizeof(t->sha256));
		if (!(t->name = strdup(c->name)) ||
		    copy_filters(&t->publish, &t->npublish, c->publish, c->npublish, c->name) ||
		    copy_filters(&t->subscribe, &t->nsubscribe, c->subscribe, c->nsubscribe,
				 c->name))
			goto fail;
	}
	return a;
fail:
	auth_unref(a);
	return NULL;
}

struct auth *auth_ref(struct auth *a)
{
	a->refs++;
	return a;
}

void auth_unref(struct auth *a)
{
	if (!a || --a->refs)
		return;
	for (size_t i = 0; i < a->ntokens; i++)
		token_clear(&a->tokens[i]);
	free(a->tokens);
	free(a);
}

void auth_sha256(const void *data, size_t len, uint8_t out[CONFIG_SHA256_SIZE])
{
	unsigned int n = CONFIG_SHA256_SIZE;

	/* Only fails without memory for a digest context; then nothing can match by accident. */
	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL))
		memset(out, 0, CONFIG_SHA256_SIZE);
}

/* Differs in any byte: computed over all of them, so the time does not depend on where. */
static bool hash_equal(const uint8_t *a, const uint8_t *b)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < CONFIG_SHA256_SIZE; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

const struct auth_token *auth_find(const struct auth *a, const char *secret, size_t len)
{
	const struct auth_token *found = NULL;
	uint8_t hash[CONFIG_SHA256_SIZE];

	if (!a || !secret || !len)
		return NULL;
	auth_sha256(secret, len, hash);
	/* Every token is compared, whichever matches: no early exit to time. */
	for (size_t i = 0; i < a->ntokens; i++)
		if (hash_equal(hash, a->tokens[i].sha256) && !found)
			found = &a->tokens[i];
	return found;
}

const struct auth_token *auth_find_same(const struct auth *a, const struct auth_token *old)
{
	if (!a || !old)
		return NULL;
	for (size_t i = 0; i < a->ntokens; i++)
		if (!strcmp(a->tokens[i].name, old->name) &&
		    hash_equal(a->tokens[i].sha256, old->sha256))
			return &a->tokens[i];
	return NULL;
}

bool auth_may_publish(const struct auth_token *t, const char *topic, size_t len)
{
	for (size_t i = 0; t && i < t->npublish; i++)
		if (topic_matches(t->publish[i], strlen(t->publish[i]), topic, len))
			return true;
	return false;
}

bool auth_may_subscribe(const struct auth_token *t, const char *filter, size_t len)
{
	const char *inner;
	size_t inner_len;

	if (topic_filter_is_shared(filter, len, &inner, &inner_len)) {
		filter = inner;
		len = inner_len;
	}
	for (size_t i = 0; t && i < t->nsubscribe; i++)
		if (topic_filter_within(filter, len, t->subscribe[i], strlen(t->subscribe[i])))
			return true;
	return false;
}

int auth_new_secret(char *out)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[SECRET_BYTES];
	size_t got = 0, o = 0;
	uint32_t bits = 0;
	int nbits = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno != EINTR)
			return -EIO;
		if (n > 0)
			got += (size_t)n;
	}
	memcpy(out, SECRET_PREFIX, sizeof SECRET_PREFIX - 1);
	o = sizeof SECRET_PREFIX - 1;
	/* base64url without padding: 256 bits are 43 characters, the last carrying 4 bits. */
	for (size_t i = 0; i < sizeof(raw); i++) {
		bits = bits << 8 | raw[i];
		nbits += 8;
		while (nbits >= B64_BITS) {
			nbits -= B64_BITS;
			out[o++] = alphabet[(bits >> nbits) & B64_MASK];
		}
	}
	if (nbits)
		out[o++] = alphabet[(bits << (B64_BITS - nbits)) & B64_MASK];
	out[o] = '\0';
	return 0;
}
