/* bridge/mqtt/topic.h — MQTT topic names and filters: validation and matching (MQTT 5 §4.7). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/*
 * All functions are pure and take (pointer, length) pairs: topics inside packets are not
 * NUL-terminated. UTF-8 validity is checked by the codec (utf8.h), not here.
 */

/** A topic name one may publish to: at least one byte, no '+' or '#', no U+0000. */
bool topic_name_valid(const char *topic, size_t len);

/**
 * A filter one may subscribe to: at least one byte, no U+0000, '#' only as the whole last level,
 * '+' only as a whole level. A shared subscription "$share/NAME/FILTER" (any filter starting
 * with "$share/") needs a non-empty NAME without '+', '#' or '/', and a valid non-empty FILTER.
 */
bool topic_filter_valid(const char *filter, size_t len);

/** True for "$share/NAME/FILTER"; then *@inner/@inner_len point at FILTER (may be NULL). */
bool topic_filter_is_shared(const char *filter, size_t len, const char **inner, size_t *inner_len);

/**
 * Does a valid non-shared @filter match the valid @topic? '+' matches one level, '#' the parent
 * level and everything below it. Topics starting with '$' are not matched by a filter whose first
 * level is a wildcard (MQTT 5 §4.7.2).
 */
bool topic_matches(const char *filter, size_t filter_len, const char *topic, size_t topic_len);

/**
 * Is every topic that @inner can match also matched by @outer (both valid, non-shared)?
 * "sensors/+/temp" is inside "sensors/#"; "#" is not inside "sensors/#". Used for ACLs.
 */
bool topic_filter_within(const char *inner, size_t inner_len, const char *outer, size_t outer_len);
