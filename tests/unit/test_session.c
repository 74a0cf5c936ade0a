/*
 * tests/unit/test_session.c — browser sessions against a fake upstream and a fake hub
 * (session_fakes.h): real MQTT packets in, and the exact bytes the session queues for the
 * browser and the calls it makes towards the broker checked. Acks in the browser's order,
 * QoS 2 de-duplication, a persistent session's hand-off through the store, and a shared
 * session's message that matched two of its subscriptions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "codec.h"
#include "session.h"
#include "session_fakes.h"

/* ---- the browser's connection ---- */

struct conn {
	struct buf out; /* everything the session queued for the browser */
	size_t read;    /* how much of it the test has checked */
	bool closed;
};

static int conn_write(void *conn, const uint8_t *data, size_t len)
{
	struct conn *c = conn;

	return buf_append(&c->out, data, len) ? -ENOMEM : 0;
}

static size_t conn_queued(void *conn)
{
	(void)conn;
	return 0;
}

static void conn_close(void *conn)
{
	((struct conn *)conn)->closed = true;
}

static void conn_pause(void *conn, bool paused)
{
	(void)conn;
	(void)paused;
}

static void conn_deadline(void *conn, uint32_t ms)
{
	(void)conn;
	(void)ms;
}

static const struct session_io io = {conn_write, conn_queued, conn_close, conn_pause,
				     conn_deadline};

/* ---- fixture ---- */

struct fixture {
	struct upstream_env env;
	struct sessions *ss;
	struct conn conn[2];
};

static struct sessions *make_sessions(struct fixture *f, bool shared, size_t max_subscriptions)
{
	struct sessions_config cfg = {0};

	cfg.env = &f->env;
	cfg.max_packet_bytes = 65536;
	cfg.max_queue_bytes = 1 << 20;
	cfg.max_sessions = 8;
	cfg.connect_wait_ms = 10000;
	cfg.shared_sessions = shared;
	cfg.max_subscriptions = max_subscriptions;
	cfg.auth_none = true;
	cfg.hub = fake_hub_handle();
	cfg.retained = fake_retained_handle();
	return sessions_new(&cfg);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_reset();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sessions_free(f->ss);
	buf_clear(&f->conn[0].out);
	buf_clear(&f->conn[1].out);
	free(f);
	return 0;
}

/* ---- packets ---- */

static void feed(struct session *s, int version, const struct mqtt_packet *p)
{
	struct buf b = BUF_INIT;

	assert_int_equal(codec_encode(&b, version, p), 0);
	assert_int_equal(session_feed(s, b.data, b.len), 0);
	buf_clear(&b);
}

/* The next packet the session queued for the browser is exactly @p. */
static void expect_sent(struct conn *c, int version, const struct mqtt_packet *p)
{
	struct buf b = BUF_INIT;

	assert_int_equal(codec_encode(&b, version, p), 0);
	assert_true(c->out.len - c->read >= b.len);
	assert_memory_equal(c->out.data + c->read, b.data, b.len);
	c->read += b.len;
	buf_clear(&b);
}

static void expect_nothing_more(struct conn *c)
{
	assert_int_equal(c->out.len, c->read);
}

/* The next packet is a CONNACK (its v5 properties are the bridge's, not checked here). */
static void expect_connack(struct conn *c, bool session_present, uint8_t code)
{
	size_t len;
	size_t at = c->read + 1;

	assert_int_equal(codec_frame(c->out.data + c->read, c->out.len - c->read, &len), 0);
	assert_int_equal(c->out.data[c->read], 0x20);
	while (c->out.data[at] & 0x80)
		at++;
	at++;
	assert_int_equal(c->out.data[at], session_present ? 1 : 0);
	assert_int_equal(c->out.data[at + 1], code);
	c->read += len;
}

