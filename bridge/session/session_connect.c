/*
 * bridge/session/session_connect.c — the browser's CONNECT: client id, token, takeover, the choice
 * between a shared session (shared.c) and a dedicated one (session_dedicated.c).
 */
#include "session.h"
#include "session_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "auth.h"
#include "hmap.h"
#include "log.h"
#include "props.h"
#include "shared.h"

int session_put_connack_limits(struct session *s, struct buf *out, uint32_t max_packet)
{
	int rc = props_put_int(out, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS_MAX);

	if (!rc)
		rc = props_put_int(out, MQTT_PROP_MAXIMUM_PACKET_SIZE, max_packet);
	if (!rc && s->id_assigned)
		rc = props_put_bytes(out, MQTT_PROP_ASSIGNED_CLIENT_ID, s->client_id,
				     strlen(s->client_id));
	return rc;
}

void session_send_connack(struct session *s, bool session_present, uint8_t code,
			  struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_CONNACK};

	p.u.connack.session_present = session_present;
	p.u.connack.code = code;
	p.u.connack.props = props;
	session_send_packet(s, &p);
}

int session_refuse_connect(struct session *s, uint8_t code_v3, uint8_t code_v5, const char *why)
{
	log_msg(LOG_INFO, "session", "connect-refused peer=%s why=\"%s\"", s->peer, why);
	session_send_connack(s, false, s->version == MQTT_V5 ? code_v5 : code_v3, no_props);
	session_close(s, END_ERROR);
	return -EPROTO;
}

static char *assign_client_id(void)
{
	uint8_t r[16];
	char *id = malloc(42);

	if (!id)
		return NULL;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		free(id);
		return NULL;
	}
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* a version 4 UUID, as Mosquitto assigns */
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
	snprintf(id, 42,
		 "auto-%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", r[0],
		 r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
		 r[14], r[15]);
	return id;
}

/*
 * Bridge credentials: the CONNECT password is a token's secret; the username is not looked at.
 * A wrong one is refused before any upstream client exists. The will is published with the
 * session's rights, so its topic must be inside the token's publish ACL, as at a broker.
 */
static int accept_token(struct session *s, const struct mqtt_connect *c)
{
	struct auth *table = s->ss->auth;
	const struct auth_token *t = NULL;

	if (table && c->has_password)
		t = auth_find(table, (const char *)c->password.data, c->password.len);
	if (!t)
		return session_refuse_connect(s, MQTT_CONNACK_NOT_AUTHORIZED,
					      MQTT_RC_BAD_CREDENTIALS,
					      c->has_password ? "unknown token"
							      : "no token (password)");
	if (c->will && !auth_may_publish(t, (const char *)c->will_topic.data, c->will_topic.len))
		return session_refuse_connect(s, MQTT_CONNACK_NOT_AUTHORIZED,
					      MQTT_RC_NOT_AUTHORIZED,
					      "will topic outside the token's publish ACL");
	s->auth = auth_ref(table);
	s->token = t;
	log_msg(LOG_DEBUG, "session", "token-accepted client_id=%s peer=%s token=%s",
		session_cid(s), s->peer, t->name);
	return 0;
}

/*
 * A new connection with the client id of a connected one. The broker ends the old one when both
 * are dedicated; when either is shared the broker never sees the pair, so the bridge does as a
 * broker does: the old connection gets DISCONNECT 0x8E (v5) and is closed.
 */
void session_take_over(struct session *s, bool shared)
{
	struct session *old = hmap_get(s->ss->live, s->client_id, strlen(s->client_id));

	if (!old || old == s || (!shared && old->mode != MODE_SHARED))
		return;
	log_msg(LOG_INFO, "session", "taken-over client_id=%s peer=%s by=%s", session_cid(old),
		old->peer, s->peer);
	hmap_remove(s->ss->live, s->client_id, strlen(s->client_id));
	if (session_established(old))
		session_send_disconnect(old, MQTT_RC_SESSION_TAKEN_OVER, no_props);
	session_close(old, END_ERROR);
}

/* What the CONNECT says about the session, before its client id and mode are settled. */
static void take_connect(struct session *s, const struct mqtt_connect *c)
{
	s->version = c->version;
	s->clean_start = c->clean_start;
	s->keepalive = c->keepalive;
	s->browser_receive_max = 65535;
	if (c->version == MQTT_V5) {
		s->session_expiry = session_prop_u32(c->props, MQTT_PROP_SESSION_EXPIRY, 0);
		s->browser_receive_max =
		    (uint16_t)session_prop_u32(c->props, MQTT_PROP_RECEIVE_MAXIMUM, 65535);
		s->browser_max_packet =
		    session_prop_u32(c->props, MQTT_PROP_MAXIMUM_PACKET_SIZE, 0);
	} else {
		s->session_expiry = c->clean_start ? 0 : UINT32_MAX;
	}
}

/*
 * s->client_id: the browser's, one assigned, or with a token "TOKEN/ID"; NULL when out of
 * memory (the caller refuses then). 0, or -EPROTO when the CONNECT was refused.
 */
static int take_client_id(struct session *s, const struct mqtt_connect *c)
{
	if (c->client_id.len == 0) {
		/* As a broker does: 3.1 has no empty ids; 3.1.1 only with a clean session. */
		if (c->version == MQTT_V31 || (c->version == MQTT_V311 && !c->clean_start))
			return session_refuse_connect(s, MQTT_CONNACK_ID_REJECTED,
						      MQTT_RC_CLIENT_ID_INVALID,
						      "empty client id without clean session");
		s->client_id = assign_client_id();
		s->id_assigned = true;
	} else {
		s->client_id = strndup((const char *)c->client_id.data, c->client_id.len);
	}
	if (s->ss->cfg.bridge_credentials && accept_token(s, c))
		return -EPROTO;
	/* All tokens log in to the broker as one user, so their client ids are kept apart:
	 * "TOKEN/ID" at the broker and in the bridge, or one token could take over (and end)
	 * another's connection or resume its session. An assigned id is unique already. */
	if (s->token && !s->id_assigned && s->client_id) {
		char *own = s->client_id;
		if (asprintf(&s->client_id, "%s/%s", s->token->name, own) < 0)
			s->client_id = NULL;
		free(own);
	}
	return 0;
}

int session_on_connect(struct session *s, const struct mqtt_connect *c)
{
	take_connect(s, c);
	if (take_client_id(s, c))
		return -EPROTO;
	if (s->client_id && shared_eligible(s, c))
		return shared_connect(s);
	if (s->client_id)
		session_take_over(s, false);
	return session_dedicated_connect(s, c);
}
