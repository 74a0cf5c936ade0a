/*
 * bridge/paho/upstream.c — the Paho adapter: MQTTAsync calls out, evq events in.
 *
 * Paho runs every callback of every client under one global mutex, and MQTTAsync_destroy() takes
 * it too: once destroy has returned no callback of that client is running or will run. So an
 * upstream only needs a reference count, held by its owner and by each queued event.
 */
#include "upstream.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "props.h"
#include "upstream_int.h"

/* Publishes a client may have waiting in Paho for its send thread. */
#define MAX_BUFFERED 10000
/* The shortest keepalive a Paho link is given (0, none, stays 0); see upstream_new(). */
#define KEEPALIVE_MIN_S 5
/* A connect's failure text quoted for the log: quotes and escapes on top. */
#define QUOTED_ERROR_SIZE (TLS_ERROR_MAX + 16)

void upstream_release(struct upstream *u)
{
	if (atomic_fetch_sub(&u->refs, 1) == 1)
		free(u);
}

/* Any thread. An event with @extra bytes of room, holding a reference to @u. */
static struct upstream_event *event_new(struct upstream *u, enum upstream_event_kind kind,
					size_t extra)
{
	struct upstream_event *ev = calloc(1, sizeof(*ev) + extra);

	if (!ev)
		return NULL;
	ev->item.kind = kind;
	ev->up = u;
	atomic_fetch_add(&u->refs, 1);
	return ev;
}

/* Any thread. The connect got its answer (or will never get one). */
static void connect_settled(struct upstream *u)
{
	if (atomic_exchange(&u->connecting, false))
		waker_connecting(u->env->waker, -1);
}

static void push(struct upstream *u, struct upstream_event *ev)
{
	evq_push(u->env->evq, &ev->item);
}

/*
 * Any thread. An event carrying @props, @ncodes codes and the text @error (NULL: "") copied
 * into its data.
 */
static struct upstream_event *event_with(struct upstream *u, enum upstream_event_kind kind,
					 const MQTTProperties *props, const uint8_t *codes,
					 size_t ncodes, const char *error)
{
	size_t elen = error ? strlen(error) : 0;
	struct buf pb = BUF_INIT;
	struct upstream_event *ev;

	if (props && upstream_props_from_paho(props, &pb)) {
		buf_clear(&pb);
		return NULL;
	}
	ev = event_new(u, kind, pb.len + ncodes + elen + 1);
	if (ev) {
		uint8_t *p = ev->data;
		if (pb.len)
			memcpy(p, pb.data, pb.len);
		ev->props = (struct mqtt_bytes){p, pb.len};
		p += pb.len;
		if (ncodes)
			memcpy(p, codes, ncodes);
		ev->codes = (struct mqtt_bytes){p, ncodes};
		p += ncodes;
		if (elen)
			memcpy(p, error, elen);
		p[elen] = 0;
		ev->error = (const char *)p;
	}
	buf_clear(&pb);
	return ev;
}

/*
 * Paho callbacks. Each copies what it needs into an event and pushes it; nothing else. When
 * memory runs out there is nobody to tell on this thread: the event is lost and logged, and the
 * session's own timeouts end it.
 */
static void push_or_log(struct upstream *u, struct upstream_event *ev, const char *what)
{
	if (ev)
		push(u, ev);
	else
		log_msg(LOG_ERROR, "upstream", "event-lost what=%s reason=out-of-memory", what);
}

static void on_connected5(void *ctx, MQTTAsync_successData5 *d)
{
	struct upstream *u = ctx;
	struct upstream_event *ev =
	    event_with(u, UPSTREAM_CONNECTED, &d->properties, NULL, 0, NULL);

	connect_settled(u);

	if (ev) {
		ev->session_present = d->alt.connect.sessionPresent;
		ev->code = (uint8_t)d->reasonCode;
	}
	push_or_log(u, ev, "connected");
}