static struct mqtt_packet connect_packet(int version, const char *id, bool clean,
					 struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_CONNECT};

	p.u.connect.version = (uint8_t)version;
	p.u.connect.clean_start = clean;
	p.u.connect.keepalive = 60;
	p.u.connect.client_id = (struct mqtt_bytes){(const uint8_t *)id, strlen(id)};
	p.u.connect.props = props;
	return p;
}

static struct mqtt_packet publish(uint8_t qos, uint16_t id, const char *topic, const char *payload,
				  bool dup)
{
	struct mqtt_packet p = {.type = MQTT_PUBLISH};

	p.u.publish.qos = qos;
	p.u.publish.dup = dup;
	p.u.publish.packet_id = id;
	p.u.publish.topic = (struct mqtt_bytes){(const uint8_t *)topic, strlen(topic)};
	p.u.publish.payload = (struct mqtt_bytes){(const uint8_t *)payload, strlen(payload)};
	return p;
}

static struct mqtt_packet ack(enum mqtt_type type, uint16_t id, uint8_t reason)
{
	struct mqtt_packet p = {.type = type};

	p.u.ack.packet_id = id;
	p.u.ack.reason = reason;
	return p;
}

/* A SUBSCRIBE of one filter; @entries keeps the bytes the packet points into. */
static struct mqtt_packet subscribe(struct buf *entries, uint16_t id, const char *filter,
				    uint8_t options, struct mqtt_bytes props)
{
	struct mqtt_packet p = {.type = MQTT_SUBSCRIBE};

	entries->len = 0;
	assert_int_equal(codec_put_entry(entries, MQTT_SUBSCRIBE, filter, strlen(filter), options),
			 0);
	p.u.sub.packet_id = id;
	p.u.sub.props = props;
	p.u.sub.entries = (struct mqtt_bytes){entries->data, entries->len};
	p.u.sub.count = 1;
	return p;
}

static struct mqtt_packet suback(enum mqtt_type type, uint16_t id, const uint8_t *codes, size_t n)
{
	struct mqtt_packet p = {.type = type};

	p.u.suback.packet_id = id;
	p.u.suback.codes = (struct mqtt_bytes){codes, n};
	return p;
}

/* ---- the broker's side ---- */

static void broker_connack(bool session_present)
{
	struct upstream_event *ev = fake_upstream_event(UPSTREAM_CONNECTED);

	ev->session_present = session_present;
	fake_upstream_dispatch(ev);
}

/* The broker answered the request that got @token. */
static void broker_done(int token, uint8_t code, const uint8_t *codes, size_t ncodes)
{
	struct upstream_event *ev = fake_upstream_event(UPSTREAM_DONE);

	ev->token = token;
	ev->code = code;
	ev->codes = (struct mqtt_bytes){codes, ncodes};
	fake_upstream_dispatch(ev);
}

static void broker_message(uint8_t qos, const char *topic, const char *payload)
{
	struct upstream_event *ev = fake_upstream_event(UPSTREAM_MESSAGE);

	ev->msg = msg_new(topic, strlen(topic), payload, strlen(payload), NULL, 0, qos, false);
	assert_non_null(ev->msg);
	fake_upstream_dispatch(ev);
}

/* A dedicated session through CONNECT and the broker's CONNACK. */
static struct session *connect_dedicated(struct fixture *f, struct conn *c, int version,
					 const char *id, bool clean, struct mqtt_bytes props,
					 bool session_present)
{
	struct session *s = session_new(f->ss, &io, c, "test");
	struct mqtt_packet p = connect_packet(version, id, clean, props);
	int created = fake_upstream.created;

	assert_non_null(s);
	feed(s, version, &p);
	assert_int_equal(fake_upstream.created, created + 1);
	expect_nothing_more(c); /* the CONNACK waits for the broker's */
	broker_connack(session_present);
	if (version == MQTT_V5) {
		expect_connack(c, session_present, 0);
	} else {
		struct mqtt_packet connack = {.type = MQTT_CONNACK};
		connack.u.connack.session_present = session_present;
		expect_sent(c, version, &connack);
	}
	return s;
}

