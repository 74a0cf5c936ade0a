/*
 * bridge/hub/hub.c — one link for everything that is not a dedicated browser session.
 *
 * Each distinct filter is one broker subscription with its own MQTT 5 Subscription Identifier,
 * retain-as-published (receivers decide about the flag themselves) and no retained messages on
 * subscribe (receivers read those on their own, retained.h). When filters overlap, a broker may
 * send one copy of a message per matching subscription; the hub handles only the copy of one
 * of the non-shared filters that match locally (match_filters(): the highest QoS at the broker,
 * the oldest among equals), so a message becomes exactly one event. A shared subscription
 * ("$share/G/F") is its own copy: it goes to one of the filter's members.
 */
#include "hub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "barrier.h"
#include "clock.h"
#include "filtertree.h"
#include "hmap.h"
#include "hub_int.h"
#include "link.h"
#include "log.h"
#include "props.h"

/* Without entropy the instance mixes the pid, shifted above the time's bits, into the time. */
#define PID_SHIFT 40
/* Two hex digits and their NUL. */
#define HEX_BYTE_SIZE 3
/* The default client id, "mqtt-web-bridge-<host>-<pid>". */
#define CLIENT_ID_PREFIX "mqtt-web-bridge-"
#define HOST_NAME_SIZE   64
#define CLIENT_ID_SIZE   128

static void on_up(void *user, struct mqtt_bytes props)
{
	struct hub *h = user;
	char reply_filter[OWN_TOPIC_SIZE];

	struct mqtt_prop max_qos;
	bool v5 = hub_version(h) == MQTT_V5;

	h->broker_props.len = 0;
	if (props.len && buf_append(&h->broker_props, props.data, props.len))
		h->broker_props.len = 0;
	h->max_qos = MQTT_QOS_MAX;
	if (props_find(props.data, props.len, MQTT_PROP_MAXIMUM_QOS, &max_qos) &&
	    max_qos.value < MQTT_QOS_MAX)
		h->max_qos = (uint8_t)max_qos.value;
	/* Replies come only over MQTT 5; over 3.1.x the same SUBSCRIBE asks QoS 2 to learn the
	 * broker's highest. */
	snprintf(reply_filter, sizeof(reply_filter), "%s/#", h->reply_prefix);
	h->qos_probe = 0;
	link_subscribe(h->link, MQTT_SUBSCRIBE, reply_filter, strlen(reply_filter),
		       v5 ? 0 : MQTT_QOS_MAX, REPLY_SUB_ID, v5 ? NULL : &h->qos_probe);
	for (size_t i = 0; i < h->nfilters; i++) {
		struct hub_filter *f = h->filters[i];
		f->active = false;
		f->token = 0;
		if (hub_filter_subscribe(h, f))
			hub_filter_answered(h, f, MQTT_RC_UNSPECIFIED);
	}
	if (h->state_fn)
		h->state_fn(h->state_user, true);
}

static void on_down(void *user)
{
	struct hub *h = user;

	barrier_release_all(h->barrier);

	h->broker_props.len = 0;
	for (size_t i = 0; i < h->nfilters; i++) {
		h->filters[i]->active = false;
		h->filters[i]->token = 0;
	}
	/* Shared sessions first, so each gets its DISCONNECT before its publishes fail. */
	if (h->state_fn)
		h->state_fn(h->state_user, false);
	hub_req_fail_all(h, HUB_DOWN);
}

static void on_failed(void *user)
{
	struct hub *h = user;

	if (h->state_fn)
		h->state_fn(h->state_user, false);
}

/* ---- answers from the broker ---- */

static void on_done(void *user, const struct upstream_event *ev)
{
	struct hub *h = user;
	struct hub_req *r = hub_req_find(h, ev->token);
	struct hub_filter *f;

	if (h->qos_probe && ev->token == h->qos_probe) {
		h->qos_probe = 0;
		if (!ev->failed && ev->codes.len == 1 && ev->codes.data[0] < h->max_qos) {
			h->max_qos = ev->codes.data[0];
			log_msg(LOG_INFO, "hub", "broker-max-qos qos=%u", h->max_qos);
		}
		return;
	}
	if (!r && ev->token && (f = hub_filter_by_token(h, ev->token))) {
		hub_filter_answered(h, f,
				    ev->failed || ev->codes.len != 1 ? MQTT_RC_UNSPECIFIED
								     : ev->codes.data[0]);
		return;
	}
	if (!r)
		return;
	if (ev->failed) {
		hub_req_finish(h, r, HUB_DOWN, 0, NULL);
	} else if (ev->code >= UPSTREAM_RC_FAILURE) {
		hub_req_finish(h, r, HUB_REFUSED, ev->code, NULL);
	} else if (r->kind == REQ_PUBLISH || (!r->done && !r->ack)) {
		h->stats.publishes += r->kind == REQ_PUBLISH && !r->ack;
		hub_req_finish(h, r, HUB_OK, ev->code, NULL);
	} else {
		r->acked = true; /* now the reply is awaited */
	}
}

static void on_message(void *user, struct msg *m)
{
	hub_message_in(user, m);
}

/* ---- public ---- */

/* A marker to the hub's own reply filter, which the broker queues behind what it sent before. */
static int send_barrier(void *user, struct mqtt_bytes payload)
{
	struct hub *h = user;
	struct upstream *up = link_upstream(h->link);

	if (!up || !link_is_up(h->link))
		return -ENOTCONN;
	return upstream_publish(up, h->barrier_topic, payload, 0, false, (struct mqtt_bytes){0},
				NULL);
}

