/* web/server.h — the libwebsockets server: listener, static files, the /mqtt endpoint. */
#pragma once
#include <stddef.h>

struct config;
struct sessions;
struct web_server;

/* What the composition root hears from the service thread. */
struct web_hooks {
	void (*wake)(void *user);   /* lws_cancel_service() was called: drain the evq */
	void (*tick)(void *user);   /* once a second */
	void (*signal)(void *user); /* the signal fd is readable */
	void *user;
};

/**
 * Startup. Listens on cfg->listen, serves cfg->static_dir at "/" and MQTT over WebSocket at
 * "/mqtt" with sessions from @sessions. @signal_fd (or -1) is watched for reading. NULL when the
 * listener cannot be set up (logged). @cfg and @sessions must outlive the server.
 */
struct web_server *web_server_new(const struct config *cfg, struct sessions *sessions,
				  const struct web_hooks *hooks, int signal_fd);

/** Service thread. Waits for and handles events once. 0, or negative when lws failed. */
int web_server_service(struct web_server *w);

/** Service thread. From now on new connections are refused. */
void web_server_begin_shutdown(struct web_server *w);

/** Any thread. Wakes the service thread (LWS_CALLBACK_EVENT_WAIT_CANCELLED). */
void web_server_wake(struct web_server *w);

/** Closes every connection and frees the server. NULL does nothing. */
void web_server_free(struct web_server *w);
