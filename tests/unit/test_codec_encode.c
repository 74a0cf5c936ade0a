/* tests/unit/test_codec_encode.c — MQTT packets: decoded fields, and byte-exact encodings
 * written out from the spec. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

#include "codec_test_util.h"

static void assert_bytes(struct mqtt_bytes b, const char *want)
{
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
}

/* ---- decoded fields, and byte-exact encodings written out from the spec ---- */

static void decode_hex(const char *hexbytes, int version, uint8_t *b, struct mqtt_packet *p)
{
	size_t n = hex(hexbytes, b, MAX_PKT);
	struct codec_error err = {0, NULL};
	int rc = codec_decode(b, n, version, p, &err);
	if (rc)
		fail_msg("%s: %d (%s)", hexbytes, rc, err.msg);
}

static void encode_exact(int version, const struct mqtt_packet *p, const char *hexbytes)
{
	uint8_t want[MAX_PKT];
	size_t n = hex(hexbytes, want, sizeof want);
	struct buf b = BUF_INIT;
	assert_int_equal(buf_put_u8(&b, 0xEE), 0); /* encoding appends */
	encode_ok(version, p, &b);
	assert_int_equal(b.len, 1 + n);
	assert_int_equal(b.data[0], 0xEE);
	if (memcmp(b.data + 1, want, n) != 0)
		fail_msg("encoding differs from %s", hexbytes);
	buf_clear(&b);
}

#define CONNECT311_A "10 0D 00 04 'MQTT' 04 02 00 3C 00 01 'a'"

static void test_connect_311(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex(CONNECT311_A, 0, b, &p);
	assert_int_equal(p.type, MQTT_CONNECT);
	const struct mqtt_connect *c = &p.u.connect;
	assert_int_equal(c->version, MQTT_V311);
	assert_true(c->clean_start);
	assert_int_equal(c->keepalive, 60);
	assert_bytes(c->client_id, "a");
	assert_false(c->will);
	assert_false(c->has_username);
	assert_false(c->has_password);
	assert_int_equal(c->props.len, 0);

	struct mqtt_packet q = {.type = MQTT_CONNECT};
	q.u.connect.clean_start = true;
	q.u.connect.keepalive = 60;
	q.u.connect.client_id = str("a");
	encode_exact(MQTT_V311, &q, CONNECT311_A);
	encode_exact(MQTT_V31, &q, "10 0F 00 06 'MQIsdp' 03 02 00 3C 00 01 'a'");
	encode_exact(MQTT_V5, &q, "10 0E 00 04 'MQTT' 05 02 00 3C 00 00 01 'a'");
}

#define CONNECT5_FULL                                                                              \
	"10 32 00 04 'MQTT' 05 EE 00 1E 08 11 00 00 0E 10 21 00 14 00 03 'cid' "                   \
	"09 18 00 00 00 05 03 00 01 't' 00 03 'w/t' 00 03 'bye' 00 01 'u' 00 01 'p'"

