/* bridge/hub/hub_req.c — publishes and request/response over the hub's link, until answered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hub_int.h"
#include "link.h"
#include "log.h"
#include "props.h"

/* ---- requests ---- */

static void unlink_req(struct hub *h, struct hub_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	h->nreqs--;
}

void hub_req_finish(struct hub *h, struct hub_req *r, enum hub_status status, uint8_t reason,
		    const struct msg *reply)
{
	hub_done_fn done = r->done;
	hub_ack_fn ack = r->ack;
	uint32_t tag = r->tag;
	void *user = r->user;

	unlink_req(h, r);
	free(r);
	if (done)
		done(user, status, reason, reply);
	else if (ack)
		ack(user, tag, status, reason);
}

/* Publishes complete in order; QoS 0 ones all have token 0, so the oldest is the one. */
struct hub_req *hub_req_find(struct hub *h, int token)
{
	struct hub_req *found = NULL;

	for (struct hub_req *r = h->reqs; r; r = r->next) {
		if (!r->acked && r->token == token)
			found = r; /* the list is newest first: keep the last match */
	}
	return found;
}

void hub_req_fail_all(struct hub *h, enum hub_status status)
{
	while (h->reqs)
		hub_req_finish(h, h->reqs, status, 0, NULL);
}

static struct hub_req *add_req(struct hub *h, enum req_kind kind, int token, hub_done_fn done,
			       void *user)
{
	struct hub_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->kind = kind;
	r->token = token;
	r->done = done;
	r->user = user;
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	h->nreqs++;
	return r;
}

bool hub_req_reply(struct hub *h, const struct msg *m)
{
	size_t plen = strlen(h->reply_prefix);
	struct mqtt_prop corr;

	if (m->topic.len <= plen || memcmp(m->topic.data, h->reply_prefix, plen) ||
	    m->topic.data[plen] != '/')
		return false;
	if (!props_find(m->props.data, m->props.len, MQTT_PROP_CORRELATION_DATA, &corr) ||
	    corr.len != CORRELATION_LEN)
		return true;
	for (struct hub_req *r = h->reqs; r; r = r->next) {
		if (r->kind == REQ_REQUEST && !memcmp(r->correlation, corr.data, CORRELATION_LEN)) {
			hub_req_finish(h, r, HUB_OK, 0, m);
			break;
		}
	}
	return true;
}

/* What of a publish's v5 @props the broker link carries: all, or over 3.1.x none (counted). */
static struct mqtt_bytes broker_props(struct hub *h, struct mqtt_bytes props)
{
	if (hub_version(h) == MQTT_V5 || !props.len)
		return props;
	h->stats.props_dropped++;
	return (struct mqtt_bytes){NULL, 0};
}

struct hub_req *hub_publish(struct hub *h, const char *topic, struct mqtt_bytes payload, int qos,
			    bool retain, struct mqtt_bytes props, hub_done_fn done, void *user)
{
	struct upstream *up = link_upstream(h->link);
	struct hub_req *r;
	int token;

	if (!up)
		return NULL;
	if (qos > h->max_qos)
		qos = h->max_qos;
	if (upstream_publish(up, topic, payload, qos, retain, broker_props(h, props), &token))
		return NULL;
	r = add_req(h, REQ_PUBLISH, token, done, user);
	if (!r)
		log_msg(LOG_WARN, "hub", "publish-untracked reason=out-of-memory");
	return r;
}

int hub_publish_qos0(struct hub *h, const char *topic, struct mqtt_bytes payload, bool retain,
		     struct mqtt_bytes props)
{
	struct upstream *up = link_upstream(h->link);

	if (!up)
		return -ENOTCONN;
	return upstream_publish(up, topic, payload, 0, retain, broker_props(h, props), NULL);
}

struct hub_req *hub_publish_tagged(struct hub *h, const char *topic, struct mqtt_bytes payload,
				   int qos, bool retain, struct mqtt_bytes props, hub_ack_fn ack,
				   void *user, uint32_t tag)
{
	struct hub_req *r = hub_publish(h, topic, payload, qos, retain, props, NULL, user);

	if (r) {
		r->ack = ack;
		r->tag = tag;
	}
	return r;
}

struct hub_req *hub_request(struct hub *h, const char *topic, struct mqtt_bytes payload, int qos,
			    struct mqtt_bytes props, hub_done_fn done, void *user)
{
	struct upstream *up = link_upstream(h->link);
	static const uint8_t ours[] = {MQTT_PROP_RESPONSE_TOPIC, MQTT_PROP_CORRELATION_DATA};
	struct buf all = BUF_INIT;
	struct hub_req *r;
	char reply_topic[OWN_TOPIC_SIZE];
	int token, rc;

	if (!up || link_version(h->link) != MQTT_V5)
		return NULL;
	r = add_req(h, REQ_REQUEST, 0, done, user);
	if (!r)
		return NULL;
	if (getrandom(r->correlation, CORRELATION_LEN, 0) != CORRELATION_LEN)
		goto fail;
	snprintf(reply_topic, sizeof(reply_topic), "%s/%02x%02x%02x%02x", h->reply_prefix,
		 r->correlation[0], r->correlation[1], r->correlation[2], r->correlation[3]);
	rc = props_copy_except(&all, props.data, props.len, ours, sizeof(ours));
	if (!rc)
		rc = props_put_bytes(&all, MQTT_PROP_RESPONSE_TOPIC, reply_topic,
				     strlen(reply_topic));
	if (!rc)
		rc = props_put_bytes(&all, MQTT_PROP_CORRELATION_DATA, r->correlation,
				     CORRELATION_LEN);
	if (!rc)
		rc = upstream_publish(up, topic, payload, qos, false,
				      (struct mqtt_bytes){all.data, all.len}, &token);
	buf_clear(&all);
	if (rc)
		goto fail;
	r->token = token;
	return r;
fail:
	unlink_req(h, r);
	free(r);
	return NULL;
}

void hub_cancel(struct hub *h, struct hub_req *r)
{
	/* Until Paho has answered the publish, the request stays so that tokens still pair up;
	 * only its callback goes. */
	if (r->acked) {
		unlink_req(h, r);
		free(r);
		return;
	}
	r->done = NULL;
	r->ack = NULL;
	r->user = NULL;
}
