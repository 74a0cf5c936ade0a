/*
 * bridge/session/shared_retained.c — retained messages on subscribe for a shared browser.
 *
 * Retained messages come from retained.h after the SUBACK, for that browser only. Until they
 * have come, live messages for the browser wait in order (s->held_msgs): so a retained message
 * never follows a live one. When a held live message set a topic's retained value meanwhile, that
 * one goes with RETAIN=1 in place of the older value the read found (over 3.1.x, any held live
 * message of that topic: none says, see may_have_set_retained()).
 */
#include "shared.h"
#include "shared_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "retained.h"

/* Retained messages a subscription may wait for, and how many it gets. */
#define RETAINED_WAIT_MS 5000
#define RETAINED_LIMIT   10000

/* ---- retained messages on subscribe ---- */

/*
 * A live message waiting for this browser that set @topic's retained value: it is newer than
 * what the read found (or the same), so it goes as the retained message instead, as a broker
 * that took the SUBSCRIBE a moment later would have sent it. true when there was one.
 */
static bool held_replaces(struct session *s, struct mqtt_bytes topic)
{
	for (struct msg *m = s->held_msgs.head; m; m = m->next) {
		if ((m->state & HELD_RETAINED) && m->topic.len == topic.len &&
		    !memcmp(m->topic.data, topic.data, topic.len)) {
			/* An empty one cleared the value: there is none to send. */
			if (m->payload.len)
				m->retain = true;
			return true;
		}
	}
	return false;
}

/* The hub is caught up with the broker: what the read found goes out, then the held messages. */
static void on_hub_caught_up(void *user)
{
	struct shared_sub *ss = user;
	struct session *s = ss->s;
	struct msg *m = ss->found, *next;

	ss->barrier = NULL;
	ss->found = NULL;
	for (; m; m = next) {
		next = m->next;
		m->next = NULL;
		if (!s->conn || s->closing || held_replaces(s, m->topic))
			free(m);
		else
			session_deliver(s, m);
	}
	shared_release_hold(ss);
}

/*
 * The read found @msgs. The hub and the reader are two connections: the hub may not have handed
 * over yet a live message the broker sent it before the read's SUBSCRIBE, and that one must be
 * held (so that it replaces an older retained value, or comes after the value it replaced).
 * So the values go out once a marker the hub sends now has come back.
 */
static void on_retained(void *user, bool ok, bool complete, struct msg *const *msgs, size_t n)
{
	struct shared_sub *ss = user;
	struct session *s = ss->s;
	struct msg **tail = &ss->found;

	ss->read = NULL;
	if (!complete)
		log_msg(LOG_DEBUG, "shared", "retained-incomplete client_id=%s ok=%d count=%zu",
			session_cid(s), ok, n);
	for (size_t i = 0; ok && i < n && s->conn && !s->closing; i++) {
		const struct msg *m = msgs[i];
		struct msg *copy;
		if (!session_may_read(s, m))
			continue;
		copy = shared_copy_for(m, min_qos(m->qos, ss->granted), true, &ss->sub_id,
				       ss->sub_id ? 1 : 0);
		if (!copy)
			continue;
		*tail = copy;
		tail = &copy->next;
	}
	ss->barrier = hub_barrier(s->ss->cfg.hub, on_hub_caught_up, ss);
	if (!ss->barrier)
		on_hub_caught_up(ss);
}

/* Starts @ss's retained read; false while the reader's link is not up (tried again on ticks). */
static bool start_read(struct shared_sub *ss)
{
	ss->read = retained_get(ss->s->ss->cfg.retained, ss->filter, RETAINED_LIMIT, ss->joined,
				on_retained, ss);
	return ss->read != NULL;
}

void shared_suback_sent(struct session *s, struct sub_op *so)
{
	for (size_t i = 0; i < so->count; i++) {
		struct shared_sub *ss = so->ssubs[i];
		if (!ss)
			continue;
		so->ssubs[i] = NULL;
		ss->op = NULL;
		if (!ss->want_retained || !s->conn || s->closing) {
			shared_release_hold(ss);
			continue;
		}
		/* Without the reader (it connects beside the hub), live messages wait for it up to
		 * RETAINED_WAIT_MS too: a dashboard reconnecting as the bridge starts gets its
		 * retained values. */
		ss->read_since_ms = clock_mono_ms();
		ss->read_wanted = !start_read(ss);
	}
}

static bool tick_sub(const void *key, size_t len, void *value, void *user)
{
	struct shared_sub *ss = value;
	uint64_t now = *(const uint64_t *)user;
	bool late = now - ss->read_since_ms >= RETAINED_WAIT_MS;

	(void)key;
	(void)len;
	if (ss->read_wanted && (start_read(ss) || late)) {
		ss->read_wanted = false;
		if (!ss->read) {
			log_msg(LOG_INFO, "shared", "retained-unavailable client_id=%s",
				session_cid(ss->s));
			shared_release_hold(ss);
		}
	} else if (ss->read && late) {
		retained_finish(ss->s->ss->cfg.retained, ss->read); /* calls on_retained */
	}
	return true;
}

void shared_tick(struct session *s, uint64_t now_ms)
{
	if (s->holding && s->subs)
		hmap_foreach(s->subs, tick_sub, &now_ms);
}
