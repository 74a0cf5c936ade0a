/*
 * bridge/hub.c — one link for everything that is not a browser's own MQTT session.
 *
 * Each distinct filter is one broker subscription with its own MQTT 5 Subscription Identifier.
 * When filters overlap, a broker may send one copy of a message per matching subscription; the
 * hub handles only the copy that carries the lowest identifier among the filters that match
 * locally, so a message becomes exactly one event. Identifiers only grow, so the lowest one
 * belongs to the oldest filter, whose broker subscription is surely active.
 */
#include "hub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hmap.h"
#include "jsonmsg.h"
#include "link.h"
#include "log.h"
#include "props.h"
#include "topic.h"

#define REPLY_SUB_ID 1
#define CORRELATION_LEN 16
/* Live subscriptions: QoS 2 so events carry the publisher's QoS; no retained messages on
 * subscribe (streams ask for those explicitly with ?retained=true). */
#define LIVE_OPTIONS (2 | (2 << 4))
/* A filter whose last stream left stays subscribed this long, so that a stream that reconnects
 * (EventSource retries after 2 s) finds what came in between in the replay ring. */
#define FILTER_LINGER_MS 60000

struct filter {
	char *text;
	size_t len;
	uint32_t sub_id;
	uint64_t idle_since_ms; /* 0 while a stream uses it */
	struct hub_sub **subs;
	size_t nsubs, cap;
};

struct hub_sub {
	hub_deliver_fn fn;
	void *user;
	struct filter **filters;
	size_t n;
	uint64_t last_seq; /* the last event delivered: at most once per message */
};

enum req_kind {
	REQ_PUBLISH,
	REQ_REQUEST,
};

struct hub_req {
	struct hub_req *prev, *next;
	enum req_kind kind;
	int token;
	bool acked;
	uint8_t correlation[CORRELATION_LEN];
	hub_done_fn done;
	void *user;
};

struct hub {
	struct link *link;
	char instance[17];
	char *client_id;
	char reply_prefix[64];
	struct hmap *by_text;
	struct filter **filters;
	size_t nfilters, cap;
	uint32_t next_sub_id;
	struct hub_req *reqs;
	size_t nreqs;
	size_t nsubs;
	uint64_t seq;
	/* The replay ring: the last events, oldest at ring[head]. */
	struct hub_event **ring;
	size_t ring_cap, ring_head, ring_count, ring_bytes, ring_max_bytes;
	size_t headroom;
	struct hub_stats stats;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hub_event_ref(struct hub_event *ev)
{
	ev->refs++;
}

void hub_event_unref(struct hub_event *ev)
{
	if (!ev || --ev->refs)
		return;
	free(ev->msg);
	free(ev->block);
	free(ev);
}

/* ---- requests ---- */

static void unlink_req(struct hub *h, struct hub_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	h->nreqs--;
}

static void finish_req(struct hub *h, struct hub_req *r, enum hub_status status, uint8_t reason,
		       const struct msg *reply)
{
	hub_done_fn done = r->done;
	void *user = r->user;

	unlink_req(h, r);
	free(r);
	if (done)
		done(user, status, reason, reply);
}

/* Publishes complete in order; QoS 0 ones all have token 0, so the oldest is the one. */
static struct hub_req *find_by_token(struct hub *h, int token)
{
	struct hub_req *found = NULL;

