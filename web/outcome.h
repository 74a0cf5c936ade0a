/* web/outcome.h — a hub request's end (status, MQTT reason code) as an HTTP status and error. */
#pragma once
#include <jansson.h>
#include <stdint.h>

#include "hub.h"

/** Pure. {"code", "message"} and, when @reason >= 0, "reason_code". A new reference, or NULL. */
json_t *outcome_error(const char *code, const char *message, int reason);

/**
 * Pure. The HTTP status of @status/@reason, with its error object in *@error (a new reference,
 * the caller's); 200 with *@error NULL when it went through.
 */
int outcome_status(enum hub_status status, uint8_t reason, json_t **error);
