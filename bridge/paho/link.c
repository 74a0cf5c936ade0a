/* bridge/paho/link.c — connect, notice the loss, back off, connect again. */
#include "link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "props.h"

/* Reconnects wait this long first, doubling each time up to the most. */
#define BACKOFF_MIN_S 1
#define BACKOFF_MAX_S 30
#define MS_PER_S      1000u
/* An error text quoted for the log, escapes included. */
#define QUOTED_ERROR_SIZE 320

struct link {
	const struct upstream_env *env;
	char *client_id, *username, *password, *name;
	int keepalive_s;
	int max_keepalive_s; /* the broker's Server Keep Alive, once it said one; 0: none */
	int version;         /* of the attempt under way, or of the connection */
	bool pinned;         /* broker.mqtt_version set: no negotiation */
	bool agreed;         /* a CONNACK accepted @version: reconnects keep it */
	struct link_ops ops;
	void *user;
	struct upstream *up; /* connecting or connected; NULL while waiting to retry */
	bool connected;
	bool was_up;
	unsigned backoff_s;
	uint64_t retry_at_ms;
	uint64_t reconnects;
};

static void on_event(void *owner, struct upstream_event *ev);

static void schedule_retry(struct link *l)
{
	l->retry_at_ms = clock_mono_ms() + (uint64_t)l->backoff_s * MS_PER_S;
	l->backoff_s = l->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : l->backoff_s * 2;
}

static void attempt(struct link *l)
{
	struct upstream_connect c;

	memset(&c, 0, sizeof(c));
	c.version = l->version;
	c.client_id = l->client_id;
	c.clean_start = true;
	c.keepalive_s = l->keepalive_s;
	c.username = *l->username ? l->username : NULL;
	if (*l->password) {
		c.has_password = true;
		c.password = (struct mqtt_bytes){(const uint8_t *)l->password, strlen(l->password)};
	}
	l->up = upstream_new(l->env, &c, on_event, l);
	if (!l->up)
		schedule_retry(l);
}

static int older_version(int version)
{
	return version == MQTT_V5 ? MQTT_V311 : version == MQTT_V311 ? MQTT_V31 : 0;
}

/*
 * Negotiation, until a version has worked once: MQTT 5 first; a broker that refuses the version
 * in its CONNACK, or closes the connection on an MQTT 5 CONNECT without a CONNACK (RabbitMQ 3.x
 * does), gets the next older one at once. A connection closed without a CONNACK at 3.1.1 is
 * not taken as a refusal: the broker may just be going down, and after the backoff the next
 * attempt starts again from MQTT 5.
 */
static bool try_older(struct link *l, const struct upstream_event *ev)
{
	bool refused = ev->code == MQTT_CONNACK_BAD_VERSION ||
		       (l->version == MQTT_V5 && ev->code == MQTT_RC_UNSUPPORTED_VERSION);
	bool closed = ev->no_connack && l->version == MQTT_V5;
	int older = older_version(l->version);

	if (l->pinned || l->agreed || !older || !(refused || closed))
		return false;
	log_msg(LOG_WARN, l->name, "broker-refused-version version=%s reason=%s fallback=%s",
		codec_version_name(l->version), refused ? "connack" : "closed-without-connack",
		codec_version_name(older));
	upstream_free(l->up);
	l->up = NULL;
	l->version = older;
	attempt(l);
	return true;
}

/* @error: what Paho or OpenSSL said (a bad certificate, say); NULL or "" when nothing. */
static void lost(struct link *l, const char *why, int code, const char *error)
{
	bool was = l->connected;
	char quoted[QUOTED_ERROR_SIZE];

	upstream_free(l->up);
	l->up = NULL;
	l->connected = false;
	if (error && *error)
		log_msg(LOG_WARN, l->name, "broker-down reason=%s code=0x%02x error=%s retry_s=%u",
			why, code, log_quote(quoted, sizeof(quoted), error, strlen(error)),
			l->backoff_s);
	else
		log_msg(LOG_WARN, l->name, "broker-down reason=%s code=0x%02x retry_s=%u", why,
			code, l->backoff_s);
	schedule_retry(l);
	if (!l->pinned && !l->agreed)
		l->version = MQTT_V5;
	if (was)
		l->ops.down(l->user);
	else if (l->ops.failed)
		l->ops.failed(l->user);
}

/*
 * Paho keeps the keepalive it connected with, so a broker that allows less (its Server Keep
 * Alive) would drop the link: true when the link connects again with the broker's.
 */