static void test_connect_5_full(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex(CONNECT5_FULL, MQTT_V5, b, &p);
	const struct mqtt_connect *c = &p.u.connect;
	assert_int_equal(c->version, MQTT_V5);
	assert_true(c->clean_start);
	assert_int_equal(c->keepalive, 30);
	assert_bytes(c->client_id, "cid");
	assert_true(c->will);
	assert_int_equal(c->will_qos, 1);
	assert_true(c->will_retain);
	assert_bytes(c->will_topic, "w/t");
	assert_bytes(c->will_payload, "bye");
	assert_true(c->has_username);
	assert_bytes(c->username, "u");
	assert_true(c->has_password);
	assert_bytes(c->password, "p");
	struct mqtt_prop prop;
	assert_true(props_find(c->props.data, c->props.len, MQTT_PROP_SESSION_EXPIRY, &prop));
	assert_int_equal(prop.value, 3600);
	assert_true(props_find(c->props.data, c->props.len, MQTT_PROP_RECEIVE_MAXIMUM, &prop));
	assert_int_equal(prop.value, 20);
	assert_true(props_find(c->will_props.data, c->will_props.len, MQTT_PROP_WILL_DELAY, &prop));
	assert_int_equal(prop.value, 5);

	/* Built from fields with the props API, it is the same packet. */
	struct buf props = BUF_INIT;
	struct buf will_props = BUF_INIT;
	assert_int_equal(props_put_int(&props, MQTT_PROP_SESSION_EXPIRY, 3600), 0);
	assert_int_equal(props_put_int(&props, MQTT_PROP_RECEIVE_MAXIMUM, 20), 0);
	assert_int_equal(props_put_int(&will_props, MQTT_PROP_WILL_DELAY, 5), 0);
	assert_int_equal(props_put_bytes(&will_props, MQTT_PROP_CONTENT_TYPE, "t", 1), 0);
	struct mqtt_packet q = {.type = MQTT_CONNECT};
	struct mqtt_connect *w = &q.u.connect;
	w->clean_start = true;
	w->keepalive = 30;
	w->props = (struct mqtt_bytes){props.data, props.len};
	w->client_id = str("cid");
	w->will = true;
	w->will_qos = 1;
	w->will_retain = true;
	w->will_props = (struct mqtt_bytes){will_props.data, will_props.len};
	w->will_topic = str("w/t");
	w->will_payload = str("bye");
	w->has_username = true;
	w->username = str("u");
	w->has_password = true;
	w->password = str("p");
	encode_exact(MQTT_V5, &q, CONNECT5_FULL);
	/* 3.1.1 has no properties. */
	encode_exact(MQTT_V311, &q,
		     "10 1F 00 04 'MQTT' 04 EE 00 1E 00 03 'cid' 00 03 'w/t' 00 03 'bye' "
		     "00 01 'u' 00 01 'p'");
	buf_clear(&props);
	buf_clear(&will_props);
}

static void test_connect_empty_client_id(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("10 0C 00 04 'MQTT' 04 00 00 00 00 00", MQTT_V311, b, &p);
	assert_int_equal(p.u.connect.client_id.len, 0);
	assert_false(p.u.connect.clean_start);
	decode_hex("10 0E 00 06 'MQIsdp' 03 02 00 00 00 00", MQTT_V31, b, &p);
	assert_int_equal(p.u.connect.version, MQTT_V31);
	assert_int_equal(p.u.connect.client_id.len, 0);
}

static void test_publish(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("30 07 00 03 'a/b' 'hi'", MQTT_V311, b, &p);
	const struct mqtt_publish *m = &p.u.publish;
	assert_int_equal(m->qos, 0);
	assert_false(m->dup);
	assert_false(m->retain);
	assert_int_equal(m->packet_id, 0);
	assert_bytes(m->topic, "a/b");
	assert_bytes(m->payload, "hi");

	decode_hex("3B 0A 00 01 'a' 00 0A 03 23 00 05 'x'", MQTT_V5, b, &p);
	assert_int_equal(m->qos, 1);
	assert_true(m->dup);
	assert_true(m->retain);
	assert_int_equal(m->packet_id, 10);
	assert_bytes(m->payload, "x");
	struct mqtt_prop alias;
	assert_true(props_find(m->props.data, m->props.len, MQTT_PROP_TOPIC_ALIAS, &alias));
	assert_int_equal(alias.value, 5);

	struct mqtt_packet q = {.type = MQTT_PUBLISH};
	struct mqtt_publish *w = &q.u.publish;
	w->qos = 2;
	w->packet_id = 0x1234;
	w->topic = str("t");
	w->payload = str("pl");
	static const uint8_t ct[] = {0x03, 0x00, 0x01, 'j'};
	w->props = (struct mqtt_bytes){ct, sizeof ct};
	encode_exact(MQTT_V5, &q, "34 0C 00 01 't' 12 34 04 03 00 01 'j' 'pl'");
	encode_exact(MQTT_V311, &q, "34 07 00 01 't' 12 34 'pl'");
	encode_exact(MQTT_V31, &q, "34 07 00 01 't' 12 34 'pl'");
	w->qos = 0;
	w->retain = true;
	encode_exact(MQTT_V311, &q, "31 05 00 01 't' 'pl'");
}

