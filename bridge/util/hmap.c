/* bridge/util/hmap.c — separate chaining, power-of-two buckets, SipHash-2-4 with a random key. */
#include "hmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct entry {
	struct entry *next;
	uint64_t hash;
	void *value;
	size_t len;
	unsigned char key[];
};

struct hmap {
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	uint64_t k0, k1;
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static uint64_t siphash(const struct hmap *m, const unsigned char *in, size_t len)
{
	uint64_t v0 = m->k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = m->k1 ^ UINT64_C(0x646f72616e646f6d);
	uint64_t v2 = m->k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = m->k1 ^ UINT64_C(0x7465646279746573);
	uint64_t b = (uint64_t)len << 56, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, in + i, 8); /* little-endian hosts; the value only needs to be stable */
		v3 ^= w;
		SIPROUND;
		SIPROUND;
		v0 ^= w;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

struct hmap *hmap_new(void)
{
	struct hmap *m = calloc(1, sizeof(*m));
	uint64_t key[2] = {0, 0};

	if (!m)
		return NULL;
	m->nbuckets = 16;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	/* Without entropy the map still works; it only loses its flood resistance. */
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key))
		key[0] = (uint64_t)(uintptr_t)m;
	m->k0 = key[0];
	m->k1 = key[1];
	return m;
}

static struct entry **find(const struct hmap *m, const void *key, size_t len, uint64_t h)
{
	struct entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->hash == h && (*pp)->len == len && !memcmp((*pp)->key, key, len))
			return pp;
	}
	return pp;
}

void *hmap_get(const struct hmap *m, const void *key, size_t len)
{
	struct entry **pp = find(m, key, len, siphash(m, key, len));

	return *pp ? (*pp)->value : NULL;
}

static void grow(struct hmap *m)
{
	size_t n = m->nbuckets * 2;
	struct entry **b = calloc(n, sizeof(*b));

	/* Out of memory: stay at this size; chains get longer but everything still works. */
	if (!b)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct entry *e = m->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

int hmap_put(struct hmap *m, const void *key, size_t len, void *value)
{
	uint64_t h = siphash(m, key, len);
	struct entry **pp = find(m, key, len, h), *e;

	if (*pp) {
		(*pp)->value = value;
		return 0;
	}
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	e->next = NULL;
	e->hash = h;
	e->value = value;
	e->len = len;
	memcpy(e->key, key, len);
	*pp = e;
	if (++m->count > m->nbuckets)
		grow(m);
	return 0;
}

void *hmap_remove(struct hmap *m, const void *key, size_t len)
{
	struct entry **pp = find(m, key, len, siphash(m, key, len)), *e = *pp;
	void *value;

	if (!e)
		return NULL;
	*pp = e->next;
	value = e->value;
	free(e);
	m->count--;
	return value;
}

size_t hmap_count(const struct hmap *m)
{
	return m->count;
}

void hmap_foreach(const struct hmap *m, bool (*fn)(const void *, size_t, void *, void *),
		  void *user)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		for (struct entry *e = m->buckets[i]; e; e = e->next) {
			if (!fn(e->key, e->len, e->value, user))
				return;
		}
	}
}

void hmap_free(struct hmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct entry *e = m->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}
