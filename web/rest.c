/*
 * web/rest.c — /api/v1 handlers. A publish answers 200 only once the broker acknowledged it
 * (QoS 1/2) or it was handed to the connection (QoS 0); until then the request waits in a job,
 * bounded by a timer (publish_timeout_ms, a request's timeout_ms, about 1 s for retained reads).
 */
#include "rest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "codec.h"
#include "jsonmsg.h"
#include "log.h"
#include "metrics.h"
#include "outcome.h"
#include "props.h"
#include "status.h"
#include "utf8.h"

/* How long a retained read waits for the broker to confirm it has sent everything. */
#define RETAINED_WAIT_MS       1000
#define REQUEST_TIMEOUT_MAX_MS 600000
#define BATCH_MAX              1000
#define LIST_LIMIT_DEFAULT     100
#define LIST_LIMIT_MAX         10000
/* Room for a message's Content Type property; a longer one is not passed on as a header. */
#define CONTENT_TYPE_MAX 256
/* curl -d's label for any body (see content_type_props()), and what json_content_type() takes. */
#define FORM_TYPE   "application/x-www-form-urlencoded"
#define JSON_TYPE   "application/json"
#define JSON_SUFFIX "+json"

enum job_kind {
	JOB_PUBLISH, /* raw, PUT, DELETE, or a batch of JSON messages */
	JOB_RETAINED,
	JOB_REQUEST,
};

struct job_item {
	struct rest_job *job;
	struct hub_req *req;
	const char *topic; /* borrowed from the job */
	int qos;
	bool done;
	bool timed_out;
	bool forbidden; /* outside the token's ACL: never sent */
	enum hub_status status;
	uint8_t reason;
};

struct rest_job {
	enum job_kind kind;
	struct http_conn *c;
	bool batch;        /* answer with a results array */
	bool single_topic; /* JOB_RETAINED: GET /topics/{topic} */
	size_t n, pending;
	struct job_item *items;
	struct jsonmsg_batch msgs;
	struct retained_req *rreq;
	char *topic;
};

static void job_free(struct rest_job *j)
{
	if (!j)
		return;
	jsonmsg_batch_clear(&j->msgs);
	free(j->items);
	free(j->topic);
	free(j);
}

void rest_cancel(struct http_conn *c)
{
	struct rest_job *j = c->job;

	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++) {
		if (j->items[i].req && !j->items[i].done)
			hub_cancel(c->ctx->deps.hub, j->items[i].req);
	}
	if (j->rreq)
		retained_cancel(c->ctx->deps.retained, j->rreq);
	lws_sul_cancel(&c->sul);
	c->job = NULL;
	job_free(j);
}

/* A topic name from the URL; false when it answered 400. */
static bool topic_ok(struct http_conn *c, char *topic)
{
	if (args_topic_valid(topic))
		return true;
	http_error(c, 400, "invalid_topic", "not a valid MQTT topic name (no +, #, NUL)");
	return false;
}

/* May the request's token publish to @topic? false when it answered 403. */
static bool may_publish(struct http_conn *c, const char *topic)
{
	if (http_may_publish(c, topic))
		return true;
	http_forbidden(c, "publish to", topic);
	return false;
}

/*
 * The request's Content-Type as an MQTT 5 Content Type property. curl -d labels every body
 * "application/x-www-form-urlencoded" whatever it is, so that label means "none given".
 */
static int content_type_props(struct http_conn *c, struct buf *props)
{
	size_t len = strlen(c->content_type);

	if (!len || !utf8_valid_mqtt((const uint8_t *)c->content_type, len) ||
	    !strncasecmp(c->content_type, FORM_TYPE, WEB_LITLEN(FORM_TYPE)))
		return 0;
	return props_put_bytes(props, MQTT_PROP_CONTENT_TYPE, c->content_type, len);
}

static json_t *ok_object(const struct job_item *it, bool retain)
{
	return json_pack("{s:b,s:s,s:i,s:b}", "ok", 1, "topic", it->topic, "qos", it->qos, "retain",
			 retain);
}

