/*
 * bridge/paho/upstream_sub.c — SUBSCRIBE and UNSUBSCRIBE through Paho, and the broker's answers
 * as UPSTREAM_DONE events with a reason code per filter.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "upstream_int.h"

/* A SUBSCRIBE or UNSUBSCRIBE in flight: Paho's 3.1.1 answer does not say how many codes it has. */
struct sub_req {
	struct upstream *u;
	int count;
};

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
	upstream_push_done(req->u, token, !codes, 0, props, codes, codes ? (size_t)n : 0);
	free(codes);
	upstream_release(req->u);
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
	bool answered =
	    d->reasonCode >= UPSTREAM_RC_FAILURE && d->reasonCode <= UINT8_MAX && req->count == 1;
	uint8_t code = answered ? (uint8_t)d->reasonCode : 0;

	upstream_push_done(req->u, d->token, !answered, code, &d->properties, &code,
			   answered ? 1 : 0);
	upstream_release(req->u);
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

	upstream_push_done(req->u, d->token, false, 0, NULL, NULL, 0);
	upstream_release(req->u);
	free(req);
}

static void on_sub_failed3(void *ctx, MQTTAsync_failureData *d)
{
	struct sub_req *req = ctx;
	/* 3.1.1: a one-filter SUBSCRIBE the broker refused (0x80) comes here. */
	uint8_t code = UPSTREAM_RC_FAILURE;
	bool answered = d->code == UPSTREAM_RC_FAILURE && req->count == 1;

	upstream_push_done(req->u, d->token, !answered, code, NULL, &code, answered ? 1 : 0);
	upstream_release(req->u);
	free(req);
}

/*
 * Paho's arrays for up to @count @entries: the filters (copied), their QoS and (SUBSCRIBE)
 * their v5 options. 0 or -ENOMEM; the caller frees the filters either way.
 */
static int read_entries(struct mqtt_bytes entries, enum mqtt_type type, size_t count,
			char **filters, int *qos, MQTTSubscribe_options *opts)
{
	struct mqtt_bytes cursor = entries;
	struct codec_entry e;
	size_t i = 0;

	while (i < count && codec_next_entry(&cursor, type, &e)) {
		MQTTSubscribe_options o = MQTTSubscribe_options_initializer;
		filters[i] = strndup((const char *)e.filter.data, e.filter.len);
		if (!filters[i])
			return -ENOMEM;
		qos[i] = e.options & MQTT_SUBOPT_QOS_MASK;
		o.noLocal = (e.options & MQTT_SUBOPT_NO_LOCAL) ? 1 : 0;
		o.retainAsPublished = (e.options & MQTT_SUBOPT_RETAIN_AS_PUB) ? 1 : 0;
		o.retainHandling = (unsigned char)MQTT_SUBOPT_RETAIN_HANDLING(e.options);
		opts[i] = o;
		i++;
	}
	return 0;
}

int upstream_subscribe(struct upstream *u, enum mqtt_type type, struct mqtt_bytes entries,
		       size_t count, struct mqtt_bytes props, int *token)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTSubscribe_options *opts = NULL;
	struct sub_req *req;
	char **filters;
	int *qos, rc = -ENOMEM;

	filters = calloc(count, sizeof(*filters));
	qos = calloc(count, sizeof(*qos));
	opts = calloc(count, sizeof(*opts));
	req = malloc(sizeof(*req));
	if (!filters || !qos || !opts || !req ||
	    read_entries(entries, type, count, filters, qos, opts))
		goto out;
	req->u = u;
	req->count = (int)count;
	ro.context = req;
	if (u->version == MQTT_V5) {
		if (upstream_props_to_paho(props, NULL, 0, &ro.properties))
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
