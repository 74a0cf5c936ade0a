/*
 * bridge/session/session.c — a browser's MQTT session: what every part of it shares (writing to the
 * browser, closing) and its lifetime, one session and all of them (sessions_*). The other jobs
 * are in files of their own, which share session_int.h: packets from the browser
 * (session_input.c), CONNECT (session_connect.c), acks in the browser's order and QoS 2 from the
 * browser (session_acks.c), QoS 1/2 towards the browser (session_outq.c), persistent sessions
 * (session_persist.c), the dedicated mode's upstream Paho client (session_dedicated.c) and the
 * shared mode (shared.c).
 *
 * The browser side is a byte stream decoded by codec.c; the broker side is upstream.c. Acks are
 * end to end: the browser's PUBACK / PUBREC / SUBACK / UNSUBACK go out only when the broker has
 * answered. Messages towards the browser are tracked until the browser acknowledges them, so a
 * persistent session can get them again (DUP set) when it comes back (store.h).
 */
#include "session.h"
#include "session_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "props.h"
#include "shared.h"
#include "store.h"

const char *session_cid(const struct session *s)
{
	return s->client_id ? s->client_id : "-";
}

/* ---- writing to the browser ---- */

/* The browser has its CONNACK: it may be sent a DISCONNECT. */
bool session_established(const struct session *s)
{
	return s->mode == MODE_SHARED || s->up_state == UP_CONNECTED;
}

int session_send_packet(struct session *s, const struct mqtt_packet *p)
{
	int rc;

	if (!s->conn || s->closing)
		return -ENOTCONN;
	s->out.len = 0;
	rc = codec_encode(&s->out, s->version ? s->version : MQTT_V311, p);
	if (rc) {
		log_msg(LOG_WARN, "session", "encode-failed client_id=%s type=%s rc=%d",
			session_cid(s), codec_type_name(p->type), rc);
		return rc;
	}
	rc = s->io->write(s->conn, s->out.data, s->out.len);
	if (rc == -ENOBUFS)
		session_slow(s);
	else if (!rc)
		s->ss->stats.bytes_to_browser += s->out.len;
	return rc;
}

void session_close(struct session *s, enum end_kind why)
{
	if (s->end == END_NONE)
		s->end = why;
	if (s->conn && !s->closing) {
		s->closing = true;
		s->io->close(s->conn);
	}
}

void session_send_disconnect(struct session *s, uint8_t reason, struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_DISCONNECT};

	if (s->version != MQTT_V5)
		return;
	p.u.disconnect.reason = reason;
	p.u.disconnect.props = props;
	session_send_packet(s, &p);
}

int session_protocol_error(struct session *s, uint8_t reason, const char *why)
{
	s->ss->stats.protocol_errors++;
	log_msg(LOG_INFO, "session", "protocol-error client_id=%s peer=%s reason=0x%02x why=\"%s\"",
		session_cid(s), s->peer, reason, why);
	if (session_established(s))
		session_send_disconnect(s, reason, no_props);
	session_close(s, END_ERROR);
	return -EPROTO;
}

void session_slow(struct session *s)
{
	if (s->closing)
		return;
	s->ss->stats.slow_disconnects++;
	log_msg(LOG_WARN, "session", "slow-browser client_id=%s peer=%s queued=%zu", session_cid(s),
		s->peer, s->conn ? s->io->queued(s->conn) : 0);
	session_close(s, END_ERROR);
}

void session_send_ack(struct session *s, enum mqtt_type type, uint16_t packet_id, uint8_t reason,
		      struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = type};

	p.u.ack.packet_id = packet_id;
	p.u.ack.reason = reason;
	p.u.ack.props = props;
	session_send_packet(s, &p);
}

/* ---- the end of a session ---- */

void session_maybe_finalize(struct session *s)
{
	if (!s->conn && (s->up_state == UP_NONE || s->up_state == UP_GONE))
		session_finalize(s);
}

uint32_t session_prop_u32(struct mqtt_bytes props, uint8_t id, uint32_t dflt)
{
	struct mqtt_prop p;

	return props_find(props.data, props.len, id, &p) ? p.value : dflt;
}

void session_finalize(struct session *s)
{
	struct sessions *ss = s->ss;
	struct leftovers *lo = NULL;

	if (s->mode == MODE_SHARED)
		shared_end(s);
	else if (s->mode == MODE_DEDICATED)
		ss->dedicated_count--;
	if (session_persistent(s)) {
		/* A connection of the same client id that took over gets them at once, unless it
		 * started clean; otherwise they wait in the store. */
		struct session *live = hmap_get(ss->live, s->client_id, strlen(s->client_id));
		lo = session_take_leftovers(s);
		if (!lo && (s->out_msgs.head || s->nq2))
			ss->stats.qos12_lost++;
		if (lo && live && live != s && !live->clean_start)
			session_handoff(live, lo);
		else if (lo && live && live != s)
			leftovers_free(lo);
		else if (lo && store_put(ss->store, s->client_id, lo))
			ss->stats.qos12_lost++;
	}
	/* A clean session's unacknowledged messages end with it, as at a broker. */
	session_list_clear(&s->out_msgs);
	if (s->prev)
		s->prev->next = s->next;
	else
		ss->all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ss->count--;
	ss->stats.sessions_active = ss->count;
	log_msg(LOG_DEBUG, "session", "ended client_id=%s peer=%s", session_cid(s), s->peer);
	for (int i = 0; i <= TOPIC_ALIAS_MAX; i++)
		free(s->aliases[i]);
	free(s->will);
	free(s->client_id);
	for (size_t i = 0; i < s->nops; i++) {
		session_sub_op_free(s->ops[i].sub);
		free(s->ops[i].answer);
	}
	free(s->ops);
	hmap_free(s->subs);
	auth_unref(s->auth);
	free(s->q2);
	buf_clear(&s->in);
	buf_clear(&s->out);
	buf_clear(&s->topic);
	free(s);
}

