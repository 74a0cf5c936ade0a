/*
 * web/outcome.c — how a message the hub sent for a request ended, as HTTP: the broker's MQTT
 * reason codes and the link's state mapped onto a status and a JSON error object. Pure.
 */
#include "outcome.h"

#include "codec.h"

json_t *outcome_error(const char *code, const char *message, int reason)
{
	json_t *e = json_pack("{s:s,s:s}", "code", code, "message", message);

	if (e && reason >= 0)
		json_object_set_new(e, "reason_code", json_integer(reason));
	return e;
}

int outcome_status(enum hub_status status, uint8_t reason, json_t **error)
{
	*error = NULL;
	switch (status) {
	case HUB_OK:
		return 200;
	case HUB_DOWN:
	case HUB_FAILED:
		*error = outcome_error("broker_unavailable", "the broker connection went down", -1);
		return 503;
	case HUB_REFUSED:
		break;
	}
	switch (reason) {
	case MQTT_RC_NOT_AUTHORIZED:
		*error =
		    outcome_error("broker_not_authorized", "the broker refused it (0x87)", reason);
		return 403;
	case MQTT_RC_TOPIC_NAME_INVALID:
		*error = outcome_error("invalid_topic", "the broker refused the topic", reason);
		return 400;
	case MQTT_RC_PAYLOAD_FORMAT_INVALID:
		*error = outcome_error("invalid_payload", "the broker refused the payload", reason);
		return 400;
	case MQTT_RC_QUOTA_EXCEEDED:
		*error = outcome_error("broker_quota_exceeded", "the broker's quota is exceeded",
				       reason);
		return 429;
	default:
		*error = outcome_error("broker_refused", "the broker refused the message", reason);
		return 502;
	}
}
