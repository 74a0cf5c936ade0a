/*
 * bridge/hub/hub.h — the bridge's own broker connection, shared by REST publishes, request/response,
 * every SSE stream and every shared MQTT session (doc/design.md §3, the hub).
 *
 * Subscriptions are counted per filter: a thousand streams or browsers of one filter are one
 * subscription at the broker, at the highest QoS any of them asked for. A message is matched once
 * against the distinct filters; SSE streams get it formatted once as an event (struct hub_event),
 * MQTT receivers get the event with the list of their own subscriptions it matched, once per
 * receiver, and share its PUBLISH encodings. The last events of SSE filters are kept for streams
 * that resume with Last-Event-ID. Service thread only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "msg.h"
#include "upstream.h"

struct hub;
struct hub_sub;
struct hub_req;

/* PUBLISH encodings an event keeps: by protocol (3.1.1 or 5), retain flag and QoS. */
#define HUB_EVENT_ENCODINGS 12

/* A message from the broker, formatted once for every receiver. Reference counted. */
struct hub_event {
	unsigned refs;
	uint64_t seq;
	uint64_t ts_ms;
	/* retain: as the publisher set it (subscriptions are retain-as-published) */
	struct msg *msg;
	/* "id: <instance>-<seq>\ndata: <json>\n\n", after headroom bytes; NULL when no stream's
	 * filter matched */
	char *sse;
	size_t sse_len;
	void *block; /* the allocation sse points into */
	/* The PUBLISH packet as MQTT receivers without per-browser properties get it, encoded by
	 * the first that needed it (packet id 1 for QoS 1/2: the writer patches its own in). */
	struct buf pub[HUB_EVENT_ENCODINGS];
};

/*
 * MQTT receivers (shared sessions). A receiver has members, one per filter it subscribed to,
 * embedded in the owner's own records. The hub fills the fields marked "hub's".
 */
struct hub_member;

struct hub_receiver {
	/** A message matched @matches (chained by next_match): one call per message and receiver. */
	void (*deliver)(struct hub_receiver *r, struct hub_event *ev, struct hub_member *matches);
	/**
	 * The broker answered the subscription @m waited for: @code is the QoS granted to @m
	 * (the lower of what it asked and what the broker granted) or a failure code >= 0x80,
	 * after which @m is no longer joined.
	 */
	void (*granted)(struct hub_receiver *r, struct hub_member *m, uint8_t code);
	/* hub's */
	uint64_t seq;
	struct hub_member *matches;
	struct hub_receiver *next_touched;
};

struct hub_member {
	struct hub_receiver *rcv; /* set by the owner */
	uint8_t qos;              /* set by the owner: the QoS it asks for */
	/* hub's */
	bool waiting; /* for the broker's SUBACK */
	struct hub_filter *f;
	size_t index; /* in f->members */
	struct hub_member *next_match;
};

/* hub_join(): the broker's answer is awaited; receiver->granted() follows. */
#define HUB_JOIN_WAIT 0x100

struct hub_config {
	/* client_id "": mqtt-web-bridge-<host>-<pid>; the hub names the link itself */
	struct link_config link;
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
	size_t members;           /* MQTT subscriptions of shared sessions */
	uint64_t mqtt_deliveries; /* message x MQTT receiver */
	uint64_t reconnects;
	uint64_t messages_in;      /* from the broker */
	uint64_t events_delivered; /* event x stream */
	uint64_t publishes;        /* REST publishes acknowledged */
	size_t filters;            /* distinct broker subscriptions */
	size_t subscribers;
	size_t pending;         /* publishes and requests waiting */
	int mqtt_version;       /* of the broker link: 5, 4 (3.1.1) or 3 (3.1); 0 while down */
	uint64_t props_dropped; /* publishes whose v5 properties a 3.1.x broker cannot carry */
};

/** Starts the connection. NULL when out of memory. */
struct hub *hub_new(const struct hub_config *cfg);

/**
 * @fn is called with @up true when the broker connection comes up, false when it goes down
 * (before pending requests end with HUB_DOWN, so that shared sessions end as a broker outage
 * would end them) or an attempt to connect fails.
 */
void hub_set_state_fn(struct hub *h, void (*fn)(void *user, bool up), void *user);

/** An attempt to connect to the broker is under way. */
bool hub_connecting(const struct hub *h);

/**
 * The broker's CONNACK properties of the current connection (empty while down or on 3.1.1);
 * valid until the next call into the hub.
 */
struct mqtt_bytes hub_broker_props(const struct hub *h);

/** The broker's longest allowed keepalive (Server Keep Alive), 0 when it set none. */
int hub_max_keepalive(const struct hub *h);

/** The protocol level of the broker connection: 5, or 4 after the broker refused 5. */
int hub_version(const struct hub *h);

struct barrier_wait;

/**
 * @fn(@user) once the hub has received every message the broker sent it before this call (a
 * marker it sends itself has come back; see barrier.h), or the link went down. NULL when that
 * cannot be waited for (the link is down, out of memory): go on at once. Until @fn runs, the
 * caller may hub_barrier_cancel() the wait (not from inside @fn).
 */
struct barrier_wait *hub_barrier(struct hub *h, void (*fn)(void *user), void *user);
void hub_barrier_cancel(struct hub *h, struct barrier_wait *w);

/** The highest QoS the broker takes: its v5 CONNACK's Maximum QoS, or over 3.1.x what it granted
 * a QoS 2 SUBSCRIBE (2 until known). */
int hub_max_qos(const struct hub *h);

/**
 * Joins @m (rcv and qos set by the caller) to the valid filter @filter[0..len), a shared
 * subscription "$share/G/F" included. The broker is subscribed when the filter is new to the
 * bridge, and again when @m asks for a higher QoS than it has. Returns the QoS granted to @m at
 * once (0..2), HUB_JOIN_WAIT when the broker's answer is awaited (then rcv->granted() follows,
 * unless hub_leave() came first), -ENOTCONN while the broker is down, -ENOMEM.
 */
int hub_join(struct hub *h, struct hub_member *m, const char *filter, size_t len);

/** @m leaves its filter (nothing after this reaches it); a filter left by all lingers. */
void hub_leave(struct hub *h, struct hub_member *m);

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

/** How a tagged publish ended (hub_publish_tagged); @reason is the broker's code. */
typedef void (*hub_ack_fn)(void *user, uint32_t tag, enum hub_status status, uint8_t reason);

/**
 * As hub_publish(), for a browser's PUBLISH: @ack gets @tag back. NULL @ack: nothing is told
 * (QoS 0). NULL when the broker is down or the publish could not be made.
 */
struct hub_req *hub_publish_tagged(struct hub *h, const char *topic, struct mqtt_bytes payload,
				   int qos, bool retain, struct mqtt_bytes props, hub_ack_fn ack,
				   void *user, uint32_t tag);

/**
 * A QoS 0 publish nobody waits for (a browser's): handed to the connection, nothing follows.
 * 0, -ENOTCONN while the broker is down, or another negative errno.
 */
int hub_publish_qos0(struct hub *h, const char *topic, struct mqtt_bytes payload, bool retain,
		     struct mqtt_bytes props);

/** Request/response needs MQTT 5 at the broker. */
bool hub_can_request(const struct hub *h);

/** Forgets @r: @done will not be called. */
void hub_cancel(struct hub *h, struct hub_req *r);

void hub_event_ref(struct hub_event *ev);
void hub_event_unref(struct hub_event *ev);