struct barrier_wait *hub_barrier(struct hub *h, void (*fn)(void *user), void *user)
{
	return link_is_up(h->link) ? barrier_wait(h->barrier, fn, user) : NULL;
}

void hub_barrier_cancel(struct hub *h, struct barrier_wait *w)
{
	barrier_cancel(h->barrier, w);
}

struct hub *hub_new(const struct hub_config *cfg)
{
	static const struct link_ops ops = {on_up, on_down, on_failed, on_message, on_done};
	struct link_config lc = cfg->link;
	struct hub *h = calloc(1, sizeof(*h));
	uint8_t r[INSTANCE_BYTES];

	if (!h)
		return NULL;
	/* Without entropy, the pid and the time still tell instances apart. */
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		uint64_t t = clock_wall_ms() ^ ((uint64_t)getpid() << PID_SHIFT);
		memcpy(r, &t, sizeof(r));
	}
	for (int i = 0; i < INSTANCE_BYTES; i++)
		snprintf(h->instance + 2 * i, HEX_BYTE_SIZE, "%02x", r[i]);
	snprintf(h->reply_prefix, sizeof(h->reply_prefix), REPLY_PREFIX "%s", h->instance);
	snprintf(h->barrier_topic, sizeof(h->barrier_topic), "%s" BARRIER_SUFFIX, h->reply_prefix);
	if (*cfg->link.client_id) {
		h->client_id = strdup(cfg->link.client_id);
	} else {
		char host[HOST_NAME_SIZE] = "host", id[CLIENT_ID_SIZE];
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		snprintf(id, sizeof(id), CLIENT_ID_PREFIX "%s-%ld", host, (long)getpid());
		h->client_id = strdup(id);
	}
	h->by_text = hmap_new();
	h->tree = filtertree_new();
	h->ring_cap = cfg->replay_events;
	h->ring_max_bytes = cfg->replay_bytes;
	h->headroom = cfg->headroom;
	if (h->ring_cap)
		h->ring = calloc(h->ring_cap, sizeof(*h->ring));
	h->next_sub_id = REPLY_SUB_ID + 1;
	h->barrier = barrier_new(send_barrier, h);
	if (!h->client_id || !h->by_text || !h->tree || (h->ring_cap && !h->ring) || !h->barrier)
		goto fail;
	lc.client_id = h->client_id;
	lc.name = "hub";
	h->link = link_new(&lc, &ops, h);
	if (!h->link)
		goto fail;
	return h;
fail:
	hub_free(h);
	return NULL;
}

void hub_free(struct hub *h)
{
	if (!h)
		return;
	link_free(h->link);
	hub_req_fail_all(h, HUB_DOWN);
	barrier_free(h->barrier);
	for (size_t i = 0; i < h->ring_count; i++)
		hub_event_unref(h->ring[(h->ring_head + i) % h->ring_cap]);
	free(h->ring);
	for (size_t i = 0; i < h->nfilters; i++) {
		free(h->filters[i]->text);
		free(h->filters[i]->subs);
		free(h->filters[i]->members);
		free(h->filters[i]);
	}
	free(h->filters);
	free(h->matched);
	filtertree_free(h->tree);
	hmap_free(h->by_text);
	buf_clear(&h->broker_props);
	free(h->client_id);
	free(h);
}

void hub_set_state_fn(struct hub *h, void (*fn)(void *user, bool up), void *user)
{
	h->state_fn = fn;
	h->state_user = user;
}

bool hub_connecting(const struct hub *h)
{
	return link_is_connecting(h->link);
}

struct mqtt_bytes hub_broker_props(const struct hub *h)
{
	return (struct mqtt_bytes){h->broker_props.data, h->broker_props.len};
}

int hub_max_keepalive(const struct hub *h)
{
	return link_max_keepalive(h->link);
}

int hub_version(const struct hub *h)
{
	return link_version(h->link);
}

int hub_max_qos(const struct hub *h)
{
	return link_is_up(h->link) ? h->max_qos : MQTT_QOS_MAX;
}

bool hub_connected(const struct hub *h)
{
	return link_is_up(h->link);
}

bool hub_can_request(const struct hub *h)
{
	return link_version(h->link) == MQTT_V5;
}

const char *hub_client_id(const struct hub *h)
{
	return h->client_id;
}

const char *hub_instance(const struct hub *h)
{
	return h->instance;
}

void hub_tick(struct hub *h)
{
	uint64_t now = clock_mono_ms();

	link_tick(h->link);
	barrier_tick(h->barrier, now);
	for (size_t i = 0; i < h->nfilters;) {
		struct hub_filter *f = h->filters[i];
		if (!f->nsubs && !f->nmembers && f->idle_since_ms &&
		    now - f->idle_since_ms >= hub_filter_linger_ms(f))
			hub_filter_free(h, f); /* shifts the array: look at i again */
		else
			i++;
	}
}

void hub_get_stats(const struct hub *h, struct hub_stats *out)
{
	*out = h->stats;
	out->connected = link_is_up(h->link);
	out->mqtt_version = out->connected ? link_version(h->link) : 0;
	out->reconnects = link_reconnects(h->link);
	out->filters = h->nfilters;
	out->subscribers = h->nsubs;
	out->members = 0;
	for (size_t i = 0; i < h->nfilters; i++)
		out->members += h->filters[i]->nmembers;
	out->pending = h->nreqs;
}
