/* web/server.h — the libwebsockets server: listener, static files, the /mqtt endpoint. */
#pragma once
#include <stddef.h>

#include <stdbool.h>
#include <stdint.h>

struct auth;
struct config;
struct hub;
struct retained;
struct sessions;
struct web_server;

/* The bridge side the web side calls into; all outlive the server. */
struct web_deps {
	struct sessions *sessions;
	struct hub *hub;
	struct retained *retained;
	uint64_t started_ms; /* CLOCK_MONOTONIC, for uptime */
	struct auth *auth;   /* the token table at start (a SIGHUP replaces it) */
};

/* What the composition root hears from the service thread. */
struct web_hooks {
	void (*wake)(void *user);   /* lws_cancel_service() was called: drain the evq */
	void (*tick)(void *user);   /* once a second */
	void (*signal)(void *user); /* the signal fd is readable */
	void *user;
};

/**
 * Startup. Listens on cfg->listen, serves cfg->static_dir at "/", MQTT over WebSocket at "/mqtt",
 * the REST API at "/api/v1" and metrics at "/metrics". @signal_fd (or -1) is watched for reading.
 * NULL when the listener cannot be set up (logged). @cfg and @deps' objects outlive the server.
 */
struct web_server *web_server_new(const struct config *cfg, const struct web_deps *deps,
				  const struct web_hooks *hooks, int signal_fd);

/** Pure. The bytes of room writers need before data handed to the web side (LWS_PRE). */
size_t web_write_headroom(void);

/** Service thread. Waits for and handles events once (libev, lws's foreign loop). */
void web_server_service(struct web_server *w);

/** Service thread. From now on new connections are refused. */
void web_server_begin_shutdown(struct web_server *w);

/** Service thread. True while API requests are being answered (a shutdown waits for them). */
bool web_server_busy(const struct web_server *w);

/**
 * Service thread. Makes @auth the token table (main keeps its reference): connections holding a
 * token that @auth still has move over to it, the others are closed. Returns how many closed.
 */
size_t web_server_set_auth(struct web_server *w, struct auth *auth);

/**
 * Service thread (SIGHUP). With TLS on, reads tls.cert_file and tls.key_file again and serves
 * them to new connections; open ones keep theirs (web_tls_reload). 0 when loaded; -ENOTSUP
 * without TLS; another negative errno when the files were refused (logged): the old pair stays.
 */
int web_server_reload_tls(struct web_server *w);

/** Any thread. Wakes the service thread (LWS_CALLBACK_EVENT_WAIT_CANCELLED). */
void web_server_wake(struct web_server *w);

/** Closes every connection and frees the server. NULL does nothing. */
void web_server_free(struct web_server *w);
