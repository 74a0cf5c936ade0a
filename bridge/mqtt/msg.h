/* bridge/mqtt/msg.h — one application message (topic, payload, v5 properties) in a single
 * allocation. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct msg {
	struct msg *next;   /* free for the current owner's list */
	uint16_t packet_id; /* on the browser's link, once assigned */
	uint8_t qos;
	bool retain;
	uint8_t state;      /* the owner's delivery state */
	size_t size;        /* bytes allocated, for queue accounting */
	uint64_t queued_ms; /* when it started waiting for a browser (message expiry); 0: not */
	struct mqtt_bytes topic; /* NUL-terminated after len */
	struct mqtt_bytes payload;
	struct mqtt_bytes props; /* v5 property bytes, without the length prefix */
	uint8_t data[];
};

/** Any thread. Copies the three parts into one allocation; NULL when out of memory. free() it. */
struct msg *msg_new(const void *topic, size_t topic_len, const void *payload, size_t payload_len,
		    const void *props, size_t props_len, uint8_t qos, bool retain);

/** Any thread. A copy of @m (link cleared), or NULL. */
struct msg *msg_dup(const struct msg *m);
