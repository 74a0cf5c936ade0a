/*
 * tests/fuzz/fuzz_json.c — libFuzzer target for messages as JSON (jsonmsg.h) and base64 (b64.h).
 *
 * The input is used three ways:
 * - as the body of POST /api/v1/publish: jsonmsg_parse(); each message it yields is checked,
 *   made into a struct msg and written back with jsonmsg_write() and jsonmsg_sse();
 * - as base64 text for b64_decode(), and as bytes for b64_encode(): both must round-trip;
 * - as a message from the broker, whose bytes need not be text: byte 0 is the topic length,
 *   byte 1 the property length (the properties are used when they validate for PUBLISH, as the
 *   codec would have checked them), the rest the payload.
 * What jsonmsg_write() produces must be JSON that jansson reads back, with no raw CR or LF (one
 * SSE data line), giving back the topic, payload and correlation data byte for byte; and for a
 * message that came from JSON, jsonmsg_parse() must take the text back and write it identically.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "b64.h"
#include "jsonmsg.h"
#include "msg.h"
#include "props.h"
#include "topic.h"
#include "utf8.h"

#include "fuzz.h"

#define MAX_MESSAGES 8
#define SSE_ID       "42"

static bool bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* A JSON string member holding @data exactly, or its @name64 member in base64; not both. */
static void check_text_or_b64(json_t *obj, const char *name, const char *name64, const void *data,
			      size_t len)
{
	json_t *text = json_object_get(obj, name), *b64 = json_object_get(obj, name64);
	CHECK(!text != !b64);
	if (text) {
		CHECK(json_is_string(text));
		CHECK(bytes_equal(json_string_value(text), json_string_length(text), data, len));
		return;
	}
	struct buf bin = BUF_INIT;
	CHECK(json_is_string(b64));
	CHECK(b64_decode(&bin, json_string_value(b64), json_string_length(b64)) == 0);
	CHECK(bytes_equal(bin.data, bin.len, data, len));
	CHECK(!utf8_valid(data, len)); /* text goes as text */
	buf_clear(&bin);
}

/*
 * jsonmsg_write() of @m: one line of JSON that gives the message back. Returns the text (owned
 * by the caller, NUL-terminated) for the round trips that follow.
 */
