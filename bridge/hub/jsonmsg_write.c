/*
 * bridge/hub/jsonmsg_write.c — MQTT messages as JSON text. Done by hand into a struct buf: it runs
 * for every delivered message, and a jansson tree would copy the payload twice more and escape it
 * once per stream. Reading is in jsonmsg_read.c.
 */
#include "jsonmsg.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "b64.h"
#include "jsonmsg_int.h"
#include "props.h"
#include "utf8.h"

/* Room for any 64-bit integer in decimal (20 characters, or a sign and 19 digits) and a NUL. */
#define INT_TEXT_SIZE 24
/* Room for a double in %g or %e with DBL_DECIMAL_DIG digits, its sign, point, exponent, NUL. */
#define REAL_TEXT_SIZE 40
/* The longest escape of one character, "\u001f", and a NUL. */
#define ESCAPE_SIZE sizeof "\\u001f"

static int put(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static int put_uint(struct buf *b, uint64_t v)
{
	char s[INT_TEXT_SIZE];
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

/* The JSON escape of @c (a byte that cannot stand in a JSON string as it is) into @esc. */
static void escape(uint8_t c, char esc[ESCAPE_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	/* The characters with a two-character escape, and the letter after the backslash. */
	static const char short_form[] = {
	    ['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
	    ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't',
	};

	if (c < sizeof short_form && short_form[c]) {
		esc[0] = '\\';
		esc[1] = short_form[c];
		esc[2] = 0;
	} else if (c >= 0x80) {
		memcpy(esc, "\\ufffd", sizeof "\\ufffd");
	} else {
		memcpy(esc, "\\u00", sizeof "\\u00" - 1);
		esc[4] = hex[c >> 4];
		esc[5] = hex[c & 15];
		esc[6] = 0;
	}
}

/*
 * @s[0..len) as a JSON string. Runs that need no escaping are copied in one append. Bytes that
 * are not UTF-8 become U+FFFD: callers check the text first, this only keeps the output JSON
 * whatever a struct msg holds. Newlines are always escaped, which SSE data lines rely on.
 */
static int put_string(struct buf *b, const uint8_t *s, size_t len)
{
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
		char esc[ESCAPE_SIZE];
		escape(c, esc);
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
	char s[REAL_TEXT_SIZE];
	int prec;

	for (prec = 1; prec < DBL_DECIMAL_DIG; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	/* %g switches to an exponent once it has fewer digits than the integer part: 1e5 would
	 * become "1e+05". Below DBL_DECIMAL_DIG (17) digits, write such integers out as jansson
	 * does. */
	snprintf(s, sizeof s, "%.*e", prec - 1, v);
	const char *e = strchr(s, 'e');
	long exp10 = e ? strtol(e + 1, NULL, 10) : 0;
	if (exp10 >= prec && exp10 < DBL_DECIMAL_DIG)
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
int jsonmsg_put_value(struct buf *b, json_t *v)
{
	char num[INT_TEXT_SIZE];
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
				rc = jsonmsg_put_value(b, item);
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
				rc = jsonmsg_put_value(b, item);
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

/* The user properties of @p[0..len) as an array of [key, value] arrays, in their order. */
static int put_pairs(struct buf *b, const uint8_t *p, size_t len)
{
	struct props_iter it;
	struct mqtt_prop prop;
	size_t n = 0;
	int rc = buf_put_u8(b, '[');

	props_iter_init(&it, p, len);
	while (!rc && props_next(&it, &prop)) {
		if (prop.id != MQTT_PROP_USER_PROPERTY)
			continue;
		rc = put(b, n++ ? ",[" : "[") || put_string(b, prop.data, prop.len) ||
		     buf_put_u8(b, ',') || put_string(b, prop.data2, prop.len2) ||
		     buf_put_u8(b, ']');
	}
	return rc ? -ENOMEM : buf_put_u8(b, ']');
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
	if (!rc && pairs)
		rc = put_key(b, &first, "user_properties") || put_pairs(b, p, len);
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

int jsonmsg_sse(struct buf *out, const char *id, const struct msg *m, uint64_t ts_ms)
{
	size_t start = out->len;

	if ((id && (put(out, "id: ") || put(out, id) || buf_put_u8(out, '\n'))) ||
	    put(out, "data: ") || jsonmsg_write(out, m, ts_ms) || put(out, "\n\n")) {
		out->len = start;
		return -ENOMEM;
	}
	return 0;
}
