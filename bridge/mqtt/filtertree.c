/*
 * bridge/mqtt/filtertree.c — a trie of filter levels.
 *
 * A node is one level of some filter: its named children in a hash map (made when the first
 * one comes), its '+' child and '#' child apart, and the values whose filter ends there.
 * Matching walks the topic's levels with an explicit stack rather than recursion, as a topic
 * may have as many levels as bytes.
 */
#include "filtertree.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

struct node {
	struct node *parent;
	char *level; /* in the parent's map (NULL for the root, '+' and '#' children) */
	size_t level_len;
	struct hmap *children; /* level -> struct node */
	size_t nchildren;
	struct node *plus, *hash;
	void **values;
	size_t nvalues, cap;
};

struct filtertree {
	struct node root;
};

/* The next level of @s[0..len) from @*pos: its start and length; false after the last. */
static bool next_level(const char *s, size_t len, size_t *pos, const char **level, size_t *n)
{
	const char *slash;

	if (*pos > len)
		return false;
	*level = s + *pos;
	slash = memchr(*level, '/', len - *pos);
	*n = slash ? (size_t)(slash - *level) : len - *pos;
	*pos += *n + 1; /* past the end (len + 1) after the last level */
	return true;
}

struct filtertree *filtertree_new(void)
{
	return calloc(1, sizeof(struct filtertree));
}

static bool node_empty(const struct node *n)
{
	return !n->nvalues && !n->nchildren && !n->plus && !n->hash;
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	hmap_free(n->children);
	free(n->level);
	free(n->values);
	free(n);
}

/* The child of @n for @level, made when @make; NULL when there is none or out of memory. */
static struct node *child(struct node *n, const char *level, size_t len, bool make)
{
	struct node *c;

	if (len == 1 && (level[0] == '+' || level[0] == '#')) {
		struct node **slot = level[0] == '+' ? &n->plus : &n->hash;
		if (!*slot && make && (*slot = calloc(1, sizeof(**slot))))
			(*slot)->parent = n;
		return *slot;
	}
	c = n->children ? hmap_get(n->children, level, len) : NULL;
	if (c || !make)
		return c;
	if (!n->children && !(n->children = hmap_new()))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->level = malloc(len ? len : 1))) {
		free(c);
		return NULL;
	}
	memcpy(c->level, level, len);
	c->level_len = len;
	c->parent = n;
	if (hmap_put(n->children, level, len, c)) {
		node_free(c);
		return NULL;
	}
	n->nchildren++;
	return c;
}

/* Takes @n out of its parent and frees it; returns the parent. */
static struct node *detach(struct node *n)
{
	struct node *p = n->parent;

	if (p->plus == n)
		p->plus = NULL;
	else if (p->hash == n)
		p->hash = NULL;
	else if (hmap_remove(p->children, n->level, n->level_len))
		p->nchildren--;
	node_free(n);
	return p;
}

/* Frees @n and the ancestors it leaves empty. */
static void prune(struct filtertree *t, struct node *n)
{
	while (n != &t->root && node_empty(n))
		n = detach(n);
}

int filtertree_add(struct filtertree *t, const char *filter, size_t len, void *value)
{
	struct node *n = &t->root;
	const char *level;
	size_t pos = 0, llen;

	while (next_level(filter, len, &pos, &level, &llen)) {
		struct node *c = child(n, level, llen, true);
		if (!c) {
			prune(t, n);
			return -ENOMEM;
		}
		n = c;
	}
	if (n->nvalues == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 1;
		void **more = realloc(n->values, cap * sizeof(*more));
		if (!more) {
			prune(t, n);
			return -ENOMEM;
		}
		n->values = more;
		n->cap = cap;
	}
	n->values[n->nvalues++] = value;
	return 0;
}

void filtertree_remove(struct filtertree *t, const char *filter, size_t len, void *value)
{
	struct node *n = &t->root;
	const char *level;
	size_t pos = 0, llen;

	while (n && next_level(filter, len, &pos, &level, &llen))
		n = child(n, level, llen, false);
	if (!n)
		return;
	for (size_t i = 0; i < n->nvalues; i++) {
		if (n->values[i] == value) {
			n->values[i] = n->values[--n->nvalues];
			break;
		}
	}
	prune(t, n);
}

static void emit(const struct node *n, void (*fn)(void *value, void *user), void *user)
{
	for (size_t i = 0; n && i < n->nvalues; i++)
		fn(n->values[i], user);
}

/* Steps the walk keeps without a heap allocation: enough for topics a few levels deep. */
#define LOCAL_STEPS 32
/* Each level pushes at most two steps: the level's own child and '+'. */
#define PUSHES_PER_LEVEL 2

/* A place in the walk: a node, and where the topic's next level starts. */
struct step {
	const struct node *node;
	size_t pos;
};

int filtertree_match(const struct filtertree *t, const char *topic, size_t len,
		     void (*fn)(void *value, void *user), void *user)
{
	struct step local[LOCAL_STEPS], *stack = local, *more;
	size_t depth = 0, cap = sizeof(local) / sizeof(*local);
	bool dollar = len && topic[0] == '$';
	int rc = 0;

	stack[depth++] = (struct step){&t->root, 0};
	while (depth) {
		struct step s = stack[--depth];
		const struct node *n = s.node, *c;
		bool root = n == &t->root;
		const char *level;
		size_t pos = s.pos, llen;

		/* '#' matches this level and all below, the parent included. */
		if (!(root && dollar))
			emit(n->hash, fn, user);
		if (!next_level(topic, len, &pos, &level, &llen)) {
			emit(n, fn, user);
			continue;
		}
		if (depth + PUSHES_PER_LEVEL > cap) {
			more = malloc(cap * 2 * sizeof(*more));
			if (!more) {
				rc = -ENOMEM;
				break;
			}
			memcpy(more, stack, depth * sizeof(*more));
			if (stack != local)
				free(stack);
			stack = more;
			cap *= 2;
		}
		c = n->children ? hmap_get(n->children, level, llen) : NULL;
		if (c)
			stack[depth++] = (struct step){c, pos};
		if (n->plus && !(root && dollar))
			stack[depth++] = (struct step){n->plus, pos};
	}
	if (stack != local)
		free(stack);
	return rc;
}

static bool first_child(const void *key, size_t len, void *value, void *user)
{
	(void)key;
	(void)len;
	*(struct node **)user = value;
	return false;
}

/* Iterative too: a filter may have as many levels as bytes. */
void filtertree_free(struct filtertree *t)
{
	struct node *n;

	if (!t)
		return;
	n = &t->root;
	for (;;) {
		struct node *c = n->plus ? n->plus : n->hash;
		if (!c && n->nchildren)
			hmap_foreach(n->children, first_child, &c);
		if (c) {
			n = c;
			continue;
		}
		if (n == &t->root)
			break;
		n = detach(n);
	}
	hmap_free(t->root.children);
	free(t->root.values);
	free(t);
}
