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

/** Shutting down: every stream is closed. */
void sse_shutdown(struct web_ctx *ctx);
