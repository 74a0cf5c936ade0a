/* bridge/hub/retained.c — retained reads: subscribe with an identifier, then wait for the marker. */
#include "retained.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "codec.h"
#include "link.h"
#include "log.h"
#include "markers.h"
#include "props.h"
#include "topic.h"

#define SYNC_SUB_ID 1
/* A Subscription Identifier is a variable byte integer: no larger than a remaining length. */
#define SUB_ID_MAX MQTT_MAX_REMAINING_LENGTH
/* QoS 2 so the envelope shows the QoS the message was retained with; send retained. */
#define READ_OPTIONS MQTT_QOS_MAX
/* The sync topic is RETAINED_SYNC_PREFIX and this many random bytes in hex. */
#define SYNC_RANDOM_BYTES 8
#define SYNC_TOPIC_SIZE   64
/* Two hex digits and their NUL. */
#define HEX_BYTE_SIZE 3
_Static_assert(sizeof RETAINED_SYNC_PREFIX + 2 * SYNC_RANDOM_BYTES <= SYNC_TOPIC_SIZE,
	       "the sync topic fits");
/* The first room for a read's messages; it doubles when full. */
#define MSGS_CAP_MIN 16
/* Reads ended by one marker leave in UNSUBSCRIBEs of at most this many filters each. */
#define UNSUB_BATCH 64

struct fetch {
	struct fetch *next;
	char *filter;
	size_t len;
	uint32_t sub_id;
	uint64_t seq;    /* when its SUBSCRIBE went out: retained_mark() */
	uint64_t marker; /* the marker that ends it; 0 until one went out behind its SUBSCRIBE */
	int sync_token;  /* the UNSUBSCRIBE that ends a read whose marker was refused */
	bool unsubscribed;
	bool ending;     /* its waiters are being answered: fetch_end() frees it, nothing else */
	bool overlapped; /* 3.1.x: took a copy another read's SUBSCRIBE brought too */
	struct msg **msgs;
	size_t n, cap, bytes;
	bool truncated;
	struct retained_req *waiters;
};

struct retained_req {
	struct retained_req *next;
	struct fetch *fetch;
	size_t limit;
	retained_fn fn;
	void *user;
};

struct retained {
	struct link *link;
	char sync_topic[SYNC_TOPIC_SIZE];
	uint32_t next_sub_id;
	uint64_t next_seq, next_marker;
	/* One marker at a time: reads that start while it is out share the next one. Under a burst
	 * of subscribes that is one marker for many reads, not a QoS 2 round trip each. */
	uint64_t marker_out;
	int marker_token; /* its publish, until Paho answers it */
	/* Markers go at the QoS the broker grants the sync topic's SUBSCRIBE (QoS 2 asked; a
	 * broker without QoS 2 grants 1), and only once that SUBACK is in. */
	uint8_t marker_qos;
	int sync_probe;
	struct fetch *fetches;
	size_t max_messages, max_bytes;
};

static int cmp_topic(const void *a, const void *b)
{
	const struct msg *x = *(struct msg *const *)a, *y = *(struct msg *const *)b;
	size_t n = x->topic.len < y->topic.len ? x->topic.len : y->topic.len;
	int c = memcmp(x->topic.data, y->topic.data, n);

	return c ? c : (x->topic.len > y->topic.len) - (x->topic.len < y->topic.len);
}

static void answer(struct retained_req *q, bool ok, bool complete)
{
	struct fetch *f = q->fetch;
	size_t n = f->n < q->limit ? f->n : q->limit;

	if (f->n > 1)
		qsort(f->msgs, f->n, sizeof(*f->msgs), cmp_topic);
	q->fn(q->user, ok, complete && !f->truncated && n == f->n, f->msgs, n);
}

static void request(struct retained *r, enum mqtt_type type, const char *filter, size_t len,
		    uint32_t sub_id)
{
	link_subscribe(r->link, type, filter, len, READ_OPTIONS, sub_id, NULL);
}

static void fetch_free(struct retained *r, struct fetch *f)
{
	struct fetch **pp = &r->fetches;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	if (!f->unsubscribed)
		request(r, MQTT_UNSUBSCRIBE, f->filter, f->len, 0);
	for (size_t i = 0; i < f->n; i++)
		free(f->msgs[i]);
	free(f->msgs);
	free(f->filter);
	free(f);
}

