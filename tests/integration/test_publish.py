"""PUBLISH both ways at QoS 0/1/2: byte-exact payloads (empty, all 256 byte values, 60 KB random),
retain, ordering, packet id reuse, QoS 1 and QoS 2 flows seen byte by byte."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5  # noqa: E402

PAYLOADS = {
    "empty": b"",
    "all_bytes": bytes(range(256)),
    "60k_random": os.urandom(60 * 1024),
}


class PublishTest(h.IntegrationCase):

    def check(self, msg, topic, payload, qos, retain=False):
        self.assertEqual(msg.topic, topic)
        self.assertEqual(len(msg.payload), len(payload))
        self.assertTrue(msg.payload == payload, "payload differs")
        self.assertEqual(msg.qos, qos)
        self.assertEqual(bool(msg.retain), retain)

    def test_browser_to_broker(self):
        obs = self.observer()
        for version in h.VERSIONS:
            c = self.paho(version)
            for qos in (0, 1, 2):
                for name, payload in PAYLOADS.items():
                    with self.subTest(version=version, qos=qos, payload=name):
                        topic = self.topic(name)
                        obs.subscribe(topic, 2)
                        c.publish(topic, payload, qos)
                        self.check(obs.get(), topic, payload, qos)
                        obs.unsubscribe(topic)

    def test_broker_to_browser(self):
        obs = self.observer()
        for version in h.VERSIONS:
            c = self.paho(version)
            for qos in (0, 1, 2):
                for name, payload in PAYLOADS.items():
                    with self.subTest(version=version, qos=qos, payload=name):
                        topic = self.topic(name)
                        self.assertEqual(c.subscribe(topic, 2), [2])
                        obs.publish(topic, payload, qos)
                        self.check(c.get(), topic, payload, qos)
                        c.unsubscribe(topic)

    def test_browser_to_browser(self):
        a = self.paho(V311)
        b = self.paho(V5)
        # (Mosquitto's own WebSocket listener needs ~1.4 s to send 60 KB, so the big payload
        # is sent once per direction here; test_broker_to_browser covers every QoS with it.)
        for src, dst in ((a, b), (b, a)):
            for qos, name in ((0, "all_bytes"), (1, "60k_random"), (2, "all_bytes"), (2, "empty")):
                with self.subTest(src=src.version, qos=qos, payload=name):
                    topic = self.topic()
                    dst.subscribe(topic, 2)
                    payload = PAYLOADS[name]
                    src.publish(topic, payload, qos)
                    self.check(dst.get(), topic, payload, qos)

    def test_qos_downgraded_to_subscription(self):
        obs = self.observer()
        c = self.paho(V5)
        for sub_qos in (0, 1):
            topic = self.topic()
            c.subscribe(topic, sub_qos)
            obs.publish(topic, b"x", 2)
            self.check(c.get(), topic, b"x", sub_qos)

    def test_order_kept_per_topic(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = self.topic()
                obs.subscribe(topic, 1)
                conn = self.raw(version)
                # 20 QoS 1 PUBLISHes in one frame, distinct packet ids, before any ack
                burst = b"".join(r.publish(topic, b"%d" % i, qos=1, pid=i + 1, version=version)
                                 for i in range(20))
                conn.send(burst)
                acks = [conn.expect(r.PUBACK) for _ in range(20)]
                self.assertEqual(sorted(a.pid for a in acks), list(range(1, 21)))
                got = obs.get_n(20)
                self.assertEqual([m.payload for m in got], [b"%d" % i for i in range(20)])
                obs.assert_no_message(0.3)

    def test_packet_id_reused_after_ack(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 2)
        conn = self.raw(r.V5)
        for i in range(5):
            conn.send(r.publish(topic, b"q1-%d" % i, qos=1, pid=1, version=r.V5))
            self.assertEqual(conn.expect(r.PUBACK).pid, 1)
            conn.send(r.publish(topic, b"q2-%d" % i, qos=2, pid=1, version=r.V5))
            self.assertEqual(conn.expect(r.PUBREC).pid, 1)
            conn.send(r.pubrel(1, version=r.V5))
            self.assertEqual(conn.expect(r.PUBCOMP).pid, 1)
        got = obs.get_n(10)
        # order is guaranteed per QoS level only
        self.assertEqual([m.payload for m in got if m.qos == 1], [b"q1-%d" % i for i in range(5)])
        self.assertEqual([m.payload for m in got if m.qos == 2], [b"q2-%d" % i for i in range(5)])

    def test_qos2_flow_browser_to_broker(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = self.topic()
                obs.subscribe(topic, 2)
                conn = self.raw(version)
                payload = bytes(range(256))
                conn.send(r.publish(topic, payload, qos=2, pid=42, version=version))
                rec = conn.expect(r.PUBREC)
                self.assertEqual((rec.pid, rec.rc), (42, 0))
                # a resend of the same PUBLISH (DUP) before PUBREL must not deliver twice
                conn.send(r.publish(topic, payload, qos=2, pid=42, dup=True, version=version))
                self.assertEqual(conn.expect(r.PUBREC).pid, 42)
                conn.send(r.pubrel(42, version=version))
                comp = conn.expect(r.PUBCOMP)
                self.assertEqual((comp.pid, comp.rc), (42, 0))
                msg = obs.get()
                self.check(msg, topic, payload, 2)
                obs.assert_no_message()

    def test_qos2_flow_broker_to_browser(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = self.topic()
                conn = self.raw(version)
                conn.send(r.subscribe(1, [(topic, 2)], version=version))
                self.assertEqual(conn.expect(r.SUBACK).codes, [2])
                payload = os.urandom(1000)
                obs.publish(topic, payload, 2)
                p = conn.expect(r.PUBLISH)
                self.assertEqual((p.topic, p.payload, p.qos, p.dup), (topic, payload, 2, False))
                self.assertNotEqual(p.pid, 0)
                conn.send(r.pubrec(p.pid, version=version))
                rel = conn.expect(r.PUBREL)
                self.assertEqual(rel.flags, 0x2)
                self.assertEqual(rel.pid, p.pid)
                conn.send(r.pubcomp(p.pid, version=version))
                self.assertEqual(conn.quiet_for(h.QUIET), [])
                # the connection still works
                conn.send(r.pingreq())
                conn.expect(r.PINGRESP)

    def test_qos1_broker_to_browser_raw(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = self.topic()
                conn = self.raw(version)
                conn.send(r.subscribe(7, [(topic, 1)], version=version))
                suback = conn.expect(r.SUBACK)
                self.assertEqual((suback.pid, suback.codes), (7, [1]))
                obs.publish(topic, b"one", 1)
                p = conn.expect(r.PUBLISH)
                self.assertEqual((p.topic, p.payload, p.qos, p.dup, p.retain),
                                 (topic, b"one", 1, False, False))
                self.assertNotEqual(p.pid, 0)
                conn.send(r.puback(p.pid, version=version))
                self.assertEqual(conn.quiet_for(h.QUIET), [])

    def test_retain(self):
        for version in h.VERSIONS:
            with self.subTest(version=version):
                topic = self.topic()
                live = self.paho(V5)
                live.subscribe(topic, 1)
                pub = self.paho(version)
                payload = bytes(range(256)) * 4
                pub.publish(topic, payload, 1, retain=True)
                # a subscriber that was there gets it as a live message: retain 0
                self.check(live.get(), topic, payload, 1, retain=False)
                for sub_version in h.VERSIONS:
                    late = self.paho(sub_version)
                    late.subscribe(topic, 2)
                    self.check(late.get(), topic, payload, 1, retain=True)
                    late.disconnect()
                # an empty retained PUBLISH clears it
                pub.publish(topic, b"", 1, retain=True)
                self.check(live.get(), topic, b"", 1, retain=False)
                late = self.paho(version)
                late.subscribe(topic, 1)
                late.assert_no_message()

    def test_retained_from_broker_side(self):
        obs = self.observer()
        topic = self.topic()
        obs.publish(topic, b"kept", 1, retain=True)
        for version in h.VERSIONS:
            c = self.paho(version)
            c.subscribe(topic, 1)
            self.check(c.get(), topic, b"kept", 1, retain=True)
        obs.publish(topic, b"", 1, retain=True)


class ReceiveMaximumTest(h.IntegrationCase):

    @h.bridge_only("Mosquitto answers PUBREC 0x97 instead of the DISCONNECT 0x93 MQTT 5 asks for")
    def test_qos2_beyond_receive_maximum_disconnects(self):
        conn = self.raw(r.V5)
        # Mosquitto's default (max_inflight_messages 20) reaches the browser in the CONNACK.
        limit = conn.connack.prop(r.RECEIVE_MAXIMUM, 65535)
        self.assertLessEqual(limit, 100)
        topic = self.topic()
        for pid in range(1, limit + 1):
            conn.send(r.publish(topic, b"x", qos=2, pid=pid, version=r.V5))
            self.assertEqual(conn.expect(r.PUBREC).pid, pid)
        # every exchange is still open (no PUBREL): one more is one too many
        conn.send(r.publish(topic, b"x", qos=2, pid=limit + 1, version=r.V5))
        disc = self.assert_closed(conn, v5_disconnect=True)
        self.assertEqual(disc.rc, 0x93)


if __name__ == "__main__":
    h.main()