static void test_publish_large_payload(void **state)
{
	(void)state;
	size_t payload_len = 200000; /* a three-byte remaining length */
	struct mqtt_packet q = {.type = MQTT_PUBLISH};
	uint8_t *payload = calloc(1, payload_len);
	assert_non_null(payload);
	q.u.publish.topic = str("big");
	q.u.publish.payload = (struct mqtt_bytes){payload, payload_len};
	struct buf b = BUF_INIT;
	encode_ok(MQTT_V311, &q, &b);
	assert_int_equal(b.len, 1 + 3 + 5 + payload_len);
	size_t frame_len;
	assert_int_equal(codec_frame(b.data, b.len, &frame_len), 0);
	assert_int_equal(frame_len, b.len);
	struct mqtt_packet p;
	struct codec_error err;
	assert_int_equal(codec_decode(b.data, b.len, MQTT_V311, &p, &err), 0);
	assert_int_equal(p.u.publish.payload.len, payload_len);
	buf_clear(&b);
	free(payload);
}

/* The remaining length at each boundary of the variable byte integer sizes. */
static void test_remaining_length_boundaries(void **state)
{
	(void)state;
	static const size_t lengths[] = {0, 127, 128, 16383, 16384, 2097151, 2097152};
	uint8_t *payload = calloc(1, 2097152);
	assert_non_null(payload);
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		struct mqtt_packet q = {.type = MQTT_DISCONNECT};
		size_t rl = lengths[i];
		if (rl > 0) {
			/* A PUBLISH of topic "t" (3 bytes) and the rest as payload. */
			q.type = MQTT_PUBLISH;
			q.u.publish.topic = str("t");
			q.u.publish.payload = (struct mqtt_bytes){payload, rl - 3};
		}
		struct buf b = BUF_INIT;
		encode_ok(MQTT_V311, &q, &b);
		size_t header = rl < 128 ? 2 : rl < 16384 ? 3 : rl < 2097152 ? 4 : 5;
		assert_int_equal(b.len, header + rl);
		size_t frame_len;
		assert_int_equal(codec_frame(b.data, b.len, &frame_len), 0);
		assert_int_equal(frame_len, b.len);
		struct mqtt_packet p;
		struct codec_error err;
		assert_int_equal(codec_decode(b.data, b.len, MQTT_V311, &p, &err), 0);
		buf_clear(&b);
	}
	free(payload);
}

static void test_acks(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("40 02 00 01", MQTT_V5, b, &p);
	assert_int_equal(p.u.ack.packet_id, 1);
	assert_int_equal(p.u.ack.reason, 0);
	assert_int_equal(p.u.ack.props.len, 0);
	decode_hex("50 03 00 02 10", MQTT_V5, b, &p);
	assert_int_equal(p.type, MQTT_PUBREC);
	assert_int_equal(p.u.ack.reason, MQTT_RC_NO_MATCHING_SUBSCRIBERS);
	decode_hex("62 07 00 03 92 03 1F 00 00", MQTT_V5, b, &p);
	assert_int_equal(p.type, MQTT_PUBREL);
	assert_int_equal(p.u.ack.packet_id, 3);
	assert_int_equal(p.u.ack.reason, MQTT_RC_PACKET_ID_NOT_FOUND);
	assert_int_equal(p.u.ack.props.len, 3);

	struct mqtt_packet q = {.type = MQTT_PUBACK};
	q.u.ack.packet_id = 1;
	encode_exact(MQTT_V5, &q, "40 02 00 01");
	q.u.ack.reason = MQTT_RC_NOT_AUTHORIZED;
	encode_exact(MQTT_V5, &q, "40 03 00 01 87");
	static const uint8_t rs[] = {0x1F, 0x00, 0x01, 'x'};
	q.u.ack.props = (struct mqtt_bytes){rs, sizeof rs};
	encode_exact(MQTT_V5, &q, "40 08 00 01 87 04 1F 00 01 'x'");
	/* 3.x has neither reason nor properties. */
	encode_exact(MQTT_V311, &q, "40 02 00 01");
	q.type = MQTT_PUBREL;
	q.u.ack.reason = 0;
	q.u.ack.props = (struct mqtt_bytes){NULL, 0};
	encode_exact(MQTT_V311, &q, "62 02 00 01");
	encode_exact(MQTT_V5, &q, "62 02 00 01");
	q.type = MQTT_PUBCOMP;
	encode_exact(MQTT_V31, &q, "70 02 00 01");
	q.type = MQTT_PUBREC;
	q.u.ack.props = (struct mqtt_bytes){rs, sizeof rs};
	encode_exact(MQTT_V5, &q, "50 08 00 01 00 04 1F 00 01 'x'");
}

