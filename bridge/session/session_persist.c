/*
 * bridge/session/session_persist.c — a persistent session's hand-off: what it leaves when it
 * ends (unacknowledged messages, QoS 2 ids awaiting PUBREL) goes to the store or to the
 * connection that took it over, and comes back to the next connection of its client id.
 */
#include "session.h"
#include "session_int.h"

#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "store.h"

/* ---- persistent sessions ---- */

bool session_persistent(const struct session *s)
{
	return s->client_id && s->session_expiry > 0;
}

/* What the session leaves behind: unacknowledged messages and QoS 2 ids awaiting PUBREL. */
struct leftovers *session_take_leftovers(struct session *s)
{
	struct leftovers *lo;
	size_t n = 0;

	if (!s->out_msgs.head && !s->nq2)
		return NULL;
	lo = calloc(1, sizeof(*lo));
	if (!lo)
		return NULL;
	for (size_t i = 0; i < s->nq2; i++)
		n += s->q2[i].received;
	if (n) {
		lo->qos2_received = calloc(n, sizeof(uint16_t));
		if (!lo->qos2_received) {
			free(lo);
			return NULL;
		}
		for (size_t i = 0; i < s->nq2; i++) {
			if (s->q2[i].received)
				lo->qos2_received[lo->nqos2_received++] = s->q2[i].packet_id;
		}
	}
	for (struct msg *m = s->out_msgs.head; m; m = m->next) {
		if ((m->state & MSG_STATE) != MSG_QUEUED)
			m->state |= MSG_WAS_SENT;
	}
	lo->msgs = s->out_msgs.head;
	lo->bytes = s->out_msgs.bytes;
	s->out_msgs.head = s->out_msgs.tail = NULL;
	s->out_msgs.bytes = 0;
	s->out_inflight = 0;
	lo->expires_ms = s->session_expiry == UINT32_MAX
			     ? UINT64_MAX
			     : clock_mono_ms() + (uint64_t)s->session_expiry * 1000u;
	return lo;
}

/*
 * A returning (or taking over) connection of the same client id gets what was left: messages
 * sent before go again with DUP and their packet ids, PUBRELs are sent again, and the QoS 2
 * packet ids still awaiting PUBREL are remembered so a re-sent PUBLISH is not delivered twice.
 */
void session_handoff(struct session *to, struct leftovers *lo)
{
	struct msg *m, *next;
	size_t count = 0;

	for (m = lo->msgs; m; m = next) {
		next = m->next;
		if ((m->state & MSG_STATE) != MSG_RELEASED && !session_may_read(to, m)) {
			free(m);
			continue;
		}
		count++;
		/* A taking-over connection may already use the id for something else. */
		if ((m->state & MSG_STATE) == MSG_SENT &&
		    session_packet_id_in_use(to, m->packet_id))
			m->packet_id = 0;
		session_list_append(&to->out_msgs, m);
		if ((m->state & MSG_STATE) == MSG_RELEASED) {
			to->out_inflight++;
			session_send_ack(to, MQTT_PUBREL, m->packet_id, 0, no_props);
		} else {
			/* Sent before: it goes again with DUP under the same packet id. */
			m->state = (m->state & MSG_WAS_SENT) | MSG_QUEUED;
		}
	}
	lo->msgs = NULL;
	for (size_t i = 0; i < lo->nqos2_received; i++) {
		if (!session_find_q2(to, lo->qos2_received[i]))
			session_add_q2(to, lo->qos2_received[i], true);
	}
	log_msg(LOG_INFO, "session", "session-resumed client_id=%s messages=%zu qos2_pending=%zu",
		session_cid(to), count, lo->nqos2_received);
	leftovers_free(lo);
	session_pump(to);
}