	for (struct hub_req *r = h->reqs; r; r = r->next) {
		if (!r->acked && r->token == token)
			found = r; /* the list is newest first: keep the last match */
	}
	return found;
}

static void fail_all(struct hub *h, enum hub_status status)
{
	while (h->reqs)
		finish_req(h, h->reqs, status, 0, NULL);
}

static struct hub_req *add_req(struct hub *h, enum req_kind kind, int token, hub_done_fn done,
			       void *user)
{
	struct hub_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->kind = kind;
	r->token = token;
	r->done = done;
	r->user = user;
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	h->nreqs++;
	return r;
}

/* ---- subscriptions at the broker ---- */

/* While the link is down nothing is sent: on_up() restores every filter. */
static void broker_subscribe(struct hub *h, const char *filter, size_t len, uint32_t sub_id,
			     enum mqtt_type type)
{
	link_subscribe(h->link, type, filter, len, LIVE_OPTIONS, sub_id);
}

static void on_up(void *user, struct mqtt_bytes props)
{
	struct hub *h = user;
	char reply_filter[80];

	(void)props;
	snprintf(reply_filter, sizeof(reply_filter), "%s/#", h->reply_prefix);
	broker_subscribe(h, reply_filter, strlen(reply_filter), REPLY_SUB_ID, MQTT_SUBSCRIBE);
	for (size_t i = 0; i < h->nfilters; i++)
		broker_subscribe(h, h->filters[i]->text, h->filters[i]->len, h->filters[i]->sub_id,
				 MQTT_SUBSCRIBE);
}

static void on_down(void *user)
{
	fail_all(user, HUB_DOWN);
}

/* ---- messages ---- */

static bool has_sub_id(const struct msg *m, uint32_t id, bool *any)
{
	struct props_iter it;
	struct mqtt_prop p;

	*any = false;
	props_iter_init(&it, m->props.data, m->props.len);
	while (props_next(&it, &p)) {
		if (p.id != MQTT_PROP_SUBSCRIPTION_ID)
			continue;
		*any = true;
		if (p.value == id)
			return true;
	}
	return false;
}

static bool on_reply(struct hub *h, const struct msg *m)
{
	size_t plen = strlen(h->reply_prefix);
	struct mqtt_prop corr;

	if (m->topic.len <= plen || memcmp(m->topic.data, h->reply_prefix, plen) ||
	    m->topic.data[plen] != '/')
		return false;
	if (!props_find(m->props.data, m->props.len, MQTT_PROP_CORRELATION_DATA, &corr) ||
	    corr.len != CORRELATION_LEN)
		return true;
	for (struct hub_req *r = h->reqs; r; r = r->next) {
		if (r->kind == REQ_REQUEST && !memcmp(r->correlation, corr.data, CORRELATION_LEN)) {
			finish_req(h, r, HUB_OK, 0, m);
			break;
		}
	}
	return true;
}

static void ring_push(struct hub *h, struct hub_event *ev)
{
	if (!h->ring_cap)
		return;
	while (h->ring_count &&
	       (h->ring_count == h->ring_cap || h->ring_bytes + ev->sse_len > h->ring_max_bytes)) {
		struct hub_event *old = h->ring[h->ring_head];
		h->ring_bytes -= old->sse_len;
		hub_event_unref(old);
		h->ring_head = (h->ring_head + 1) % h->ring_cap;
		h->ring_count--;
	}
	h->ring[(h->ring_head + h->ring_count) % h->ring_cap] = ev;
	h->ring_count++;
	h->ring_bytes += ev->sse_len;
	hub_event_ref(ev);
}

static struct hub_event *make_event(struct hub *h, struct msg *m)
{
	struct hub_event *ev = calloc(1, sizeof(*ev));
	struct buf sse = BUF_INIT;
	char id[48];