static bool keepalive_too_long(struct link *l, const struct upstream_event *ev)
{
	struct mqtt_prop ka;

	if (!props_find(ev->props.data, ev->props.len, MQTT_PROP_SERVER_KEEP_ALIVE, &ka) ||
	    !((ka.value < (uint32_t)l->keepalive_s || !l->keepalive_s) && ka.value))
		return false;
	log_msg(LOG_INFO, l->name, "broker-keepalive keepalive_s=%u was=%d", ka.value,
		l->keepalive_s);
	l->keepalive_s = (int)ka.value;
	l->max_keepalive_s = (int)ka.value;
	upstream_free(l->up);
	l->up = NULL;
	attempt(l);
	return true;
}

static void on_event(void *owner, struct upstream_event *ev)
{
	struct link *l = owner;

	switch ((enum upstream_event_kind)ev->item.kind) {
	case UPSTREAM_CONNECTED:
		if (keepalive_too_long(l, ev))
			break;
		l->connected = true;
		l->agreed = true;
		l->backoff_s = BACKOFF_MIN_S;
		if (l->was_up)
			l->reconnects++;
		l->was_up = true;
		log_msg(LOG_INFO, l->name, "broker-up url=%s mqtt_version=%s", l->env->url,
			codec_version_name(l->version));
		l->ops.up(l->user, ev->props);
		break;
	case UPSTREAM_CONNECT_FAILED:
		if (try_older(l, ev))
			break;
		/* Paho words any refusal "CONNACK return code": the code's meaning says more. */
		lost(l, ev->code ? "refused" : "unreachable", ev->code,
		     ev->code ? codec_connack_text(l->version, ev->code) : ev->error);
		break;
	case UPSTREAM_LOST:
	case UPSTREAM_DISCONNECTED:
		lost(l, ev->item.kind == UPSTREAM_LOST ? "connection-lost" : "broker-disconnect",
		     ev->code, NULL);
		break;
	case UPSTREAM_MESSAGE: {
		struct msg *m = ev->msg;
		ev->msg = NULL;
		l->ops.message(l->user, m);
		break;
	}
	case UPSTREAM_DONE:
		l->ops.done(l->user, ev);
		break;
	case UPSTREAM_CLOSED:
		break;
	}
	upstream_event_free(ev);
}

struct link *link_new(const struct link_config *cfg, const struct link_ops *ops, void *user)
{
	struct link *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->env = cfg->env;
	l->client_id = strdup(cfg->client_id);
	l->username = strdup(cfg->username ? cfg->username : "");
	l->password = strdup(cfg->password ? cfg->password : "");
	l->name = strdup(cfg->name);
	if (!l->client_id || !l->username || !l->password || !l->name) {
		link_free(l);
		return NULL;
	}
	l->keepalive_s = cfg->keepalive_s;
	l->pinned = cfg->env->mqtt_version != 0;
	l->version = l->pinned ? cfg->env->mqtt_version : MQTT_V5;
	l->ops = *ops;
	l->user = user;
	l->backoff_s = BACKOFF_MIN_S;
	attempt(l);
	return l;
}

struct upstream *link_upstream(const struct link *l)
{
	return l->connected ? l->up : NULL;
}

bool link_is_up(const struct link *l)
{
	return l->connected;
}

int link_version(const struct link *l)
{
	return l->version;
}

bool link_is_connecting(const struct link *l)
{
	return l->up && !l->connected;
}

int link_max_keepalive(const struct link *l)
{
	return l->max_keepalive_s;
}

uint64_t link_reconnects(const struct link *l)
{
	return l->reconnects;
}

int link_subscribe(struct link *l, enum mqtt_type type, const char *filter, size_t len,
		   uint8_t options, uint32_t sub_id, int *token)
{
	struct buf entries = BUF_INIT, props = BUF_INIT;
	int ignored, rc;

	if (!link_upstream(l))
		return -ENOTCONN;
	rc = codec_put_entry(&entries, type, filter, len, options);
	if (!rc && type == MQTT_SUBSCRIBE && l->version == MQTT_V5)
		rc = props_put_int(&props, MQTT_PROP_SUBSCRIPTION_ID, sub_id);
	if (!rc)
		rc = upstream_subscribe(l->up, type, (struct mqtt_bytes){entries.data, entries.len},
					1, (struct mqtt_bytes){props.data, props.len},
					token ? token : &ignored);
	if (rc)
		log_msg(LOG_WARN, l->name, "subscribe-failed type=%s rc=%d", codec_type_name(type),
			rc);
	buf_clear(&entries);
	buf_clear(&props);
	return rc;
}

void link_tick(struct link *l)
{
	if (!l->up && clock_mono_ms() >= l->retry_at_ms)
		attempt(l);
}

void link_free(struct link *l)
{
	if (!l)
		return;
	/* Destroying a connected Paho client sends a clean DISCONNECT. */
	upstream_free(l->up);
	free(l->client_id);
	free(l->username);
	free(l->password);
	free(l->name);
	free(l);
}
