/*
 * tests/fuzz/fuzz_codec.c — libFuzzer target for the MQTT codec (codec.h) and properties
 * (props.h): the bytes a browser sends on a WebSocket.
 *
 * The input is one MQTT packet, or several back to back (framed with codec_frame as a session
 * does). Each is decoded as protocol level 3, 4 and 5 and with a bad level. What decodes is
 * checked field by field, its entries and properties are walked and rebuilt, and it is encoded
 * again for every level: codec_encoded_len() must equal what codec_encode() appends, and what
 * is encoded must decode and encode to the same bytes. The whole input is also validated as
 * property bytes for every place properties appear.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "codec.h"
#include "props.h"
#include "topic.h"
#include "utf8.h"

#include "fuzz.h"

/* The levels a connection can have, and two it cannot. */
static const int versions[] = {MQTT_V31, MQTT_V311, MQTT_V5, 0, 6};
#define NVERSIONS (sizeof versions / sizeof versions[0])

static bool bytes_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* A field of a decoded packet points into the packet (decoding never copies). */
static void check_inside(const struct mqtt_bytes *v, const uint8_t *buf, size_t len)
{
	if (v->len == 0)
		return;
	CHECK(v->data >= buf && v->len <= len && (size_t)(v->data - buf) <= len - v->len);
}

/*
 * @p[0..len) validated for @where: it validates again, iterates to its end with known
 * identifiers, props_find() finds the first of each, rebuilding each property gives the same
 * bytes, and props_copy_except() keeps or drops exactly what it is asked to.
 */
static void check_props(const uint8_t *p, size_t len, int where)
{
	struct codec_error err = {0, NULL};
	struct buf rebuilt = BUF_INIT, copy = BUF_INIT;
	struct props_iter it;
	struct mqtt_prop prop, found;
	uint64_t seen = 0;
	size_t count = 0;
	uint8_t first_id = 0;

	CHECK(props_validate(p, len, where, &err) == 0);
	props_iter_init(&it, p, len);
	while (props_next(&it, &prop)) {
		enum mqtt_prop_type type = props_type(prop.id);
		int rc = -1;
		CHECK(type != 0 && prop.id < 64);
		switch (type) {
		case MQTT_PROP_T_BYTE:
		case MQTT_PROP_T_U16:
		case MQTT_PROP_T_U32:
		case MQTT_PROP_T_VARINT:
			rc = props_put_int(&rebuilt, prop.id, prop.value);
			break;
		case MQTT_PROP_T_STRING:
		case MQTT_PROP_T_BINARY:
			if (type == MQTT_PROP_T_STRING)
				CHECK(utf8_valid_mqtt(prop.data, prop.len));
			rc = props_put_bytes(&rebuilt, prop.id, prop.data, prop.len);
			break;
		case MQTT_PROP_T_PAIR:
			CHECK(utf8_valid_mqtt(prop.data, prop.len));
			CHECK(utf8_valid_mqtt(prop.data2, prop.len2));
			rc = props_put_pair(&rebuilt, prop.data, prop.len, prop.data2, prop.len2);
			break;
		}
		CHECK(rc == 0);
		if (!(seen & (1ull << prop.id))) {
			CHECK(props_find(p, len, prop.id, &found));
			CHECK(found.id == prop.id && found.value == prop.value &&
			      found.data == prop.data && found.len == prop.len &&
			      found.data2 == prop.data2 && found.len2 == prop.len2);
		}
		seen |= 1ull << prop.id;
		if (count++ == 0)
			first_id = prop.id;
	}
	CHECK(it.pos == it.end);
	CHECK(bytes_equal(rebuilt.data, rebuilt.len, p, len));

	CHECK(props_copy_except(&copy, p, len, NULL, 0) == 0);
	CHECK(bytes_equal(copy.data, copy.len, p, len));
	if (count) {
		copy.len = 0;
		CHECK(props_copy_except(&copy, p, len, &first_id, 1) == 0);
		CHECK(copy.len < len);
		CHECK(props_validate(copy.data, copy.len, where, &err) == 0);
		CHECK(!props_find(copy.data, copy.len, first_id, &found));
	}
	buf_clear(&rebuilt);
	buf_clear(&copy);
}