static const struct mqtt_bytes none = {NULL, 0};

/* ---- acks in the browser's order ---- */

/*
 * The broker answers the PUBLISHes in order; the bridge's own answer to a SUBSCRIBE it refuses
 * itself (its filter is over max_subscriptions) waits for the broker's answers to the PUBLISHes
 * before it, so the browser gets PUBACK 10, PUBACK 11, SUBACK 12, as it sent them.
 */
static void test_acks_in_browser_order(void **state)
{
	struct fixture *f = *state;
	struct conn *c = &f->conn[0];
	struct buf entries = BUF_INIT;
	struct mqtt_packet p;
	struct session *s;
	static const uint8_t granted[] = {1};
	static const uint8_t refused[] = {MQTT_RC_UNSPECIFIED};

	f->ss = make_sessions(f, false, 1);
	s = connect_dedicated(f, c, MQTT_V311, "ordered", true, none, false);

	p = subscribe(&entries, 1, "first", 1, none);
	feed(s, MQTT_V311, &p);
	assert_int_equal(fake_upstream.ncalls, 1);
	assert_int_equal(fake_upstream.calls[0].kind, FAKE_SUBSCRIBE);
	broker_done(fake_upstream.calls[0].token, 0, granted, 1);
	p = suback(MQTT_SUBACK, 1, granted, 1);
	expect_sent(c, MQTT_V311, &p);

	p = publish(1, 10, "t/a", "one", false);
	feed(s, MQTT_V311, &p);
	p = publish(1, 11, "t/b", "two", false);
	feed(s, MQTT_V311, &p);
	p = subscribe(&entries, 12, "second", 1, none); /* over the quota: the bridge refuses it */
	feed(s, MQTT_V311, &p);
	assert_int_equal(fake_upstream.ncalls, 3);
	assert_string_equal(fake_upstream.calls[1].topic, "t/a");
	assert_string_equal(fake_upstream.calls[2].topic, "t/b");
	expect_nothing_more(c);

	broker_done(fake_upstream.calls[1].token, 0, NULL, 0);
	p = ack(MQTT_PUBACK, 10, 0);
	expect_sent(c, MQTT_V311, &p);
	expect_nothing_more(c); /* the SUBACK still waits for PUBLISH 11 */

	broker_done(fake_upstream.calls[2].token, 0, NULL, 0);
	p = ack(MQTT_PUBACK, 11, 0);
	expect_sent(c, MQTT_V311, &p);
	p = suback(MQTT_SUBACK, 12, refused, 1);
	expect_sent(c, MQTT_V311, &p);
	expect_nothing_more(c);
	assert_int_equal(fake_upstream.ncalls, 3);
	buf_clear(&entries);
}

/*
 * The broker's answers come in another order (Paho finishes a QoS 1 PUBLISH sent after a QoS 2
 * one first): PUBREC 20 and PUBACK 21 still go out as the browser sent the PUBLISHes, each with
 * what the broker said (here a reason string on the PUBACK that waited).
 */