static void on_connected3(void *ctx, MQTTAsync_successData *d)
{
	struct upstream *u = ctx;
	struct upstream_event *ev = event_new(u, UPSTREAM_CONNECTED, 0);

	connect_settled(u);

	if (ev)
		ev->session_present = d->alt.connect.sessionPresent;
	push_or_log(u, ev, "connected");
}

/* Paho reports the broker's CONNACK code as a positive code; its own errors are negative. */
static uint8_t connect_code(int code, int reason)
{
	if (reason > 0 && reason <= UINT8_MAX)
		return (uint8_t)reason;
	if (code > 0 && code <= UINT8_MAX)
		return (uint8_t)code;
	return 0;
}

/* How Paho 1.3 words a connection that was made but closed or reset before the CONNACK: the
 * first while it waited for the CONNACK, the second when its receive thread saw the error
 * first (the order depends on the threads). A refused TCP connect is "TCP/TLS connect
 * failure", a silent broker "TCP connect timeout". */
static bool closed_before_connack(const char *message)
{
	return message && (!strcmp(message, "TCP connect completion failure") ||
			   !strcmp(message, "socket error"));
}

static void on_connect_failed5(void *ctx, MQTTAsync_failureData5 *d)
{
	struct upstream *u = ctx;
	char buf[TLS_ERROR_MAX], quoted[QUOTED_ERROR_SIZE];
	const char *why = upstream_tls_failure(u->env, u->tls_error, d->message, buf, sizeof(buf));
	struct upstream_event *ev =
	    event_with(u, UPSTREAM_CONNECT_FAILED, &d->properties, NULL, 0, why);

	connect_settled(u);

	if (ev) {
		ev->code = connect_code(d->code, d->reasonCode);
		ev->no_connack = closed_before_connack(d->message);
	}
	log_msg(LOG_DEBUG, "upstream", "connect-failed code=%d reason=%d error=%s", d->code,
		d->reasonCode, log_quote(quoted, sizeof(quoted), why, strlen(why)));
	push_or_log(u, ev, "connect-failed");
}

static void on_connect_failed3(void *ctx, MQTTAsync_failureData *d)
{
	struct upstream *u = ctx;
	char buf[TLS_ERROR_MAX], quoted[QUOTED_ERROR_SIZE];
	const char *why = upstream_tls_failure(u->env, u->tls_error, d->message, buf, sizeof(buf));
	struct upstream_event *ev = event_with(u, UPSTREAM_CONNECT_FAILED, NULL, NULL, 0, why);

	connect_settled(u);

	if (ev) {
		ev->code = connect_code(d->code, 0);
		ev->no_connack = closed_before_connack(d->message);
	}
	log_msg(LOG_DEBUG, "upstream", "connect-failed code=%d error=%s", d->code,
		log_quote(quoted, sizeof(quoted), why, strlen(why)));
	push_or_log(u, ev, "connect-failed");
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct upstream *u = ctx;
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	struct buf pb = BUF_INIT;
	struct upstream_event *ev;
	struct msg *msg;
	size_t backlog;

	backlog = atomic_load(&u->backlog);
	if (m->qos == 0 && backlog > u->env->max_backlog) {
		atomic_fetch_add(&u->dropped, 1);
		goto consumed;
	}
	/* Returning 0 leaves the message with Paho, which offers it again later. */
	if (upstream_props_from_paho(&m->properties, &pb))
		goto later;
	msg = msg_new(topic, tlen, m->payload, (size_t)m->payloadlen, pb.data, pb.len,
		      (uint8_t)m->qos, m->retained);
	if (!msg)
		goto later;
	ev = event_new(u, UPSTREAM_MESSAGE, 0);
	if (!ev) {
		free(msg);
		goto later;
	}
	ev->msg = msg;
	ev->overflow = backlog > u->env->max_backlog;
	atomic_fetch_add(&u->backlog, msg->size);
	push(u, ev);
consumed:
	buf_clear(&pb);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
later:
	buf_clear(&pb);
	return 0;
}

static void on_connection_lost(void *ctx, char *cause)
{
	struct upstream *u = ctx;

	(void)cause;
	push_or_log(u, event_new(u, UPSTREAM_LOST, 0), "lost");
}