/* The entries of a decoded SUBSCRIBE / UNSUBSCRIBE: @count valid filters, rebuilt identically. */
static void check_entries(const struct mqtt_subscribe *s, enum mqtt_type type, int version)
{
	struct mqtt_bytes cursor = s->entries;
	struct codec_entry e;
	struct buf rebuilt = BUF_INIT;
	size_t count = 0;

	while (codec_next_entry(&cursor, type, &e)) {
		const char *f = (const char *)e.filter.data;
		CHECK(utf8_valid_mqtt(e.filter.data, e.filter.len));
		CHECK(topic_filter_valid(f, e.filter.len));
		if (type == MQTT_SUBSCRIBE) {
			CHECK((e.options & MQTT_SUBOPT_QOS_MASK) != 3);
			CHECK(MQTT_SUBOPT_RETAIN_HANDLING(e.options) != 3);
			CHECK(!(e.options & (version == MQTT_V5 ? 0xC0 : 0xFC)));
		} else {
			CHECK(e.options == 0);
		}
		CHECK(codec_put_entry(&rebuilt, type, e.filter.data, e.filter.len, e.options) == 0);
		count++;
	}
	CHECK(cursor.len == 0);
	CHECK(count == s->count && count > 0);
	CHECK(bytes_equal(rebuilt.data, rebuilt.len, s->entries.data, s->entries.len));
	buf_clear(&rebuilt);
}

/* What the headers promise about the fields of a packet decoded at level @version. */
static void check_fields(const struct mqtt_packet *pkt, int version, const uint8_t *buf, size_t len)
{
	const struct mqtt_connect *c = &pkt->u.connect;
	const struct mqtt_publish *p = &pkt->u.publish;

	switch (pkt->type) {
	case MQTT_CONNECT:
		CHECK(c->version >= MQTT_V31 && c->version <= MQTT_V5);
		CHECK(c->will_qos <= 2 && (c->will || (!c->will_qos && !c->will_retain)));
		CHECK(utf8_valid_mqtt(c->client_id.data, c->client_id.len));
		check_inside(&c->client_id, buf, len);
		check_inside(&c->will_topic, buf, len);
		check_inside(&c->will_payload, buf, len);
		check_inside(&c->username, buf, len);
		check_inside(&c->password, buf, len);
		if (c->will)
			CHECK(
			    topic_name_valid((const char *)c->will_topic.data, c->will_topic.len));
		if (c->has_username)
			CHECK(utf8_valid_mqtt(c->username.data, c->username.len));
		check_props(c->props.data, c->props.len, MQTT_CONNECT);
		check_props(c->will_props.data, c->will_props.len, PROPS_IN_WILL);
		if (c->version != MQTT_V5)
			CHECK(c->props.len == 0 && c->will_props.len == 0);
		break;
	case MQTT_CONNACK:
		check_props(pkt->u.connack.props.data, pkt->u.connack.props.len, MQTT_CONNACK);
		break;
	case MQTT_PUBLISH:
		CHECK(p->qos <= 2 && !(p->dup && p->qos == 0));
		CHECK((p->packet_id != 0) == (p->qos != 0));
		check_inside(&p->topic, buf, len);
		check_inside(&p->payload, buf, len);
		CHECK(utf8_valid_mqtt(p->topic.data, p->topic.len));
		if (p->topic.len || version != MQTT_V5) {
			CHECK(topic_name_valid((const char *)p->topic.data, p->topic.len));
		} else {
			struct mqtt_prop alias;
			CHECK(
			    props_find(p->props.data, p->props.len, MQTT_PROP_TOPIC_ALIAS, &alias));
		}
		check_props(p->props.data, p->props.len, MQTT_PUBLISH);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		CHECK(pkt->u.ack.packet_id != 0);
		check_props(pkt->u.ack.props.data, pkt->u.ack.props.len, pkt->type);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		CHECK(pkt->u.sub.packet_id != 0);
		check_inside(&pkt->u.sub.entries, buf, len);
		check_props(pkt->u.sub.props.data, pkt->u.sub.props.len, pkt->type);
		check_entries(&pkt->u.sub, pkt->type, version);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		CHECK(pkt->u.suback.packet_id != 0);
		CHECK(pkt->u.suback.codes.len > 0 ||
		      (pkt->type == MQTT_UNSUBACK && version != MQTT_V5));
		check_props(pkt->u.suback.props.data, pkt->u.suback.props.len, pkt->type);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		CHECK(pkt->type != MQTT_AUTH || version == MQTT_V5);
		check_props(pkt->u.disconnect.props.data, pkt->u.disconnect.props.len, pkt->type);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		break;
	default:
		CHECK(!"decoded a packet of no known type");
	}
}