static void test_subscribe(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("82 0F 00 02 02 0B 05 00 03 'a/+' 2D 00 01 '#' 00", MQTT_V5, b, &p);
	const struct mqtt_subscribe *s = &p.u.sub;
	assert_int_equal(s->packet_id, 2);
	assert_int_equal(s->count, 2);
	struct mqtt_prop id;
	assert_true(props_find(s->props.data, s->props.len, MQTT_PROP_SUBSCRIPTION_ID, &id));
	assert_int_equal(id.value, 5);
	struct mqtt_bytes cursor = s->entries;
	struct codec_entry e;
	assert_true(codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e));
	assert_bytes(e.filter, "a/+");
	assert_int_equal(e.options & MQTT_SUBOPT_QOS_MASK, 1);
	assert_true(e.options & MQTT_SUBOPT_NO_LOCAL);
	assert_true(e.options & MQTT_SUBOPT_RETAIN_AS_PUB);
	assert_int_equal(MQTT_SUBOPT_RETAIN_HANDLING(e.options), 2);
	assert_true(codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e));
	assert_bytes(e.filter, "#");
	assert_int_equal(e.options, 0);
	assert_false(codec_next_entry(&cursor, MQTT_SUBSCRIBE, &e));

	/* Re-encoded for 3.1.1: no properties, options cut to the QoS bits. */
	encode_exact(MQTT_V311, &p, "82 0C 00 02 00 03 'a/+' 01 00 01 '#' 00");
	encode_exact(MQTT_V5, &p, "82 0F 00 02 02 0B 05 00 03 'a/+' 2D 00 01 '#' 00");

	decode_hex("A2 0A 00 07 00 01 'a' 00 03 'b/#'", MQTT_V311, b, &p);
	assert_int_equal(p.type, MQTT_UNSUBSCRIBE);
	assert_int_equal(p.u.sub.count, 2);
	cursor = p.u.sub.entries;
	assert_true(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	assert_bytes(e.filter, "a");
	assert_true(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	assert_bytes(e.filter, "b/#");
	assert_false(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	encode_exact(MQTT_V5, &p, "A2 0B 00 07 00 00 01 'a' 00 03 'b/#'");
}

static void test_entries(void **state)
{
	(void)state;
	struct buf entries = BUF_INIT;
	assert_int_equal(codec_put_entry(&entries, MQTT_SUBSCRIBE, "a/b", 3, 0x01), 0);
	assert_int_equal(codec_put_entry(&entries, MQTT_SUBSCRIBE, "$share/g/x", 10, 0x22), 0);
	static const char want[] = "\x00\x03"
				   "a/b"
				   "\x01"
				   "\x00\x0A"
				   "$share/g/x"
				   "\x22";
	assert_int_equal(entries.len, sizeof want - 1);
	assert_memory_equal(entries.data, want, entries.len);

	struct mqtt_packet q = {.type = MQTT_SUBSCRIBE};
	q.u.sub.packet_id = 9;
	q.u.sub.entries = (struct mqtt_bytes){entries.data, entries.len};
	q.u.sub.count = 2;
	struct buf b = BUF_INIT;
	encode_ok(MQTT_V5, &q, &b);
	struct mqtt_packet p;
	struct codec_error err;
	assert_int_equal(codec_decode(b.data, b.len, MQTT_V5, &p, &err), 0);
	assert_int_equal(p.u.sub.count, 2);
	assert_int_equal(p.u.sub.entries.len, entries.len);
	assert_memory_equal(p.u.sub.entries.data, entries.data, entries.len);
	buf_clear(&b);
	buf_clear(&entries);

	assert_int_equal(codec_put_entry(&entries, MQTT_UNSUBSCRIBE, "x", 1, 0xFF), 0);
	assert_int_equal(entries.len, 3);
	assert_memory_equal(entries.data, "\x00\x01x", 3);
	char *big = calloc(1, 65536);
	assert_non_null(big);
	assert_int_equal(codec_put_entry(&entries, MQTT_UNSUBSCRIBE, big, 65536, 0), -ERANGE);
	assert_int_equal(entries.len, 3);
	free(big);
	buf_clear(&entries);

	struct mqtt_bytes empty = {NULL, 0};
	struct codec_entry e;
	assert_false(codec_next_entry(&empty, MQTT_SUBSCRIBE, &e));
	static const uint8_t cut[] = {0x00, 0x05, 'a'};
	struct mqtt_bytes cursor = {cut, sizeof cut};
	assert_false(codec_next_entry(&cursor, MQTT_UNSUBSCRIBE, &e));
	assert_int_equal(cursor.len, sizeof cut);
}

static void test_suback(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("90 05 00 01 00 00 87", MQTT_V5, b, &p);
	assert_int_equal(p.u.suback.packet_id, 1);
	assert_int_equal(p.u.suback.codes.len, 2);
	assert_int_equal(p.u.suback.codes.data[1], MQTT_RC_NOT_AUTHORIZED);

	/* In 3.x every v5 failure becomes 0x80. */
	static const uint8_t codes[] = {0x00, 0x01, 0x02, 0x80, 0x87, 0x8F, 0x97, 0xA2};
	struct mqtt_packet q = {.type = MQTT_SUBACK};
	q.u.suback.packet_id = 0x0102;
	q.u.suback.codes = (struct mqtt_bytes){codes, sizeof codes};
	encode_exact(MQTT_V311, &q, "90 0A 01 02 00 01 02 80 80 80 80 80");
	encode_exact(MQTT_V31, &q, "90 0A 01 02 00 01 02 80 80 80 80 80");
	encode_exact(MQTT_V5, &q, "90 0B 01 02 00 00 01 02 80 87 8F 97 A2");

	static const uint8_t uncodes[] = {0x00, 0x11};
	q.type = MQTT_UNSUBACK;
	q.u.suback.codes = (struct mqtt_bytes){uncodes, sizeof uncodes};
	encode_exact(MQTT_V311, &q, "B0 02 01 02");
	encode_exact(MQTT_V5, &q, "B0 05 01 02 00 00 11");
	decode_hex("B0 02 01 02", MQTT_V311, b, &p);
	assert_int_equal(p.u.suback.codes.len, 0);
}

static void test_connack(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	decode_hex("20 02 01 00", MQTT_V311, b, &p);
	assert_true(p.u.connack.session_present);
	assert_int_equal(p.u.connack.code, 0);
	decode_hex("20 02 01 05", MQTT_V31, b, &p);
	assert_false(p.u.connack.session_present); /* 3.1 has no such flag */
	assert_int_equal(p.u.connack.code, MQTT_CONNACK_NOT_AUTHORIZED);

	struct mqtt_packet q = {.type = MQTT_CONNACK};
	q.u.connack.session_present = true;
	encode_exact(MQTT_V311, &q, "20 02 01 00");
	encode_exact(MQTT_V31, &q, "20 02 00 00");
	encode_exact(MQTT_V5, &q, "20 03 01 00 00");
	q.u.connack.session_present = false;

	/* v5 reasons map to the nearest 3.1.1 code. */
	static const struct {
		uint8_t v5;
		uint8_t v3;
	} map[] = {
	    {0x00, 0}, {0x80, 3}, {0x81, 3}, {0x82, 3}, {0x83, 3}, {0x84, 1}, {0x85, 2},
	    {0x86, 4}, {0x87, 5}, {0x88, 3}, {0x89, 3}, {0x8A, 5}, {0x8C, 4}, {0x9F, 3},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		char want[32];
		q.u.connack.code = map[i].v5;
		snprintf(want, sizeof want, "20 02 00 %02X", map[i].v3);
		encode_exact(MQTT_V311, &q, want);
		snprintf(want, sizeof want, "20 03 00 %02X 00", map[i].v5);
		encode_exact(MQTT_V5, &q, want);
	}
	/* 3.1.1 codes pass through in 3.x. */
	q.u.connack.code = MQTT_CONNACK_BAD_CREDENTIALS;
	encode_exact(MQTT_V311, &q, "20 02 00 04");
}

static void test_ping_disconnect_auth(void **state)
{
	(void)state;
	uint8_t b[MAX_PKT];
	struct mqtt_packet p;
	struct mqtt_packet q = {.type = MQTT_PINGREQ};
	for (int v = MQTT_V31; v <= MQTT_V5; v++)
		encode_exact(v, &q, "C0 00");
	q.type = MQTT_PINGRESP;
	encode_exact(MQTT_V5, &q, "D0 00");

	q.type = MQTT_DISCONNECT;
	encode_exact(MQTT_V5, &q, "E0 00");
	q.u.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
	encode_exact(MQTT_V5, &q, "E0 01 04");
	encode_exact(MQTT_V311, &q, "E0 00");
	static const uint8_t se[] = {0x11, 0x00, 0x00, 0x00, 0x00};
	q.u.disconnect.reason = 0;
	q.u.disconnect.props = (struct mqtt_bytes){se, sizeof se};
	encode_exact(MQTT_V5, &q, "E0 07 00 05 11 00 00 00 00");

	decode_hex("E0 02 8E 00", MQTT_V5, b, &p);
	assert_int_equal(p.u.disconnect.reason, MQTT_RC_SESSION_TAKEN_OVER);
	assert_int_equal(p.u.disconnect.props.len, 0);
	encode_exact(MQTT_V5, &p, "E0 01 8E");

	decode_hex("F0 07 18 05 15 00 02 'ab'", MQTT_V5, b, &p);
	assert_int_equal(p.type, MQTT_AUTH);
	assert_int_equal(p.u.disconnect.reason, MQTT_RC_CONTINUE_AUTH);
	assert_int_equal(p.u.disconnect.props.len, 5);
	q.type = MQTT_AUTH;
	q.u.disconnect.reason = 0;
	q.u.disconnect.props = (struct mqtt_bytes){NULL, 0};
	encode_exact(MQTT_V5, &q, "F0 00");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_connect_311),
	    cmocka_unit_test(test_connect_5_full),
	    cmocka_unit_test(test_connect_empty_client_id),
	    cmocka_unit_test(test_publish),
	    cmocka_unit_test(test_publish_large_payload),
	    cmocka_unit_test(test_remaining_length_boundaries),
	    cmocka_unit_test(test_acks),
	    cmocka_unit_test(test_subscribe),
	    cmocka_unit_test(test_entries),
	    cmocka_unit_test(test_suback),
	    cmocka_unit_test(test_connack),
	    cmocka_unit_test(test_ping_disconnect_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
