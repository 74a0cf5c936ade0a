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
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "barrier.h"
#include "clock.h"
#include "filtertree.h"
#include "hmap.h"
#include "jsonmsg.h"
#include "link.h"
#include "log.h"
#include "props.h"
#include "topic.h"

#define REPLY_SUB_ID 1
/* Topics of the bridge's own links: retained-read markers, request/response replies (and, under
 * the hub's reply prefix, its barrier markers). */
#define SYNC_PREFIX "mqtt-web-bridge/sync/"
#define REPLY_PREFIX "mqtt-web-bridge/reply/"
#define CORRELATION_LEN 16
/* Live subscriptions: retain as published, no retained messages on subscribe (streams ask for
 * those with ?retained=true, browsers get them through retained.h). */
#define LIVE_OPTIONS (MQTT_SUBOPT_RETAIN_AS_PUB | (2 << 4))
/* Streams want the publisher's QoS in their events. */
#define STREAM_QOS 2
/* A filter whose last stream left stays subscribed this long, so that a stream that reconnects
 * (EventSource retries after 2 s) finds what came in between in the replay ring. */
#define FILTER_LINGER_MS 60000
/* A filter only browsers used stays subscribed this long: a dashboard that reloads finds it. */
#define MEMBER_LINGER_MS 5000

struct hub_filter {
	char *text; /* as subscribed at the broker, "$share/G/F" included */
	size_t len;
	const char *match; /* what topics are matched against: F of a shared subscription */
	size_t match_len;
	bool shared;
	bool had_stream; /* events are formatted and kept for resume; the long linger applies */
	uint32_t sub_id;
	uint64_t idle_since_ms; /* 0 while a stream or member uses it */
	/* At the broker: the active subscription's QoS and grant, and the SUBSCRIBE in flight. */
	bool active;
	uint8_t up_qos;
	uint8_t granted;
	int token; /* 0: none in flight */
	uint8_t asking_qos;
	struct hub_sub **subs;
	size_t nsubs, cap;
	struct hub_member **members;
	size_t nmembers, mcap;
	size_t next_member; /* shared: the member the next message goes to */
};

struct hub_sub {
	hub_deliver_fn fn;
	void *user;
	struct hub_filter **filters;
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
	hub_ack_fn ack; /* instead of done, for tagged publishes */
	uint32_t tag;
	void *user;
};

