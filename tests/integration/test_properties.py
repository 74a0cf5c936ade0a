"""MQTT 5 on PUBLISH: properties both ways, message expiry, subscription identifiers, topic aliases
from the client, receive maximum; ACL refusals with their reason codes."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V5, PacketTypes, bridge_only  # noqa: E402


USER_PROPS = [("a", "1"), ("b", "2"), ("a", "3"), ("ünï", "çødé ✓"), ("empty", "")]
CORRELATION = bytes(range(256))


class PropertiesTest(h.IntegrationCase):

    def publish_props(self, topic_reply):
        return h.props(PacketTypes.PUBLISH, PayloadFormatIndicator=1, MessageExpiryInterval=120,
                       ContentType="application/json; charset=utf-8",
                       ResponseTopic=topic_reply, CorrelationData=CORRELATION,
                       UserProperty=list(USER_PROPS))

    def check_props(self, msg, topic_reply):
        p = msg.properties
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertLessEqual(p.MessageExpiryInterval, 120)
        self.assertGreaterEqual(p.MessageExpiryInterval, 115)
        self.assertEqual(p.ContentType, "application/json; charset=utf-8")
        self.assertEqual(p.ResponseTopic, topic_reply)
        self.assertEqual(p.CorrelationData, CORRELATION)
        # the server must keep the order of user properties, duplicates included
        self.assertEqual(p.UserProperty, USER_PROPS)
        self.assertFalse(hasattr(p, "TopicAlias"), "topic alias leaked to the receiver")

    def test_properties_browser_to_broker(self):
        obs = self.observer(V5)
        c = self.paho(V5)
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = self.topic()
                obs.subscribe(topic, 2)
                payload = '{"t": "é ✓"}'.encode()
                c.publish(topic, payload, qos, properties=self.publish_props(topic + "/reply"))
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, payload, qos))
                self.check_props(msg, topic + "/reply")

    def test_properties_broker_to_browser(self):
        obs = self.observer(V5)
        c = self.paho(V5)
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = self.topic()
                c.subscribe(topic, 2)
                payload = '{"t": "é ✓"}'.encode()
                obs.publish(topic, payload, qos, properties=self.publish_props(topic + "/reply"))
                msg = c.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, payload, qos))
                self.check_props(msg, topic + "/reply")

    def test_properties_raw_bytes(self):
        # the raw view: every property arrives with its exact value, in order
        obs = self.observer(V5)
        topic = self.topic()
        conn = self.raw(r.V5)
        conn.send(r.subscribe(1, [(topic, 1)], version=r.V5))
        conn.expect(r.SUBACK)
        obs.publish(topic, b"\x00\xff", 1, properties=self.publish_props("reply/x"))
        p = conn.expect(r.PUBLISH)
        self.assertEqual(p.payload, b"\x00\xff")
        self.assertEqual(p.prop(r.PAYLOAD_FORMAT_INDICATOR), 1)
        self.assertEqual(p.prop(r.CONTENT_TYPE), "application/json; charset=utf-8")
        self.assertEqual(p.prop(r.RESPONSE_TOPIC), "reply/x")
        self.assertEqual(p.prop(r.CORRELATION_DATA), CORRELATION)
        self.assertEqual(p.props_all(r.USER_PROPERTY), USER_PROPS)
        self.assertIsNone(p.prop(r.TOPIC_ALIAS))
        conn.send(r.puback(p.pid, version=r.V5))

    def test_message_expiry_counts_down(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.publish(topic, b"x", 1, retain=True,
                    properties=h.props(PacketTypes.PUBLISH, MessageExpiryInterval=30))
        time.sleep(2.1)   # the expiry must count down (the point)
        c = self.paho(V5)
        c.subscribe(topic, 1)
        msg = c.get()
        self.assertTrue(msg.retain)
        self.assertLessEqual(msg.properties.MessageExpiryInterval, 28)
        self.assertGreaterEqual(msg.properties.MessageExpiryInterval, 20)
        obs.publish(topic, b"", 1, retain=True)

    def test_expired_message_not_delivered(self):
        obs = self.observer(V5)
        topic = self.topic()
        cid = self.uid()
        expiry = h.props(PacketTypes.CONNECT, SessionExpiryInterval=60)
        c = self.paho(V5, cid, properties=expiry)
        c.subscribe(topic, 1)
        c.disconnect()
        obs.publish(topic, b"short", 1,
                    properties=h.props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
        obs.publish(topic, b"long", 1,
                    properties=h.props(PacketTypes.PUBLISH, MessageExpiryInterval=60))
        time.sleep(2.2)   # the short expiry (1 s) must pass while the client is away (the point)
        c = self.paho(V5, cid, clean_start=False, properties=expiry)
        self.assertEqual(c.connack_result[1]["session present"], 1)
        self.assertEqual(c.get().payload, b"long")
        c.assert_no_message()
        c.disconnect(properties=h.props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))

    def test_subscription_identifiers(self):
        obs = self.observer(V5)
        base = self.topic("sid")
        c = self.paho(V5)
        c.subscribe(base + "/a/#", 1,
                    properties=h.props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
        c.subscribe(base + "/+/b", 1,
                    properties=h.props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=300000))
        c.subscribe(base + "/none", 1)
        obs.publish(base + "/a/x", b"1", 1)
        self.assertEqual(c.get().properties.SubscriptionIdentifier, [7])
        obs.publish(base + "/z/b", b"2", 1)
        self.assertEqual(c.get().properties.SubscriptionIdentifier, [300000])
        obs.publish(base + "/none", b"3", 1)
        msg = c.get()
        self.assertEqual(msg.payload, b"3")
        self.assertFalse(hasattr(msg.properties, "SubscriptionIdentifier"))
        # a topic matching both: Mosquitto sends one copy per subscription; a server may also
        # send one copy with both ids. Either way both ids arrive, and nothing else.
        obs.publish(base + "/a/b", b"4", 1)
        ids = []
        first = c.get()
        ids += first.properties.SubscriptionIdentifier
        if len(ids) < 2:
            ids += c.get().properties.SubscriptionIdentifier
        self.assertEqual(sorted(ids), [7, 300000])
        c.assert_no_message()

    def test_subscription_identifier_raw(self):
        obs = self.observer(V5)
        topic = self.topic()
        conn = self.raw(r.V5)
        conn.send(r.subscribe(3, [(topic, 1)], props=[(r.SUBSCRIPTION_IDENTIFIER, 268435455)],
                              version=r.V5))
        self.assertEqual(conn.expect(r.SUBACK).codes, [1])
        obs.publish(topic, b"max id", 0)
        p = conn.expect(r.PUBLISH)
        self.assertEqual(p.props_all(r.SUBSCRIPTION_IDENTIFIER), [268435455])

    def test_topic_alias_from_client_raw(self):
        obs = self.observer(V5)
        base = self.topic("alias")
        t1, t2 = base + "/one", base + "/two"
        obs.subscribe(base + "/#", 1)
        conn = self.raw(r.V5)
        alias_max = conn.connack.prop(r.TOPIC_ALIAS_MAXIMUM, 0)
        self.assertGreaterEqual(alias_max, 1, "CONNACK offers no topic aliases: %r" % conn.connack)
        sends = [(t1, b"A"), ("", b"B"), (t2, b"C"), ("", b"D")]
        for i, (topic, payload) in enumerate(sends):
            conn.send(r.publish(topic, payload, qos=1, pid=i + 1, props=[(r.TOPIC_ALIAS, 1)],
                                version=r.V5))
            ack = conn.expect(r.PUBACK)
            self.assertEqual((ack.pid, ack.rc), (i + 1, 0))
        got = obs.get_n(4)
        self.assertEqual([(m.topic, m.payload) for m in got],
                         [(t1, b"A"), (t1, b"B"), (t2, b"C"), (t2, b"D")])
        for m in got:
            self.assertFalse(hasattr(m.properties, "TopicAlias"))
        if alias_max >= 2:
            # the highest alias the server offered works too
            conn.send(r.publish(t1, b"E", qos=0, props=[(r.TOPIC_ALIAS, alias_max)],
                                version=r.V5))
            conn.send(r.publish("", b"F", qos=0, props=[(r.TOPIC_ALIAS, alias_max)],
                                version=r.V5))
            got = obs.get_n(2)
            self.assertEqual([(m.topic, m.payload) for m in got], [(t1, b"E"), (t1, b"F")])

    def test_topic_alias_from_client_paho(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 1)
        c = self.paho(V5)
        c.publish(topic, b"first", 1, properties=h.props(PacketTypes.PUBLISH, TopicAlias=1))
        c.publish("", b"second", 1, properties=h.props(PacketTypes.PUBLISH, TopicAlias=1))
        got = obs.get_n(2)
        self.assertEqual([(m.topic, m.payload) for m in got],
                         [(topic, b"first"), (topic, b"second")])

    def test_client_maximum_packet_size(self):
        # a v5 client announcing Maximum Packet Size 200 is never sent a bigger packet: the
        # server drops that message for it and delivers the rest
        obs = self.observer(V5)
        topic = self.topic()
        conn = self.raw(r.V5, props=[(r.MAXIMUM_PACKET_SIZE, 200)])
        conn.send(r.subscribe(1, [(topic, 1)], version=r.V5))
        conn.expect(r.SUBACK)
        obs.publish(topic, os.urandom(1000), 1)
        obs.publish(topic, b"small", 1)
        got = conn.quiet_for(1.0)
        self.assertEqual([p.payload for p in got], [b"small"])
        self.assertTrue(all(len(p.raw) <= 200 for p in got))

    def receive_max_setup(self, n):
        obs = self.observer(V5)
        topic = self.topic()
        conn = self.raw(r.V5, props=[(r.RECEIVE_MAXIMUM, 2)])
        conn.send(r.subscribe(1, [(topic, 1)], version=r.V5))
        conn.expect(r.SUBACK)
        payloads = [b"m%d" % i for i in range(n)]
        for p in payloads:
            obs.publish(topic, p, 1)
        return conn, payloads

    def test_receive_maximum_qos1(self):
        # a client that announced Receive Maximum 2 and acks nothing gets 2 PUBLISHes, no more;
        # once it acks, the rest arrive, in order
        conn, payloads = self.receive_max_setup(6)
        pending = conn.quiet_for(1.0)
        self.assertEqual([p.payload for p in pending], payloads[:2],
                         "receive maximum 2 not honoured")
        received = list(pending)
        deadline = time.monotonic() + h.TIMEOUT
        while len(received) < len(payloads) and time.monotonic() < deadline:
            for p in pending:
                conn.send(r.puback(p.pid, version=r.V5))
            pending = conn.quiet_for(0.3)
            received += pending
        self.assertEqual([p.payload for p in received], payloads)
        for p in pending:
            conn.send(r.puback(p.pid, version=r.V5))
        self.assertEqual(conn.quiet_for(h.QUIET), [])

    @bridge_only("Mosquitto 2.0.11 sends up to receive-maximum new PUBLISHes per PUBACK, so a "
                 "client acking one at a time has more than 2 in flight")
    def test_receive_maximum_never_exceeded(self):
        conn, payloads = self.receive_max_setup(6)
        pending = conn.quiet_for(1.0)
        self.assertEqual([p.payload for p in pending], payloads[:2])
        received = list(pending)
        while len(received) < len(payloads):
            oldest = pending.pop(0)
            conn.send(r.puback(oldest.pid, version=r.V5))
            more = conn.quiet_for(0.4)
            for p in more:
                self.assertEqual(p.type, r.PUBLISH)
            pending += more
            received += more
            self.assertLessEqual(len(pending), 2, "more than 2 unacknowledged PUBLISHes")
            self.assertTrue(more, "nothing arrived after an ack freed a slot")
        self.assertEqual([p.payload for p in received], payloads)
        for p in pending:
            conn.send(r.puback(p.pid, version=r.V5))
        self.assertEqual(conn.quiet_for(h.QUIET), [])

    def test_receive_maximum_qos2_counts_until_pubcomp(self):
        obs = self.observer(V5)
        topic = self.topic()
        conn = self.raw(r.V5, props=[(r.RECEIVE_MAXIMUM, 1)])
        conn.send(r.subscribe(1, [(topic, 2)], version=r.V5))
        conn.expect(r.SUBACK)
        obs.publish(topic, b"first", 2)
        obs.publish(topic, b"second", 2)
        first = conn.expect(r.PUBLISH)
        self.assertEqual(first.payload, b"first")
        self.assertEqual(conn.quiet_for(h.QUIET), [])
        conn.send(r.pubrec(first.pid, version=r.V5))
        rel = conn.expect(r.PUBREL)
        self.assertEqual(rel.pid, first.pid)
        # still in flight until PUBCOMP
        self.assertEqual(conn.quiet_for(h.QUIET), [])
        conn.send(r.pubcomp(first.pid, version=r.V5))
        second = conn.expect(r.PUBLISH)
        self.assertEqual(second.payload, b"second")
        conn.send(r.pubrec(second.pid, version=r.V5))
        conn.expect(r.PUBREL)
        conn.send(r.pubcomp(second.pid, version=r.V5))


class AclTest(h.IntegrationCase):
    """Mosquitto's acl_file refuses writes to ro/#: v5 answers PUBACK / PUBREC 0x87, 3.1.1 acks
    normally; in both cases nothing is delivered."""
    acl = "topic readwrite mwbtest/#\ntopic read ro/#\n"

    def test_publish_refused_by_acl(self):
        obs = self.observer(V5)
        denied = "ro/" + self.uid()
        obs.subscribe(denied, 2)
        allowed = self.topic()
        obs.subscribe(allowed, 2)
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                conn = self.raw(version)
                conn.send(r.publish(denied, b"no", qos=1, pid=1, version=version))
                ack = conn.expect(r.PUBACK)
                self.assertEqual((ack.pid, ack.rc), (1, 0x87 if version == r.V5 else 0))
                conn.send(r.publish(denied, b"no", qos=2, pid=2, version=version))
                rec = conn.expect(r.PUBREC)
                self.assertEqual((rec.pid, rec.rc), (2, 0x87 if version == r.V5 else 0))
                if version == r.V311:
                    conn.send(r.pubrel(2))
                    conn.expect(r.PUBCOMP)
                conn.send(r.publish(denied, b"no", qos=0, version=version))
                conn.send(r.publish(allowed, b"yes", qos=1, pid=3, version=version))
                ack = conn.expect(r.PUBACK)
                self.assertEqual((ack.pid, ack.rc), (3, 0))
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload), (allowed, b"yes"))
                obs.assert_no_message()

    def test_paho_publish_refused_by_acl_not_delivered(self):
        obs = self.observer(V5)
        denied = "ro/" + self.uid()
        obs.subscribe(denied, 1)
        for version in h.VERSIONS:
            c = self.paho(version)
            c.publish(denied, b"no", 1)
            obs.assert_no_message()
            self.round_trip(c)


if __name__ == "__main__":
    h.main()
