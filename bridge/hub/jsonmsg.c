/*
 * bridge/hub/jsonmsg.c — MQTT messages as JSON, both ways. Reading goes through jansson. Writing is
 * done by hand into a struct buf: it runs for every delivered message, and a jansson tree would
 * copy the payload twice more and escape it once per stream.
 */
#include "jsonmsg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "b64.h"
#include "codec.h"
#include "log.h"
#include "props.h"
#include "topic.h"
#include "utf8.h"

/* How many bytes of a topic or a field name an error message quotes: enough to recognise it. */
#define QUOTE_TOPIC 64
#define QUOTE_NAME  40

/* ---- writing ---- */

static int put(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static int put_uint(struct buf *b, uint64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof s, "%" PRIu64, v);
	return buf_append(b, s, (size_t)n);
}

/* The length of the UTF-8 sequence a lead byte starts, 0 for a byte that cannot start one. */
static size_t seq_len(uint8_t c)
{
	if (c < 0xC2)
		return 0; /* continuation bytes, and leads that can only be overlong */
	if (c < 0xE0)
		return 2;
	if (c < 0xF0)
		return 3;
	return c < 0xF5 ? 4 : 0;
}

/*
 * @s[0..len) as a JSON string. Runs that need no escaping are copied in one append. Bytes that
 * are not UTF-8 become U+FFFD: callers check the text first, this only keeps the output JSON
 * whatever a struct msg holds. Newlines are always escaped, which SSE data lines rely on.
 */