/*
 * Encodes @pkt for @version after two bytes already in the buffer: the length measured must be
 * what is appended (0 exactly when encoding fails, and then nothing is appended). What is
 * encoded frames as one packet, decodes at @version, and encodes again to the same bytes.
 */
static void check_encode(const struct mqtt_packet *pkt, int version, bool redecode)
{
	struct buf out = BUF_INIT, again = BUF_INIT;
	struct mqtt_packet back;
	struct codec_error err = {0, NULL};
	size_t want = codec_encoded_len(version, pkt), plen = 0;

	CHECK(buf_append(&out, "<>", 2) == 0);
	int rc = codec_encode(&out, version, pkt);
	CHECK(memcmp(out.data, "<>", 2) == 0);
	if (!want) {
		CHECK(rc == -EINVAL || rc == -ERANGE);
		CHECK(out.len == 2);
		buf_clear(&out);
		return;
	}
	CHECK(rc == 0);
	CHECK(version >= MQTT_V31 && version <= MQTT_V5);
	CHECK(out.len - 2 == want);
	CHECK(codec_frame(out.data + 2, want, &plen) == 0 && plen == want);
	if (redecode) {
		rc = codec_decode(out.data + 2, want, version, &back, &err);
		if (rc)
			fprintf(stderr, "re-decoding %s at level %d: %d %s\n",
				codec_type_name(pkt->type), version, rc, err.msg);
		CHECK(rc == 0);
		CHECK(back.type == pkt->type);
		CHECK(codec_encode(&again, version, &back) == 0);
		CHECK(bytes_equal(again.data, again.len, out.data + 2, want));
	}
	buf_clear(&again);
	buf_clear(&out);
}

/* The same packet with its numbers changed from @seed, for the encoder's own checks. */
static void check_encode_mutated(const struct mqtt_packet *pkt, uint8_t seed)
{
	struct mqtt_packet m = *pkt;

	switch (m.type) {
	case MQTT_CONNECT:
		m.u.connect.will_qos = seed & 3;
		m.u.connect.has_password ^= (seed & 4) != 0;
		break;
	case MQTT_CONNACK:
		m.u.connack.code = seed;
		m.u.connack.session_present ^= 1;
		break;
	case MQTT_PUBLISH:
		m.u.publish.qos = seed & 3;
		m.u.publish.packet_id = (uint16_t)(seed >> 4);
		m.u.publish.dup = seed & 4;
		if (seed & 8)
			m.u.publish.topic.len = 0;
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		m.u.ack.reason = seed;
		m.u.ack.packet_id = (uint16_t)(seed & 1);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		/* A cut entry list cannot be walked to its end. */
		if (m.u.sub.entries.len > (size_t)(seed & 3))
			m.u.sub.entries.len -= seed & 3;
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		m.u.suback.codes.len = seed & 1 ? m.u.suback.codes.len : 0;
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		m.u.disconnect.reason = seed;
		break;
	default:
		m.type = (enum mqtt_type)(seed & 0x0F);
	}
	for (size_t i = 0; i < NVERSIONS; i++)
		check_encode(&m, versions[i], false);
}