/* ---- lifetime ---- */

struct session *session_new(struct sessions *ss, const struct session_io *io, void *conn,
			    const char *peer)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ss = ss;
	s->io = io;
	s->conn = conn;
	snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "-");
	s->next = ss->all;
	if (ss->all)
		ss->all->prev = s;
	ss->all = s;
	ss->count++;
	ss->stats.sessions_total++;
	ss->stats.sessions_active = ss->count;
	io->deadline(conn, ss->cfg.connect_wait_ms);
	return s;
}

void session_detach(struct session *s)
{
	if (s->client_id && hmap_get(s->ss->live, s->client_id, strlen(s->client_id)) == s)
		hmap_remove(s->ss->live, s->client_id, strlen(s->client_id));
	s->conn = NULL;
	s->closing = true;
	if (s->end != END_CLEAN && s->end != END_UPSTREAM)
		session_end_upstream_abruptly(s);
	session_maybe_finalize(s);
}

struct sessions *sessions_new(const struct sessions_config *cfg)
{
	struct sessions *ss = calloc(1, sizeof(*ss));

	if (!ss)
		return NULL;
	ss->cfg = *cfg;
	ss->live = hmap_new();
	ss->store = store_new(cfg->max_sessions);
	if (!ss->live || !ss->store) {
		hmap_free(ss->live);
		store_free(ss->store);
		free(ss);
		return NULL;
	}
	return ss;
}

void sessions_shutdown(struct sessions *ss)
{
	for (struct session *s = ss->all; s; s = s->next) {
		if (!s->conn || s->closing)
			continue;
		if (session_established(s))
			session_send_disconnect(s, MQTT_RC_SERVER_SHUTTING_DOWN, no_props);
		session_close(s, END_SHUTDOWN);
	}
}

size_t sessions_count(const struct sessions *ss)
{
	return ss->count;
}

void sessions_expire(struct sessions *ss)
{
	size_t n = store_expire(ss->store, clock_mono_ms());

	if (n)
		log_msg(LOG_DEBUG, "session", "stored-sessions-expired count=%zu", n);
}

bool session_reauth(struct session *s, struct auth *table)
{
	const struct auth_token *t;

	if (!s->token)
		return true;
	t = table ? auth_find_same(table, s->token) : NULL;
	if (!t)
		return false;
	auth_ref(table);
	auth_unref(s->auth);
	s->auth = table;
	s->token = t;
	return true;
}

size_t sessions_set_auth(struct sessions *ss, struct auth *table)
{
	struct auth *old = ss->auth;
	size_t closed = 0;

	ss->auth = table ? auth_ref(table) : NULL;
	for (struct session *s = ss->all; s; s = s->next) {
		if (session_reauth(s, table) || !s->conn || s->closing)
			continue;
		/* The token was revoked: its ACL no longer holds, so neither does the session. */
		log_msg(LOG_INFO, "session", "token-revoked client_id=%s peer=%s token=%s",
			session_cid(s), s->peer, s->token->name);
		if (session_established(s))
			session_send_disconnect(s, MQTT_RC_NOT_AUTHORIZED, no_props);
		session_close(s, END_ERROR);
		closed++;
	}
	auth_unref(old);
	return closed;
}

void sessions_tick(struct sessions *ss)
{
	uint64_t now = clock_mono_ms();

	for (struct session *s = ss->all; s; s = s->next) {
		if (s->mode == MODE_SHARED)
			shared_tick(s, now);
	}
}

void sessions_broker_state(struct sessions *ss, bool up)
{
	size_t closed = 0;

	for (struct session *s = ss->all; s; s = s->next) {
		if (s->awaiting_hub && s->conn && !s->closing) {
			s->awaiting_hub = false;
			if (shared_connect(s))
				continue;
			s->held = false;
			session_update_pause(s);
			if (s->in.len)
				session_drain_input(s);
			continue;
		}
		if (up || s->mode != MODE_SHARED || !s->conn || s->closing)
			continue;
		/* 0x88 "server unavailable" is not a DISCONNECT reason (MQTT 5 §3.14.2.1); "busy"
		 * says the same: not now, try again. The reconnect gets CONNACK 0x88. */
		session_send_disconnect(s, MQTT_RC_SERVER_BUSY, no_props);
		session_close(s, END_UPSTREAM);
		closed++;
	}
	if (closed)
		log_msg(LOG_INFO, "session", "shared-sessions-closed reason=broker-down count=%zu",
			closed);
}

void sessions_get_stats(const struct sessions *ss, struct sessions_stats *out)
{
	*out = ss->stats;
	out->sessions_shared = ss->shared_count;
	out->sessions_dedicated = ss->dedicated_count;
	out->stored_sessions = store_count(ss->store);
}

void sessions_free(struct sessions *ss)
{
	if (!ss)
		return;
	while (ss->all) {
		struct session *s = ss->all;
		s->conn = NULL;
		upstream_free(s->up);
		s->up = NULL;
		s->up_state = UP_GONE;
		s->session_expiry = 0; /* nothing is kept past the process */
		session_finalize(s);
	}
	hmap_free(ss->live);
	store_free(ss->store);
	auth_unref(ss->auth);
	free(ss);
}