static int put_string(struct buf *b, const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0, i = 0;
	int rc;

	if (len > SIZE_MAX - 2)
		return -ENOMEM;
	rc = buf_reserve(b, len + 2);
	if (rc)
		return rc;
	buf_put_u8(b, '"');
	while (i < len) {
		uint8_t c = s[i];
		if (c >= 0x80) {
			size_t n = seq_len(c);
			if (n && n <= len - i && utf8_valid(s + i, n)) {
				i += n;
				continue;
			}
		} else if (c >= 0x20 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		rc = buf_append(b, s + start, i - start);
		if (rc)
			return rc;
		char esc[7] = {'\\', (char)c, 0};
		switch (c) {
		case '"':
		case '\\':
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			if (c >= 0x80) {
				memcpy(esc, "\\ufffd", 6);
			} else {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
			}
		}
		rc = put(b, esc);
		if (rc)
			return rc;
		start = ++i;
	}
	rc = buf_append(b, s + start, i - start);
	return rc ? rc : buf_put_u8(b, '"');
}

/*
 * The shortest text that reads back as @v. jansson writes 17 digits, which turns a payload of
 * 21.3 into "21.300000000000001"; a sensor value should travel as it was written.
 */
static int put_real(struct buf *b, double v)
{
	char s[40];
	int prec;

	for (prec = 1; prec < 17; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	/* %g switches to an exponent once it has fewer digits than the integer part: 1e5 would
	 * become "1e+05". Below 17 digits, write such integers out as jansson does. */
	snprintf(s, sizeof s, "%.*e", prec - 1, v);
	const char *e = strchr(s, 'e');
	long exp10 = e ? strtol(e + 1, NULL, 10) : 0;
	if (exp10 >= prec && exp10 < 17)
		prec = (int)exp10 + 1;
	int n = snprintf(s, sizeof s, "%.*g", prec, v);
	/* Keep it a real for a reader that tells 1.0 from 1, as jansson does. */
	if (!strpbrk(s, ".eE") && (size_t)n + 2 < sizeof s) {
		memcpy(s + n, ".0", 3);
		n += 2;
	}
	return buf_append(b, s, (size_t)n);
}

/* Compact JSON text of @v in document order. Depth is bounded by jansson's parser (2048). */
static int put_value(struct buf *b, json_t *v)
{
	char num[24];
	const char *key;
	size_t key_len, i;
	json_t *item;
	int rc = 0;
	char sep = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		rc = buf_put_u8(b, '{');
		json_object_keylen_foreach(v, key, key_len, item)
		{
			if (!rc && sep)
				rc = buf_put_u8(b, ',');
			if (!rc)
				rc = put_string(b, (const uint8_t *)key, key_len);
			if (!rc)
				rc = buf_put_u8(b, ':');
			if (!rc)
				rc = put_value(b, item);
			sep = ',';
		}
		return rc ? rc : buf_put_u8(b, '}');
	case JSON_ARRAY:
		rc = buf_put_u8(b, '[');
		json_array_foreach(v, i, item)
		{
			if (!rc && i)
				rc = buf_put_u8(b, ',');
			if (!rc)
				rc = put_value(b, item);
		}
		return rc ? rc : buf_put_u8(b, ']');
	case JSON_STRING:
		return put_string(b, (const uint8_t *)json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return put(b, num);
	case JSON_REAL:
		return put_real(b, json_real_value(v));
	case JSON_TRUE:
		return put(b, "true");
	case JSON_FALSE:
		return put(b, "false");
	default:
		return put(b, "null");
	}
}

/* Appends ,"name": — or without the comma for the first member (*@first, then cleared). */
static int put_key(struct buf *b, bool *first, const char *name)
{
	int rc = *first ? 0 : buf_put_u8(b, ',');
	*first = false;
	if (!rc)
		rc = buf_put_u8(b, '"');
	if (!rc)
		rc = put(b, name);
	return rc ? rc : put(b, "\":");
}

/* Text as a JSON string when it is UTF-8, else base64 under @name64 (binary stays exact). */
static int put_text_or_b64(struct buf *b, bool *first, const char *name, const char *name64,
                           const uint8_t *data, size_t len)
{
	int rc;
	if (utf8_valid(data, len)) {
		rc = put_key(b, first, name);
		return rc ? rc : put_string(b, data, len);
	}
	rc = put_key(b, first, name64);
	if (!rc)
		rc = buf_put_u8(b, '"');
	if (!rc)
		rc = b64_encode(b, data, len);
	return rc ? rc : buf_put_u8(b, '"');
}

/* The single-valued properties a reader of JSON sees, in the order they are written. */
enum { P_CONTENT_TYPE, P_RESPONSE_TOPIC, P_EXPIRY, P_FORMAT, P_CORRELATION, P_COUNT };

static int single_slot(uint8_t id)
{
	switch (id) {
	case MQTT_PROP_CONTENT_TYPE:
		return P_CONTENT_TYPE;
	case MQTT_PROP_RESPONSE_TOPIC:
		return P_RESPONSE_TOPIC;
	case MQTT_PROP_MESSAGE_EXPIRY:
		return P_EXPIRY;
	case MQTT_PROP_PAYLOAD_FORMAT:
		return P_FORMAT;
	case MQTT_PROP_CORRELATION_DATA:
		return P_CORRELATION;
	default:
		return -1; /* repeated ones, and the link-level Topic Alias, which is not shown */
	}
}

static int put_props(struct buf *b, const uint8_t *p, size_t len)
{
	struct mqtt_prop one[P_COUNT], prop;
	bool has[P_COUNT] = {false};
	size_t pairs = 0, shown = 0;
	struct props_iter it;
	bool first = true;
	int rc = 0;

	/* One pass to find what is there, so that the object has a fixed member order and each
	 * repeated property is gathered into one array. */
	props_iter_init(&it, p, len);
	while (props_next(&it, &prop)) {
		int k = single_slot(prop.id);
		if (k >= 0 && !has[k]) {
			one[k] = prop;
			has[k] = true;
			shown++;
		}
		pairs += prop.id == MQTT_PROP_USER_PROPERTY;
	}
	/* Subscription Identifiers are not shown: JSON is written for the bridge's own links,
	 * whose identifiers are its internal business. */
	if (!shown && !pairs)
		return 0;

	rc = put(b, ",\"properties\":{");
	if (!rc && has[P_CONTENT_TYPE])
		rc = put_key(b, &first, "content_type") ||
		     put_string(b, one[P_CONTENT_TYPE].data, one[P_CONTENT_TYPE].len);
	if (!rc && has[P_RESPONSE_TOPIC])
		rc = put_key(b, &first, "response_topic") ||
		     put_string(b, one[P_RESPONSE_TOPIC].data, one[P_RESPONSE_TOPIC].len);
	if (!rc && has[P_EXPIRY])
		rc = put_key(b, &first, "message_expiry_interval") ||
		     put_uint(b, one[P_EXPIRY].value);
	if (!rc && has[P_FORMAT])
		rc = put_key(b, &first, "payload_format_indicator") ||
		     put_uint(b, one[P_FORMAT].value);
	if (!rc && has[P_CORRELATION])
		rc = put_text_or_b64(b, &first, "correlation_data", "correlation_data_base64",
		                     one[P_CORRELATION].data, one[P_CORRELATION].len);
	if (!rc && pairs) {
		size_t n = 0;
		rc = put_key(b, &first, "user_properties") || buf_put_u8(b, '[');
		props_iter_init(&it, p, len);
		while (!rc && props_next(&it, &prop)) {
			if (prop.id != MQTT_PROP_USER_PROPERTY)
				continue;
			rc = put(b, n++ ? ",[" : "[") || put_string(b, prop.data, prop.len) ||
			     buf_put_u8(b, ',') || put_string(b, prop.data2, prop.len2) ||
			     buf_put_u8(b, ']');
		}
		if (!rc)
			rc = buf_put_u8(b, ']');
	}
	if (!rc)
		rc = buf_put_u8(b, '}');
	/* The helpers fail only for want of memory; || above folded their codes into 1. */
	return rc ? -ENOMEM : 0;
}

static int write_msg(struct buf *b, const struct msg *m, uint64_t ts_ms)
{
	bool first = false; /* after "topic" */
	int rc = put(b, "{\"topic\":");
	if (!rc)
		rc = put_string(b, m->topic.data, m->topic.len);
	if (!rc)
		rc = put_text_or_b64(b, &first, "payload", "payload_base64", m->payload.data,
		                     m->payload.len);
	if (!rc)
		rc = put(b, ",\"qos\":");
	if (!rc)
		rc = put_uint(b, m->qos);
	if (!rc)
		rc = put(b, m->retain ? ",\"retain\":true" : ",\"retain\":false");
	if (!rc && ts_ms)
		rc = put(b, ",\"ts\":");
	if (!rc && ts_ms)
		rc = put_uint(b, ts_ms);
	if (!rc)
		rc = put_props(b, m->props.data, m->props.len);
	return rc ? rc : buf_put_u8(b, '}');
}

int jsonmsg_write(struct buf *out, const struct msg *m, uint64_t ts_ms)
{
	size_t start = out->len;
	int rc = write_msg(out, m, ts_ms);
	if (rc)
		out->len = start; /* no half object for the caller to send */
	return rc;
}

/* ---- reading ---- */

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
		char why[48];
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
	char where[QUOTE_NAME + 8];
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
	char q[QUOTE_NAME + 8];
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
			char q[QUOTE_NAME + 8];
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
	char q[QUOTE_TOPIC + 8];

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
		return put_value(out, text);
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
	size_t count;
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
	if (json_is_array(root)) {
		b.is_array = true;
		count = json_array_size(root);
	} else if (json_is_object(root)) {
		count = 1;
	} else {
		rc = fail(err, -1, "invalid_message", "the body must be a JSON object or an array");
		goto fail;
	}
	if (count == 0) {
		rc = fail(err, -1, "invalid_message", "the array is empty: nothing to publish");
		goto fail;
	}
	if (count > max_messages) {
		rc = fail(err, -1, "too_many_messages", "%zu messages, at most %zu in one request",
		          count, max_messages);
		goto fail;
	}
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

int jsonmsg_sse(struct buf *out, const char *id, const struct msg *m, uint64_t ts_ms)
{
	size_t start = out->len;

	if ((id && (buf_append(out, "id: ", 4) || buf_append(out, id, strlen(id)) ||
		    buf_put_u8(out, '\n'))) ||
	    buf_append(out, "data: ", 6) || jsonmsg_write(out, m, ts_ms) ||
	    buf_append(out, "\n\n", 2)) {
		out->len = start;
		return -ENOMEM;
	}
	return 0;
}