static void test_acks_in_order_when_broker_answers_out_of_order(void **state)
{
	struct fixture *f = *state;
	static const uint8_t reason[] = {0x1F, 0x00, 0x02, 'o', 'k'};
	struct conn *c = &f->conn[0];
	struct mqtt_packet p;
	struct upstream_event *ev;
	struct session *s;

	f->ss = make_sessions(f, false, 0);
	s = connect_dedicated(f, c, MQTT_V5, "reordered", true, none, false);
	p = publish(2, 20, "t/2", "two", false);
	feed(s, MQTT_V5, &p);
	p = publish(1, 21, "t/1", "one", false);
	feed(s, MQTT_V5, &p);
	p = publish(1, 22, "t/1", "one more", false);
	feed(s, MQTT_V5, &p);
	assert_int_equal(fake_upstream.ncalls, 3);

	ev = fake_upstream_event(UPSTREAM_DONE);
	ev->token = fake_upstream.calls[1].token;
	ev->props = (struct mqtt_bytes){reason, sizeof(reason)};
	fake_upstream_dispatch(ev);
	expect_nothing_more(c); /* PUBLISH 20 is not answered yet */

	broker_done(fake_upstream.calls[0].token, 0, NULL, 0);
	p = ack(MQTT_PUBREC, 20, 0);
	expect_sent(c, MQTT_V5, &p);
	p = ack(MQTT_PUBACK, 21, 0);
	p.u.ack.props = (struct mqtt_bytes){reason, sizeof(reason)};
	expect_sent(c, MQTT_V5, &p);
	expect_nothing_more(c); /* 22 waits for the broker */

	broker_done(fake_upstream.calls[2].token, 0, NULL, 0);
	p = ack(MQTT_PUBACK, 22, 0);
	expect_sent(c, MQTT_V5, &p);
	expect_nothing_more(c);

	/* The QoS 2 exchange goes on: PUBREL gets PUBCOMP. */
	p = ack(MQTT_PUBREL, 20, 0);
	feed(s, MQTT_V5, &p);
	p = ack(MQTT_PUBCOMP, 20, 0);
	expect_sent(c, MQTT_V5, &p);
	expect_nothing_more(c);
}

/* ---- QoS 2 from the browser ---- */

/*
 * A QoS 2 PUBLISH sent again with DUP before its PUBREL goes to the broker once: while the
 * broker has not answered, the repeat gets nothing; after, it gets the PUBREC again. After the
 * PUBREL (PUBCOMP), the packet id is free for a new message.
 */
static void test_qos2_duplicate_delivered_once(void **state)
{
	struct fixture *f = *state;
	struct conn *c = &f->conn[0];
	struct mqtt_packet p, again;
	struct session *s;

	f->ss = make_sessions(f, false, 0);
	s = connect_dedicated(f, c, MQTT_V5, "exactly-once", true, none, false);

	p = publish(2, 7, "q/2", "once", false);
	again = publish(2, 7, "q/2", "once", true);
	feed(s, MQTT_V5, &p);
	assert_int_equal(fake_upstream.ncalls, 1);
	assert_int_equal(fake_upstream.calls[0].qos, 2);
	assert_string_equal(fake_upstream.calls[0].topic, "q/2");

	feed(s, MQTT_V5, &again); /* before the broker answered */
	assert_int_equal(fake_upstream.ncalls, 1);
	expect_nothing_more(c);

	broker_done(fake_upstream.calls[0].token, 0, NULL, 0);
	p = ack(MQTT_PUBREC, 7, 0);
	expect_sent(c, MQTT_V5, &p);

	feed(s, MQTT_V5, &again); /* after the PUBREC: answered again, not delivered */
	assert_int_equal(fake_upstream.ncalls, 1);
	expect_sent(c, MQTT_V5, &p);
	expect_nothing_more(c);

	p = ack(MQTT_PUBREL, 7, 0);
	feed(s, MQTT_V5, &p);
	p = ack(MQTT_PUBCOMP, 7, 0);
	expect_sent(c, MQTT_V5, &p);

	p = publish(2, 7, "q/2", "a new one", false);
	feed(s, MQTT_V5, &p);
	assert_int_equal(fake_upstream.ncalls, 2);
	expect_nothing_more(c);
}

/* ---- persistent sessions ---- */

/*
 * A persistent session (v5, Session Expiry 60 s) leaves without DISCONNECT: its upstream ends
 * with the will (DISCONNECT 0x04), and once it is closed, what the browser had not finished goes
 * to the store: a QoS 1 message it did not acknowledge, a QoS 2 message it got PUBREL for, the
 * id of its own QoS 2 PUBLISH awaiting PUBREL. The broker keeps the subscriptions (the
 * upstream's CONNECT keeps the session). The client id's next connection with clean start 0
 * gets them back: PUBREL again, the message again with DUP under its packet id, and its repeat
 * of the QoS 2 PUBLISH answered rather than delivered.
 */