static void answer_publish(struct rest_job *j)
{
	struct http_conn *c = j->c;
	json_t *error, *results;

	lws_sul_cancel(&c->sul);
	if (!j->batch) {
		struct job_item *it = &j->items[0];
		int status = outcome_status(it->status, it->reason, &error);
		bool retain = j->msgs.count ? j->msgs.msgs[0].retain : false;
		if (status == 200)
			metrics_rest_published(c);
		else if (status == 503)
			http_header(c, "retry-after:", "5");
		c->job = NULL;
		http_json(c, status,
			  error ? json_pack("{s:o}", "error", error) : ok_object(it, retain));
		job_free(j);
		return;
	}
	results = json_array();
	for (size_t i = 0; i < j->n; i++) {
		struct job_item *it = &j->items[i];
		int status = outcome_status(it->status, it->reason, &error);
		if (it->forbidden) {
			char message[256];
			json_decref(error);
			snprintf(message, sizeof(message), "the token '%s' may not publish to '%s'",
				 c->token ? c->token->name : "", it->topic);
			error = outcome_error("forbidden", message, -1);
		} else if (it->timed_out) {
			json_decref(error);
			error = outcome_error("broker_timeout",
					      "the broker did not acknowledge in time", -1);
		} else if (status == 200) {
			metrics_rest_published(c);
		}
		json_array_append_new(results, error
						   ? json_pack("{s:b,s:o}", "ok", 0, "error", error)
						   : ok_object(it, j->msgs.msgs[i].retain));
	}
	c->job = NULL;
	http_json(c, 200, json_pack("{s:o}", "results", results));
	job_free(j);
}

static void on_published(void *user, enum hub_status status, uint8_t reason,
			 const struct msg *reply)
{
	struct job_item *it = user;
	struct rest_job *j = it->job;

	(void)reply;
	it->done = true;
	it->req = NULL;
	it->status = status;
	it->reason = reason;
	if (--j->pending == 0)
		answer_publish(j);
}

static void publish_timeout(lws_sorted_usec_list_t *sul)
{
	struct http_conn *c = lws_container_of(sul, struct http_conn, sul);
	struct rest_job *j = c->job;

	if (!j)
		return;
	if (j->kind == JOB_RETAINED) {
		struct retained_req *q = j->rreq;
		j->rreq = NULL;
		retained_finish(c->ctx->deps.retained, q);
		return;
	}
	if (j->kind == JOB_REQUEST) {
		rest_cancel(c);
		http_error(c, 504, "no_reply", "no reply came within timeout_ms");
		return;
	}
	/* Whatever the broker has not acknowledged by now is answered 504. */
	for (size_t i = 0; i < j->n; i++) {
		struct job_item *it = &j->items[i];
		if (it->done)
			continue;
		hub_cancel(c->ctx->deps.hub, it->req);
		it->req = NULL;
		it->done = true;
		it->timed_out = true;
	}
	if (!j->batch) {
		c->job = NULL;
		job_free(j);
		http_error(c, 504, "broker_timeout", "the broker did not acknowledge within %ld ms",
			   c->ctx->cfg->publish_timeout_ms);
		return;
	}
	j->pending = 0;
	answer_publish(j);
}