static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason)
{
	struct upstream *u = ctx;
	struct upstream_event *ev = event_with(u, UPSTREAM_DISCONNECTED, props, NULL, 0, NULL);

	if (ev)
		ev->code = (uint8_t)reason;
	push_or_log(u, ev, "disconnected");
}

static void on_closed5(void *ctx, MQTTAsync_successData5 *d)
{
	struct upstream *u = ctx;

	(void)d;
	push_or_log(u, event_new(u, UPSTREAM_CLOSED, 0), "closed");
}

static void on_closed3(void *ctx, MQTTAsync_successData *d)
{
	struct upstream *u = ctx;

	(void)d;
	push_or_log(u, event_new(u, UPSTREAM_CLOSED, 0), "closed");
}

static void on_close_failed5(void *ctx, MQTTAsync_failureData5 *d)
{
	(void)d;
	on_closed5(ctx, NULL);
}

static void on_close_failed3(void *ctx, MQTTAsync_failureData *d)
{
	(void)d;
	on_closed3(ctx, NULL);
}

void upstream_push_done(struct upstream *u, int token, bool failed, uint8_t code,
			const MQTTProperties *props, const uint8_t *codes, size_t ncodes)
{
	struct upstream_event *ev = event_with(u, UPSTREAM_DONE, props, codes, ncodes, NULL);

	if (ev) {
		ev->token = token;
		ev->failed = failed;
		ev->code = code;
	}
	push_or_log(u, ev, "done");
}

static void on_published5(void *ctx, MQTTAsync_successData5 *d)
{
	/* Paho hands back the request's own properties here, not the PUBACK's: leave them. */
	upstream_push_done(ctx, d->token, false, (uint8_t)d->reasonCode, NULL, NULL, 0);
}

/* A reason code >= 0x80 is the broker's answer (e.g. 0x87 from its ACL); anything else means
 * Paho gave up without one. */
static void on_publish_failed5(void *ctx, MQTTAsync_failureData5 *d)
{
	bool answered = d->reasonCode >= UPSTREAM_RC_FAILURE && d->reasonCode <= UINT8_MAX;

	upstream_push_done(ctx, d->token, !answered, answered ? (uint8_t)d->reasonCode : 0,
			   &d->properties, NULL, 0);
}

static void on_published3(void *ctx, MQTTAsync_successData *d)
{
	upstream_push_done(ctx, d->token, false, 0, NULL, NULL, 0);
}

static void on_publish_failed3(void *ctx, MQTTAsync_failureData *d)
{
	upstream_push_done(ctx, d->token, true, 0, NULL, NULL, 0);
}

void upstream_init(void)
{
	MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
}

static int paho_version(int version)
{
	switch (version) {
	case MQTT_V31:
		return MQTTVERSION_3_1;
	case MQTT_V311:
		return MQTTVERSION_3_1_1;
	default:
		return MQTTVERSION_5;
	}
}

/* A CONNECT's options and what they point at; freed with connect_parts_free(). */
struct connect_parts {
	MQTTAsync_connectOptions opts;
	MQTTAsync_willOptions will;
	MQTTAsync_SSLOptions ssl;
	MQTTProperties props;
	MQTTProperties will_props;
};

static void connect_parts_free(struct connect_parts *p)
{
	MQTTProperties_free(&p->props);
	MQTTProperties_free(&p->will_props);
}

/* The version's own options: clean start or session, callbacks, v5 properties. 0 or -ENOMEM. */
static int version_options(const struct upstream_connect *c, struct connect_parts *p)
{
	/* The bridge resolves the browser's topic aliases itself and sends none upstream. */
	static const uint8_t connect_drop[] = {MQTT_PROP_TOPIC_ALIAS_MAXIMUM};
	MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;

	if (c->version != MQTT_V5) {
		p->opts.cleansession = c->clean_start;
		p->opts.onSuccess = on_connected3;
		p->opts.onFailure = on_connect_failed3;
		return 0;
	}
	p->opts = opts5;
	p->opts.cleanstart = c->clean_start;
	p->opts.onSuccess5 = on_connected5;
	p->opts.onFailure5 = on_connect_failed5;
	if (upstream_props_to_paho(c->props, connect_drop, sizeof(connect_drop), &p->props) ||
	    upstream_props_to_paho(c->will_props, NULL, 0, &p->will_props))
		return -ENOMEM;
	p->opts.connectProperties = &p->props;
	if (c->will)
		p->opts.willProperties = &p->will_props;
	return 0;
}

