/*
 * bridge/paho/upstream.h — one Paho MQTTAsync client towards the broker (the Paho adapter).
 *
 * Requests are made on the service thread. Paho's answers arrive on Paho's threads, where the
 * callbacks only copy what they carry into a struct upstream_event and push it on the evq. The
 * service thread hands each event to upstream_dispatch(), which calls the owner's handler.
 * Properties cross this boundary as raw MQTT 5 property bytes (props.h), so what the browser sent
 * is what the broker gets, and the other way round.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "evq.h"
#include "msg.h"
#include "waker.h"

struct upstream;

/* Reason codes from here on are failures (MQTT 5 §2.4), and 3.1.1's SUBACK failure is this one. */
#define UPSTREAM_RC_FAILURE ((int)MQTT_RC_UNSPECIFIED)

/* Settings every upstream shares; owned by main, outlives every upstream. */
struct upstream_env {
	struct evq *evq;
	const char *url;                            /* broker URL as Paho takes it */
	const char *ca_file, *cert_file, *key_file; /* "" when unset */
	bool verify;
	int connect_timeout_s;
	/* broker.mqtt_version: the version the bridge's own links speak; 0: negotiate (5 first) */
	int mqtt_version;
	/* Bytes of messages a client may have waiting in the evq before QoS 0 ones are dropped. */
	size_t max_backlog;
	struct waker *waker; /* may be NULL */
};

struct upstream_connect {
	int version; /* 3, 4 or 5 */
	const char *client_id;
	bool clean_start;
	int keepalive_s;         /* 1..4 become 5: Paho checks its timers about once a second */
	struct mqtt_bytes props; /* v5 CONNECT properties, validated */
	bool will;
	const char *will_topic;
	struct mqtt_bytes will_payload;
	int will_qos;
	bool will_retain;
	struct mqtt_bytes will_props;
	const char *username; /* NULL: none */
	bool has_password;
	struct mqtt_bytes password;
};

enum upstream_event_kind {
	UPSTREAM_CONNECTED = 1,  /* code, session_present, props (the broker's CONNACK) */
	UPSTREAM_CONNECT_FAILED, /* code: the broker's return / reason code; 0: broker not
				  * reached (error says why) */
	UPSTREAM_MESSAGE,        /* msg */
	UPSTREAM_DONE,           /* token, failed, code, codes, props: a request was answered */
	UPSTREAM_DISCONNECTED,   /* code, props: the broker sent DISCONNECT (v5) */
	UPSTREAM_LOST,           /* the connection broke */
	UPSTREAM_CLOSED,         /* upstream_disconnect() finished */
};

struct upstream_event {
	struct evq_item item; /* item.kind is an enum upstream_event_kind */
	struct upstream *up;  /* kept alive until upstream_event_free() */
	int token;            /* DONE: what the request call returned in *token */
	bool failed;          /* DONE: Paho gave up without the broker's answer */
	bool session_present; /* CONNECTED */
	bool overflow;        /* MESSAGE: the owner's backlog is over env->max_backlog */
	/* CONNECT_FAILED: the CONNECT went out and the connection closed without a CONNACK (what
	 * some 3.1.1-only brokers answer to MQTT 5) */
	bool no_connack;
	uint8_t code;
	struct msg *msg;         /* MESSAGE: owned by the event; take it by setting it to NULL */
	struct mqtt_bytes props; /* v5 properties of the broker's packet */
	struct mqtt_bytes codes; /* DONE: reason codes per filter (SUBACK / v5 UNSUBACK) */
	/* CONNECT_FAILED: why, for the log (OpenSSL's reason for a TLS failure, else Paho's
	 * words); never NULL, "" when nothing was said. Points into data. */
	const char *error;
	uint8_t data[];
};

/* Who gets the events of an upstream; runs on the service thread. The handler owns @ev. */
typedef void (*upstream_handler)(void *owner, struct upstream_event *ev);

/**
 * Service thread. Creates the Paho client and starts connecting; an UPSTREAM_CONNECTED or
 * UPSTREAM_CONNECT_FAILED event follows. NULL when Paho refuses the options (logged).
 * Everything in @c is copied.
 */
/**
 * Once, before any upstream_new(). Paho formats every protocol event into its trace buffer by
 * default, under a lock all its threads share, even with no one reading the trace: that is
 * turned off (errors are still traced).
 */
void upstream_init(void);

struct upstream *upstream_new(const struct upstream_env *env, const struct upstream_connect *c,
			      upstream_handler handler, void *owner);

/** Service thread. Events from now on go to @handler/@owner; NULL handler: they are dropped. */
void upstream_set_owner(struct upstream *u, upstream_handler handler, void *owner);

/** Service thread. Calls the owner's handler for @ev, or frees it when there is no owner. */
void upstream_dispatch(struct upstream_event *ev);

/** Service thread. Frees @ev (and its msg) and lets go of its upstream. NULL does nothing. */
void upstream_event_free(struct upstream_event *ev);

/**
 * Service thread. Publishes; *@token identifies the UPSTREAM_DONE that follows (for QoS 0 too,
 * when the message has been written). NULL @token: no UPSTREAM_DONE follows (for a QoS 0
 * publish nobody waits for). 0, -ENOBUFS when Paho holds too many unwritten publishes already,
 * or another negative errno when Paho refused it.
 */
int upstream_publish(struct upstream *u, const char *topic, struct mqtt_bytes payload, int qos,
		     bool retain, struct mqtt_bytes props, int *token);

/** Service thread. SUBSCRIBE / UNSUBSCRIBE (@type) with the entries of a decoded packet. */
int upstream_subscribe(struct upstream *u, enum mqtt_type type, struct mqtt_bytes entries,
		       size_t count, struct mqtt_bytes props, int *token);

/**
 * Service thread. Sends DISCONNECT with @reason and @props (v5) after waiting up to @wait_ms for
 * outgoing QoS 1/2 flows to finish; UPSTREAM_CLOSED follows. -ENOTCONN when not connected.
 */
int upstream_disconnect(struct upstream *u, uint8_t reason, struct mqtt_bytes props, int wait_ms);

/** Service thread. How many QoS 0 messages were dropped for backlog since the last call. */
size_t upstream_take_dropped(struct upstream *u);

/**
 * Service thread. Destroys the Paho client (no event follows) and lets go of @u; its memory goes
 * when the last event holding it is freed. NULL does nothing.
 */
void upstream_free(struct upstream *u);