struct hub {
	struct link *link;
	char instance[17];
	char *client_id;
	char reply_prefix[64];
	char barrier_topic[80]; /* under reply_prefix: the hub's own markers (barrier.h) */
	struct barrier *barrier;
	struct buf broker_props;
	/* The highest QoS the broker takes a publish at: its v5 CONNACK's Maximum QoS, or over
	 * 3.1.x what it grants a QoS 2 SUBSCRIBE (RabbitMQ 3.x grants 1, and answers a QoS 2
	 * PUBLISH with a PUBACK that Paho would wait past for ever). */
	uint8_t max_qos;
	int qos_probe; /* that SUBSCRIBE's token, until its SUBACK */
	void (*state_fn)(void *user, bool up);
	void *state_user;
	struct hmap *by_text;
	struct filtertree *tree; /* every filter, under what it matches */
	struct hub_filter **matched; /* scratch: the filters a message matched */
	size_t nmatched, matched_cap;
	struct hub_filter **filters;
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

void hub_event_ref(struct hub_event *ev)
{
	ev->refs++;
}

void hub_event_unref(struct hub_event *ev)
{
	if (!ev || --ev->refs)
		return;
	for (int i = 0; i < HUB_EVENT_ENCODINGS; i++)
		buf_clear(&ev->pub[i]);
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
	hub_ack_fn ack = r->ack;
	uint32_t tag = r->tag;
	void *user = r->user;

	unlink_req(h, r);
	free(r);
	if (done)
		done(user, status, reason, reply);
	else if (ack)
		ack(user, tag, status, reason);
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

static uint64_t filter_linger_ms(const struct hub_filter *f)
{
	return f->had_stream ? FILTER_LINGER_MS : MEMBER_LINGER_MS;
}

/* The QoS the broker subscription should have: the highest any stream or member asks for. */
static uint8_t wanted_qos(const struct hub_filter *f)
{
	uint8_t qos = f->nsubs || f->had_stream ? STREAM_QOS : 0;

	for (size_t i = 0; i < f->nmembers; i++)
		qos = f->members[i]->qos > qos ? f->members[i]->qos : qos;
	return qos;
}

/*
 * Subscribes @f at the broker when it is not, or at a lower QoS than wanted. One SUBSCRIBE at a
 * time per filter: its answer looks again. While the link is down nothing is sent: on_up()
 * restores every filter. -EIO when the SUBSCRIBE could not be made.
 */
static int filter_subscribe(struct hub *h, struct hub_filter *f)
{
	struct upstream *up = link_upstream(h->link);
	struct buf entries = BUF_INIT, props = BUF_INIT;
	/* Over 3.1.x every filter asks QoS 2 from the start: a raise would replay the retained
	 * messages, and a broker may keep one queue per QoS (RabbitMQ 3.x does), so overlapping
	 * filters of different QoS would each bring a copy that no subscription id tells apart. */
	uint8_t qos = hub_version(h) == MQTT_V5 ? wanted_qos(f) : 2;
	int token, rc;

	if (f->token || !up || (f->active && f->up_qos >= qos))
		return 0;
	rc = codec_put_entry(&entries, MQTT_SUBSCRIBE, f->text, f->len, LIVE_OPTIONS | qos);
	if (!rc && hub_version(h) == MQTT_V5)
		rc = props_put_int(&props, MQTT_PROP_SUBSCRIPTION_ID, f->sub_id);
	if (!rc)
		rc = upstream_subscribe(up, MQTT_SUBSCRIBE, (struct mqtt_bytes){entries.data, entries.len},
					1, (struct mqtt_bytes){props.data, props.len}, &token);
	buf_clear(&entries);
	buf_clear(&props);
	if (rc) {
		log_msg(LOG_WARN, "hub", "subscribe-failed rc=%d", rc);
		return -EIO;
	}
	f->token = token;
	f->asking_qos = qos;
	return 0;
}

static void filter_unsubscribe(struct hub *h, struct hub_filter *f)
{
	if (f->active || f->token)
		link_subscribe(h->link, MQTT_UNSUBSCRIBE, f->text, f->len, 0, 0, NULL);
}

static void remove_member(struct hub_filter *f, struct hub_member *m)
{
	size_t i = m->index;

	f->members[i] = f->members[--f->nmembers];
	f->members[i]->index = i;
	m->f = NULL;
	m->waiting = false;
	if (!f->nmembers && !f->nsubs)
		f->idle_since_ms = clock_mono_ms();
}

/*
 * The broker answered @f's SUBSCRIBE with @code. Members that waited for that QoS get their
 * grant one at a time: a receiver may leave or join filters from its callback, so the scan
 * starts again after each (the filter itself is freed only by hub_tick()).
 */
static void on_subscribed(struct hub *h, struct hub_filter *f, uint8_t code)
{
	uint8_t asked = f->asking_qos;

	f->token = 0;
	if (code < 0x80) {
		f->active = true;
		f->up_qos = asked;
		f->granted = code;
	} else {
		log_msg(LOG_INFO, "hub", "subscribe-refused filter_len=%zu code=0x%02x", f->len, code);
	}
	for (;;) {
		struct hub_member *m = NULL;
		uint8_t grant;
		for (size_t i = 0; i < f->nmembers && !m; i++) {
			if (f->members[i]->waiting && f->members[i]->qos <= asked)
				m = f->members[i];
		}
		if (!m)
			break;
		if (code >= 0x80) {
			grant = code;
			remove_member(f, m);
		} else {
			grant = m->qos < f->granted ? m->qos : f->granted;
			m->waiting = false;
		}
		m->rcv->granted(m->rcv, m, grant);
	}
	/* Someone asked for more meanwhile, or the answer was a refusal others still wait on. */
	for (size_t i = 0; i < f->nmembers; i++) {
		if (f->members[i]->waiting) {
			if (filter_subscribe(h, f))
				on_subscribed(h, f, MQTT_RC_UNSPECIFIED);
			break;
		}
	}
}

static void on_up(void *user, struct mqtt_bytes props)
{
	struct hub *h = user;
	char reply_filter[80];

	struct mqtt_prop max_qos;
	bool v5 = hub_version(h) == MQTT_V5;

	h->broker_props.len = 0;
	if (props.len && buf_append(&h->broker_props, props.data, props.len))
		h->broker_props.len = 0;
	h->max_qos = 2;
	if (props_find(props.data, props.len, MQTT_PROP_MAXIMUM_QOS, &max_qos) && max_qos.value < 2)
		h->max_qos = (uint8_t)max_qos.value;
	/* Replies come only over MQTT 5; over 3.1.x the same SUBSCRIBE asks QoS 2 to learn the
	 * broker's highest. */
	snprintf(reply_filter, sizeof(reply_filter), "%s/#", h->reply_prefix);
	h->qos_probe = 0;
	link_subscribe(h->link, MQTT_SUBSCRIBE, reply_filter, strlen(reply_filter), v5 ? 0 : 2,
		       REPLY_SUB_ID, v5 ? NULL : &h->qos_probe);
	for (size_t i = 0; i < h->nfilters; i++) {
		struct hub_filter *f = h->filters[i];
		f->active = false;
		f->token = 0;
		if (filter_subscribe(h, f))
			on_subscribed(h, f, MQTT_RC_UNSPECIFIED);
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
	fail_all(h, HUB_DOWN);
}

static void on_failed(void *user)
{
	struct hub *h = user;

	if (h->state_fn)
		h->state_fn(h->state_user, false);
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

static struct hub_event *event_new(struct hub *h, struct msg *m)
{
	struct hub_event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	ev->refs = 1;
	ev->seq = ++h->seq;
	ev->ts_ms = clock_wall_ms();
	ev->msg = m;
	return ev;
}

/*
 * The SSE text of @ev, made when a stream's filter matched. The writer's room comes first, so
 * every stream writes the one copy in place. Live events say retain false, as a subscription
 * without retain-as-published would; over 3.1.1 (no such option) the flag is what came.
 */
static int event_format_sse(struct hub *h, struct hub_event *ev)
{
	struct buf sse = BUF_INIT;
	bool retain = ev->msg->retain;
	char id[48];
	int rc;

	snprintf(id, sizeof(id), "%s-%" PRIu64, h->instance, ev->seq);
	if (buf_reserve(&sse, h->headroom + ev->msg->payload.len * 2 + 256))
		return -ENOMEM;
	memset(sse.data, 0, h->headroom);
	sse.len = h->headroom;
	if (hub_version(h) == MQTT_V5)
		ev->msg->retain = false;
	rc = jsonmsg_sse(&sse, id, ev->msg, ev->ts_ms);
	ev->msg->retain = retain;
	if (rc) {
		buf_clear(&sse);
		return rc;
	}
	ev->block = buf_steal(&sse, &ev->sse_len);
	ev->sse = (char *)ev->block + h->headroom;
	ev->sse_len -= h->headroom;
	return 0;
}

static bool filter_matches(const struct hub_filter *f, const struct msg *m)
{
	return topic_matches(f->match, f->match_len, (const char *)m->topic.data, m->topic.len);
}

/*
 * Which filters a message is for, into h->matched: the non-shared ones that match when this is
 * the copy of the one chosen among them (or the broker sends none: 3.1.1), and the shared
 * subscription whose identifier it carries. The copy chosen is that of the subscription with
 * the highest QoS at the broker, the oldest among equals: it carries the message at the QoS
 * every receiver may get, and the broker surely sends it (the SUBACK came first). Returns how
 * many; -ENOMEM.
 */
static void collect(void *value, void *user)
{
	struct hub *h = user;

	if (h->nmatched < h->matched_cap)
		h->matched[h->nmatched++] = value;
}

static long match_filters(struct hub *h, const struct msg *m)
{
	uint32_t lowest = UINT32_MAX;
	int best = -1;
	bool any, normal;
	size_t n = 0;

	/* No more can match than there are filters. */
	if (h->matched_cap < h->nfilters) {
		struct hub_filter **more = realloc(h->matched, h->nfilters * sizeof(*more));
		if (!more)
			return -ENOMEM;
		h->matched = more;
		h->matched_cap = h->nfilters;
	}
	h->nmatched = 0;
	if (filtertree_match(h->tree, (const char *)m->topic.data, m->topic.len, collect, h))
		return -ENOMEM;
	for (size_t i = 0; i < h->nmatched; i++) {
		struct hub_filter *f = h->matched[i];
		int rank = f->active ? f->granted : -1;
		if (!f->shared && (rank > best || (rank == best && f->sub_id < lowest))) {
			best = rank;
			lowest = f->sub_id;
		}
	}
	has_sub_id(m, 0, &any);
	normal = lowest != UINT32_MAX && (!any || has_sub_id(m, lowest, &any));
	for (size_t i = 0; i < h->nmatched; i++) {
		struct hub_filter *f = h->matched[i];
		if (f->shared ? (any ? has_sub_id(m, f->sub_id, &any) : !normal && !n) : normal)
			h->matched[n++] = f;
	}
	return (long)n;
}

static bool has_prefix(const struct msg *m, const char *prefix)
{
	size_t len = strlen(prefix);

	return m->topic.len > len && !memcmp(m->topic.data, prefix, len);
}

/* The hub's own subscription identifiers are nobody else's business: they go, in place. */
static void strip_sub_ids(struct msg *m)
{
	static const uint8_t drop[] = {MQTT_PROP_SUBSCRIPTION_ID};
	struct buf kept = BUF_INIT;
	bool any;

	has_sub_id(m, 0, &any);
	if (!any)
		return;
	if (!props_copy_except(&kept, m->props.data, m->props.len, drop, sizeof(drop))) {
		if (kept.len)
			memcpy((uint8_t *)m->props.data, kept.data, kept.len);
		m->props.len = kept.len;
	}
	buf_clear(&kept);
}

/* Chains @m onto its receiver's matches for the event @seq; the first touch lists it. */
static void touch(struct hub_member *m, uint64_t seq, struct hub_receiver **touched)
{
	struct hub_receiver *r = m->rcv;

	if (r->seq != seq) {
		r->seq = seq;
		r->matches = NULL;
		r->next_touched = *touched;
		*touched = r;
	}
	m->next_match = r->matches;
	r->matches = m;
}

/* The next member of a shared subscription that is not waiting for its SUBACK, or NULL. */
static struct hub_member *next_member(struct hub_filter *f)
{
	for (size_t tries = 0; tries < f->nmembers; tries++) {
		struct hub_member *m = f->members[f->next_member++ % f->nmembers];
		if (!m->waiting)
			return m;
	}
	return NULL;
}

static void on_message(struct hub *h, struct msg *m)
{
	struct hub_receiver *touched = NULL, *r;
	struct hub_event *ev;
	bool any, internal, sse = false;
	long n;

	h->stats.messages_in++;
	if (m->topic.len == strlen(h->barrier_topic) &&
	    !memcmp(m->topic.data, h->barrier_topic, m->topic.len)) {
		barrier_seen(h->barrier, m->payload);
		free(m);
		return;
	}
	if (has_sub_id(m, REPLY_SUB_ID, &any) || (!any && hub_version(h) != MQTT_V5)) {
		if (on_reply(h, m) && any) {
			free(m);
			return;
		}
	}
	/* Over 3.1.x RETAIN 1 marks only what a SUBSCRIBE of the link's sent (MQTT 3.1.1
	 * §3.3.1.3), never a live message: a replay that a new filter or a QoS raise brings.
	 * Browsers and streams get retained messages from their own reads. */
	if (m->retain && hub_version(h) != MQTT_V5) {
		free(m);
		return;
	}
	internal = has_prefix(m, SYNC_PREFIX) || has_prefix(m, REPLY_PREFIX);
	n = match_filters(h, m);
	/* No one wants it (any more), or it is another subscription's copy of it. */
	if (n <= 0) {
		if (n < 0)
			log_msg(LOG_WARN, "hub", "message-dropped reason=out-of-memory");
		free(m);
		return;
	}
	strip_sub_ids(m);
	ev = event_new(h, m);
	if (!ev) {
		log_msg(LOG_WARN, "hub", "event-dropped reason=out-of-memory");
		free(m);
		return;
	}
	for (long i = 0; i < n; i++)
		sse |= h->matched[i]->nsubs || h->matched[i]->had_stream;
	if (sse && event_format_sse(h, ev)) {
		log_msg(LOG_WARN, "hub", "event-unformatted reason=out-of-memory");
		sse = false;
	}
	for (long i = 0; i < n; i++) {
		struct hub_filter *f = h->matched[i];
		for (size_t j = 0; sse && j < f->nsubs; j++) {
			struct hub_sub *s = f->subs[j];
			if (s->last_seq == ev->seq)
				continue;
			s->last_seq = ev->seq;
			h->stats.events_delivered++;
			s->fn(s->user, ev);
		}
		/* The bridge's own plumbing (retained-read markers, request replies) is not
		 * browsers' to see. */
		if (internal)
			continue;
		if (f->shared) {
			struct hub_member *mb = next_member(f);
			if (mb)
				touch(mb, ev->seq, &touched);
			continue;
		}
		for (size_t j = 0; j < f->nmembers; j++) {
			if (!f->members[j]->waiting)
				touch(f->members[j], ev->seq, &touched);
		}
	}
	/* A receiver's callback may change filters and members, never another receiver's chain. */
	while ((r = touched)) {
		touched = r->next_touched;
		h->stats.mqtt_deliveries++;
		r->deliver(r, ev, r->matches);
	}
	if (ev->sse)
		ring_push(h, ev);
	hub_event_unref(ev);
}

static struct hub_filter *find_subscribing(struct hub *h, int token)
{
	for (size_t i = 0; i < h->nfilters; i++) {
		if (h->filters[i]->token == token)
			return h->filters[i];
	}
	return NULL;
}

static void on_done(struct hub *h, struct upstream_event *ev)
{
	struct hub_req *r = find_by_token(h, ev->token);
	struct hub_filter *f;

	if (h->qos_probe && ev->token == h->qos_probe) {
		h->qos_probe = 0;
		if (!ev->failed && ev->codes.len == 1 && ev->codes.data[0] < h->max_qos) {
			h->max_qos = ev->codes.data[0];
			log_msg(LOG_INFO, "hub", "broker-max-qos qos=%u", h->max_qos);
		}
		return;
	}
	if (!r && ev->token && (f = find_subscribing(h, ev->token))) {
		on_subscribed(h, f, ev->failed || ev->codes.len != 1 ? MQTT_RC_UNSPECIFIED
								    : ev->codes.data[0]);
		return;
	}
	if (!r)
		return;
	if (ev->failed) {
		finish_req(h, r, HUB_DOWN, 0, NULL);
	} else if (ev->code >= 0x80) {
		finish_req(h, r, HUB_REFUSED, ev->code, NULL);
	} else if (r->kind == REQ_PUBLISH || (!r->done && !r->ack)) {
		h->stats.publishes += r->kind == REQ_PUBLISH && !r->ack;
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

static void filter_free(struct hub *h, struct hub_filter *f);

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
	static const struct link_ops ops = {on_up, on_down, on_failed, on_event};
	struct link_config lc;
	struct hub *h = calloc(1, sizeof(*h));
	uint8_t r[8];

	if (!h)
		return NULL;
	/* Without entropy, the pid and the time still tell instances apart. */
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		uint64_t t = clock_wall_ms() ^ ((uint64_t)getpid() << 40);
		memcpy(r, &t, sizeof(r));
	}
	for (int i = 0; i < 8; i++)
		snprintf(h->instance + 2 * i, 3, "%02x", r[i]);
	snprintf(h->reply_prefix, sizeof(h->reply_prefix), REPLY_PREFIX "%s", h->instance);
	snprintf(h->barrier_topic, sizeof(h->barrier_topic), "%s/barrier", h->reply_prefix);
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
	return link_is_up(h->link) ? h->max_qos : 2;
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
		    now - f->idle_since_ms >= filter_linger_ms(f))
			filter_free(h, f); /* shifts the array: look at i again */
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

/* The filter @text[0..len), made (and subscribed at the broker) when new. */
static struct hub_filter *filter_get(struct hub *h, const char *text, size_t len)
{
	struct hub_filter *f = hmap_get(h->by_text, text, len);

	if (f) {
		f->idle_since_ms = 0;
		return f;
	}
	if (h->nfilters == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct hub_filter **more = realloc(h->filters, cap * sizeof(*more));
		if (!more)
			return NULL;
		h->filters = more;
		h->cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->text = strndup(text, len)))
		goto fail;
	f->len = len;
	f->shared = topic_filter_is_shared(f->text, len, &f->match, &f->match_len);
	if (!f->shared) {
		f->match = f->text;
		f->match_len = len;
	}
	if (hmap_put(h->by_text, f->text, len, f))
		goto fail;
	if (filtertree_add(h->tree, f->match, f->match_len, f)) {
		hmap_remove(h->by_text, f->text, len);
		goto fail;
	}
	f->sub_id = h->next_sub_id++;
	h->filters[h->nfilters++] = f;
	return f;
fail:
	if (f)
		free(f->text);
	free(f);
	return NULL;
}

static void filter_free(struct hub *h, struct hub_filter *f)
{
	filter_unsubscribe(h, f);
	hmap_remove(h->by_text, f->text, f->len);
	filtertree_remove(h->tree, f->match, f->match_len, f);
	for (size_t i = 0; i < h->nfilters; i++) {
		if (h->filters[i] == f) {
			memmove(&h->filters[i], &h->filters[i + 1],
				(h->nfilters - i - 1) * sizeof(*h->filters));
			h->nfilters--;
			break;
		}
	}
	free(f->subs);
	free(f->members);
	free(f->text);
	free(f);
}

static void filter_drop_sub(struct hub *h, struct hub_filter *f, struct hub_sub *s)
{
	(void)h;
	for (size_t i = 0; i < f->nsubs; i++) {
		if (f->subs[i] == s) {
			f->subs[i] = f->subs[--f->nsubs];
			break;
		}
	}
	/* The last stream left: the broker subscription lingers (FILTER_LINGER_MS). */
	if (!f->nsubs && !f->nmembers)
		f->idle_since_ms = clock_mono_ms();
}

int hub_join(struct hub *h, struct hub_member *m, const char *filter, size_t len)
{
	struct hub_filter *f;

	if (!link_is_up(h->link))
		return -ENOTCONN;
	f = filter_get(h, filter, len);
	if (!f)
		return -ENOMEM;
	if (f->nmembers == f->mcap) {
		size_t cap = f->mcap ? f->mcap * 2 : 4;
		struct hub_member **more = realloc(f->members, cap * sizeof(*more));
		if (!more) {
			if (!f->nmembers && !f->nsubs)
				f->idle_since_ms = clock_mono_ms();
			return -ENOMEM;
		}
		f->members = more;
		f->mcap = cap;
	}
	m->f = f;
	m->index = f->nmembers;
	m->waiting = false;
	m->next_match = NULL;
	f->members[f->nmembers++] = m;
	if (f->active && f->up_qos >= m->qos)
		return m->qos < f->granted ? m->qos : f->granted;
	m->waiting = true;
	if (filter_subscribe(h, f)) {
		remove_member(f, m);
		return -EIO;
	}
	return HUB_JOIN_WAIT;
}

void hub_leave(struct hub *h, struct hub_member *m)
{
	(void)h;
	if (m->f)
		remove_member(m->f, m);
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
		struct hub_filter *f = filter_get(h, filters[i], strlen(filters[i]));
		bool dup = false;
		if (!f)
			goto fail;
		f->had_stream = true;
		if (filter_subscribe(h, f))
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
					f->idle_since_ms = clock_mono_ms();
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
		if (filter_matches(s->filters[i], m))
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

/* What of a publish's v5 @props the broker link carries: all, or over 3.1.x none (counted). */
static struct mqtt_bytes broker_props(struct hub *h, struct mqtt_bytes props)
{
	if (hub_version(h) == MQTT_V5 || !props.len)
		return props;
	h->stats.props_dropped++;
	return (struct mqtt_bytes){NULL, 0};
}

struct hub_req *hub_publish(struct hub *h, const char *topic, struct mqtt_bytes payload, int qos,
			    bool retain, struct mqtt_bytes props, hub_done_fn done, void *user)
{
	struct upstream *up = link_upstream(h->link);
	struct hub_req *r;
	int token;

	if (!up)
		return NULL;
	if (qos > h->max_qos)
		qos = h->max_qos;
	if (upstream_publish(up, topic, payload, qos, retain, broker_props(h, props), &token))
		return NULL;
	r = add_req(h, REQ_PUBLISH, token, done, user);
	if (!r)
		log_msg(LOG_WARN, "hub", "publish-untracked reason=out-of-memory");
	return r;
}

int hub_publish_qos0(struct hub *h, const char *topic, struct mqtt_bytes payload, bool retain,
		     struct mqtt_bytes props)
{
	struct upstream *up = link_upstream(h->link);

	if (!up)
		return -ENOTCONN;
	return upstream_publish(up, topic, payload, 0, retain, broker_props(h, props), NULL);
}

struct hub_req *hub_publish_tagged(struct hub *h, const char *topic, struct mqtt_bytes payload,
				   int qos, bool retain, struct mqtt_bytes props, hub_ack_fn ack,
				   void *user, uint32_t tag)
{
	struct hub_req *r = hub_publish(h, topic, payload, qos, retain, props, NULL, user);

	if (r) {
		r->ack = ack;
		r->tag = tag;
	}
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
	r->ack = NULL;
	r->user = NULL;
}