/* Fills @p for @u's CONNECT @c. 0 or -ENOMEM; @p is the caller's to free either way. */
static int connect_options(struct upstream *u, const struct upstream_connect *c,
			   struct connect_parts *p)
{
	const struct upstream_env *env = u->env;

	if (version_options(c, p))
		return -ENOMEM;
	p->opts.MQTTVersion = paho_version(c->version);
	/* Paho looks at its keepalive timers about once a second, so under ~4 s its PINGREQ can come
	 * after the broker's 1.5 x limit and the broker drops a healthy link. A browser's own
	 * keepalive is enforced by the bridge on the WebSocket side regardless. */
	p->opts.keepAliveInterval =
	    c->keepalive_s && c->keepalive_s < KEEPALIVE_MIN_S ? KEEPALIVE_MIN_S : c->keepalive_s;
	p->opts.connectTimeout = env->connect_timeout_s;
	p->opts.automaticReconnect = 0;
	p->opts.context = u;
	p->opts.username = c->username;
	if (c->has_password) {
		p->opts.binarypwd.len = (int)c->password.len;
		p->opts.binarypwd.data = c->password.data;
	}
	if (c->will) {
		p->will.topicName = c->will_topic;
		p->will.message = NULL;
		p->will.payload.len = (int)c->will_payload.len;
		p->will.payload.data = c->will_payload.data;
		p->will.qos = c->will_qos;
		p->will.retained = c->will_retain;
		p->opts.will = &p->will;
	}
	if (upstream_tls_url(env->url)) {
		upstream_tls_options(env, u->tls_error, &p->ssl);
		p->opts.ssl = &p->ssl;
	}
	return 0;
}

/* Makes @u's Paho client for @c. 0, or -EIO (logged). */
static int create_client(struct upstream *u, const struct upstream_connect *c)
{
	MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
	int rc;

	create.MQTTVersion = c->version == MQTT_V5 ? MQTTVERSION_5 : MQTTVERSION_DEFAULT;
	/* Paho counts every publish not yet written against this, connected or not (default 100):
	 * the hub carries every shared browser's publishes, so a burst must fit. */
	create.maxBufferedMessages = MAX_BUFFERED;
	rc = MQTTAsync_createWithOptions(&u->client, u->env->url, c->client_id,
					 MQTTCLIENT_PERSISTENCE_NONE, NULL, &create);
	if (rc != MQTTASYNC_SUCCESS) {
		log_msg(LOG_WARN, "upstream", "create-failed rc=%d", rc);
		return -EIO;
	}
	MQTTAsync_setCallbacks(u->client, u, on_connection_lost, on_message, NULL);
	if (c->version == MQTT_V5)
		MQTTAsync_setDisconnected(u->client, u, on_disconnected);
	return 0;
}

struct upstream *upstream_new(const struct upstream_env *env, const struct upstream_connect *c,
			      upstream_handler handler, void *owner)
{
	struct connect_parts p = {
	    .opts = MQTTAsync_connectOptions_initializer,
	    .will = MQTTAsync_willOptions_initializer,
	    .ssl = MQTTAsync_SSLOptions_initializer,
	    .props = MQTTProperties_initializer,
	    .will_props = MQTTProperties_initializer,
	};
	struct upstream *u;
	int rc;

	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->env = env;
	u->version = c->version;
	u->handler = handler;
	u->owner = owner;
	atomic_init(&u->refs, 1);
	if (create_client(u, c)) {
		free(u);
		return NULL;
	}
	if (connect_options(u, c, &p))
		goto fail;
	atomic_store(&u->connecting, true);
	waker_connecting(env->waker, 1);
	rc = MQTTAsync_connect(u->client, &p.opts);
	if (rc != MQTTASYNC_SUCCESS) {
		log_msg(LOG_WARN, "upstream", "connect-refused rc=%d", rc);
		connect_settled(u);
		goto fail;
	}
	connect_parts_free(&p);
	return u;
fail:
	connect_parts_free(&p);
	MQTTAsync_destroy(&u->client);
	upstream_release(u);
	return NULL;
}

