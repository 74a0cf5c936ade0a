/*
 * bridge/hub/jsonmsg_read.c — the JSON of a publish request and of MQTT 5 properties, read through
 * jansson and checked field by field, so that an error names what is wrong. Writing is in
 * jsonmsg_write.c.
 */
#include "jsonmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "b64.h"
#include "codec.h"
#include "jsonmsg_int.h"
#include "log.h"
#include "props.h"
#include "topic.h"
#include "utf8.h"

/* How many bytes of a topic or a field name an error message quotes: enough to recognise it. */
#define QUOTE_TOPIC 64
#define QUOTE_NAME  40
/* What log_quote() writes beyond the bytes it quotes: two quotes, "..." and a NUL, rounded up. */
#define QUOTE_ROOM 8
/* Room for a property's "must be an integer from 0 to 4294967295". */
#define WHY_SIZE 48

static int fail(struct jsonmsg_error *err, long index, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct jsonmsg_error *err, long index, const char *code, const char *fmt, ...)
{
	va_list ap;
	err->index = index;
	err->code = code;
	va_start(ap, fmt);
	/* A message cut at its end still says what was wrong: truncation is accepted. */
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A JSON string as an MQTT UTF-8 string: no control characters, no U+0000, <= 65535 bytes. */
static bool mqtt_string(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) <= UINT16_MAX &&
	       utf8_valid_mqtt((const uint8_t *)json_string_value(v), json_string_length(v));
}

static int bad_prop(struct jsonmsg_error *err, const char *name, const char *why)
{
	return fail(err, -1, "invalid_properties", "properties.%s %s", name, why);
}

/* A string property: @id, and for the response topic, a topic name. */
static int put_string_prop(struct buf *out, uint8_t id, const char *name, const json_t *v,
			   struct jsonmsg_error *err)
{
	if (!json_is_string(v))
		return bad_prop(err, name, "must be a string");
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!mqtt_string(v))
		return bad_prop(err, name,
				"must be UTF-8 of at most 65535 bytes without control characters");
	if (id == MQTT_PROP_RESPONSE_TOPIC && !topic_name_valid(s, len))
		return bad_prop(err, name, "must be a topic name (no '+' or '#')");
	return props_put_bytes(out, id, s, len);
}

static int put_int_prop(struct buf *out, uint8_t id, const char *name, const json_t *v,
			json_int_t max, struct jsonmsg_error *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
		char why[WHY_SIZE];
		snprintf(why, sizeof why, "must be an integer from 0 to %" JSON_INTEGER_FORMAT,
			 max);
		return bad_prop(err, name, why);
	}
	return props_put_int(out, id, (uint32_t)json_integer_value(v));
}

static int put_correlation(struct buf *out, const char *name, const json_t *v,
			   struct jsonmsg_error *err)
{
	struct buf bin = BUF_INIT;
	const uint8_t *data;
	size_t len;
	int rc = 0;

	if (!json_is_string(v))
		return bad_prop(err, name, "must be a string");
	data = (const uint8_t *)json_string_value(v);
	len = json_string_length(v);
	if (strcmp(name, "correlation_data_base64") == 0) {
		rc = b64_decode(&bin, (const char *)data, len);
		if (rc) {
			buf_clear(&bin); /* a refused text may have grown it */
			return rc == -EINVAL ? bad_prop(err, name, "is not valid base64") : rc;
		}
		data = bin.data;
		len = bin.len;
	}
	if (len > UINT16_MAX)
		rc = bad_prop(err, name, "is longer than 65535 bytes");
	else
		rc = props_put_bytes(out, MQTT_PROP_CORRELATION_DATA, data, len);
	buf_clear(&bin);
	return rc;
}

/* One user property; @where says which, for the error message. */
static int put_pair(struct buf *out, const char *key, size_t key_len, const json_t *value,
		    const char *where, struct jsonmsg_error *err)
{
	if (key_len > UINT16_MAX || !utf8_valid_mqtt((const uint8_t *)key, key_len) ||
	    !mqtt_string(value))
		return fail(
		    err, -1, "invalid_properties",
		    "properties.user_properties %s: key and value must be strings of at most "
		    "65535 bytes without control characters",
		    where);
	return props_put_pair(out, key, key_len, json_string_value(value),
			      json_string_length(value));
}

