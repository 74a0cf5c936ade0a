/* bridge/hub/hub_filter.c — the hub's filters: one broker subscription each, with its members. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "filtertree.h"
#include "hmap.h"
#include "hub_int.h"
#include "link.h"
#include "log.h"
#include "props.h"
#include "topic.h"

/* The first room for filters, a filter's members and its streams; each doubles when full. */
#define FILTERS_CAP_MIN 16
#define MEMBERS_CAP_MIN 4
#define SUBS_CAP_MIN    4

/* ---- subscriptions at the broker ---- */

uint64_t hub_filter_linger_ms(const struct hub_filter *f)
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
int hub_filter_subscribe(struct hub *h, struct hub_filter *f)
{
	struct upstream *up = link_upstream(h->link);
	struct buf entries = BUF_INIT, props = BUF_INIT;
	/* Over 3.1.x every filter asks QoS 2 from the start: a raise would replay the retained
	 * messages, and a broker may keep one queue per QoS (RabbitMQ 3.x does), so overlapping
	 * filters of different QoS would each bring a copy that no subscription id tells apart. */
	uint8_t qos = hub_version(h) == MQTT_V5 ? wanted_qos(f) : MQTT_QOS_MAX;
	int token, rc;

	if (f->token || !up || (f->active && f->up_qos >= qos))
		return 0;
	rc = codec_put_entry(&entries, MQTT_SUBSCRIBE, f->text, f->len, LIVE_OPTIONS | qos);
	if (!rc && hub_version(h) == MQTT_V5)
		rc = props_put_int(&props, MQTT_PROP_SUBSCRIPTION_ID, f->sub_id);
	if (!rc)
		rc = upstream_subscribe(up, MQTT_SUBSCRIBE,
					(struct mqtt_bytes){entries.data, entries.len}, 1,
					(struct mqtt_bytes){props.data, props.len}, &token);
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
void hub_filter_answered(struct hub *h, struct hub_filter *f, uint8_t code)
{
	uint8_t asked = f->asking_qos;

	f->token = 0;
	if (code < UPSTREAM_RC_FAILURE) {
		f->active = true;
		f->up_qos = asked;
		f->granted = code;
	} else {
		log_msg(LOG_INFO, "hub", "subscribe-refused filter_len=%zu code=0x%02x", f->len,
			code);
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
		if (code >= UPSTREAM_RC_FAILURE) {
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
			if (hub_filter_subscribe(h, f))
				hub_filter_answered(h, f, MQTT_RC_UNSPECIFIED);
			break;
		}
	}
}

struct hub_filter *hub_filter_by_token(struct hub *h, int token)
{
	for (size_t i = 0; i < h->nfilters; i++) {
		if (h->filters[i]->token == token)
			return h->filters[i];
	}
	return NULL;
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
		size_t cap = h->cap ? h->cap * 2 : FILTERS_CAP_MIN;
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

void hub_filter_free(struct hub *h, struct hub_filter *f)
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
		size_t cap = f->mcap ? f->mcap * 2 : MEMBERS_CAP_MIN;
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
	if (hub_filter_subscribe(h, f)) {
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
		if (hub_filter_subscribe(h, f))
			goto fail;
		for (size_t j = 0; j < s->n; j++)
			dup |= s->filters[j] == f;
		if (dup)
			continue;
		if (f->nsubs == f->cap) {
			size_t cap = f->cap ? f->cap * 2 : SUBS_CAP_MIN;
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