/* Answers every waiter of @f and frees it. */
static void fetch_end(struct retained *r, struct fetch *f, bool ok, bool complete)
{
	struct retained_req *q;

	/* An answer may cancel the other waiters (a session that closes ends all its reads):
	 * each is unlinked before its callback, and the fetch outlives them all. */
	f->ending = true;
	while ((q = f->waiters)) {
		f->waiters = q->next;
		answer(q, ok, complete);
		free(q);
	}
	fetch_free(r, f);
}

static void on_up(void *user, struct mqtt_bytes props)
{
	struct retained *r = user;

	(void)props;
	r->marker_qos = MQTT_QOS_MAX;
	r->sync_probe = 0;
	if (link_subscribe(r->link, MQTT_SUBSCRIBE, r->sync_topic, strlen(r->sync_topic),
			   READ_OPTIONS, SYNC_SUB_ID, &r->sync_probe))
		r->sync_probe = 0;
}

static void on_down(void *user)
{
	struct retained *r = user;

	r->marker_out = 0;
	r->marker_token = 0;
	while (r->fetches)
		fetch_end(r, r->fetches, false, false);
}

/* Publishes the marker that ends every read whose SUBSCRIBE went out without one yet. */
static void send_marker(struct retained *r)
{
	struct upstream *up = link_upstream(r->link);
	uint64_t marker = r->next_marker + 1;
	bool any = false;
	int token;

	for (struct fetch *f = r->fetches; f; f = f->next)
		any |= !f->marker && !f->unsubscribed;
	if (!any || !up || r->sync_probe)
		return;
	/* QoS 2 (or the broker's highest) like the subscriptions, so it queues behind the retained
	 * messages a broker holds back for its in-flight window (a QoS 0 marker would overtake
	 * them). */
	if (upstream_publish(up, r->sync_topic,
			     (struct mqtt_bytes){(const uint8_t *)&marker, sizeof(marker)},
			     r->marker_qos, false, (struct mqtt_bytes){NULL, 0}, &token)) {
		log_msg(LOG_WARN, "retained", "marker-failed");
		return; /* the next read to start tries again */
	}
	r->next_marker = marker;
	r->marker_out = marker;
	r->marker_token = token;
	for (struct fetch *f = r->fetches; f; f = f->next)
		if (!f->marker && !f->unsubscribed)
			f->marker = marker;
}

static void unsubscribe_batch(struct retained *r, struct buf *entries, size_t count)
{
	struct upstream *up = link_upstream(r->link);
	int token;

	if (!up || upstream_subscribe(up, MQTT_UNSUBSCRIBE,
				      (struct mqtt_bytes){entries->data, entries->len}, count,
				      (struct mqtt_bytes){NULL, 0}, &token))
		log_msg(LOG_WARN, "retained", "unsubscribe-failed count=%zu", count);
	buf_clear(entries);
}

/* Ends the reads of @upto and every marker before it: one UNSUBSCRIBE for many filters. */
static void markers_back(struct retained *r, uint64_t upto)
{
	struct fetch *done = NULL, **pp = &r->fetches;
	struct buf entries = BUF_INIT;
	size_t count = 0;

	while (*pp) {
		struct fetch *f = *pp;
		if (f->marker && f->marker <= upto) {
			*pp = f->next;
			f->next = done;
			f->ending = true; /* no answer before them may free them */
			done = f;
		} else {
			pp = &f->next;
		}
	}
	if (upto >= r->marker_out)
		r->marker_out = r->marker_token = 0;
	/* The UNSUBSCRIBEs go before the answers: an answer may start a read of the same filter,
	 * whose SUBSCRIBE must come after them. */
	for (struct fetch *f = done; f; f = f->next) {
		if (f->unsubscribed)
			continue;
		f->unsubscribed =
		    !codec_put_entry(&entries, MQTT_UNSUBSCRIBE, f->filter, f->len, 0);
		count += f->unsubscribed;
		if (count == UNSUB_BATCH) {
			unsubscribe_batch(r, &entries, count);
			count = 0;
		}
	}
	if (count)
		unsubscribe_batch(r, &entries, count);
	buf_clear(&entries);
	while (done) {
		struct fetch *f = done;
		done = f->next;
		fetch_end(r, f, true,
			  true); /* no longer listed: fetch_free finds nothing to unlink */
	}
	if (!r->marker_out)
		send_marker(r);
}

