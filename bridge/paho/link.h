/*
 * bridge/paho/link.h — a broker connection of the bridge's own that comes back by itself.
 *
 * The hub (REST, SSE, shared sessions) and the retained-message reader each keep one. A link
 * connects with a clean start and the version broker.mqtt_version names, or negotiates one
 * (MQTT 5, then 3.1.1, then 3.1, as the broker refuses each; the one that worked is kept). It
 * reconnects with exponential backoff (1 s doubling to 30 s) when the broker refuses, is
 * unreachable or drops it, and tells its owner when it is up (so the owner restores its
 * subscriptions) and when it is down (so the owner fails what was waiting). Service thread.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "upstream.h"

struct link;

struct link_config {
	const struct upstream_env *env;
	const char *client_id;
	const char *username; /* "" or NULL: none */
	const char *password; /* "" or NULL: none */
	int keepalive_s;
	const char *name; /* for logs: "hub", "retained" */
};

struct link_ops {
	/** The connection is up; @props are the broker's CONNACK properties. */
	void (*up)(void *user, struct mqtt_bytes props);
	/** The connection went down (it was up). Requests in flight will not be answered. */
	void (*down)(void *user);
	/** An attempt to connect failed (the connection was not up); may be NULL. */
	void (*failed)(void *user);
	/** A message from the broker; the callee owns @m. */
	void (*message)(void *user, struct msg *m);
	/** A request was answered (UPSTREAM_DONE); @ev is borrowed for the call. */
	void (*done)(void *user, const struct upstream_event *ev);
};

/** Starts connecting at once. NULL when out of memory. */
struct link *link_new(const struct link_config *cfg, const struct link_ops *ops, void *user);

/** The connection to make requests on, or NULL while it is down. */
struct upstream *link_upstream(const struct link *l);

bool link_is_up(const struct link *l);

/** An attempt to connect is under way (its answer has not come). */
bool link_is_connecting(const struct link *l);

/** The protocol level in use (or being tried): 5, 4 (3.1.1) or 3 (3.1). */
int link_version(const struct link *l);

/**
 * The longest keepalive the broker allows, learnt from its Server Keep Alive (the link then
 * connected again with it, as Paho cannot change it on a connection); 0 while it said none.
 */
int link_max_keepalive(const struct link *l);

/** How many times the connection came back after going down. */
uint64_t link_reconnects(const struct link *l);

/**
 * SUBSCRIBE (or UNSUBSCRIBE, @type) one filter with @options and, on MQTT 5, the Subscription
 * Identifier @sub_id. *@token (when not NULL) identifies the UPSTREAM_DONE of its answer. 0,
 * -ENOTCONN while down, or another negative errno (logged under the link's name).
 */
int link_subscribe(struct link *l, enum mqtt_type type, const char *filter, size_t len,
		   uint8_t options, uint32_t sub_id, int *token);

/** Call about once a second: starts the next attempt when its backoff has passed. */
void link_tick(struct link *l);

/** Disconnects cleanly (no further events reach the owner) and frees @l. NULL does nothing. */
void link_free(struct link *l);