void upstream_set_owner(struct upstream *u, upstream_handler handler, void *owner)
{
	u->handler = handler;
	u->owner = owner;
}

void upstream_dispatch(struct upstream_event *ev)
{
	struct upstream *u = ev->up;

	if (ev->msg)
		atomic_fetch_sub(&u->backlog, ev->msg->size);
	if (u->handler)
		u->handler(u->owner, ev);
	else
		upstream_event_free(ev);
}

void upstream_event_free(struct upstream_event *ev)
{
	if (!ev)
		return;
	free(ev->msg);
	upstream_release(ev->up);
	free(ev);
}

int upstream_publish(struct upstream *u, const char *topic, struct mqtt_bytes payload, int qos,
		     bool retain, struct mqtt_bytes props, int *token)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	static const uint8_t publish_drop[] = {MQTT_PROP_TOPIC_ALIAS};
	int rc;

	m.payload = (void *)payload.data;
	m.payloadlen = (int)payload.len;
	m.qos = qos;
	m.retained = retain;
	ro.context = u;
	if (u->version == MQTT_V5 &&
	    upstream_props_to_paho(props, publish_drop, sizeof(publish_drop), &m.properties)) {
		MQTTProperties_free(&m.properties);
		return -ENOMEM;
	}
	/* Without @token nobody waits for the outcome: no callback, no event. */
	if (token && u->version == MQTT_V5) {
		ro.onSuccess5 = on_published5;
		ro.onFailure5 = on_publish_failed5;
	} else if (token) {
		ro.onSuccess = on_published3;
		ro.onFailure = on_publish_failed3;
	}
	rc = MQTTAsync_sendMessage(u->client, topic, &m, &ro);
	waker_kick(u->env->waker);
	MQTTProperties_free(&m.properties);
	if (rc != MQTTASYNC_SUCCESS) {
		log_msg(LOG_DEBUG, "upstream", "publish-refused rc=%d", rc);
		if (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES)
			return -ENOBUFS;
		return rc == MQTTASYNC_DISCONNECTED ? -ENOTCONN : -EIO;
	}
	if (token)
		*token = ro.token;
	return 0;
}

int upstream_disconnect(struct upstream *u, uint8_t reason, struct mqtt_bytes props, int wait_ms)
{
	MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
	MQTTAsync_disconnectOptions opts5 = MQTTAsync_disconnectOptions_initializer5;
	int rc;

	if (u->version == MQTT_V5) {
		opts = opts5;
		opts.reasonCode = (enum MQTTReasonCodes)reason;
		if (upstream_props_to_paho(props, NULL, 0, &opts.properties)) {
			MQTTProperties_free(&opts.properties);
			return -ENOMEM;
		}
		opts.onSuccess5 = on_closed5;
		opts.onFailure5 = on_close_failed5;
	} else {
		opts.onSuccess = on_closed3;
		opts.onFailure = on_close_failed3;
	}
	opts.timeout = wait_ms;
	opts.context = u;
	rc = MQTTAsync_disconnect(u->client, &opts);
	waker_kick(u->env->waker);
	MQTTProperties_free(&opts.properties);
	if (rc != MQTTASYNC_SUCCESS)
		return -ENOTCONN;
	return 0;
}

size_t upstream_take_dropped(struct upstream *u)
{
	return atomic_exchange(&u->dropped, 0);
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	/* Failure callbacks Paho runs inside destroy find no owner and are dropped. */
	u->handler = NULL;
	u->owner = NULL;
	MQTTAsync_destroy(&u->client);
	connect_settled(u);
	upstream_release(u);
}