/* Takes @m into @f's answer; with @one_per_topic in place of an earlier copy of its topic
 * (3.1.x brokers send one per overlapping SUBSCRIBE). */
static void fetch_add(struct retained *r, struct fetch *f, struct msg *m, bool one_per_topic)
{
	for (size_t i = 0; one_per_topic && i < f->n; i++) {
		struct msg *old = f->msgs[i];
		if (old->topic.len == m->topic.len &&
		    !memcmp(old->topic.data, m->topic.data, m->topic.len)) {
			f->bytes -= old->size;
			free(old);
			f->msgs[i] = f->msgs[--f->n]; /* the answer is sorted by topic at the end */
			break;
		}
	}
	if (f->n >= r->max_messages || m->size > r->max_bytes - f->bytes) {
		f->truncated = true;
		free(m);
		return;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : MSGS_CAP_MIN;
		struct msg **more = realloc(f->msgs, cap * sizeof(*more));
		if (!more) {
			f->truncated = true;
			free(m);
			return;
		}
		f->msgs = more;
		f->cap = cap;
	}
	m->next = NULL;
	f->msgs[f->n++] = m;
	f->bytes += m->size;
}

static bool fetch_matches(const struct fetch *f, const struct msg *m)
{
	return topic_matches(f->filter, f->len, (const char *)m->topic.data, m->topic.len);
}

static uint32_t first_sub_id(const struct msg *m)
{
	struct mqtt_prop p;

	return props_find(m->props.data, m->props.len, MQTT_PROP_SUBSCRIPTION_ID, &p) ? p.value : 0;
}

static void on_message(void *user, struct msg *m)
{
	struct retained *r = user;
	uint32_t sub_id = first_sub_id(m);
	struct fetch *f;

	if (m->topic.len == strlen(r->sync_topic) &&
	    !memcmp(m->topic.data, r->sync_topic, m->topic.len)) {
		uint64_t marker = 0;
		if (m->payload.len == sizeof(marker))
			memcpy(&marker, m->payload.data, sizeof(marker));
		free(m);
		if (marker && marker <= r->next_marker)
			markers_back(r, marker);
		return;
	}
	/* Only what the broker keeps: live messages on the filter are not part of a read. */
	if (!m->retain) {
		free(m);
		return;
	}
	if (sub_id) {
		for (f = r->fetches; f && f->sub_id != sub_id; f = f->next)
			;
		if (f)
			fetch_add(r, f, m, false);
		else
			free(m);
		return;
	}
	/* 3.1.x: no identifier says which SUBSCRIBE sent it, so every read it matches takes it.
	 * A read that ever shared a copy so may get a topic twice (its own SUBSCRIBE's copy may
	 * come before or after): from then on it keeps one per topic. */
	size_t matching = 0;
	for (f = r->fetches; f; f = f->next)
		matching += fetch_matches(f, m);
	bool several = matching > 1;
	for (f = r->fetches; f && matching; f = f->next) {
		if (!fetch_matches(f, m))
			continue;
		struct msg *copy = --matching ? msg_dup(m) : m;
		f->overlapped |= several;
		if (copy)
			fetch_add(r, f, copy, f->overlapped);
		else
			f->truncated = true;
		if (copy == m)
			return;
	}
	free(m);
}

/*
 * A broker whose ACL refuses the marker (its PUBREC says so) still answered in order: the
 * retained messages went out before that PUBREC, and Paho acknowledged them before it saw it.
 * An UNSUBSCRIBE sent now is answered after the broker has released them, so its UNSUBACK
 * ends the read instead of the marker.
 */
static void on_done(void *user, const struct upstream_event *ev)
{
	struct retained *r = user;
	struct fetch *f;

	if (r->sync_probe && ev->token == r->sync_probe) {
		r->sync_probe = 0;
		if (!ev->failed && ev->codes.len == 1 && ev->codes.data[0] < r->marker_qos)
			r->marker_qos = ev->codes.data[0];
		send_marker(r);
		return;
	}
	for (f = r->fetches; f; f = f->next) {
		if (f->sync_token && f->sync_token == ev->token) {
			fetch_end(r, f, true, true);
			return;
		}
	}
	if (!r->marker_token || r->marker_token != ev->token)
		return;
	r->marker_token = 0;
	if (!ev->failed && ev->code < UPSTREAM_RC_FAILURE)
		return; /* the marker itself will come back */
	log_msg(LOG_DEBUG, "retained", "marker-refused code=0x%02x sync=unsubscribe", ev->code);
	for (f = r->fetches; f; f = f->next) {
		if (f->marker != r->marker_out || f->unsubscribed)
			continue;
		if (link_subscribe(r->link, MQTT_UNSUBSCRIBE, f->filter, f->len, 0, 0,
				   &f->sync_token))
			f->sync_token = 0;
		else
			f->unsubscribed = true;
	}
	r->marker_out = 0;
	send_marker(r);
}

