/* web/sse.h — GET /api/v1/stream: Server-Sent Events of MQTT messages, from the hub. */
#pragma once

#include "http.h"

/** Validates the stream request and answers 200 text/event-stream, or an error. */
void sse_start(struct http_conn *c);

/** The headers are out: the stream begins (retry line, replay, retained values). */
int sse_after_headers(struct http_conn *c);

/** Writes the next queued event. */
int sse_writeable(struct http_conn *c);

/** The connection is going away. */
void sse_close(struct http_conn *c);

/**
 * ctx->auth was replaced (SIGHUP): each stream whose token is still there with an ACL that
 * still covers its filters moves to the new table; the others are closed. Returns how many.
 */
size_t sse_auth_changed(struct web_ctx *ctx);

/**
 * Once a second: streams whose client closed its end (or wrote to it) are closed. Streams do
 * not read their connection, see sse_after_headers().
 */
void sse_check_peers(struct web_ctx *ctx);

/** Shutting down: every stream is closed. */
void sse_shutdown(struct web_ctx *ctx);
