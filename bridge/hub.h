/*
 * bridge/hub.h — the bridge's own broker connection, shared by REST publishes, request/response
 * and every SSE stream (DESIGN §3, the hub).
 *
 * Subscriptions are counted per filter: a thousand streams of one filter are one subscription at
 * the broker. A message is matched once against the distinct filters and formatted once as an SSE
 * event (struct hub_event), which every receiving stream shares by reference. The last events
 * are kept for streams that resume with Last-Event-ID. Service thread only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "upstream.h"

struct hub;
struct hub_sub;
struct hub_req;

/* A message from the broker, formatted once for every receiver. Reference counted. */
struct hub_event {
	unsigned refs;
	uint64_t seq;
	uint64_t ts_ms;
	struct msg *msg;
	char *sse;      /* "id: <instance>-<seq>\ndata: <json>\n\n", after headroom bytes */
	size_t sse_len;
	void *block;    /* the allocation sse points into */
};

struct hub_config {
	const struct upstream_env *env;
	const char *client_id; /* "" : mqtt-web-bridge-<host>-<pid> */
	const char *username;
	const char *password;
	int keepalive_s;
	size_t replay_events; /* sse.replay */
	size_t replay_bytes;  /* bounds the replay memory too */
	size_t headroom;      /* free bytes before each event's text, for the writer (LWS_PRE) */
};

/** The receiver of a subscription's events; @ev is borrowed (hub_event_ref to keep it). */
typedef void (*hub_deliver_fn)(void *user, struct hub_event *ev);

/*
 * How a publish or request ended. HUB_OK: acknowledged (a request: answered, @reply set).
 * HUB_REFUSED: the broker answered with @reason >= 0x80. HUB_DOWN: the broker connection went
 * down first. HUB_FAILED: it could not be sent.
 */
enum hub_status {
	HUB_OK = 0,
	HUB_REFUSED,
	HUB_DOWN,
	HUB_FAILED,
};

/** The end of a publish or request; after it the request handle is gone. @reply is borrowed. */
typedef void (*hub_done_fn)(void *user, enum hub_status status, uint8_t reason,
			    const struct msg *reply);

struct hub_stats {
	bool connected;
	uint64_t reconnects;
	uint64_t messages_in;      /* from the broker */
	uint64_t events_delivered; /* event x stream */
	uint64_t publishes;        /* REST publishes acknowledged */
	size_t filters;            /* distinct broker subscriptions */
	size_t subscribers;
	size_t pending;            /* publishes and requests waiting */
};

/** Starts the connection. NULL when out of memory. */
struct hub *hub_new(const struct hub_config *cfg);

/** Disconnects cleanly; pending requests end with HUB_DOWN; subscribers must be gone. */
void hub_free(struct hub *h);

bool hub_connected(const struct hub *h);

/** The client id of the hub's broker connection. */
const char *hub_client_id(const struct hub *h);

/** The instance part of event ids: random per process, so ids from another instance differ. */
const char *hub_instance(const struct hub *h);

/** About once a second: reconnect backoff. */
void hub_tick(struct hub *h);

void hub_get_stats(const struct hub *h, struct hub_stats *out);

/**
 * Subscribes @fn/@user to the valid filters @filters[0..n) (copied). Events arrive from the next
 * message on; each message at most once per subscriber. NULL when out of memory.
 */
struct hub_sub *hub_subscribe(struct hub *h, const char *const *filters, size_t n,
			      hub_deliver_fn fn, void *user);

/** Ends a subscription; no event reaches it afterwards. */
void hub_unsubscribe(struct hub *h, struct hub_sub *s);

/**
 * Delivers to @s the kept events after @last_event_id that match its filters, oldest first.
 * 0: resumed without a gap. -ERANGE: resumed, but events between were no longer kept.
 * -ENOENT: the id is not one of this instance's (or malformed): nothing is replayed.
 */
int hub_replay(struct hub *h, struct hub_sub *s, const char *last_event_id);

/**
 * Publishes; @done is called once when the broker acknowledged it (QoS 0: when it was handed to
 * the connection) or it failed. Returns the handle for hub_cancel(), or NULL when the broker is
 * down (then @done is not called). Everything is copied.
 */
struct hub_req *hub_publish(struct hub *h, const char *topic, struct mqtt_bytes payload, int qos,
			    bool retain, struct mqtt_bytes props, hub_done_fn done, void *user);

/**
 * MQTT 5 request/response: publishes with a Response Topic of the hub's and random Correlation
 * Data (added to @props), and calls @done with the first reply. NULL when the broker is down,
 * or -ENOTSUP-like: when the broker only speaks 3.1.1 (check hub_can_request()).
 */
struct hub_req *hub_request(struct hub *h, const char *topic, struct mqtt_bytes payload, int qos,
			    struct mqtt_bytes props, hub_done_fn done, void *user);

/** Request/response needs MQTT 5 at the broker. */
bool hub_can_request(const struct hub *h);

/** Forgets @r: @done will not be called. */
void hub_cancel(struct hub *h, struct hub_req *r);

void hub_event_ref(struct hub_event *ev);
void hub_event_unref(struct hub_event *ev);