	if (!ev)
		return NULL;
	ev->refs = 1;
	ev->seq = ++h->seq;
	ev->ts_ms = wall_ms();
	snprintf(id, sizeof(id), "%s-%" PRIu64, h->instance, ev->seq);
	/* The writer's room comes first, so every stream writes the one copy in place. */
	if (buf_reserve(&sse, h->headroom + m->payload.len * 2 + 256)) {
		free(ev);
		return NULL;
	}
	memset(sse.data, 0, h->headroom);
	sse.len = h->headroom;
	if (jsonmsg_sse(&sse, id, m, ev->ts_ms)) {
		buf_clear(&sse);
		free(ev);
		return NULL;
	}
	ev->block = buf_steal(&sse, &ev->sse_len);
	ev->sse = (char *)ev->block + h->headroom;
	ev->sse_len -= h->headroom;
	ev->msg = m;
	return ev;
}

static void on_message(struct hub *h, struct msg *m)
{
	uint32_t lowest = UINT32_MAX;
	struct hub_event *ev;
	bool any;

	h->stats.messages_in++;
	if (has_sub_id(m, REPLY_SUB_ID, &any) || (!any && link_version(h->link) != MQTT_V5)) {
		if (on_reply(h, m) && any) {
			free(m);
			return;
		}
	}
	for (size_t i = 0; i < h->nfilters; i++) {
		struct filter *f = h->filters[i];
		if (f->sub_id < lowest && topic_matches(f->text, f->len, (const char *)m->topic.data,
							m->topic.len))
			lowest = f->sub_id;
	}
	/* No stream wants it (any more), or it is another subscription's copy of it. */
	if (lowest == UINT32_MAX || (any && !has_sub_id(m, lowest, &any))) {
		free(m);
		return;
	}
	ev = make_event(h, m);
	if (!ev) {
		log_msg(LOG_WARN, "hub", "event-dropped reason=out-of-memory");
		free(m);
		return;
	}
	for (size_t i = 0; i < h->nfilters; i++) {
		struct filter *f = h->filters[i];
		if (!topic_matches(f->text, f->len, (const char *)m->topic.data, m->topic.len))
			continue;
		for (size_t j = 0; j < f->nsubs; j++) {
			struct hub_sub *s = f->subs[j];
			if (s->last_seq == ev->seq)
				continue;
			s->last_seq = ev->seq;
			h->stats.events_delivered++;
			s->fn(s->user, ev);
		}
	}
	ring_push(h, ev);
	hub_event_unref(ev);
}

static void on_done(struct hub *h, struct upstream_event *ev)
{
	struct hub_req *r = find_by_token(h, ev->token);

	if (!r)
		return;
	if (ev->failed) {
		finish_req(h, r, HUB_DOWN, 0, NULL);
	} else if (ev->code >= 0x80) {
		finish_req(h, r, HUB_REFUSED, ev->code, NULL);
	} else if (r->kind == REQ_PUBLISH || !r->done) {
		h->stats.publishes += r->kind == REQ_PUBLISH;
		finish_req(h, r, HUB_OK, ev->code, NULL);
	} else {
		r->acked = true; /* now the reply is awaited */
	}
}

static void on_event(void *user, struct upstream_event *ev)
{
	struct hub *h = user;

	if (ev->item.kind == UPSTREAM_MESSAGE) {
		struct msg *m = ev->msg;
		ev->msg = NULL;
		on_message(h, m);
	} else if (ev->item.kind == UPSTREAM_DONE) {
		on_done(h, ev);
	}
	upstream_event_free(ev);
}

static void filter_free(struct hub *h, struct filter *f);

/* ---- public ---- */

struct hub *hub_new(const struct hub_config *cfg)
{
	static const struct link_ops ops = {on_up, on_down, on_event};
	struct link_config lc;
	struct hub *h = calloc(1, sizeof(*h));
	uint8_t r[8];

	if (!h)
		return NULL;
	/* Without entropy, the pid and the time still tell instances apart. */
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		uint64_t t = wall_ms() ^ ((uint64_t)getpid() << 40);
		memcpy(r, &t, sizeof(r));
	}
	for (int i = 0; i < 8; i++)
		snprintf(h->instance + 2 * i, 3, "%02x", r[i]);
	snprintf(h->reply_prefix, sizeof(h->reply_prefix), "mqtt-web-bridge/reply/%s", h->instance);
	if (*cfg->client_id) {
		h->client_id = strdup(cfg->client_id);
	} else {
		char host[64] = "host", id[128];
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		snprintf(id, sizeof(id), "mqtt-web-bridge-%s-%ld", host, (long)getpid());
		h->client_id = strdup(id);
	}
	h->by_text = hmap_new();
	h->ring_cap = cfg->replay_events;
	h->ring_max_bytes = cfg->replay_bytes;
	h->headroom = cfg->headroom;
	if (h->ring_cap)
		h->ring = calloc(h->ring_cap, sizeof(*h->ring));
	h->next_sub_id = REPLY_SUB_ID + 1;
	if (!h->client_id || !h->by_text || (h->ring_cap && !h->ring))
		goto fail;
	lc.env = cfg->env;
	lc.client_id = h->client_id;
	lc.username = cfg->username;
	lc.password = cfg->password;
	lc.keepalive_s = cfg->keepalive_s;
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
	fail_all(h, HUB_DOWN);
	for (size_t i = 0; i < h->ring_count; i++)
		hub_event_unref(h->ring[(h->ring_head + i) % h->ring_cap]);
	free(h->ring);
	for (size_t i = 0; i < h->nfilters; i++) {
		free(h->filters[i]->text);
		free(h->filters[i]->subs);
		free(h->filters[i]);
	}
	free(h->filters);
	hmap_free(h->by_text);
	free(h->client_id);
	free(h);
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
	uint64_t now = mono_ms();

