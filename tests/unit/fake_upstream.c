/* tests/unit/fake_upstream.c — upstream.h without Paho: requests are recorded, events come from the
 * test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_fakes.h"

struct upstream {
	upstream_handler handler;
	void *owner;
};

struct fake_upstream_state fake_upstream;

void upstream_init(void)
{
}

struct upstream *upstream_new(const struct upstream_env *env, const struct upstream_connect *c,
			      upstream_handler handler, void *owner)
{
	struct upstream *u = calloc(1, sizeof(*u));

	(void)env;
	if (!u)
		return NULL;
	u->handler = handler;
	u->owner = owner;
	fake_upstream.up = u;
	fake_upstream.connect = *c;
	snprintf(fake_upstream.client_id, sizeof(fake_upstream.client_id), "%s", c->client_id);
	fake_upstream.connect.client_id = fake_upstream.client_id;
	fake_upstream.connect.will_topic = NULL;
	fake_upstream.connect.username = NULL;
	fake_upstream.created++;
	return u;
}

void upstream_set_owner(struct upstream *u, upstream_handler handler, void *owner)
{
	u->handler = handler;
	u->owner = owner;
}

void upstream_dispatch(struct upstream_event *ev)
{
	if (ev->up && ev->up->handler)
		ev->up->handler(ev->up->owner, ev);
	else
		upstream_event_free(ev);
}

void upstream_event_free(struct upstream_event *ev)
{
	if (!ev)
		return;
	free(ev->msg);
	free(ev);
}

static struct fake_call *record(enum fake_call_kind kind)
{
	struct fake_call *c;

	if (fake_upstream.ncalls == FAKE_MAX_CALLS)
		abort();
	c = &fake_upstream.calls[fake_upstream.ncalls++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->token = ++fake_upstream.last_token;
	return c;
}

int upstream_publish(struct upstream *u, const char *topic, struct mqtt_bytes payload, int qos,
		     bool retain, struct mqtt_bytes props, int *token)
{
	struct fake_call *c = record(FAKE_PUBLISH);

	(void)u;
	(void)props;
	snprintf(c->topic, sizeof(c->topic), "%s", topic);
	if (payload.len > sizeof(c->payload))
		abort();
	memcpy(c->payload, payload.data, payload.len);
	c->payload_len = payload.len;
	c->qos = qos;
	c->retain = retain;
	if (token)
		*token = c->token;
	return 0;
}

int upstream_subscribe(struct upstream *u, enum mqtt_type type, struct mqtt_bytes entries,
		       size_t count, struct mqtt_bytes props, int *token)
{
	struct fake_call *c = record(type == MQTT_SUBSCRIBE ? FAKE_SUBSCRIBE : FAKE_UNSUBSCRIBE);

	(void)u;
	(void)props;
	if (entries.len > sizeof(c->entries))
		abort();
	memcpy(c->entries, entries.data, entries.len);
	c->entries_len = entries.len;
	c->count = count;
	*token = c->token;
	return 0;
}

int upstream_disconnect(struct upstream *u, uint8_t reason, struct mqtt_bytes props, int wait_ms)
{
	struct fake_call *c = record(FAKE_DISCONNECT);

	(void)u;
	(void)props;
	(void)wait_ms;
	c->reason = reason;
	return 0;
}

size_t upstream_take_dropped(struct upstream *u)
{
	(void)u;
	return 0;
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	if (fake_upstream.up == u)
		fake_upstream.up = NULL;
	fake_upstream.freed++;
	free(u);
}

struct upstream_event *fake_upstream_event(enum upstream_event_kind kind)
{
	struct upstream_event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		abort();
	ev->item.kind = (uint32_t)kind;
	ev->up = fake_upstream.up;
	ev->error = "";
	return ev;
}

void fake_upstream_dispatch(struct upstream_event *ev)
{
	upstream_dispatch(ev);
}
