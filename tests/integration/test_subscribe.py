"""SUBSCRIBE / UNSUBSCRIBE: granted QoS per filter, wildcards, v5 subscription options (no local,
retain as published, retain handling 0/1/2), shared subscriptions, v5 UNSUBACK reason codes."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5, PacketTypes, mqtt  # noqa: E402


class SubscribeTest(h.IntegrationCase):

    def test_granted_qos_per_filter_raw(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                base = self.topic()
                conn = self.raw(version)
                filters = [(base + "/q0", 0), (base + "/q1/+", 1), (base + "/q2/#", 2),
                           (base + "/again", 2), (base + "/again", 1)]
                conn.send(r.subscribe(0x1234, filters, version=version))
                ack = conn.expect(r.SUBACK)
                self.assertEqual(ack.pid, 0x1234)
                self.assertEqual(ack.codes, [0, 1, 2, 2, 1])
                if version == r.V311:
                    self.assertEqual(ack.raw, b"\x90\x07\x12\x34\x00\x01\x02\x02\x01")

    def test_granted_qos_per_filter_paho(self):
        for version in h.VERSIONS:
            with self.subTest(version=version):
                base = self.topic()
                c = self.paho(version)
                if version == V5:
                    filters = [(base + "/a", mqtt.SubscribeOptions(qos=q)) for q in (2, 0, 1)]
                else:
                    filters = [(base + "/a", 2), (base + "/b", 0), (base + "/c", 1)]
                self.assertEqual(c.subscribe(filters), [2, 0, 1])

    def test_many_filters_in_one_subscribe(self):
        base = self.topic()
        conn = self.raw(r.V5)
        filters = [(base + "/%d" % i, i % 3) for i in range(40)]
        conn.send(r.subscribe(9, filters, version=r.V5))
        self.assertEqual(conn.expect(r.SUBACK).codes, [i % 3 for i in range(40)])

    def test_wildcards(self):
        obs = self.observer()
        base = self.topic("w")
        c = self.paho(V311)
        c.subscribe(base + "/+/temp", 1)
        c.subscribe(base + "/hall/#", 1)
        cases = [(base + "/kitchen/temp", True), (base + "/kitchen/temp/x", False),
                 (base + "/hall", True), (base + "/hall/a/b/c", True), (base + "/x/hum", False),
                 (base + "//temp", True)]
        for topic, match in cases:
            obs.publish(topic, topic.encode(), 1)
        got = sorted(m.topic for m in c.get_n(sum(m for _, m in cases)))
        self.assertEqual(got, sorted(t for t, m in cases if m))
        c.assert_no_message()

    def test_resubscribe_replaces(self):
        obs = self.observer()
        topic = self.topic()
        c = self.paho(V5)
        c.subscribe(topic, 0)
        c.subscribe(topic, 2)
        obs.publish(topic, b"once", 2)
        msg = c.get()
        self.assertEqual((msg.payload, msg.qos), (b"once", 2))
        c.assert_no_message()

    def test_subscribe_with_user_properties(self):
        obs = self.observer()
        topic = self.topic()
        c = self.paho(V5)
        p = h.props(PacketTypes.SUBSCRIBE, UserProperty=[("k", "v")])
        self.assertEqual(c.subscribe(topic, 1, properties=p), [1])
        obs.publish(topic, b"x", 1)
        self.assertEqual(c.get().payload, b"x")

    def test_no_local(self):
        obs = self.observer()
        topic = self.topic()
        c = self.paho(V5)
        c.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, noLocal=True))
        c.publish(topic, b"own", 1)
        c.assert_no_message()
        obs.publish(topic, b"other", 1)
        self.assertEqual(c.get().payload, b"other")
        # without no local a client gets its own messages
        topic2 = self.topic()
        c.subscribe(topic2, options=mqtt.SubscribeOptions(qos=1, noLocal=False))
        c.publish(topic2, b"own", 1)
        self.assertEqual(c.get().payload, b"own")

    def test_no_local_between_two_browsers(self):
        # no local is about the client id, not the bridge: another browser's message arrives
        topic = self.topic()
        a = self.paho(V5)
        b = self.paho(V5)
        a.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, noLocal=True))
        b.publish(topic, b"from b", 1)
        self.assertEqual(a.get().payload, b"from b")

    def test_retain_as_published(self):
        obs = self.observer()
        topic = self.topic()
        rap = self.paho(V5)
        rap.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, retainAsPublished=True))
        plain = self.paho(V5)
        plain.subscribe(topic, options=mqtt.SubscribeOptions(qos=1, retainAsPublished=False))
        old = self.paho(V311)
        old.subscribe(topic, 1)
        obs.publish(topic, b"r", 1, retain=True)
        self.assertTrue(rap.get().retain)
        self.assertFalse(plain.get().retain)
        self.assertFalse(old.get().retain)
        obs.publish(topic, b"n", 1, retain=False)
        self.assertFalse(rap.get().retain)
        obs.publish(topic, b"", 1, retain=True)

    def test_retain_handling(self):
        obs = self.observer()
        topic = self.topic()
        obs.publish(topic, b"kept", 1, retain=True)
        self.addCleanup(lambda: obs.publish(topic, b"", 1, retain=True))
        c = self.paho(V5)
        RH = mqtt.SubscribeOptions
        # 0: send retained messages at every subscribe
        c.subscribe(topic, options=RH(qos=1, retainHandling=RH.RETAIN_SEND_ON_SUBSCRIBE))
        self.assertEqual(c.get().payload, b"kept")
        c.subscribe(topic, options=RH(qos=1, retainHandling=RH.RETAIN_SEND_ON_SUBSCRIBE))
        self.assertEqual(c.get().payload, b"kept")
        c.unsubscribe(topic)
        # 1: only when the subscription is new
        c.subscribe(topic, options=RH(qos=1, retainHandling=RH.RETAIN_SEND_IF_NEW_SUB))
        self.assertEqual(c.get().payload, b"kept")
        c.subscribe(topic, options=RH(qos=1, retainHandling=RH.RETAIN_SEND_IF_NEW_SUB))
        c.assert_no_message()
        c.unsubscribe(topic)
        # 2: never
        c.subscribe(topic, options=RH(qos=1, retainHandling=RH.RETAIN_DO_NOT_SEND))
        c.assert_no_message()
        # the subscription itself works
        obs.publish(topic, b"live", 1)
        self.assertEqual(c.get().payload, b"live")

    def test_retain_handling_raw(self):
        obs = self.observer()
        topic = self.topic()
        obs.publish(topic, b"kept", 1, retain=True)
        self.addCleanup(lambda: obs.publish(topic, b"", 1, retain=True))
        conn = self.raw(r.V5)
        for pid, rh, expect in ((1, 2, False), (2, 1, False), (3, 0, True)):
            # the filter already exists from pid 1 on, so rh=1 sends nothing
            conn.send(r.subscribe(pid, [(topic, r.sub_options(qos=1, retain_handling=rh))],
                                  version=r.V5))
            self.assertEqual(conn.expect(r.SUBACK).codes, [1])
            got = conn.quiet_for(h.QUIET)
            self.assertEqual(len(got), 1 if expect else 0, "rh=%d: %r" % (rh, got))
            for p in got:
                self.assertEqual((p.payload, p.retain), (b"kept", True))
                conn.send(r.puback(p.pid, version=r.V5))

    def test_unsubscribe_v5_reason_codes(self):
        obs = self.observer()
        topic = self.topic()
        conn = self.raw(r.V5)
        conn.send(r.subscribe(1, [(topic, 1)], version=r.V5))
        conn.expect(r.SUBACK)
        conn.send(r.unsubscribe(2, [topic, topic + "/never", topic], version=r.V5))
        ack = conn.expect(r.UNSUBACK)
        self.assertEqual(ack.pid, 2)
        self.assertEqual(ack.codes, [0x00, 0x11, 0x11])
        obs.publish(topic, b"gone", 1)
        self.assertEqual(conn.quiet_for(h.QUIET), [])

    def test_unsubscribe_v5_paho(self):
        topic = self.topic()
        c = self.paho(V5)
        c.subscribe(topic, 1)
        self.assertEqual(c.unsubscribe([topic, topic + "/x"]), [0x00, 0x11])

    def test_unsubscribe_311(self):
        obs = self.observer()
        topic = self.topic()
        conn = self.raw(r.V311)
        conn.send(r.subscribe(1, [(topic, 1)]))
        conn.expect(r.SUBACK)
        conn.send(r.unsubscribe(0x0102, [topic, topic + "/never"]))
        self.assertEqual(conn.expect(r.UNSUBACK).raw, b"\xb0\x02\x01\x02")
        obs.publish(topic, b"gone", 1)
        self.assertEqual(conn.quiet_for(h.QUIET), [])

    def test_unsubscribe_stops_delivery_paho(self):
        obs = self.observer()
        for version in h.VERSIONS:
            with self.subTest(version=version):
                topic = self.topic()
                c = self.paho(version)
                c.subscribe(topic, 1)
                obs.publish(topic, b"1", 1)
                self.assertEqual(c.get().payload, b"1")
                c.unsubscribe(topic)
                obs.publish(topic, b"2", 1)
                c.assert_no_message()

    def test_shared_subscription(self):
        obs = self.observer()
        topic = self.topic()
        group = "$share/g%d/%s" % (os.getpid(), topic)
        a = self.paho(V5)
        b = self.paho(V5)
        self.assertEqual(a.subscribe(group, 1), [1])
        self.assertEqual(b.subscribe(group, 1), [1])
        payloads = [b"%d" % i for i in range(20)]
        for p in payloads:
            obs.publish(topic, p, 1)
        got = []
        for c in (a, b):
            while True:
                try:
                    got.append(c.messages.get(timeout=0.5).payload)
                except h.queue.Empty:
                    break
        self.assertEqual(sorted(got), sorted(payloads))


class ManyFiltersTest(h.IntegrationCase):
    bridge_config = {"limits": {"max_subscriptions": 1000}}

    def test_more_than_256_filters_in_one_packet(self):
        # (the broker's answer to many filters once went through a fixed 256-entry buffer, and
        # the session was closed)
        n = 300
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                base = self.topic()
                conn = self.raw(version)
                filters = [(base + "/%d" % i, i % 2) for i in range(n)]
                conn.send(r.subscribe(9, filters, version=version))
                self.assertEqual(conn.expect(r.SUBACK).codes, [i % 2 for i in range(n)])
                obs = self.observer()
                obs.publish(base + "/299", b"last", 1)
                got = conn.expect(r.PUBLISH)
                self.assertEqual((got.topic, got.payload, got.qos), (base + "/299", b"last", 1))
                conn.send(r.puback(got.pid, version=version))
                conn.send(r.unsubscribe(10, [f for f, _ in filters], version=version))
                ack = conn.expect(r.UNSUBACK)
                self.assertEqual(ack.pid, 10)
                if version == r.V5:
                    self.assertEqual(ack.codes, [0] * n)
                obs.publish(base + "/299", b"gone", 1)
                conn.send(r.pingreq())
                conn.expect(r.PINGRESP)   # no PUBLISH before it: unsubscribed from all


class BridgeTopicsHiddenTest(h.ApiCase):
    """The bridge's own topics at the broker (mqtt-web-bridge/sync/... markers of retained reads,
    mqtt-web-bridge/reply/... of requests) are plumbing: a browser subscribed to "#" does not see
    them, whether the hub serves it or its own broker client does (MWB_SESSIONS=dedicated)."""

    def test_hash_subscriber_sees_no_bridge_topics(self):
        base = self.topic("plumbing")
        browser = self.paho(V5)
        browser.subscribe("#", 1)
        dev = self.observer(V5, subscribe=base + "/req")
        dev.publish(base + "/kept", b"v", 1, retain=True)
        self.addCleanup(dev.publish, base + "/kept", b"", 1, True)
        # a retained read: its marker goes to the broker and back
        resp = self.http("GET", "/api/v1/topics?filter=" + h.quote_query(base + "/#"))
        self.assertEqual(resp.status, 200, resp)
        # a request: the device's reply goes to the bridge's reply topic
        out = []
        t = threading.Thread(target=lambda: out.append(self.http(
            "POST", "/api/v1/request/" + h.quote_topic(base + "/req") + "?timeout_ms=5000", b"q")))
        t.start()
        req = dev.get()
        dev.publish(req.properties.ResponseTopic, b"answer", 1, properties=h.props(
            PacketTypes.PUBLISH, CorrelationData=req.properties.CorrelationData))
        t.join(h.TIMEOUT + 5)
        self.assertEqual((out[0].status, out[0].body), (200, b"answer"), out)
        dev.publish(base + "/end", b"end", 1)
        seen = []
        while not seen or seen[-1] != base + "/end":
            seen.append(browser.get().topic)
        self.assertIn(base + "/req", seen)  # the browser does see the rest of "#"
        self.assertEqual([t for t in seen if t.startswith("mqtt-web-bridge/")], [], seen)


if __name__ == "__main__":
    h.main()
