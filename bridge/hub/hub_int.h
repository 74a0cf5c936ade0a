/*
 * bridge/hub/hub_int.h — what hub.c, hub_filter.c, hub_message.c and hub_req.c share; for no
 * other module.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "markers.h"

#define REPLY_SUB_ID 1
/* The hub's barrier markers: "<REPLY_PREFIX><instance>" and this (markers.h). */
#define BARRIER_SUFFIX  "/barrier"
#define CORRELATION_LEN 16
/* The instance part of event ids: this many random bytes, in hex. */
#define INSTANCE_BYTES 8
#define INSTANCE_SIZE  (2 * INSTANCE_BYTES + 1)
/* Room for the reply prefix, and for a topic or filter under it. */
#define REPLY_PREFIX_SIZE 64
#define OWN_TOPIC_SIZE    96
_Static_assert(sizeof REPLY_PREFIX + 2 * INSTANCE_BYTES <= REPLY_PREFIX_SIZE,
	       "the reply prefix fits");
/* Where Retain Handling sits in the subscription options byte (MQTT 5 §3.8.3.1). */
#define SUBOPT_RETAIN_HANDLING_SHIFT 4
/* Live subscriptions: retain as published, no retained messages on subscribe (streams ask for
 * those with ?retained=true, browsers get them through retained.h). */
#define LIVE_OPTIONS                                                                               \
	(MQTT_SUBOPT_RETAIN_AS_PUB | (MQTT_RETAIN_HANDLING_MAX << SUBOPT_RETAIN_HANDLING_SHIFT))
/* Streams want the publisher's QoS in their events. */
#define STREAM_QOS MQTT_QOS_MAX
/* A filter whose last stream left stays subscribed this long, so that a stream that reconnects
 * (EventSource retries after 2 s) finds what came in between in the replay ring. */
#define FILTER_LINGER_MS 60000
/* A filter only browsers used stays subscribed this long: a dashboard that reloads finds it. */
#define MEMBER_LINGER_MS 5000

struct hub_filter {
	char *text; /* as subscribed at the broker, "$share/G/F" included */
	size_t len;
	const char *match; /* what topics are matched against: F of a shared subscription */
	size_t match_len;
	bool shared;
	bool had_stream; /* events are formatted and kept for resume; the long linger applies */
	uint32_t sub_id;
	uint64_t idle_since_ms; /* 0 while a stream or member uses it */
	/* At the broker: the active subscription's QoS and grant, and the SUBSCRIBE in flight. */
	bool active;
	uint8_t up_qos;
	uint8_t granted;
	int token; /* 0: none in flight */
	uint8_t asking_qos;
	struct hub_sub **subs;
	size_t nsubs, cap;
	struct hub_member **members;
	size_t nmembers, mcap;
	size_t next_member; /* shared: the member the next message goes to */
};

struct hub_sub {
	hub_deliver_fn fn;
	void *user;
	struct hub_filter **filters;
	size_t n;
	uint64_t last_seq; /* the last event delivered: at most once per message */
};

enum req_kind {
	REQ_PUBLISH,
	REQ_REQUEST,
};

struct hub_req {
	struct hub_req *prev, *next;
	enum req_kind kind;
	int token;
	bool acked;
	uint8_t correlation[CORRELATION_LEN];
	hub_done_fn done;
	hub_ack_fn ack; /* instead of done, for tagged publishes */
	uint32_t tag;
	void *user;
};

struct hub {
	struct link *link;
	char instance[INSTANCE_SIZE];
	char *client_id;
	char reply_prefix[REPLY_PREFIX_SIZE];
	char barrier_topic
	    [OWN_TOPIC_SIZE]; /* under reply_prefix: the hub's own markers (barrier.h) */
	struct barrier *barrier;
	struct buf broker_props;
	/* The highest QoS the broker takes a publish at: its v5 CONNACK's Maximum QoS, or over
	 * 3.1.x what it grants a QoS 2 SUBSCRIBE (RabbitMQ 3.x grants 1, and answers a QoS 2
	 * PUBLISH with a PUBACK that Paho would wait past for ever). */
	uint8_t max_qos;
	int qos_probe; /* that SUBSCRIBE's token, until its SUBACK */
	void (*state_fn)(void *user, bool up);
	void *state_user;
	struct hmap *by_text;
	struct filtertree *tree;     /* every filter, under what it matches */
	struct hub_filter **matched; /* scratch: the filters a message matched */
	size_t nmatched, matched_cap;
	struct hub_filter **filters;
	size_t nfilters, cap;
	uint32_t next_sub_id;
	struct hub_req *reqs;
	size_t nreqs;
	size_t nsubs;
	uint64_t seq;
	/* The replay ring: the last events, oldest at ring[head]. */
	struct hub_event **ring;
	size_t ring_cap, ring_head, ring_count, ring_bytes, ring_max_bytes;
	size_t headroom;
	struct hub_stats stats;
};

/* hub_filter.c: the broker subscription of each distinct filter. */

/** How long @f stays subscribed once nobody uses it. */
uint64_t hub_filter_linger_ms(const struct hub_filter *f);

/**
 * Subscribes @f at the broker when it is not, or at a lower QoS than wanted. -EIO when the
 * SUBSCRIBE could not be made.
 */
int hub_filter_subscribe(struct hub *h, struct hub_filter *f);

/** The broker answered @f's SUBSCRIBE with @code: members waiting for it get their grant. */
void hub_filter_answered(struct hub *h, struct hub_filter *f, uint8_t code);

/** The filter whose SUBSCRIBE has @token, or NULL. */
struct hub_filter *hub_filter_by_token(struct hub *h, int token);

/** Unsubscribes and frees @f. */
void hub_filter_free(struct hub *h, struct hub_filter *f);

/* hub_message.c: messages from the broker to streams and receivers. */

/** Takes @m (the hub owns it from here) and hands it to everyone it is for. */
void hub_message_in(struct hub *h, struct msg *m);

/* hub_req.c: publishes and requests waiting for the broker. */

/** The oldest unanswered request of @token, or NULL. */
struct hub_req *hub_req_find(struct hub *h, int token);

/** Ends @r (freed before its callback runs); @reply is borrowed. */
void hub_req_finish(struct hub *h, struct hub_req *r, enum hub_status status, uint8_t reason,
		    const struct msg *reply);

/** Ends every request with @status. */
void hub_req_fail_all(struct hub *h, enum hub_status status);

/** @m is on the hub's reply topic (then true): the request it answers, if any, ends with it. */
bool hub_req_reply(struct hub *h, const struct msg *m);