static int put_user_props(struct buf *out, json_t *v, struct jsonmsg_error *err)
{
	char where[QUOTE_NAME + QUOTE_ROOM];
	const char *key;
	size_t key_len, i;
	json_t *item, *k;
	int rc;

	if (json_is_array(v)) {
		json_array_foreach(v, i, item)
		{
			k = json_array_get(item, 0);
			if (!json_is_array(item) || json_array_size(item) != 2 ||
			    !json_is_string(k))
				return bad_prop(err, "user_properties",
						"must hold [key, value] pairs of strings");
			snprintf(where, sizeof where, "item %zu", i);
			rc = put_pair(out, json_string_value(k), json_string_length(k),
				      json_array_get(item, 1), where, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (!json_is_object(v))
		return bad_prop(err, "user_properties",
				"must be an array of [key, value] pairs or an object");
	json_object_keylen_foreach(v, key, key_len, item)
	{
		rc = put_pair(out, key, key_len, item, log_quote(where, sizeof where, key, key_len),
			      err);
		if (rc)
			return rc;
	}
	return 0;
}

static int put_prop(struct buf *out, const char *name, json_t *v, struct jsonmsg_error *err)
{
	if (!strcmp(name, "content_type"))
		return put_string_prop(out, MQTT_PROP_CONTENT_TYPE, name, v, err);
	if (!strcmp(name, "response_topic"))
		return put_string_prop(out, MQTT_PROP_RESPONSE_TOPIC, name, v, err);
	if (!strcmp(name, "message_expiry_interval"))
		return put_int_prop(out, MQTT_PROP_MESSAGE_EXPIRY, name, v, UINT32_MAX, err);
	if (!strcmp(name, "payload_format_indicator"))
		return put_int_prop(out, MQTT_PROP_PAYLOAD_FORMAT, name, v, 1, err);
	if (!strcmp(name, "correlation_data") || !strcmp(name, "correlation_data_base64"))
		return put_correlation(out, name, v, err);
	if (!strcmp(name, "user_properties"))
		return put_user_props(out, v, err);
	/* The broker sets these per subscriber; a publisher may not. */
	if (!strcmp(name, "subscription_identifiers"))
		return bad_prop(err, name, "is set by the broker, not by a publisher");
	char q[QUOTE_NAME + QUOTE_ROOM];
	log_quote(q, sizeof q, name, strlen(name));
	return fail(err, -1, "invalid_properties", "unknown property %s", q);
}

int jsonmsg_props_from_json(const void *props_json, struct buf *out, struct jsonmsg_error *err)
{
	/* jansson's iteration API takes non-const pointers though it only reads here. */
	json_t *obj = (json_t *)props_json;
	size_t start = out->len;
	struct codec_error cerr;
	const char *name;
	json_t *v;
	int rc = 0;

	if (!json_is_object(obj))
		return fail(err, -1, "invalid_properties", "properties must be a JSON object");
	if (json_object_get(obj, "correlation_data") &&
	    json_object_get(obj, "correlation_data_base64"))
		return fail(err, -1, "invalid_properties",
			    "correlation_data and correlation_data_base64 exclude each other");
	json_object_foreach(obj, name, v)
	{
		rc = put_prop(out, name, v, err);
		if (rc)
			goto fail;
	}
	/* A net under the checks above: what goes to the broker must be what it accepts. */
	if (out->len > start &&
	    props_validate(out->data + start, out->len - start, MQTT_PUBLISH, &cerr)) {
		rc = fail(err, -1, "invalid_properties", "properties refused: %s", cerr.msg);
		goto fail;
	}
	return 0;
fail:
	out->len = start;
	return rc;
}

static const char *const fields[] = {"topic", "payload", "payload_base64",
				     "qos",   "retain",  "properties"};

static int check_fields(json_t *obj, long index, struct jsonmsg_error *err)
{
	const char *key;
	size_t key_len;
	json_t *v;

	json_object_keylen_foreach(obj, key, key_len, v)
	{
		size_t i = 0;
		while (i < sizeof fields / sizeof fields[0] && strcmp(key, fields[i]))
			i++;
		if (i == sizeof fields / sizeof fields[0]) {
			char q[QUOTE_NAME + QUOTE_ROOM];
			log_quote(q, sizeof q, key, key_len);
			return fail(err, index, "invalid_message", "unknown field %s", q);
		}
	}
	return 0;
}

static int read_topic(json_t *obj, long index, const char **topic, size_t *len,
		      struct jsonmsg_error *err)
{
	json_t *v = json_object_get(obj, "topic");
	char q[QUOTE_TOPIC + QUOTE_ROOM];

	if (!v)
		return fail(err, index, "invalid_topic", "topic is missing");
	if (!json_is_string(v))
		return fail(err, index, "invalid_topic", "topic must be a string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n > UINT16_MAX)
		return fail(err, index, "invalid_topic", "topic is longer than 65535 bytes");
	if (!utf8_valid_mqtt((const uint8_t *)s, n) || !topic_name_valid(s, n))
		return fail(err, index, "invalid_topic",
			    "%s is not a topic name (not empty, no '+' or '#', no control "
			    "characters)",
			    log_quote(q, sizeof q, s, n));
	*topic = s;
	*len = n;
	return 0;
}

static int read_payload(json_t *obj, long index, struct buf *out, struct jsonmsg_error *err)
{
	json_t *text = json_object_get(obj, "payload");
	json_t *b64 = json_object_get(obj, "payload_base64");
	int rc;

	if (text && b64)
		return fail(err, index, "invalid_payload",
			    "payload and payload_base64 exclude each other");
	if (text && json_is_string(text))
		return buf_append(out, json_string_value(text), json_string_length(text));
	if (text)
		return jsonmsg_put_value(out, text);
	if (!b64)
		return 0;
	if (!json_is_string(b64))
		return fail(err, index, "invalid_payload", "payload_base64 must be a string");
	rc = b64_decode(out, json_string_value(b64), json_string_length(b64));
	if (rc == -EINVAL)
		return fail(err, index, "invalid_payload", "payload_base64 is not valid base64");
	return rc;
}

static int read_msg(json_t *obj, long index, struct jsonmsg *m, struct jsonmsg_error *err)
{
	struct buf payload = BUF_INIT, props = BUF_INIT;
	const char *topic = NULL; /* set by read_topic; GCC cannot see that */
	size_t topic_len = 0;
	char *t;
	json_t *v;
	int rc;

	if (!json_is_object(obj))
		return fail(err, index, "invalid_message", "message must be a JSON object");
	rc = check_fields(obj, index, err);
	if (!rc)
		rc = read_topic(obj, index, &topic, &topic_len, err);
	if (rc)
		return rc;
	v = json_object_get(obj, "qos");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 2))
		return fail(err, index, "invalid_qos", "qos must be 0, 1 or 2");
	int qos = v ? (int)json_integer_value(v) : 0;
	v = json_object_get(obj, "retain");
	if (v && !json_is_boolean(v))
		return fail(err, index, "invalid_message", "retain must be true or false");
	bool retain = v && json_is_true(v);

	rc = read_payload(obj, index, &payload, err);
	if (rc)
		goto fail;
	v = json_object_get(obj, "properties");
	if (v) {
		rc = jsonmsg_props_from_json(v, &props, err);
		if (rc == -EINVAL)
			err->index = index;
		if (rc)
			goto fail;
	}
	t = malloc(topic_len + 1);
	if (!t) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(t, topic, topic_len);
	t[topic_len] = '\0';
	m->topic = t;
	m->qos = qos;
	m->retain = retain;
	m->payload = buf_steal(&payload, &m->payload_len);
	m->props = buf_steal(&props, &m->props_len);
	return 0;
fail:
	buf_clear(&payload);
	buf_clear(&props);
	return rc;
}

/* How many messages the body @root holds: one object, or an array of 1..@max. */
static int count_messages(json_t *root, size_t max, size_t *count, bool *is_array,
			  struct jsonmsg_error *err)
{
	size_t n;

	if (json_is_array(root))
		n = json_array_size(root);
	else if (json_is_object(root))
		n = 1;
	else
		return fail(err, -1, "invalid_message",
			    "the body must be a JSON object or an array");
	if (n == 0)
		return fail(err, -1, "invalid_message", "the array is empty: nothing to publish");
	if (n > max)
		return fail(err, -1, "too_many_messages",
			    "%zu messages, at most %zu in one request", n, max);
	*count = n;
	*is_array = json_is_array(root);
	return 0;
}

int jsonmsg_parse(const char *json, size_t len, size_t max_messages, struct jsonmsg_batch *out,
		  struct jsonmsg_error *err)
{
	/* NULs are allowed in strings: a text payload may hold U+0000 (write emits it as
	 * \u0000), and topics are checked for it. DECODE_ANY so that a scalar body gets the
	 * clearer invalid_message below. */
	const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY;
	struct jsonmsg_batch b = {NULL, 0, false};
	json_error_t jerr;
	json_t *root = json_loadb(json, len, flags, &jerr);
	size_t count = 0;
	int rc = 0;

	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return -ENOMEM;
		/* jansson quotes up to 20 bytes "near" the error, which may be payload (an
		 * unterminated string is all payload): keep only its description. */
		char *near = strstr(jerr.text, " near '");
		if (near)
			*near = '\0';
		return fail(err, -1, "invalid_json", "line %d column %d: %s", jerr.line,
			    jerr.column, jerr.text);
	}
	rc = count_messages(root, max_messages, &count, &b.is_array, err);
	if (rc)
		goto fail;
	b.msgs = calloc(count, sizeof *b.msgs);
	if (!b.msgs) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		rc =
		    read_msg(b.is_array ? json_array_get(root, i) : root, (long)i, &b.msgs[i], err);
		if (rc)
			goto fail;
		b.count = i + 1;
	}
	json_decref(root);
	*out = b;
	return 0;
fail:
	jsonmsg_batch_clear(&b);
	json_decref(root);
	return rc;
}

void jsonmsg_batch_clear(struct jsonmsg_batch *b)
{
	for (size_t i = 0; i < b->count; i++) {
		free(b->msgs[i].topic);
		free(b->msgs[i].payload);
		free(b->msgs[i].props);
	}
	free(b->msgs);
	b->msgs = NULL;
	b->count = 0;
	b->is_array = false;
}