static void test_persistent_handoff(void **state)
{
	struct fixture *f = *state;
	static const uint8_t expiry[] = {0x11, 0, 0, 0, 60};
	static const uint8_t granted[] = {1};
	struct mqtt_bytes props = {expiry, sizeof(expiry)};
	struct conn *c1 = &f->conn[0], *c2 = &f->conn[1];
	struct sessions_stats stats;
	struct buf entries = BUF_INIT;
	struct mqtt_packet p;
	struct session *s;
	size_t calls;

	f->ss = make_sessions(f, false, 0);
	s = connect_dedicated(f, c1, MQTT_V5, "keeper", true, props, false);

	p = subscribe(&entries, 1, "m/#", 2, none);
	feed(s, MQTT_V5, &p);
	broker_done(fake_upstream.calls[0].token, 0, granted, 1);
	p = suback(MQTT_SUBACK, 1, granted, 1);
	expect_sent(c1, MQTT_V5, &p);

	p = publish(2, 3, "up/2", "mine", false);
	feed(s, MQTT_V5, &p);
	broker_done(fake_upstream.calls[1].token, 0, NULL, 0);
	p = ack(MQTT_PUBREC, 3, 0);
	expect_sent(c1, MQTT_V5, &p);

	broker_message(1, "m/1", "first");
	broker_message(2, "m/2", "second");
	p = publish(1, 1, "m/1", "first", false);
	expect_sent(c1, MQTT_V5, &p);
	p = publish(2, 2, "m/2", "second", false);
	expect_sent(c1, MQTT_V5, &p);
	p = ack(MQTT_PUBREC, 2, 0);
	feed(s, MQTT_V5, &p);
	p = ack(MQTT_PUBREL, 2, 0);
	expect_sent(c1, MQTT_V5, &p);
	expect_nothing_more(c1);

	/* The browser vanishes. */
	calls = fake_upstream.ncalls;
	session_detach(s);
	assert_int_equal(fake_upstream.ncalls, calls + 1);
	assert_int_equal(fake_upstream.calls[calls].kind, FAKE_DISCONNECT);
	assert_int_equal(fake_upstream.calls[calls].reason, MQTT_RC_DISCONNECT_WITH_WILL);
	sessions_get_stats(f->ss, &stats);
	assert_int_equal(stats.stored_sessions, 0);
	fake_upstream_dispatch(fake_upstream_event(UPSTREAM_CLOSED));
	sessions_get_stats(f->ss, &stats);
	assert_int_equal(stats.stored_sessions, 1);
	assert_int_equal(sessions_count(f->ss), 0);

	/* It comes back, resuming. */
	s = connect_dedicated(f, c2, MQTT_V5, "keeper", false, props, true);
	assert_false(fake_upstream.connect.clean_start);
	p = ack(MQTT_PUBREL, 2, 0);
	expect_sent(c2, MQTT_V5, &p);
	p = publish(1, 1, "m/1", "first", true);
	expect_sent(c2, MQTT_V5, &p);
	expect_nothing_more(c2);
	sessions_get_stats(f->ss, &stats);
	assert_int_equal(stats.stored_sessions, 0);

	calls = fake_upstream.ncalls;
	p = publish(2, 3, "up/2", "mine", true);
	feed(s, MQTT_V5, &p);
	assert_int_equal(fake_upstream.ncalls, calls);
	p = ack(MQTT_PUBREC, 3, 0);
	expect_sent(c2, MQTT_V5, &p);
	p = ack(MQTT_PUBREL, 3, 0);
	feed(s, MQTT_V5, &p);
	p = ack(MQTT_PUBCOMP, 3, 0); /* 0, not 0x92: the id was handed over */
	expect_sent(c2, MQTT_V5, &p);
	expect_nothing_more(c2);
	buf_clear(&entries);
}

/* ---- shared sessions ---- */

