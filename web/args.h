/* web/args.h — topics, filters and query arguments of an API request, checked. Service thread. */
#pragma once
#include <stdbool.h>

#include "http.h"

/** A valid MQTT topic name from the URL (a one-space level read back as '+', in place)? */
bool args_topic_valid(char *topic);

/** A valid MQTT topic filter from the URL (a one-space level read back as '+', in place)? */
bool args_filter_valid(char *filter);

/** "?qos=": 0, 1 or 2 into *@qos (@dflt when absent). false when it answered 400. */
bool args_qos(struct http_conn *c, int dflt, int *qos);

/** A boolean argument @name into *@out (false when absent). false when it answered 400. */
bool args_bool(struct http_conn *c, const char *name, bool *out);

/** A number argument @name in [@min, @max] into *@out (kept when absent). false: answered 400. */
bool args_long(struct http_conn *c, const char *name, long min, long max, long *out);
