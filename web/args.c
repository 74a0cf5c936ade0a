/*
 * web/args.c — what a request names in its URL: topics and filters from the path or the query,
 * and the query's typed arguments, each answered 400 when it is not what the endpoint takes.
 * Service thread.
 */
#include "args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "topic.h"
#include "utf8.h"

/*
 * Topics and filters from the URL. lws decodes a '+' the user wrote as a space, in the path as
 * in the query; a level that is one space is read back as '+' (see query.h), which a topic name
 * then refuses, as it should.
 */
bool args_topic_valid(char *t)
{
	size_t len = strlen(t);

	query_restore_plus(t);
	return len && utf8_valid_mqtt((const uint8_t *)t, len) && topic_name_valid(t, len);
}

bool args_filter_valid(char *f)
{
	size_t len = strlen(f);

	query_restore_plus(f);
	return len && utf8_valid_mqtt((const uint8_t *)f, len) && topic_filter_valid(f, len);
}

/* "?qos=": 0, 1 or 2 (default @dflt). false when it answered 400. */
bool args_qos(struct http_conn *c, int dflt, int *qos)
{
	char v[16];

	*qos = dflt;
	if (!http_arg(c, "qos", v, sizeof(v)))
		return true;
	if (strlen(v) == 1 && v[0] >= '0' && v[0] <= '2') {
		*qos = v[0] - '0';
		return true;
	}
	http_error(c, 400, "invalid_qos", "qos must be 0, 1 or 2");
	return false;
}

/* A boolean argument; false when it answered 400. */
bool args_bool(struct http_conn *c, const char *name, bool *out)
{
	/* Room for any value: one that does not fit is refused, not taken as absent. */
	char v[HTTP_ARG_MAX];

	*out = false;
	if (!http_arg(c, name, v, sizeof(v)))
		return true;
	if (!strcmp(v, "true") || !strcmp(v, "1") || !*v) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0"))
		return true;
	http_error(c, 400, "invalid_parameter", "%s must be true or false", name);
	return false;
}

/* A number argument in [min, max]; false when it answered 400. */
bool args_long(struct http_conn *c, const char *name, long min, long max, long *out)
{
	char v[32], *end;
	long n;

	if (!http_arg(c, name, v, sizeof(v)))
		return true;
	n = strtol(v, &end, 10);
	if (*v && !*end && n >= min && n <= max) {
		*out = n;
		return true;
	}
	http_error(c, 400, "invalid_parameter", "%s must be a number from %ld to %ld", name, min,
		   max);
	return false;
}
