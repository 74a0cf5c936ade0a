/*
 * bridge/hub/hub_message.c — a message from the broker: which filters it is for, one event for
 * every stream and receiver, the replay ring.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "clock.h"
#include "filtertree.h"
#include "hub_int.h"
#include "jsonmsg.h"
#include "link.h"
#include "log.h"
#include "props.h"
#include "retained.h"
#include "topic.h"

/* "<instance>-<seq>" */
#define EVENT_ID_SIZE 48
/* A first guess at an event's SSE text: the payload may double in JSON, plus the envelope. */
#define SSE_GROWTH   2
#define SSE_ENVELOPE 256

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
	char id[EVENT_ID_SIZE];
	int rc;

	snprintf(id, sizeof(id), "%s-%" PRIu64, h->instance, ev->seq);
	if (buf_reserve(&sse, h->headroom + ev->msg->payload.len * SSE_GROWTH + SSE_ENVELOPE))
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

/*
 * What the hub's own topics carry (barrier markers, request replies) and, over 3.1.x, retained
 * replays: taken care of here, and then @m is freed and true returned.
 */
static bool taken_early(struct hub *h, struct msg *m)
{
	bool any;

	if (m->topic.len == strlen(h->barrier_topic) &&
	    !memcmp(m->topic.data, h->barrier_topic, m->topic.len)) {
		barrier_seen(h->barrier, m->payload);
		free(m);
		return true;
	}
	if (has_sub_id(m, REPLY_SUB_ID, &any) || (!any && hub_version(h) != MQTT_V5)) {
		if (hub_req_reply(h, m) && any) {
			free(m);
			return true;
		}
	}
	/* Over 3.1.x RETAIN 1 marks only what a SUBSCRIBE of the link's sent (MQTT 3.1.1
	 * §3.3.1.3), never a live message: a replay that a new filter or a QoS raise brings.
	 * Browsers and streams get retained messages from their own reads. */
	if (m->retain && hub_version(h) != MQTT_V5) {
		free(m);
		return true;
	}
	return false;
}

/*
 * @ev to the streams (when @sse) and the members of the @n filters in h->matched; @internal
 * messages reach streams only.
 */
static void fan_out(struct hub *h, struct hub_event *ev, long n, bool sse, bool internal)
{
	struct hub_receiver *touched = NULL, *r;

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
}

void hub_message_in(struct hub *h, struct msg *m)
{
	struct hub_event *ev;
	bool internal, sse = false;
	long n;

	h->stats.messages_in++;
	if (taken_early(h, m))
		return;
	internal = markers_internal(m);
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
	fan_out(h, ev, n, sse, internal);
	if (ev->sse)
		ring_push(h, ev);
	hub_event_unref(ev);
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