static struct rest_job *job_new(struct http_conn *c, enum job_kind kind, size_t n)
{
	struct rest_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = kind;
	j->c = c;
	j->n = n;
	if (n && !(j->items = calloc(n, sizeof(*j->items)))) {
		free(j);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		j->items[i].job = j;
	return j;
}

static void arm(struct http_conn *c, long ms)
{
	lws_sul_schedule(c->ctx->context, 0, &c->sul, publish_timeout, (lws_usec_t)ms * 1000);
}

/* Sends every message of @j; answers when all are acknowledged or refused. */
static void start_publishes(struct http_conn *c, struct rest_job *j)
{
	struct hub *hub = c->ctx->deps.hub;

	if (!hub_connected(hub)) {
		job_free(j);
		http_broker_down(c);
		return;
	}
	c->job = j;
	j->pending = j->n;
	arm(c, c->ctx->cfg->publish_timeout_ms);
	for (size_t i = 0; i < j->n && c->job == j; i++) {
		struct jsonmsg *m = &j->msgs.msgs[i];
		struct job_item *it = &j->items[i];
		it->topic = m->topic;
		it->qos = m->qos;
		if (it->forbidden) {
			on_published(it, HUB_REFUSED, MQTT_RC_NOT_AUTHORIZED, NULL);
			continue;
		}
		it->req =
		    hub_publish(hub, m->topic, (struct mqtt_bytes){m->payload, m->payload_len},
				m->qos, m->retain, (struct mqtt_bytes){m->props, m->props_len},
				on_published, it);
		if (!it->req)
			on_published(it, HUB_DOWN, 0, NULL);
	}
}

/* One message from the URL (raw publish, PUT, DELETE). Takes @payload/@props by copy. */
static void publish_one(struct http_conn *c, const char *topic, const void *payload, size_t len,
			int qos, bool retain, struct buf *props)
{
	struct rest_job *j = job_new(c, JOB_PUBLISH, 1);
	struct jsonmsg *m;

	if (!j || !(j->msgs.msgs = calloc(1, sizeof(*m))))
		goto oom;
	j->msgs.count = 1;
	m = &j->msgs.msgs[0];
	m->topic = strdup(topic);
	m->payload_len = len;
	if (len && (m->payload = malloc(len)))
		memcpy(m->payload, payload, len);
	m->props = buf_steal(props, &m->props_len);
	m->qos = qos;
	m->retain = retain;
	if (!m->topic || (len && !m->payload))
		goto oom;
	start_publishes(c, j);
	return;
oom:
	job_free(j);
	http_error(c, 500, "internal", "out of memory");
}

static void handle_publish_raw(struct http_conn *c, char *topic)
{
	static const char *const known[] = {"qos", "retain", NULL};
	struct buf props = BUF_INIT;
	bool retain;
	int qos;

	if (!topic_ok(c, topic))
		return;
	if (!may_publish(c, topic))
		return;
	if (!http_args_known(c, known) || !args_qos(c, 0, &qos) || !args_bool(c, "retain", &retain))
		return;
	if (content_type_props(c, &props)) {
		buf_clear(&props);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	publish_one(c, topic, c->body.data, c->body.len, qos, retain, &props);
	buf_clear(&props);
}

static bool json_content_type(const char *type)
{
	size_t n = strcspn(type, ";");

	while (n && type[n - 1] == ' ')
		n--;
	return (n == WEB_LITLEN(JSON_TYPE) && !strncasecmp(type, JSON_TYPE, n)) ||
	       (n >= WEB_LITLEN(JSON_SUFFIX) && !strncasecmp(type + n - WEB_LITLEN(JSON_SUFFIX),
							     JSON_SUFFIX, WEB_LITLEN(JSON_SUFFIX)));
}

static void handle_publish_json(struct http_conn *c)
{
	static const char *const known[] = {NULL};
	struct jsonmsg_error err;
	struct rest_job *j;
	int rc;

	if (!http_args_known(c, known))
		return;
	if (!json_content_type(c->content_type)) {
		http_error(c, 415, "unsupported_media_type",
			   "send the messages as Content-Type: application/json");
		return;
	}
	j = job_new(c, JOB_PUBLISH, 0);
	if (!j) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	rc = jsonmsg_parse((const char *)c->body.data, c->body.len, BATCH_MAX, &j->msgs, &err);
	if (rc) {
		job_free(j);
		if (rc == -EINVAL && err.index >= 0)
			http_error(c, 400, err.code, "message %ld: %s", err.index, err.message);
		else if (rc == -EINVAL)
			http_error(c, 400, err.code, "%s", err.message);
		else
			http_error(c, 500, "internal", "out of memory");
		return;
	}
	j->batch = j->msgs.is_array;
	j->n = j->msgs.count;
	j->items = calloc(j->n, sizeof(*j->items));
	if (!j->items) {
		job_free(j);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		j->items[i].job = j;
		if (http_may_publish(c, j->msgs.msgs[i].topic))
			continue;
		/* One message: the request is refused. In a batch, that message's result says so
		 * and the others go ahead, as for any other per-message failure. */
		if (!j->batch) {
			http_forbidden(c, "publish to", j->msgs.msgs[i].topic);
			job_free(j);
			return;
		}
		j->items[i].forbidden = true;
		c->ctx->stats.refused_forbidden++;
	}
	start_publishes(c, j);
}

/* ---- retained topics ---- */

static const char *content_type_of(const struct msg *m, char *buf, size_t cap)
{
	struct mqtt_prop p;

	if (!props_find(m->props.data, m->props.len, MQTT_PROP_CONTENT_TYPE, &p) || !p.len ||
	    p.len >= cap)
		return NULL;
	memcpy(buf, p.data, p.len);
	buf[p.len] = '\0';
	return buf;
}

/* 200 with @m's payload as the body, typed by its Content Type property. */
static void respond_payload(struct http_conn *c, const struct msg *m)
{
	char type[CONTENT_TYPE_MAX];
	const char *ct = content_type_of(m, type, sizeof(type));

	http_respond(c, 200, ct ? ct : "application/octet-stream", m->payload.data, m->payload.len);
}

/* The envelope: the event JSON without "ts", with "content_type". */
static json_t *envelope(const struct msg *m)
{
	struct buf text = BUF_INIT;
	char type[CONTENT_TYPE_MAX];
	const char *ct = content_type_of(m, type, sizeof(type));
	json_t *obj = NULL;

	if (!jsonmsg_write(&text, m, 0))
		obj = json_loadb((const char *)text.data, text.len, 0, NULL);
	buf_clear(&text);
	if (obj)
		json_object_set_new(obj, "content_type", ct ? json_string(ct) : json_null());
	return obj;
}

static void on_retained(void *user, bool ok, bool complete, struct msg *const *msgs, size_t n)
{
	struct http_conn *c = user;
	struct rest_job *j = c->job;
	json_t *list;

	lws_sul_cancel(&c->sul);
	j->rreq = NULL;
	c->job = NULL;
	if (!ok) {
		job_free(j);
		http_broker_down(c);
		return;
	}
	if (j->single_topic) {
		job_free(j);
		if (!n) {
			http_error(c, 404, "not_found", "no retained message on this topic");
			return;
		}
		if (c->accept_json) {
			http_json(c, 200, envelope(msgs[0]));
			return;
		}
		respond_payload(c, msgs[0]);
		return;
	}
	job_free(j);
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, envelope(msgs[i]));
	http_json(c, 200, json_pack("{s:o,s:b}", "messages", list, "truncated", !complete));
}

static void read_retained(struct http_conn *c, const char *filter, size_t limit, bool single)
{
	struct rest_job *j = job_new(c, JOB_RETAINED, 0);

	if (!j) {
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	j->single_topic = single;
	c->job = j;
	j->rreq = retained_get(c->ctx->deps.retained, filter, limit, 0, on_retained, c);
	if (!j->rreq) {
		c->job = NULL;
		job_free(j);
		http_broker_down(c);
		return;
	}
	arm(c, RETAINED_WAIT_MS);
}

static void handle_topic(struct http_conn *c, char *topic)
{
	static const char *const known_get[] = {NULL};
	static const char *const known_set[] = {"qos", NULL};
	struct buf props = BUF_INIT;
	int qos;

	if (!topic_ok(c, topic))
		return;
	switch (c->method) {
	case HTTP_GET:
		if (!http_may_subscribe(c, topic))
			http_forbidden(c, "read", topic);
		else if (http_args_known(c, known_get))
			read_retained(c, topic, 1, true);
		return;
	case HTTP_PUT:
	case HTTP_DELETE:
		/* Both publish a retained message. */
		if (!may_publish(c, topic))
			return;
		if (!http_args_known(c, known_set) || !args_qos(c, 0, &qos))
			return;
		if (c->method == HTTP_PUT && content_type_props(c, &props)) {
			http_error(c, 500, "internal", "out of memory");
			break;
		}
		/* DELETE: an empty retained message clears the topic (MQTT's way). */
		publish_one(c, topic, c->body.data, c->method == HTTP_PUT ? c->body.len : 0, qos,
			    true, &props);
		break;
	default:
		http_header(c, "allow:", "GET, PUT, DELETE");
		http_error(c, 405, "method_not_allowed", "use GET, PUT or DELETE");
	}
	buf_clear(&props);
}

static void handle_topic_list(struct http_conn *c)
{
	static const char *const known[] = {"filter", "limit", NULL};
	char filter[1024] = "#";
	long limit = LIST_LIMIT_DEFAULT;

	if (!http_args_known(c, known) || !args_long(c, "limit", 1, LIST_LIMIT_MAX, &limit))
		return;
	if (http_arg(c, "filter", filter, sizeof(filter)) && !args_filter_valid(filter)) {
		http_error(c, 400, "invalid_filter", "not a valid MQTT topic filter");
		return;
	}
	if (!http_may_subscribe(c, filter)) {
		http_forbidden(c, "read", filter);
		return;
	}
	read_retained(c, filter, (size_t)limit, false);
}

/* ---- request/response ---- */

static void on_reply(void *user, enum hub_status status, uint8_t reason, const struct msg *reply)
{
	struct http_conn *c = user;
	struct rest_job *j = c->job;
	json_t *error;
	int code;

	lws_sul_cancel(&c->sul);
	c->job = NULL;
	job_free(j); /* the hub has let go of the request already */
	if (status != HUB_OK || !reply) {
		code = outcome_status(status == HUB_OK ? HUB_FAILED : status, reason, &error);
		if (code == 503)
			http_header(c, "retry-after:", "5");
		http_json(c, code, json_pack("{s:o}", "error", error));
		return;
	}
	respond_payload(c, reply);
}

static void handle_request(struct http_conn *c, char *topic)
{
	static const char *const known[] = {"qos", "timeout_ms", NULL};
	struct hub *hub = c->ctx->deps.hub;
	struct buf props = BUF_INIT;
	long timeout_ms = 5000;
	struct rest_job *j;
	int qos;

	if (!topic_ok(c, topic))
		return;
	/* The reply comes on a response topic of the bridge's own: only the publish is the
	 * token's doing. */
	if (!may_publish(c, topic))
		return;
	if (!http_args_known(c, known) || !args_qos(c, 1, &qos) ||
	    !args_long(c, "timeout_ms", 1, REQUEST_TIMEOUT_MAX_MS, &timeout_ms))
		return;
	if (!hub_connected(hub)) {
		http_broker_down(c);
		return;
	}
	if (!hub_can_request(hub)) {
		http_error(c, 501, "not_supported", "request/response needs an MQTT 5 broker");
		return;
	}
	j = job_new(c, JOB_REQUEST, 1);
	if (!j || content_type_props(c, &props)) {
		job_free(j);
		buf_clear(&props);
		http_error(c, 500, "internal", "out of memory");
		return;
	}
	c->job = j;
	j->items[0].req = hub_request(hub, topic, (struct mqtt_bytes){c->body.data, c->body.len},
				      qos, (struct mqtt_bytes){props.data, props.len}, on_reply, c);
	buf_clear(&props);
	if (!j->items[0].req) {
		c->job = NULL;
		job_free(j);
		http_broker_down(c);
		return;
	}
	arm(c, timeout_ms);
}

/* ---- routing ---- */

static bool method_is(struct http_conn *c, enum http_method m, const char *allow)
{
	if (c->method == m)
		return true;
	http_header(c, "allow:", "%s", allow);
	http_error(c, 405, "method_not_allowed", "use %s", allow);
	return false;
}

/* What follows @prefix in @path; NULL when @path does not start with it. */
static char *after(char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) ? NULL : path + n;
}

void rest_route(struct http_conn *c)
{
	char *p = c->path, *tail;

	if ((tail = after(p, "/publish/"))) {
		if (method_is(c, HTTP_POST, "POST"))
			handle_publish_raw(c, tail);
	} else if (!strcmp(p, "/publish")) {
		if (method_is(c, HTTP_POST, "POST"))
			handle_publish_json(c);
	} else if ((tail = after(p, "/topics/"))) {
		handle_topic(c, tail);
	} else if (!strcmp(p, "/topics")) {
		if (method_is(c, HTTP_GET, "GET"))
			handle_topic_list(c);
	} else if ((tail = after(p, "/request/"))) {
		if (method_is(c, HTTP_POST, "POST"))
			handle_request(c, tail);
	} else if (!strcmp(p, "/health")) {
		if (method_is(c, HTTP_GET, "GET"))
			status_health(c);
	} else if (!strcmp(p, "/info")) {
		if (method_is(c, HTTP_GET, "GET"))
			status_info(c);
	} else if (!strcmp(p, "/whoami")) {
		if (method_is(c, HTTP_GET, "GET"))
			status_whoami(c);
	} else {
		http_error(c, 404, "not_found", "no such endpoint; see the README for the API");
	}
}
