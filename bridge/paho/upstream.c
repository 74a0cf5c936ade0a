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
#include <unistd.h>

#include "log.h"
#include "props.h"

/* Enough for two or three OpenSSL reasons with a file name. */
#define TLS_ERROR_MAX 256
/* Publishes a client may have waiting in Paho for its send thread. */
#define MAX_BUFFERED 10000
/* The shortest keepalive a Paho link is given (0, none, stays 0); see upstream_new(). */
#define KEEPALIVE_MIN_S 5

struct upstream {
	MQTTAsync client;
	const struct upstream_env *env;
	int version;
	atomic_int refs;
	atomic_size_t backlog; /* bytes of MESSAGE events not yet dispatched */
	atomic_size_t dropped; /* QoS 0 messages dropped for backlog */
	atomic_bool connecting; /* counted in the waker until Paho answers the connect */
	/*
	 * Why the TLS setup failed, in OpenSSL's words. Written and read only inside Paho's connect
	 * processing, which runs under Paho's global mutex; copied into the connect-failed event.
	 */
	char tls_error[TLS_ERROR_MAX];
	/* Service thread only. */
	upstream_handler handler;
	void *owner;
};

/* A SUBSCRIBE or UNSUBSCRIBE in flight: Paho's 3.1.1 answer does not say how many codes it has. */
struct sub_req {
	struct upstream *u;
	int count;
};

static void release(struct upstream *u)
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

/* Serialises Paho properties as MQTT property bytes; Topic Alias is the link's own business. */
static int props_from_paho(const MQTTProperties *in, struct buf *out)
{
	int rc = 0;

	for (int i = 0; in && i < in->count && !rc; i++) {
		const MQTTProperty *p = &in->array[i];
		uint8_t id = (uint8_t)p->identifier;

		switch (props_type(id)) {
		case MQTT_PROP_T_BYTE:
			rc = props_put_int(out, id, p->value.byte);
			break;
		case MQTT_PROP_T_U16:
			if (id != MQTT_PROP_TOPIC_ALIAS)
				rc = props_put_int(out, id, p->value.integer2);
			break;
		case MQTT_PROP_T_U32:
		case MQTT_PROP_T_VARINT:
			rc = props_put_int(out, id, p->value.integer4);
			break;
		case MQTT_PROP_T_STRING:
		case MQTT_PROP_T_BINARY:
			rc = props_put_bytes(out, id, p->value.data.data, (size_t)p->value.data.len);
			break;
		case MQTT_PROP_T_PAIR:
			rc = props_put_pair(out, p->value.data.data, (size_t)p->value.data.len,
					    p->value.value.data, (size_t)p->value.value.len);
			break;
		default:
			break;
		}
	}
	return rc;
}

/*
 * Fills Paho properties from validated property bytes, leaving out the identifiers in @drop.
 * 0 or -ENOMEM; on error the caller still frees @out.
 */