/* The hub's side: a message that matched the members joined to @filters, chained. */
static void hub_deliver(struct hub_event *ev, const char *const *filters, size_t n)
{
	struct hub_member *first = NULL, **next = &first;

	for (size_t i = 0; i < n; i++) {
		struct hub_member *m = fake_hub_member(filters[i]);
		assert_non_null(m);
		*next = m;
		next = &m->next_match;
	}
	*next = NULL;
	first->rcv->deliver(first->rcv, ev, first);
}

static void event_free(struct hub_event *ev)
{
	for (size_t i = 0; i < HUB_EVENT_ENCODINGS; i++)
		buf_clear(&ev->pub[i]);
	free(ev->msg);
}

/*
 * A shared session subscribed to a/+ (QoS 1, identifier 1) and a/# (QoS 0, identifier 2): a
 * message on a/b matches both and the browser gets it once, at the higher QoS, with both
 * identifiers (MQTT 5 §3.3.4). A 3.1.1 session without identifiers gets one copy too, from the
 * hub's shared encoding.
 */
static void test_shared_two_matches(void **state)
{
	struct fixture *f = *state;
	static const uint8_t id1[] = {0x0B, 1}, id2[] = {0x0B, 2}, both[] = {0x0B, 1, 0x0B, 2};
	static const uint8_t qos1[] = {1}, qos0[] = {0}, qos2[] = {2};
	static const char *const filters[] = {"a/+", "a/#"};
	struct conn *c = &f->conn[0], *c3 = &f->conn[1];
	struct buf entries = BUF_INIT;
	struct hub_event ev = {0};
	struct mqtt_packet p;
	struct session *s, *s3;

	f->ss = make_sessions(f, true, 0);
	s = session_new(f->ss, &io, c, "test");
	assert_non_null(s);
	p = connect_packet(MQTT_V5, "fan", true, none);
	feed(s, MQTT_V5, &p);
	assert_int_equal(fake_upstream.created, 0); /* shared: no upstream of its own */
	expect_connack(c, false, 0);

	/* Retain handling 2: no retained messages, so nothing holds the live ones back. */
	p = subscribe(&entries, 1, "a/+", 0x21, (struct mqtt_bytes){id1, sizeof(id1)});
	feed(s, MQTT_V5, &p);
	p = suback(MQTT_SUBACK, 1, qos1, 1);
	expect_sent(c, MQTT_V5, &p);
	p = subscribe(&entries, 2, "a/#", 0x20, (struct mqtt_bytes){id2, sizeof(id2)});
	feed(s, MQTT_V5, &p);
	p = suback(MQTT_SUBACK, 2, qos0, 1);
	expect_sent(c, MQTT_V5, &p);

	ev.msg = msg_new("a/b", 3, "hi", 2, NULL, 0, 2, false);
	assert_non_null(ev.msg);
	hub_deliver(&ev, filters, 2);
	p = publish(1, 1, "a/b", "hi", false);
	p.u.publish.props = (struct mqtt_bytes){both, sizeof(both)};
	expect_sent(c, MQTT_V5, &p);
	expect_nothing_more(c);
	event_free(&ev);

	/* 3.1.1, no identifiers: the hub's encoding of the message, once, at QoS 2. */
	s3 = session_new(f->ss, &io, c3, "test");
	assert_non_null(s3);
	p = connect_packet(MQTT_V311, "fan311", true, none);
	feed(s3, MQTT_V311, &p);
	expect_sent(c3, MQTT_V311, &(struct mqtt_packet){.type = MQTT_CONNACK});
	fake_hub.nmembers = 0; /* only this session's members from now on */
	p = subscribe(&entries, 1, "a/+", 0, none);
	feed(s3, MQTT_V311, &p);
	p = suback(MQTT_SUBACK, 1, qos0, 1);
	expect_sent(c3, MQTT_V311, &p);
	p = subscribe(&entries, 2, "a/#", 2, none);
	feed(s3, MQTT_V311, &p);
	p = suback(MQTT_SUBACK, 2, qos2, 1);
	expect_sent(c3, MQTT_V311, &p);
	expect_nothing_more(c3);
	/* Retained messages are read first (retain handling is 3.1.1's 0): a live message waits
	 * for the reads, and the reader found nothing. */
	ev = (struct hub_event){0};
	ev.msg = msg_new("a/b", 3, "hi", 2, NULL, 0, 2, false);
	assert_non_null(ev.msg);
	hub_deliver(&ev, filters, 2);
	expect_nothing_more(c3);
	fake_retained_answer();
	p = publish(2, 1, "a/b", "hi", false);
	expect_sent(c3, MQTT_V311, &p);
	expect_nothing_more(c3);
	event_free(&ev);

	/* Now straight from the hub's encoding, with this browser's next packet id. */
	ev = (struct hub_event){0};
	ev.msg = msg_new("a/b", 3, "hi", 2, NULL, 0, 2, false);
	assert_non_null(ev.msg);
	hub_deliver(&ev, filters, 2);
	p = publish(2, 2, "a/b", "hi", false);
	expect_sent(c3, MQTT_V311, &p);
	expect_nothing_more(c3);
	assert_true(ev.pub[2].len > 0); /* 3.1.1, retain 0, QoS 2: encoded once, shared */
	event_free(&ev);
	buf_clear(&entries);
}

