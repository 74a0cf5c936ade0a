/*
 * bridge/hub/markers.h — the bridge's own topics at the broker: the retained reader's sync
 * markers, the hub's request replies and barrier markers. Plumbing, never a browser's to see,
 * whichever broker client (the hub's link or a dedicated browser's own) received it.
 */
#pragma once

#include <stdbool.h>
#include <string.h>

#include "msg.h"

/* The retained reader's marker topics: "<prefix><random>". */
#define RETAINED_SYNC_PREFIX "mqtt-web-bridge/sync/"
/* Request/response replies come under "<prefix><instance>/", and so do the hub's barrier
 * markers. */
#define REPLY_PREFIX "mqtt-web-bridge/reply/"

static inline bool markers_has_prefix(const struct msg *m, const char *prefix)
{
	size_t len = strlen(prefix);

	return m->topic.len > len && !memcmp(m->topic.data, prefix, len);
}

/** Whether @m is on one of the bridge's own topics, of this bridge or any other. */
static inline bool markers_internal(const struct msg *m)
{
	return markers_has_prefix(m, RETAINED_SYNC_PREFIX) || markers_has_prefix(m, REPLY_PREFIX);
}