	link_tick(h->link);
	for (size_t i = 0; i < h->nfilters;) {
		struct filter *f = h->filters[i];
		if (!f->nsubs && f->idle_since_ms && now - f->idle_since_ms >= FILTER_LINGER_MS)
			filter_free(h, f); /* shifts the array: look at i again */
		else
			i++;
	}
}

void hub_get_stats(const struct hub *h, struct hub_stats *out)
{
	*out = h->stats;
	out->connected = link_is_up(h->link);
	out->reconnects = link_reconnects(h->link);
	out->filters = h->nfilters;
	out->subscribers = h->nsubs;
	out->pending = h->nreqs;
}

static struct filter *filter_get(struct hub *h, const char *text)
{
	size_t len = strlen(text);
	struct filter *f = hmap_get(h->by_text, text, len);

	if (f) {
		f->idle_since_ms = 0;
		return f;
	}
	if (h->nfilters == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct filter **more = realloc(h->filters, cap * sizeof(*more));
		if (!more)
			return NULL;
		h->filters = more;
		h->cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->text = strdup(text)) || hmap_put(h->by_text, text, len, f)) {
		if (f)
			free(f->text);
		free(f);
		return NULL;
	}
	f->len = len;
	f->sub_id = h->next_sub_id++;
	h->filters[h->nfilters++] = f;
	broker_subscribe(h, f->text, f->len, f->sub_id, MQTT_SUBSCRIBE);
	return f;
}

static void filter_free(struct hub *h, struct filter *f)
{
	broker_subscribe(h, f->text, f->len, f->sub_id, MQTT_UNSUBSCRIBE);
	hmap_remove(h->by_text, f->text, f->len);
	for (size_t i = 0; i < h->nfilters; i++) {
		if (h->filters[i] == f) {
			memmove(&h->filters[i], &h->filters[i + 1],
				(h->nfilters - i - 1) * sizeof(*h->filters));
			h->nfilters--;
			break;
		}
	}
	free(f->subs);
	free(f->text);
	free(f);
}

static void filter_drop_sub(struct hub *h, struct filter *f, struct hub_sub *s)
{
	(void)h;
	for (size_t i = 0; i < f->nsubs; i++) {
		if (f->subs[i] == s) {
			f->subs[i] = f->subs[--f->nsubs];
			break;
		}
	}
	/* The last stream left: the broker subscription lingers (FILTER_LINGER_MS). */
	if (!f->nsubs)
		f->idle_since_ms = mono_ms();
}

struct hub_sub *hub_subscribe(struct hub *h, const char *const *filters, size_t n,
			      hub_deliver_fn fn, void *user)
{
	struct hub_sub *s = calloc(1, sizeof(*s));

	if (!s || !(s->filters = calloc(n ? n : 1, sizeof(*s->filters)))) {
		free(s);
		return NULL;
	}
	s->fn = fn;
	s->user = user;
	s->last_seq = h->seq;
	h->nsubs++;
	for (size_t i = 0; i < n; i++) {
		struct filter *f = filter_get(h, filters[i]);
		bool dup = false;
		if (!f)
			goto fail;
		for (size_t j = 0; j < s->n; j++)
			dup |= s->filters[j] == f;
		if (dup)
			continue;
		if (f->nsubs == f->cap) {
			size_t cap = f->cap ? f->cap * 2 : 4;
			struct hub_sub **more = realloc(f->subs, cap * sizeof(*more));
			if (!more) {
				if (!f->nsubs)
					f->idle_since_ms = mono_ms();
				goto fail;
			}
			f->subs = more;
			f->cap = cap;
		}
		f->subs[f->nsubs++] = s;
		s->filters[s->n++] = f;
	}
	return s;
fail:
	hub_unsubscribe(h, s);
	return NULL;
}