/*
 * The reader's link can be ahead of the hub's: a shared browser subscribes, the hub still holds
 * "1", a value older than the "2" the read found. Over an MQTT 5 link a live message says
 * whether it was published retained (Retain As Published): "1" was not, so the found value goes
 * first with RETAIN 1, then "1" live. Over 3.1.1 none says: "1" may have set the value since the
 * SUBSCRIBE, so it goes as the retained message and the found "2" does not, never an older value
 * after a newer one.
 */
static void test_shared_retained_read_ahead_of_hub(void **state)
{
	struct fixture *f = *state;
	static const uint8_t qos0[] = {0};
	static const char *const filters[] = {"t"};
	struct buf entries = BUF_INIT;
	struct mqtt_packet p;

	f->ss = make_sessions(f, true, 0);
	for (int link = 0; link < 2; link++) {
		struct conn *c = &f->conn[link];
		struct hub_event ev = {0};
		struct msg *found;
		struct session *s;

		fake_hub.version = link ? MQTT_V311 : MQTT_V5;
		fake_hub.nmembers = 0;
		s = session_new(f->ss, &io, c, "test");
		assert_non_null(s);
		p = connect_packet(MQTT_V5, link ? "ahead311" : "ahead5", true, none);
		feed(s, MQTT_V5, &p);
		expect_connack(c, false, 0);
		p = subscribe(&entries, 1, "t", 0, none);
		feed(s, MQTT_V5, &p);
		p = suback(MQTT_SUBACK, 1, qos0, 1);
		expect_sent(c, MQTT_V5, &p);

		ev.msg = msg_new("t", 1, "1", 1, NULL, 0, 0, false);
		assert_non_null(ev.msg);
		hub_deliver(&ev, filters, 1);
		expect_nothing_more(c); /* held until the read */
		found = msg_new("t", 1, "2", 1, NULL, 0, 0, true);
		assert_non_null(found);
		fake_retained_answer_with(&found, 1);
		free(found);
		if (!link) {
			p = publish(0, 0, "t", "2", false);
			p.u.publish.retain = true;
			expect_sent(c, MQTT_V5, &p);
		}
		p = publish(0, 0, "t", "1", false);
		p.u.publish.retain = link == 1;
		expect_sent(c, MQTT_V5, &p);
		expect_nothing_more(c);
		event_free(&ev);
	}
	buf_clear(&entries);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_acks_in_browser_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_acks_in_order_when_broker_answers_out_of_order,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qos2_duplicate_delivered_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_persistent_handoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_two_matches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_retained_read_ahead_of_hub, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