static int props_to_paho(struct mqtt_bytes in, const uint8_t *drop, size_t ndrop,
			 MQTTProperties *out)
{
	struct props_iter it;
	struct mqtt_prop p;

	props_iter_init(&it, in.data, in.len);
	while (props_next(&it, &p)) {
		MQTTProperty q;
		if (ndrop && memchr(drop, p.id, ndrop))
			continue;
		memset(&q, 0, sizeof(q));
		q.identifier = (enum MQTTPropertyCodes)p.id;
		switch (props_type(p.id)) {
		case MQTT_PROP_T_BYTE:
			q.value.byte = (unsigned char)p.value;
			break;
		case MQTT_PROP_T_U16:
			q.value.integer2 = (unsigned short)p.value;
			break;
		case MQTT_PROP_T_U32:
		case MQTT_PROP_T_VARINT:
			q.value.integer4 = p.value;
			break;
		case MQTT_PROP_T_PAIR:
		case MQTT_PROP_T_STRING:
		case MQTT_PROP_T_BINARY:
			/* A pair's name goes where a string's value goes. */
			q.value.data.data = (char *)p.data;
			q.value.data.len = (int)p.len;
			q.value.value.data = (char *)p.data2;
			q.value.value.len = (int)p.len2;
			break;
		default:
			continue;
		}
		/* Paho copies string data into its own allocation. */
		if (MQTTProperties_add(out, &q))
			return -ENOMEM;
	}
	return 0;
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

	if (props && props_from_paho(props, &pb)) {
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
	if (reason > 0 && reason < 256)
		return (uint8_t)reason;
	if (code > 0 && code < 256)
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

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static bool url_is_tls(const char *url)
{
	return !strncmp(url, "ssl://", 6) || !strncmp(url, "mqtts://", 8) ||
	       !strncmp(url, "wss://", 6);
}

/* Paho's thread. "" when @path is unset or readable, else "KEY PATH: why" in @buf. */
static const char *unreadable(const char *key, const char *path, char *buf, size_t cap)
{
	int n;

	if (!path || !*path || access(path, R_OK) == 0)
		return "";
	n = snprintf(buf, cap, "%s %s: %s", key, path, strerror(errno));
	return n < 0 ? "" : buf;
}

/*
 * Paho's thread. Why a connect failed, for the log: a TLS file that cannot be read (OpenSSL's
 * error queue says little about that, and Paho consumes its first entry), else OpenSSL's
 * reason, else Paho's own words. Paho checks the host name itself after the handshake and
 * reports a mismatch, like a refused client certificate, only as a failed connect: for a TLS
 * URL those causes are named beside its words. @buf may hold the result.
 */
static const char *failure_text(const struct upstream *u, const char *message, char *buf,
				size_t cap)
{
	const struct upstream_env *env = u->env;
	const char *why;
	int n;

	if (!url_is_tls(env->url))
		return message ? message : "";
	why = unreadable("broker.ca_file", env->ca_file, buf, cap);
	if (!*why)
		why = unreadable("broker.cert_file", env->cert_file, buf, cap);
	if (!*why)
		why = unreadable("broker.key_file", env->key_file, buf, cap);
	if (*why)
		return why;
	if (u->tls_error[0])
		return u->tls_error;
	if (!message)
		return "";
	n = snprintf(buf, cap, "%s (no TLS reason given: broker not reachable, %sor %s)", message,
		     env->verify ? "host name not in its certificate, " : "",
		     nonempty(env->cert_file) ? "client certificate refused"
					      : "a client certificate needed");
	return n < 0 || (size_t)n >= cap ? message : buf;
}

static void on_connect_failed5(void *ctx, MQTTAsync_failureData5 *d)
{
	struct upstream *u = ctx;
	char buf[TLS_ERROR_MAX], quoted[TLS_ERROR_MAX + 16];
	const char *why = failure_text(u, d->message, buf, sizeof(buf));
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
	char buf[TLS_ERROR_MAX], quoted[TLS_ERROR_MAX + 16];
	const char *why = failure_text(u, d->message, buf, sizeof(buf));
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
	if (props_from_paho(&m->properties, &pb))
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

static void push_done(struct upstream *u, int token, bool failed, uint8_t code,
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
	push_done(ctx, d->token, false, (uint8_t)d->reasonCode, NULL, NULL, 0);
}

/* A reason code >= 0x80 is the broker's answer (e.g. 0x87 from its ACL); anything else means
 * Paho gave up without one. */
static void on_publish_failed5(void *ctx, MQTTAsync_failureData5 *d)
{
	bool answered = d->reasonCode >= 0x80 && d->reasonCode <= 0xff;

	push_done(ctx, d->token, !answered, answered ? (uint8_t)d->reasonCode : 0, &d->properties,
		  NULL, 0);
}

static void on_published3(void *ctx, MQTTAsync_successData *d)
{
	push_done(ctx, d->token, false, 0, NULL, NULL, 0);
}

static void on_publish_failed3(void *ctx, MQTTAsync_failureData *d)
{
	push_done(ctx, d->token, true, 0, NULL, NULL, 0);
}

/*
 * The broker answered @req's SUBSCRIBE or UNSUBSCRIBE with @n reason codes: Paho's @list of
 * them (elements of @elem bytes), or @single when there is one filter. @n 0 (an answer that
 * does not fit the request) or no memory for the codes fails the request. Frees @req.
 */
static void sub_answered(struct sub_req *req, int token, int n, const void *list, size_t elem,
			 int single, const MQTTProperties *props)
{
	uint8_t *codes = n > 0 ? malloc((size_t)n) : NULL;

	for (int i = 0; codes && i < n; i++) {
		int v = single;
		if (n > 1 && elem == sizeof(int))
			v = ((const int *)list)[i];
		else if (n > 1)
			v = (int)((const enum MQTTReasonCodes *)list)[i];
		codes[i] = (uint8_t)v;
	}
	push_done(req->u, token, !codes, 0, props, codes, codes ? (size_t)n : 0);
	free(codes);
	release(req->u);
	free(req);
}

static void on_subscribed5(void *ctx, MQTTAsync_successData5 *d)
{
	struct sub_req *req = ctx;
	int n = req->count;

	if (n != (d->alt.sub.reasonCodeCount ? d->alt.sub.reasonCodeCount : 1))
		n = 0;
	sub_answered(req, d->token, n, d->alt.sub.reasonCodes, sizeof(enum MQTTReasonCodes),
		     d->reasonCode, &d->properties);
}

static void on_unsubscribed5(void *ctx, MQTTAsync_successData5 *d)
{
	struct sub_req *req = ctx;
	int n = req->count;

	if (n != (d->alt.unsub.reasonCodeCount ? d->alt.unsub.reasonCodeCount : 1))
		n = 0;
	sub_answered(req, d->token, n, d->alt.unsub.reasonCodes, sizeof(enum MQTTReasonCodes),
		     d->reasonCode, &d->properties);
}

static void on_sub_failed5(void *ctx, MQTTAsync_failureData5 *d)
{
	struct sub_req *req = ctx;
	/* A one-filter SUBSCRIBE refused by the broker lands here with its reason code. */
	bool answered = d->reasonCode >= 0x80 && d->reasonCode <= 0xff && req->count == 1;
	uint8_t code = answered ? (uint8_t)d->reasonCode : 0;

	push_done(req->u, d->token, !answered, code, &d->properties, &code, answered ? 1 : 0);
	release(req->u);
	free(req);
}

static void on_subscribed3(void *ctx, MQTTAsync_successData *d)
{
	struct sub_req *req = ctx;

	sub_answered(req, d->token, req->count, d->alt.qosList, sizeof(int), d->alt.qos, NULL);
}

static void on_unsubscribed3(void *ctx, MQTTAsync_successData *d)
{
	struct sub_req *req = ctx;

	push_done(req->u, d->token, false, 0, NULL, NULL, 0);
	release(req->u);
	free(req);
}

static void on_sub_failed3(void *ctx, MQTTAsync_failureData *d)
{
	struct sub_req *req = ctx;
	/* 3.1.1: a one-filter SUBSCRIBE the broker refused (0x80) comes here. */
	uint8_t code = 0x80;
	bool answered = d->code == 0x80 && req->count == 1;

	push_done(req->u, d->token, !answered, code, NULL, &code, answered ? 1 : 0);
	release(req->u);
	free(req);
}

/* Appends @len bytes of @s to the NUL-terminated @dst of @cap bytes, cutting what does not fit. */
static void append(char *dst, size_t cap, const char *s, size_t len)
{
	size_t used = strlen(dst);

	if (used + 1 >= cap)
		return;
	if (len > cap - used - 1)
		len = cap - used - 1;
	memcpy(dst + used, s, len);
	dst[used + len] = 0;
}

/*
 * Paho's thread, inside its connect processing (see struct upstream). OpenSSL hands over its
 * error queue one line at a time, "tid:error:code:library:function:reason:file:line:data"; the
 * reason and the data (a file name, say) are what an operator needs, so only they are kept.
 */
static int on_tls_error(const char *str, size_t len, void *ctx)
{
	struct upstream *u = ctx;
	const char *field[9], *end;
	size_t n = 0;

	while (len && (str[len - 1] == '\n' || str[len - 1] == '\r'))
		len--;
	end = str + len;
	field[n++] = str;
	for (const char *p = str; p < end && n < 9; p++)
		if (*p == ':')
			field[n++] = p + 1;
	if (u->tls_error[0])
		append(u->tls_error, sizeof(u->tls_error), "; ", 2);
	if (n == 9 && !strncmp(field[1], "error:", 6)) {
		append(u->tls_error, sizeof(u->tls_error), field[5],
		       (size_t)(field[6] - field[5] - 1));
		if (field[8] < end) {
			append(u->tls_error, sizeof(u->tls_error), " (", 2);
			append(u->tls_error, sizeof(u->tls_error), field[8],
			       (size_t)(end - field[8]));
			append(u->tls_error, sizeof(u->tls_error), ")", 1);
		}
	} else {
		append(u->tls_error, sizeof(u->tls_error), str, len);
	}
	return 1; /* the next line too */
}

/*
 * The one place broker TLS is set up, for every client the bridge makes (browser sessions and
 * its own links): broker.ca_file is the trust store (none: the system's), broker.cert_file and
 * key_file the optional client certificate, and broker.verify checks both the chain and that
 * the certificate names the host of the URL.
 */
static void ssl_options(struct upstream *u, MQTTAsync_SSLOptions *ssl)
{
	const struct upstream_env *env = u->env;

	ssl->trustStore = nonempty(env->ca_file);
	ssl->keyStore = nonempty(env->cert_file);
	ssl->privateKey = nonempty(env->key_file);
	/* Without a password OpenSSL would prompt on the terminal for an encrypted key. */
	ssl->privateKeyPassword = ssl->privateKey ? "" : NULL;
	ssl->enableServerCertAuth = env->verify;
	ssl->verify = env->verify;
	ssl->ssl_error_cb = on_tls_error;
	ssl->ssl_error_context = u;
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

struct upstream *upstream_new(const struct upstream_env *env, const struct upstream_connect *c,
			      upstream_handler handler, void *owner)
{
	MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperties will_props = MQTTProperties_initializer;
	/* The bridge resolves the browser's topic aliases itself and sends none upstream. */
	static const uint8_t connect_drop[] = {MQTT_PROP_TOPIC_ALIAS_MAXIMUM};
	bool v5 = c->version == MQTT_V5;
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

	create.MQTTVersion = v5 ? MQTTVERSION_5 : MQTTVERSION_DEFAULT;
	/* Paho counts every publish not yet written against this, connected or not (default 100):
	 * the hub carries every shared browser's publishes, so a burst must fit. */
	create.maxBufferedMessages = MAX_BUFFERED;
	rc = MQTTAsync_createWithOptions(&u->client, env->url, c->client_id,
					 MQTTCLIENT_PERSISTENCE_NONE, NULL, &create);
	if (rc != MQTTASYNC_SUCCESS) {
		log_msg(LOG_WARN, "upstream", "create-failed rc=%d", rc);
		free(u);
		return NULL;
	}
	MQTTAsync_setCallbacks(u->client, u, on_connection_lost, on_message, NULL);
	if (v5)
		MQTTAsync_setDisconnected(u->client, u, on_disconnected);

	if (v5) {
		opts = opts5;
		opts.cleanstart = c->clean_start;
		opts.onSuccess5 = on_connected5;
		opts.onFailure5 = on_connect_failed5;
		if (props_to_paho(c->props, connect_drop, sizeof(connect_drop), &props) ||
		    props_to_paho(c->will_props, NULL, 0, &will_props))
			goto fail;
		opts.connectProperties = &props;
		if (c->will)
			opts.willProperties = &will_props;
	} else {
		opts.cleansession = c->clean_start;
		opts.onSuccess = on_connected3;
		opts.onFailure = on_connect_failed3;
	}
	opts.MQTTVersion = paho_version(c->version);
	/* Paho looks at its keepalive timers about once a second, so under ~4 s its PINGREQ can come
	 * after the broker's 1.5 x limit and the broker drops a healthy link. A browser's own
	 * keepalive is enforced by the bridge on the WebSocket side regardless. */
	opts.keepAliveInterval = c->keepalive_s && c->keepalive_s < KEEPALIVE_MIN_S ? KEEPALIVE_MIN_S
										     : c->keepalive_s;
	opts.connectTimeout = env->connect_timeout_s;
	opts.automaticReconnect = 0;
	opts.context = u;
	opts.username = c->username;
	if (c->has_password) {
		opts.binarypwd.len = (int)c->password.len;
		opts.binarypwd.data = c->password.data;
	}
	if (c->will) {
		will.topicName = c->will_topic;
		will.message = NULL;
		will.payload.len = (int)c->will_payload.len;
		will.payload.data = c->will_payload.data;
		will.qos = c->will_qos;
		will.retained = c->will_retain;
		opts.will = &will;
	}
	if (url_is_tls(env->url)) {
		ssl_options(u, &ssl);
		opts.ssl = &ssl;
	}
	atomic_store(&u->connecting, true);
	waker_connecting(env->waker, 1);
	rc = MQTTAsync_connect(u->client, &opts);
	if (rc != MQTTASYNC_SUCCESS) {
		log_msg(LOG_WARN, "upstream", "connect-refused rc=%d", rc);
		connect_settled(u);
		goto fail;
	}
	MQTTProperties_free(&props);
	MQTTProperties_free(&will_props);
	return u;
fail:
	MQTTProperties_free(&props);
	MQTTProperties_free(&will_props);
	MQTTAsync_destroy(&u->client);
	release(u);
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
	release(ev->up);
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
	    props_to_paho(props, publish_drop, sizeof(publish_drop), &m.properties)) {
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

int upstream_subscribe(struct upstream *u, enum mqtt_type type, struct mqtt_bytes entries,
		       size_t count, struct mqtt_bytes props, int *token)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTSubscribe_options *opts = NULL;
	struct mqtt_bytes cursor = entries;
	struct codec_entry e;
	struct sub_req *req;
	char **filters;
	int *qos, rc = -ENOMEM;
	size_t i = 0;

	filters = calloc(count, sizeof(*filters));
	qos = calloc(count, sizeof(*qos));
	opts = calloc(count, sizeof(*opts));
	req = malloc(sizeof(*req));
	if (!filters || !qos || !opts || !req)
		goto out;
	while (i < count && codec_next_entry(&cursor, type, &e)) {
		MQTTSubscribe_options o = MQTTSubscribe_options_initializer;
		filters[i] = strndup((const char *)e.filter.data, e.filter.len);
		if (!filters[i])
			goto out;
		qos[i] = e.options & MQTT_SUBOPT_QOS_MASK;
		o.noLocal = (e.options & MQTT_SUBOPT_NO_LOCAL) ? 1 : 0;
		o.retainAsPublished = (e.options & MQTT_SUBOPT_RETAIN_AS_PUB) ? 1 : 0;
		o.retainHandling = (unsigned char)MQTT_SUBOPT_RETAIN_HANDLING(e.options);
		opts[i] = o;
		i++;
	}
	req->u = u;
	req->count = (int)count;
	ro.context = req;
	if (u->version == MQTT_V5) {
		if (props_to_paho(props, NULL, 0, &ro.properties))
			goto out;
		ro.onSuccess5 = type == MQTT_SUBSCRIBE ? on_subscribed5 : on_unsubscribed5;
		ro.onFailure5 = on_sub_failed5;
		if (type == MQTT_SUBSCRIBE) {
			/* Paho reads the single field for one filter, the list for several. */
			ro.subscribeOptions = opts[0];
			ro.subscribeOptionsCount = (int)count;
			ro.subscribeOptionsList = opts;
		}
	} else {
		ro.onSuccess = type == MQTT_SUBSCRIBE ? on_subscribed3 : on_unsubscribed3;
		ro.onFailure = on_sub_failed3;
	}
	atomic_fetch_add(&u->refs, 1); /* held by req until its callback */
	if (type == MQTT_SUBSCRIBE)
		rc = MQTTAsync_subscribeMany(u->client, (int)count, filters, qos, &ro);
	else
		rc = MQTTAsync_unsubscribeMany(u->client, (int)count, filters, &ro);
	waker_kick(u->env->waker);
	if (rc != MQTTASYNC_SUCCESS) {
		log_msg(LOG_DEBUG, "upstream", "subscribe-refused rc=%d", rc);
		atomic_fetch_sub(&u->refs, 1);
		rc = rc == MQTTASYNC_DISCONNECTED ? -ENOTCONN : -EIO;
		goto out;
	}
	*token = ro.token;
	req = NULL; /* the callback frees it */
	rc = 0;
out:
	MQTTProperties_free(&ro.properties);
	for (size_t j = 0; filters && j < count; j++)
		free(filters[j]);
	free(filters);
	free(qos);
	free(opts);
	free(req);
	return rc;
}

int upstream_disconnect(struct upstream *u, uint8_t reason, struct mqtt_bytes props, int wait_ms)
{
	MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
	MQTTAsync_disconnectOptions opts5 = MQTTAsync_disconnectOptions_initializer5;
	int rc;

	if (u->version == MQTT_V5) {
		opts = opts5;
		opts.reasonCode = (enum MQTTReasonCodes)reason;
		if (props_to_paho(props, NULL, 0, &opts.properties)) {
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
	release(u);
}