/* One whole packet (as codec_frame measured it) decoded at every level. */
static void check_packet(const uint8_t *buf, size_t len)
{
	int connect_rc = 1;
	uint8_t connect_reason = 0;
	size_t plen = 0;

	for (size_t i = 0; i < NVERSIONS; i++) {
		int version = versions[i];
		struct mqtt_packet pkt;
		struct codec_error err = {0, NULL};
		int rc = codec_decode(buf, len, version, &pkt, &err);

		CHECK(rc == 0 || rc == -EPROTO || rc == -EPROTONOSUPPORT || rc == -EINVAL);
		/* @err may be NULL: the same answer. */
		struct mqtt_packet same;
		CHECK(codec_decode(buf, len, version, &same, NULL) == rc);
		if (rc == -EPROTO)
			CHECK(err.msg != NULL && err.reason >= 0x80);
		if (rc == -EPROTONOSUPPORT)
			CHECK(len > 0 && buf[0] >> 4 == MQTT_CONNECT);
		/* CONNECT states its own level: the connection's does not matter. */
		if (len > 0 && buf[0] >> 4 == MQTT_CONNECT) {
			if (connect_rc == 1) {
				connect_rc = rc;
				connect_reason = err.reason;
			}
			CHECK(rc == connect_rc && (rc == 0 || err.reason == connect_reason));
		}
		if (rc)
			continue;
		CHECK(codec_frame(buf, len, &plen) == 0 && plen == len);
		CHECK(pkt.type == buf[0] >> 4);
		CHECK(strcmp(codec_type_name(pkt.type), "?") != 0);
		if (pkt.type != MQTT_CONNECT)
			CHECK(version >= MQTT_V31 && version <= MQTT_V5);
		int own = pkt.type == MQTT_CONNECT ? pkt.u.connect.version : version;
		check_fields(&pkt, own, buf, len);
		for (size_t k = 0; k < NVERSIONS; k++)
			check_encode(&pkt, versions[k], true);
		check_encode_mutated(&pkt, buf[len - 1]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_error err = {0, NULL};
	size_t plen = 0, pos = 0;

	check_packet(data, size);

	/* A stream: framing a prefix gives -EAGAIN or the same answer as the whole. */
	int whole = codec_frame(data, size, &plen);
	CHECK(whole == 0 || whole == -EAGAIN || whole == -EPROTO);
	if (whole == 0)
		CHECK(plen >= 2 && plen <= 1 + 4 + (size_t)MQTT_MAX_REMAINING_LENGTH);
	for (size_t k = 0; k < size && k < 6; k++) {
		size_t part = 0;
		int rc = codec_frame(data, k, &part);
		CHECK(rc == -EAGAIN || (rc == whole && (rc || part == plen)));
	}
	while (pos < size && codec_frame(data + pos, size - pos, &plen) == 0 &&
	       plen <= size - pos) {
		if (pos || plen < size)
			check_packet(data + pos, plen);
		pos += plen;
	}

	for (int where = 0; where <= PROPS_IN_WILL + 1; where++) {
		int rc = props_validate(data, size, where, &err);
		if (where < 1 || where > PROPS_IN_WILL)
			CHECK(rc == -EINVAL);
		else if (rc == 0)
			check_props(data, size, where);
		else
			CHECK(rc == -EPROTO && err.msg != NULL &&
			      (err.reason == MQTT_RC_MALFORMED ||
			       err.reason == MQTT_RC_PROTOCOL_ERROR));
	}
	return 0;
}
