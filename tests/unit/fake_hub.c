/*
 * tests/unit/fake_hub.c — hub.h and retained.h without a broker: members and publishes are
 * recorded; the test delivers messages to members itself, as the hub's matching would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_fakes.h"

struct hub {
	int unused;
};

struct retained {
	int unused;
};

struct hub_req {
	int unused;
};

struct fake_hub_state fake_hub;
static struct hub the_hub;
static struct retained the_reader;
static struct hub_req the_req;

void fake_reset(void)
{
	memset(&fake_upstream, 0, sizeof(fake_upstream));
	memset(&fake_hub, 0, sizeof(fake_hub));
	fake_hub.connected = true;
	fake_hub.join_result = 2;
}

struct hub *fake_hub_handle(void)
{
	return &the_hub;
}

struct retained *fake_retained_handle(void)
{
	return &the_reader;
}

struct hub_member *fake_hub_member(const char *filter)
{
	for (size_t i = 0; i < fake_hub.nmembers; i++) {
		if (!strcmp(fake_hub.filters[i], filter))
			return fake_hub.members[i];
	}
	return NULL;
}

bool hub_connected(const struct hub *h)
{
	(void)h;
	return fake_hub.connected;
}

bool hub_connecting(const struct hub *h)
{
	(void)h;
	return false;
}

struct mqtt_bytes hub_broker_props(const struct hub *h)
{
	(void)h;
	return (struct mqtt_bytes){NULL, 0};
}

int hub_max_keepalive(const struct hub *h)
{
	(void)h;
	return 0;
}

int hub_version(const struct hub *h)
{
	(void)h;
	return fake_hub.version ? fake_hub.version : MQTT_V5;
}

int hub_max_qos(const struct hub *h)
{
	(void)h;
	return 2;
}

int hub_join(struct hub *h, struct hub_member *m, const char *filter, size_t len)
{
	(void)h;
	if (fake_hub.nmembers == FAKE_MAX_MEMBERS || len >= sizeof(fake_hub.filters[0]))
		return -ENOMEM;
	memcpy(fake_hub.filters[fake_hub.nmembers], filter, len);
	fake_hub.filters[fake_hub.nmembers][len] = '\0';
	fake_hub.members[fake_hub.nmembers++] = m;
	m->waiting = fake_hub.join_result == HUB_JOIN_WAIT;
	if (fake_hub.join_result == HUB_JOIN_WAIT)
		return HUB_JOIN_WAIT;
	return m->qos < fake_hub.join_result ? m->qos : fake_hub.join_result;
}

void hub_leave(struct hub *h, struct hub_member *m)
{
	(void)h;
	for (size_t i = 0; i < fake_hub.nmembers; i++) {
		if (fake_hub.members[i] != m)
			continue;
		memmove(&fake_hub.members[i], &fake_hub.members[i + 1],
			(fake_hub.nmembers - i - 1) * sizeof(fake_hub.members[0]));
		memmove(&fake_hub.filters[i], &fake_hub.filters[i + 1],
			(fake_hub.nmembers - i - 1) * sizeof(fake_hub.filters[0]));
		fake_hub.nmembers--;
		return;
	}
}

static struct fake_call *record(const char *topic, struct mqtt_bytes payload, int qos, bool retain)
{
	struct fake_call *c;

	if (fake_hub.npublishes == FAKE_MAX_CALLS || payload.len > sizeof(c->payload))
		abort();
	c = &fake_hub.publishes[fake_hub.npublishes++];
	memset(c, 0, sizeof(*c));
	c->kind = FAKE_PUBLISH;
	snprintf(c->topic, sizeof(c->topic), "%s", topic);
	memcpy(c->payload, payload.data, payload.len);
	c->payload_len = payload.len;
	c->qos = qos;
	c->retain = retain;
	return c;
}

struct hub_req *hub_publish_tagged(struct hub *h, const char *topic, struct mqtt_bytes payload,
				   int qos, bool retain, struct mqtt_bytes props, hub_ack_fn ack,
				   void *user, uint32_t tag)
{
	struct fake_call *c;

	(void)h;
	(void)props;
	if (!fake_hub.connected)
		return NULL;
	c = record(topic, payload, qos, retain);
	c->token = (int)tag;
	c->ack = ack;
	c->user = user;
	return &the_req;
}

int hub_publish_qos0(struct hub *h, const char *topic, struct mqtt_bytes payload, bool retain,
		     struct mqtt_bytes props)
{
	(void)h;
	(void)props;
	if (!fake_hub.connected)
		return -ENOTCONN;
	record(topic, payload, 0, retain);
	return 0;
}

void hub_cancel(struct hub *h, struct hub_req *r)
{
	(void)h;
	(void)r;
}

/* The hub is always caught up: the caller goes on at once. */
struct barrier_wait *hub_barrier(struct hub *h, void (*fn)(void *user), void *user)
{
	(void)h;
	(void)fn;
	(void)user;
	return NULL;
}

void hub_barrier_cancel(struct hub *h, struct barrier_wait *w)
{
	(void)h;
	(void)w;
}

/* Reads wait for fake_retained_answer(); none when the test says the reader is down. */
struct retained_req *retained_get(struct retained *r, const char *filter, size_t limit,
				  uint64_t since, retained_fn fn, void *user)
{
	struct retained_req *q;

	(void)r;
	(void)filter;
	(void)limit;
	(void)since;
	if (fake_hub.reader_down || fake_hub.nreads == FAKE_MAX_MEMBERS)
		return NULL;
	q = &fake_hub.reads[fake_hub.nreads++];
	q->fn = fn;
	q->user = user;
	return q;
}

void fake_retained_answer_with(struct msg *const *msgs, size_t n)
{
	size_t nreads = fake_hub.nreads;

	fake_hub.nreads = 0;
	for (size_t i = 0; i < nreads; i++) {
		if (fake_hub.reads[i].fn)
			fake_hub.reads[i].fn(fake_hub.reads[i].user, true, true, msgs, n);
	}
}

void fake_retained_answer(void)
{
	fake_retained_answer_with(NULL, 0);
}

uint64_t retained_mark(const struct retained *r)
{
	(void)r;
	return 0;
}

void retained_finish(struct retained *r, struct retained_req *q)
{
	(void)r;
	(void)q;
}

void retained_cancel(struct retained *r, struct retained_req *q)
{
	(void)r;
	q->fn = NULL;
}
