/*
 * bridge/session/session.h — one browser's MQTT session: the state machine between the bytes of
 * its WebSocket and the broker (doc/design.md §2, the session modes). A session is shared (served
 * from the hub's broker connection, shared.c) when it allows it, else dedicated (its own upstream
 * Paho client).
 *
 * Everything here runs on the service thread. A session lives from the browser's first bytes
 * until both sides are done: the browser connection may go first (then the session still closes
 * its upstream, so the broker publishes the will, and keeps unacknowledged messages of a
 * persistent session in the store), or the upstream may go first (then the browser is closed).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

struct auth;
struct hub;
struct retained;
struct session;
struct sessions;

/* How a session reaches its browser connection (web/ implements it; service thread). */
struct session_io {
	/** Queue whole packets for the browser. 0, or -ENOBUFS: over the hard limit, not queued. */
	int (*write)(void *conn, const uint8_t *data, size_t len);
	/** Bytes queued and not yet written. */
	size_t (*queued)(void *conn);
	/** End the connection after what is queued; the session gets session_detach() later. */
	void (*close)(void *conn);
	/** Stop (true) or restart reading from the browser. */
	void (*pause)(void *conn, bool paused);
	/** The browser must send something every @ms at least, else it is gone (0: no limit). */
	void (*deadline)(void *conn, uint32_t ms);
};

struct sessions_config {
	const struct upstream_env *env;
	size_t max_packet_bytes;  /* limits.max_packet_bytes */
	size_t max_queue_bytes;   /* limits.max_queue_bytes: per browser, held + queued */
	size_t max_sessions;      /* bounds the store of persistent sessions */
	uint32_t connect_wait_ms; /* the first packet (CONNECT) must come within this */
	size_t max_subscriptions; /* limits.max_subscriptions: distinct filters; 0: no limit */
	/* mqtt_credentials "bridge": the CONNECT password is a token of the table given with
	 * sessions_set_auth(), its ACL applies, and the upstream logs in with these instead
	 * ("" is none; borrowed, they outlive the sessions). */
	bool bridge_credentials;
	const char *broker_username;
	const char *broker_password;
	/* Shared sessions: mqtt_sessions "auto" gives them to sessions that allow it, served from
	 * @hub, with retained messages read through @retained (both borrowed; NULL hub: none).
	 * @auth_none: auth.mode "none", where a CONNECT without credentials may be shared. */
	bool shared_sessions;
	bool auth_none;
	struct hub *hub;
	struct retained *retained;
};

/* Counters for /metrics and logs. */
struct sessions_stats {
	uint64_t sessions_total;
	uint64_t sessions_active;
	uint64_t sessions_shared;    /* connected and served from the hub */
	uint64_t sessions_dedicated; /* with their own upstream client */
	uint64_t shared_held;        /* live messages held for retained ones, to shared browsers */
	uint64_t messages_to_browser;
	uint64_t messages_from_browser;
	uint64_t bytes_to_browser; /* MQTT packet bytes */
	uint64_t bytes_from_browser;
	uint64_t qos0_dropped; /* slow browser or backlog */
	/* shared browsers' QoS 0 publishes the hub could not take */
	uint64_t qos0_upstream_dropped;
	uint64_t qos12_lost; /* could not be kept for a persistent session */
	uint64_t protocol_errors;
	uint64_t slow_disconnects;
	uint64_t stored_sessions;
	uint64_t denied_publish;   /* PUBLISHes outside the token's ACL, not passed on */
	uint64_t denied_subscribe; /* filters outside the token's ACL, refused */
	uint64_t quota_refused;    /* filters over max_subscriptions, refused */
	/* MQTT 5 properties of dedicated sessions' packets that their 3.1.x broker client could not
	 * carry (publishes, wills, SUBSCRIBEs, DISCONNECTs) */
	uint64_t props_dropped;
};

/** NULL when out of memory. */
struct sessions *sessions_new(const struct sessions_config *cfg);

/** Ends every attached session as a server shutting down (v5: DISCONNECT 0x8B). */
void sessions_shutdown(struct sessions *ss);

/** Sessions alive (attached, or still closing their upstream). */
size_t sessions_count(const struct sessions *ss);

/** Drops stored sessions that expired; call now and then. */
void sessions_expire(struct sessions *ss);

/** About once a second: retained reads of shared sessions that take too long are cut short. */
void sessions_tick(struct sessions *ss);

/**
 * The hub's broker connection came up (@up), or went down or failed to come up. Shared CONNECTs
 * that waited for it get their CONNACK (or "server unavailable"); going down, shared sessions end
 * as a broker outage ends a broker's own (v5: DISCONNECT 0x89), so their clients reconnect and
 * subscribe again.
 */
void sessions_broker_state(struct sessions *ss, bool up);

void sessions_get_stats(const struct sessions *ss, struct sessions_stats *out);

/**
 * The token table that CONNECT passwords are looked up in (bridge credentials); @ss takes a
 * reference, the caller keeps its own. Connected sessions move to @table (session_reauth());
 * one whose token is gone from it is closed (v5: DISCONNECT 0x87 first); returns how many were.
 * NULL: no table, every token is unknown. For start-up and SIGHUP.
 */
size_t sessions_set_auth(struct sessions *ss, struct auth *table);

/** Frees what is left; call after sessions_count() is 0 or when giving up on it. */
void sessions_free(struct sessions *ss);

/**
 * A browser connected. @peer is for logs. The session calls @io with @conn; it asks for the
 * CONNECT deadline at once. NULL when out of memory (refuse the connection).
 */
struct session *session_new(struct sessions *ss, const struct session_io *io, void *conn,
			    const char *peer);

/**
 * Bytes from the browser, in order, frames already unwrapped. Complete packets are handled
 * now; a partial one is kept (never beyond max_packet_bytes). 0, or -EPROTO when the session
 * has closed the connection for a protocol error (it says why, and gets detached later).
 */
int session_feed(struct session *s, const uint8_t *data, size_t len);

/**
 * The browser connection is gone; @s must not be used by the caller afterwards. Unless the
 * browser sent DISCONNECT, this is an abrupt end: the upstream ends so that the broker
 * publishes the will. @s frees itself when its upstream is done.
 */
void session_detach(struct session *s);

/**
 * Moves @s to the token of the same name and secret in @table, taking a reference on @table
 * and dropping the one on its old table. false: that token is not in @table (or @table is
 * NULL); @s is left as it was, for the caller to close. A session without a token (not
 * connected yet, or passthrough credentials) stays as it is: true.
 */
bool session_reauth(struct session *s, struct auth *table);