void hub_unsubscribe(struct hub *h, struct hub_sub *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		filter_drop_sub(h, s->filters[i], s);
	h->nsubs--;
	free(s->filters);
	free(s);
}

static bool sub_matches(const struct hub_sub *s, const struct msg *m)
{
	for (size_t i = 0; i < s->n; i++) {
		if (topic_matches(s->filters[i]->text, s->filters[i]->len,
				  (const char *)m->topic.data, m->topic.len))
			return true;
	}
	return false;
}

int hub_replay(struct hub *h, struct hub_sub *s, const char *last_event_id)
{
	size_t ilen = strlen(h->instance);
	uint64_t after, oldest;
	char *end;
	int rc = 0;

	if (strncmp(last_event_id, h->instance, ilen) || last_event_id[ilen] != '-')
		return -ENOENT;
	errno = 0;
	after = strtoull(last_event_id + ilen + 1, &end, 10);
	if (errno || *end || end == last_event_id + ilen + 1 || after > h->seq)
		return -ENOENT;
	oldest = h->ring_count ? h->ring[h->ring_head]->seq : h->seq + 1;
	if (after + 1 < oldest)
		rc = -ERANGE;
	for (size_t i = 0; i < h->ring_count; i++) {
		struct hub_event *ev = h->ring[(h->ring_head + i) % h->ring_cap];
		if (ev->seq > after && sub_matches(s, ev->msg)) {
			s->fn(s->user, ev);
			h->stats.events_delivered++;
		}
	}
	return rc;
}

struct hub_req *hub_publish(struct hub *h, const char *topic, struct mqtt_bytes payload, int qos,
			    bool retain, struct mqtt_bytes props, hub_done_fn done, void *user)
{
	struct upstream *up = link_upstream(h->link);
	struct hub_req *r;
	int token;

	if (!up)
		return NULL;
	if (link_version(h->link) != MQTT_V5)
		props = (struct mqtt_bytes){NULL, 0};
	if (upstream_publish(up, topic, payload, qos, retain, props, &token))
		return NULL;
	r = add_req(h, REQ_PUBLISH, token, done, user);
	if (!r)
		log_msg(LOG_WARN, "hub", "publish-untracked reason=out-of-memory");
	return r;
}

struct hub_req *hub_request(struct hub *h, const char *topic, struct mqtt_bytes payload, int qos,
			    struct mqtt_bytes props, hub_done_fn done, void *user)
{
	struct upstream *up = link_upstream(h->link);
	static const uint8_t ours[] = {MQTT_PROP_RESPONSE_TOPIC, MQTT_PROP_CORRELATION_DATA};
	struct buf all = BUF_INIT;
	struct hub_req *r;
	char reply_topic[96];
	int token, rc;

	if (!up || link_version(h->link) != MQTT_V5)
		return NULL;
	r = add_req(h, REQ_REQUEST, 0, done, user);
	if (!r)
		return NULL;
	if (getrandom(r->correlation, CORRELATION_LEN, 0) != CORRELATION_LEN)
		goto fail;
	snprintf(reply_topic, sizeof(reply_topic), "%s/%02x%02x%02x%02x", h->reply_prefix,
		 r->correlation[0], r->correlation[1], r->correlation[2], r->correlation[3]);
	rc = props_copy_except(&all, props.data, props.len, ours, sizeof(ours));
	if (!rc)
		rc = props_put_bytes(&all, MQTT_PROP_RESPONSE_TOPIC, reply_topic, strlen(reply_topic));
	if (!rc)
		rc = props_put_bytes(&all, MQTT_PROP_CORRELATION_DATA, r->correlation,
				     CORRELATION_LEN);
	if (!rc)
		rc = upstream_publish(up, topic, payload, qos, false,
				      (struct mqtt_bytes){all.data, all.len}, &token);
	buf_clear(&all);
	if (rc)
		goto fail;
	r->token = token;
	return r;
fail:
	unlink_req(h, r);
	free(r);
	return NULL;
}

void hub_cancel(struct hub *h, struct hub_req *r)
{
	/* Until Paho has answered the publish, the request stays so that tokens still pair up;
	 * only its callback goes. */
	if (r->acked) {
		unlink_req(h, r);
		free(r);
		return;
	}
	r->done = NULL;
	r->user = NULL;
}
