/*
 * bridge/hub/jsonmsg.h — MQTT messages as JSON, both ways: the body of POST /api/v1/publish, the
 * data of SSE events and the envelopes of GET /api/v1/topics.
 *
 * Properties in JSON (a subset of MQTT 5's, with the same meaning):
 *   "content_type": "text",            "response_topic": "a/topic",
 *   "message_expiry_interval": 60,     "payload_format_indicator": 0 | 1,
 *   "correlation_data": "text"  or  "correlation_data_base64": "AAEC",
 *   "user_properties": [["key", "value"], ...]   (input also accepts {"key": "value", ...})
 * Subscription Identifiers and Topic Aliases belong to a connection and are never shown.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "msg.h"

/* One message of a publish request; every pointer is owned by the request. */
struct jsonmsg {
	char *topic;      /* a valid topic name, NUL-terminated */
	uint8_t *payload; /* may be NULL when payload_len is 0 */
	size_t payload_len;
	int qos;
	bool retain;
	uint8_t *props; /* MQTT 5 property bytes (props.h), validated for PUBLISH */
	size_t props_len;
};

struct jsonmsg_batch {
	struct jsonmsg *msgs;
	size_t count;
	bool is_array; /* the body was an array: the answer is one too */
};

struct jsonmsg_error {
	long index;       /* which message (0-based), -1 for the body as a whole */
	const char *code; /* "invalid_json", "invalid_topic", "invalid_qos", "invalid_payload",
	                     "invalid_properties", "invalid_message", "too_many_messages" */
	char message[160];
};

/**
 * Pure. Parses a publish body: one message object or an array of them (at most @max_messages).
 * A message: "topic" (required), "payload" (a string is sent as its UTF-8 text; any other JSON
 * value as its compact JSON text) or "payload_base64", "qos" (0, 1, 2; default 0), "retain"
 * (default false), "properties" (above). Unknown fields are refused, so typos are not ignored.
 * 0 with @out filled (free with jsonmsg_batch_clear), or -EINVAL with @err, or -ENOMEM.
 */
int jsonmsg_parse(const char *json, size_t len, size_t max_messages, struct jsonmsg_batch *out,
		  struct jsonmsg_error *err);

/** Frees what @b holds and empties it. */
void jsonmsg_batch_clear(struct jsonmsg_batch *b);

/**
 * Pure. Appends the JSON object of a received message:
 * {"topic", "payload" (valid UTF-8 text) or "payload_base64", "qos", "retain", "ts" (ms since the
 * epoch, when @ts_ms != 0), "properties" (only when @m has any)}. Compact, no newline, so it fits
 * on one SSE "data:" line. 0 or -ENOMEM.
 */
int jsonmsg_write(struct buf *out, const struct msg *m, uint64_t ts_ms);

/**
 * Pure. Appends one Server-Sent Event for @m: "id: @id\n" (left out when @id is NULL),
 * "data: " and the jsonmsg_write() text, then a blank line. 0 or -ENOMEM.
 */
int jsonmsg_sse(struct buf *out, const char *id, const struct msg *m, uint64_t ts_ms);

/**
 * Pure. Parses the JSON "properties" object @props_json (a jansson json_t *, borrowed) into MQTT 5
 * property bytes appended to @out. 0, or -EINVAL with @err->message set, or -ENOMEM.
 * (Used by jsonmsg_parse; public for PUT /topics and request/response headers.)
 */
int jsonmsg_props_from_json(const void *props_json, struct buf *out, struct jsonmsg_error *err);
