/*
 * web/http.h — one HTTP request on the API mounts (/api/v1, /metrics) and its answer.
 *
 * The request is read in LWS_CALLBACK_HTTP (+ body callbacks), handed to a handler (rest.c,
 * sse.c), which answers at once or later (when the broker acknowledged). Answers are written in
 * LWS_CALLBACK_HTTP_WRITEABLE: the headers in one callback, the body in the next. Service thread.
 */
#pragma once
#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "web.h"

enum http_method {
	HTTP_OTHER = 0,
	HTTP_GET,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_HEAD,
};

#define HTTP_MAX_HEADERS 8
/* Room for one query argument ("name=value") or header value, a little over what a token's
 * secret or a topic filter of the API ever needs. */
#define HTTP_ARG_MAX 1100

struct sse_stream;
struct rest_job;

struct http_conn {
	struct lws *wsi;
	struct web_ctx *ctx;
	enum http_method method;
	bool is_metrics; /* the /metrics mount, not /api/v1 */
	char *path;      /* after the mount point, percent-decoded by lws */
	char origin[256];
	char content_type[128];
	bool has_origin;
	bool accept_json;
	bool expects_body;
	struct buf body;
	lws_usec_t started;
	/* The request's token when auth is on: @token is an entry of @auth, a reference this
	 * request holds so that a reload cannot free the token while the request (or stream)
	 * lasts. Both NULL when auth is off, or for /health. */
	struct auth *auth;
	const struct auth_token *token;

	/* The answer. */
	int status;
	char resp_type[128];
	struct buf resp; /* LWS_PRE bytes of room, then the body */
	struct {
		const char *name; /* with its colon, e.g. "retry-after:" */
		char value[96];
	} headers[HTTP_MAX_HEADERS];
	int nheaders;
	bool answered; /* an answer is ready (or being written) */
	bool headers_sent;
	bool close_after;               /* the request body was not read: no keep-alive */
	bool rx_paused;                 /* not read while the answer waits (see route()) */
	unsigned long long body_unread; /* of the declared Content-Length, not yet received */
	bool lingering; /* answered and closing: reading the rest of the body to drop it */

	/* Work waiting for the broker, and its deadline. */
	struct rest_job *job;
	lws_sorted_usec_list_t sul;
	struct sse_stream *sse;
};

/** Adds a response header (@name with its colon). Silently ignored beyond HTTP_MAX_HEADERS. */
void http_header(struct http_conn *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Asks for LWS_CALLBACK_HTTP_WRITEABLE (reading the connection again if it was paused). */
void http_want_write(struct http_conn *c);

/** Nothing to write until http_want_write(): the connection is not read meanwhile. */
void http_pause_rx(struct http_conn *c);

/** Answers with @body (copied) as @type. */
void http_respond(struct http_conn *c, int status, const char *type, const void *body, size_t len);

/** Answers {"error": {"code": @code, "message": ...}} with @status. */
void http_error(struct http_conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Answers with the JSON text of @json (a json_t *, reference stolen). */
void http_json(struct http_conn *c, int status, void *json);

/** 503 broker_unavailable with Retry-After. */
void http_broker_down(struct http_conn *c);

/** May this request publish to @topic (a valid topic name)? Always, when auth is off. */
bool http_may_publish(struct http_conn *c, const char *topic);

/** May this request read @filter (a valid filter or topic name)? Always, when auth is off. */
bool http_may_subscribe(struct http_conn *c, const char *filter);

/** Answers 403 forbidden: the token may not @action (e.g. "publish to") @what. */
void http_forbidden(struct http_conn *c, const char *action, const char *what);

/** The value of query argument @name into @out (decoded by lws); false when absent. */
bool http_arg(struct http_conn *c, const char *name, char *out, size_t cap);

/**
 * Checks that every query argument is one of @known (NULL-terminated) or access_token (read
 * for every request); answers 400 invalid_parameter and returns false when one is not.
 */
bool http_args_known(struct http_conn *c, const char *const *known);

/** The API protocol for the mounts (protocols[] entry). */
struct lws_protocols web_http_protocol(void);