static char *check_write(const struct msg *m, uint64_t ts)
{
	struct buf out = BUF_INIT, sse = BUF_INIT;
	json_error_t jerr;
	struct mqtt_prop prop;

	CHECK(buf_append(&out, "x", 1) == 0); /* appends: what was there stays */
	CHECK(jsonmsg_write(&out, m, ts) == 0);
	CHECK(out.len > 1 && out.data[0] == 'x');
	const char *text = (const char *)out.data + 1;
	size_t len = out.len - 1;
	CHECK(!memchr(text, '\n', len) && !memchr(text, '\r', len));

	json_t *root = json_loadb(text, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		fprintf(stderr, "jsonmsg_write gave bad JSON: %s: %.*s\n", jerr.text, (int)len,
			text);
	CHECK(json_is_object(root));
	json_t *topic = json_object_get(root, "topic");
	CHECK(json_is_string(topic));
	if (utf8_valid(m->topic.data, m->topic.len))
		CHECK(bytes_equal(json_string_value(topic), json_string_length(topic),
				  m->topic.data, m->topic.len));
	check_text_or_b64(root, "payload", "payload_base64", m->payload.data, m->payload.len);
	CHECK(json_integer_value(json_object_get(root, "qos")) == m->qos);
	CHECK(json_is_boolean(json_object_get(root, "retain")));
	CHECK(json_is_true(json_object_get(root, "retain")) == m->retain);
	json_t *t = json_object_get(root, "ts");
	CHECK(ts ? json_integer_value(t) == (json_int_t)ts : t == NULL);

	json_t *props = json_object_get(root, "properties");
	CHECK(props == NULL || (json_is_object(props) && json_object_size(props) > 0));
	if (props_find(m->props.data, m->props.len, MQTT_PROP_CORRELATION_DATA, &prop))
		check_text_or_b64(props, "correlation_data", "correlation_data_base64", prop.data,
				  prop.len);
	if (props_find(m->props.data, m->props.len, MQTT_PROP_CONTENT_TYPE, &prop)) {
		json_t *ct = json_object_get(props, "content_type");
		CHECK(bytes_equal(json_string_value(ct), json_string_length(ct), prop.data,
				  prop.len));
	}
	size_t pairs = 0;
	struct props_iter it;
	props_iter_init(&it, m->props.data, m->props.len);
	while (props_next(&it, &prop))
		pairs += prop.id == MQTT_PROP_USER_PROPERTY;
	CHECK(json_array_size(json_object_get(props, "user_properties")) == pairs);
	json_decref(root);

	/* The same text as one Server-Sent Event, with an id and without. */
	for (int with_id = 0; with_id < 2; with_id++) {
		const char *head = with_id ? "id: " SSE_ID "\ndata: " : "data: ";
		size_t hlen = strlen(head);
		sse.len = 0;
		CHECK(jsonmsg_sse(&sse, with_id ? SSE_ID : NULL, m, ts) == 0);
		CHECK(sse.len == hlen + len + 2);
		CHECK(memcmp(sse.data, head, hlen) == 0);
		CHECK(memcmp(sse.data + hlen, text, len) == 0);
		CHECK(memcmp(sse.data + hlen + len, "\n\n", 2) == 0);
	}
	buf_clear(&sse);

	char *copy = malloc(len + 1);
	if (!copy)
		abort();
	memcpy(copy, text, len);
	copy[len] = '\0';
	buf_clear(&out);
	return copy;
}

/* A message jsonmsg_parse() gave: what the header promises of it. */
static void check_parsed(const struct jsonmsg *j)
{
	struct codec_error cerr;
	size_t tlen = strlen(j->topic);
	CHECK(tlen <= UINT16_MAX);
	CHECK(topic_name_valid(j->topic, tlen));
	CHECK(utf8_valid_mqtt((const uint8_t *)j->topic, tlen));
	CHECK(j->qos >= 0 && j->qos <= 2);
	CHECK(j->payload || j->payload_len == 0);
	CHECK(j->props || j->props_len == 0);
	CHECK(props_validate(j->props, j->props_len, MQTT_PUBLISH, &cerr) == 0);
	/* The topic alias and subscription ids belong to a link: JSON cannot set them. */
	struct mqtt_prop prop;
	CHECK(!props_find(j->props, j->props_len, MQTT_PROP_TOPIC_ALIAS, &prop));
	CHECK(!props_find(j->props, j->props_len, MQTT_PROP_SUBSCRIPTION_ID, &prop));
}

static void check_error(int rc, const struct jsonmsg_error *err)
{
	static const char *const codes[] = {
	    "invalid_json",       "invalid_topic",   "invalid_qos",       "invalid_payload",
	    "invalid_properties", "invalid_message", "too_many_messages",
	};
	bool known = false;

	CHECK(rc == -EINVAL || rc == -ENOMEM);
	if (rc != -EINVAL)
		return;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		known |= err->code && !strcmp(err->code, codes[i]);
	CHECK(known);
	CHECK(err->index >= -1 && err->index < MAX_MESSAGES);
	size_t n = strnlen(err->message, sizeof err->message);
	CHECK(n > 0 && n < sizeof err->message);
	/* The message goes into the JSON of the 400 answer: json_pack() needs UTF-8. */
	CHECK(utf8_valid((const uint8_t *)err->message, n));
}

static void check_body(const uint8_t *data, size_t size)
{
	struct jsonmsg_batch b = {NULL, 0, false};
	struct jsonmsg_error err = {0, NULL, ""};

	int rc = jsonmsg_parse((const char *)data, size, MAX_MESSAGES, &b, &err);
	if (rc) {
		check_error(rc, &err);
		return;
	}
	CHECK(b.count >= 1 && b.count <= MAX_MESSAGES);
	CHECK(b.is_array || b.count == 1);
	for (size_t i = 0; i < b.count; i++) {
		const struct jsonmsg *j = &b.msgs[i];
		check_parsed(j);
		struct msg *m = msg_new(j->topic, strlen(j->topic), j->payload, j->payload_len,
					j->props, j->props_len, (uint8_t)j->qos, j->retain);
		if (!m)
			abort();
		free(check_write(m, i % 2 ? 1700000000123u : 0));

		/* Without "ts", what was written is a publish body again, for the same message. */
		char *text = check_write(m, 0);
		struct jsonmsg_batch again = {NULL, 0, false};
		rc = jsonmsg_parse(text, strlen(text), 1, &again, &err);
		if (rc)
			fprintf(stderr, "written message refused: %s: %s\n", err.message, text);
		CHECK(rc == 0 && again.count == 1 && !again.is_array);
		const struct jsonmsg *a = &again.msgs[0];
		CHECK(!strcmp(a->topic, j->topic) && a->qos == j->qos && a->retain == j->retain);
		CHECK(bytes_equal(a->payload, a->payload_len, j->payload, j->payload_len));
		struct msg *m2 = msg_new(a->topic, strlen(a->topic), a->payload, a->payload_len,
					 a->props, a->props_len, (uint8_t)a->qos, a->retain);
		if (!m2)
			abort();
		char *text2 = check_write(m2, 0);
		CHECK(!strcmp(text, text2));
		free(text2);
		free(m2);
		jsonmsg_batch_clear(&again);
		free(text);
		free(m);
	}
	jsonmsg_batch_clear(&b);
	CHECK(b.count == 0 && b.msgs == NULL);
}

/* Strict base64 both ways: decoding then encoding gives the text back, padded. */
static void check_b64(const uint8_t *data, size_t size)
{
	struct buf bin = BUF_INIT, text = BUF_INIT;

	CHECK(buf_append(&bin, "pre", 3) == 0);
	int rc = b64_decode(&bin, (const char *)data, size);
	if (rc) {
		CHECK(rc == -EINVAL);
		CHECK(bin.len == 3 && memcmp(bin.data, "pre", 3) == 0);
	} else {
		CHECK(b64_encode(&text, bin.data + 3, bin.len - 3) == 0);
		size_t pad = size % 4 ? 4 - size % 4 : 0;
		CHECK(text.len == size + pad);
		CHECK(size == 0 || memcmp(text.data, data, size) == 0);
		for (size_t i = size; i < text.len; i++)
			CHECK(text.data[i] == '=');
	}
	bin.len = 0;
	text.len = 0;
	CHECK(b64_encode(&text, data, size) == 0);
	CHECK(text.len == (size + 2) / 3 * 4);
	CHECK(b64_decode(&bin, (const char *)text.data, text.len) == 0);
	CHECK(bytes_equal(bin.data, bin.len, data, size));
	buf_clear(&bin);
	buf_clear(&text);
}

static void check_raw_msg(const uint8_t *data, size_t size)
{
	struct codec_error cerr;
	if (size < 2)
		return;
	size_t tlen = data[0], plen = data[1], rest = size - 2;
	tlen = tlen < rest ? tlen : rest;
	plen = plen < rest - tlen ? plen : rest - tlen;
	const uint8_t *topic = data + 2, *props = topic + tlen, *payload = props + plen;
	if (props_validate(props, plen, MQTT_PUBLISH, &cerr))
		plen = 0;
	struct msg *m = msg_new(topic, tlen, payload, rest - tlen - (size_t)(payload - props),
				props, plen, (uint8_t)(data[1] % 3), data[0] & 1);
	if (!m)
		abort();
	free(check_write(m, data[0] & 2 ? 1 : 0));
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_body(data, size);
	check_b64(data, size);
	check_raw_msg(data, size);
	return 0;
}