struct retained *retained_new(const struct retained_config *cfg)
{
	static const struct link_ops ops = {on_up, on_down, NULL, on_message, on_done};
	struct link_config lc = cfg->link;
	struct retained *r = calloc(1, sizeof(*r));
	uint8_t rnd[SYNC_RANDOM_BYTES] = {0};
	size_t used;

	if (!r)
		return NULL;
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd[0] = (uint8_t)getpid();
	used = (size_t)snprintf(r->sync_topic, sizeof(r->sync_topic), RETAINED_SYNC_PREFIX);
	for (size_t i = 0; i < SYNC_RANDOM_BYTES; i++, used += 2)
		snprintf(r->sync_topic + used, HEX_BYTE_SIZE, "%02x", rnd[i]);
	r->next_sub_id = SYNC_SUB_ID + 1;
	r->max_messages = cfg->max_messages;
	r->max_bytes = cfg->max_bytes;
	lc.name = "retained";
	r->link = link_new(&lc, &ops, r);
	if (!r->link) {
		free(r);
		return NULL;
	}
	return r;
}

void retained_free(struct retained *r)
{
	if (!r)
		return;
	while (r->fetches)
		fetch_end(r, r->fetches, false, false);
	link_free(r->link);
	free(r);
}

bool retained_connected(const struct retained *r)
{
	return link_is_up(r->link);
}

void retained_tick(struct retained *r)
{
	link_tick(r->link);
}

static struct fetch *fetch_start(struct retained *r, const char *filter)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (!f || !(f->filter = strdup(filter))) {
		free(f);
		return NULL;
	}
	f->len = strlen(filter);
	f->sub_id = r->next_sub_id;
	r->next_sub_id = r->next_sub_id == SUB_ID_MAX ? SYNC_SUB_ID + 1 : r->next_sub_id + 1;
	f->seq = ++r->next_seq;
	f->next = r->fetches;
	r->fetches = f;
	/* Its marker goes out behind the SUBSCRIBE on the same connection: now, or when the one
	 * out comes back. */
	request(r, MQTT_SUBSCRIBE, f->filter, f->len, f->sub_id);
	if (!r->marker_out)
		send_marker(r);
	return f;
}

uint64_t retained_mark(const struct retained *r)
{
	return r->next_seq;
}

struct retained_req *retained_get(struct retained *r, const char *filter, size_t limit,
				  uint64_t since, retained_fn fn, void *user)
{
	struct retained_req *q;
	struct fetch *f;

	if (!link_upstream(r->link))
		return NULL;
	for (f = r->fetches; f && (f->ending || f->seq <= since || strcmp(f->filter, filter));
	     f = f->next)
		;
	if (!f && !(f = fetch_start(r, filter)))
		return NULL;
	q = calloc(1, sizeof(*q));
	if (!q) {
		if (!f->waiters)
			fetch_free(r, f);
		return NULL;
	}
	q->fetch = f;
	q->limit = limit;
	q->fn = fn;
	q->user = user;
	q->next = f->waiters;
	f->waiters = q;
	return q;
}

static void unlink_waiter(struct retained *r, struct retained_req *q)
{
	struct fetch *f = q->fetch;
	struct retained_req **pp = &f->waiters;

	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (*pp)
		*pp = q->next;
	free(q);
	/* Nobody waits any more: a marker that never comes must not keep it forever. */
	if (!f->waiters && !f->ending)
		fetch_free(r, f);
}

void retained_finish(struct retained *r, struct retained_req *q)
{
	answer(q, true, false);
	unlink_waiter(r, q);
}

void retained_cancel(struct retained *r, struct retained_req *q)
{
	unlink_waiter(r, q);
}
