"""Will messages: published when a client vanishes (socket closed, WebSocket closed without MQTT
DISCONNECT, keepalive expiry, protocol error), with v5 will properties and will delay; not
published after a clean DISCONNECT; published after a v5 DISCONNECT with reason 0x04."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5, PacketTypes, bridge_only  # noqa: E402

WILL_USER_PROPS = [("why", "gone"), ("why", "really"), ("ü", "✓")]


class WillTest(h.IntegrationCase):

    def will_watch(self):
        """(observer subscribed to a fresh will topic, that topic)."""
        topic = self.topic("will")
        return self.observer(V5, subscribe=topic, qos=2), topic

    def test_will_on_socket_close_paho(self):
        for version in h.VERSIONS:
            for qos in (0, 1, 2):
                with self.subTest(version=version, qos=qos):
                    obs, topic = self.will_watch()
                    payload = bytes(range(256))
                    c = self.paho(version, will=dict(topic=topic, payload=payload, qos=qos))
                    obs.assert_no_message(0.2)
                    c.drop()
                    msg = obs.get()
                    self.assertEqual((msg.topic, msg.payload, msg.qos, msg.retain),
                                     (topic, payload, qos, False))

    def test_will_on_socket_close_raw(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                obs, topic = self.will_watch()
                conn = self.raw(version, will=dict(topic=topic, payload=b"", qos=1))
                conn.close()
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, b"", 1))

    def test_will_retained(self):
        obs, topic = self.will_watch()
        c = self.paho(V311, will=dict(topic=topic, payload=b"offline", qos=1, retain=True))
        c.drop()
        self.assertEqual(obs.get().payload, b"offline")
        late = self.paho(V5)
        late.subscribe(topic, 1)
        msg = late.get()
        self.assertEqual((msg.payload, msg.retain), (b"offline", True))
        obs.publish(topic, b"", 1, retain=True)

    def test_will_on_websocket_close_without_disconnect(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                obs, topic = self.will_watch()
                conn = self.raw(version, will=dict(topic=topic, payload=b"ws closed", qos=1))
                conn.ws.send_close(1000)
                msg = obs.get()
                self.assertEqual(msg.payload, b"ws closed")

    def test_will_on_protocol_error(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                obs, topic = self.will_watch()
                conn = self.raw(version, will=dict(topic=topic, payload=b"broken", qos=1))
                conn.send(r.packet(0x36, r.mqtt_str("a") + r.u16(1) + b"\x00x"))  # QoS 3
                self.assert_closed(conn)
                self.assertEqual(obs.get().payload, b"broken")

    def test_no_will_after_clean_disconnect(self):
        obs, topic = self.will_watch()
        for version in h.VERSIONS:
            c = self.paho(version, will=dict(topic=topic, payload=b"no", qos=1))
            c.disconnect()
        conn = self.raw(r.V5, will=dict(topic=topic, payload=b"no", qos=1))
        conn.send(r.disconnect(rc=0, version=r.V5))
        conn.wait_closed()
        obs.assert_no_message(1.0)

    def test_no_will_after_clean_disconnect_while_busy(self):
        # The client hears its own burst, so the broker is still sending to the session when the
        # DISCONNECT goes upstream: the upstream connection must still end cleanly (a reset
        # makes a broker drop the DISCONNECT and publish the will).
        obs, will_topic = self.will_watch()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                burst = self.topic("burst")
                conn = self.raw(version, will=dict(topic=will_topic, payload=b"no", qos=1))
                conn.send(r.subscribe(1, [(burst, 0)], version=version))
                conn.expect(r.SUBACK)
                conn.send(b"".join(r.publish(burst, b"x" * 100, version=version)
                                   for _ in range(50)) + r.disconnect(version=version))
                conn.wait_closed()
                obs.assert_no_message(1.0)

    def test_last_publishes_before_clean_disconnect_kept(self):
        # The same race, seen from the messages: retained publishes sent right before a clean
        # DISCONNECT, by a client subscribed to them, all reach the broker.
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                base = self.topic("kept")
                conn = self.raw(version)
                conn.send(r.subscribe(1, [(base + "/#", 0)], version=version))
                conn.expect(r.SUBACK)
                conn.send(b"".join(r.publish("%s/%d" % (base, i), b"v%d" % i, retain=True,
                                             version=version) for i in range(4)) +
                          r.disconnect(version=version))
                conn.wait_closed()
                obs = self.observer(V5, subscribe=base + "/#", qos=0)
                got = sorted(obs.get().payload for _ in range(4))
                self.assertEqual(got, [b"v0", b"v1", b"v2", b"v3"])
                for i in range(4):   # clear them
                    obs.publish("%s/%d" % (base, i), b"", retain=True)

    def test_will_after_disconnect_with_will_v5(self):
        obs, topic = self.will_watch()
        c = self.paho(V5, will=dict(topic=topic, payload=b"asked for", qos=1))
        c.disconnect(reasoncode=h.mqtt.ReasonCodes(PacketTypes.DISCONNECT,
                                                   "Disconnect with will message"))
        self.assertEqual(obs.get().payload, b"asked for")
        # a client closes its side after DISCONNECT, as paho does
        conn = self.raw(r.V5, will=dict(topic=topic, payload=b"raw asked", qos=0))
        conn.send(r.disconnect(rc=0x04, version=r.V5))
        time.sleep(0.2)   # the close comes a moment after the DISCONNECT (the point)
        conn.close()
        self.assertEqual(obs.get().payload, b"raw asked")

    @bridge_only("Mosquitto 2.0.11's WebSocket listener never closes the connection after a "
                 "DISCONNECT with reason 0x04 (it does after 0x00), and publishes the will only "
                 "when the client closes")
    def test_server_closes_after_disconnect_with_will_v5(self):
        obs, topic = self.will_watch()
        conn = self.raw(r.V5, will=dict(topic=topic, payload=b"closed by server", qos=1))
        conn.send(r.disconnect(rc=0x04, version=r.V5))
        self.assert_closed(conn)
        self.assertEqual(obs.get().payload, b"closed by server")

    def test_no_will_after_disconnect_with_error_code_v5(self):
        # any DISCONNECT reason but 0x04 removes the will, 0x80 included
        obs, topic = self.will_watch()
        conn = self.raw(r.V5, will=dict(topic=topic, payload=b"no", qos=1))
        conn.send(r.disconnect(rc=0x80, version=r.V5))
        self.assert_closed(conn)
        obs.assert_no_message(1.0)

    def test_will_properties_v5(self):
        obs, topic = self.will_watch()
        wp = h.props(PacketTypes.WILLMESSAGE, PayloadFormatIndicator=1, MessageExpiryInterval=300,
                     ContentType="text/plain", ResponseTopic=topic + "/reply",
                     CorrelationData=b"\x00\x01\xfe\xff", UserProperty=list(WILL_USER_PROPS))
        c = self.paho(V5, will=dict(topic=topic, payload="bye ✓".encode(), qos=2, properties=wp))
        c.drop()
        msg = obs.get()
        self.assertEqual((msg.payload, msg.qos), ("bye ✓".encode(), 2))
        p = msg.properties
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertLessEqual(p.MessageExpiryInterval, 300)
        self.assertGreaterEqual(p.MessageExpiryInterval, 295)
        self.assertEqual(p.ContentType, "text/plain")
        self.assertEqual(p.ResponseTopic, topic + "/reply")
        self.assertEqual(p.CorrelationData, b"\x00\x01\xfe\xff")
        self.assertEqual(p.UserProperty, WILL_USER_PROPS)

    def test_will_delay_v5(self):
        obs, topic = self.will_watch()
        conn = self.raw(r.V5, props=[(r.SESSION_EXPIRY_INTERVAL, 30)],
                        will=dict(topic=topic, payload=b"late", qos=1,
                                  props=[(r.WILL_DELAY_INTERVAL, 2)]))
        conn.close()
        start = time.monotonic()
        obs.assert_no_message(1.3)
        msg = obs.get(5)
        self.assertEqual(msg.payload, b"late")
        self.assertGreaterEqual(time.monotonic() - start, 1.5)

    def test_will_delay_cancelled_by_reconnect_v5(self):
        obs, topic = self.will_watch()
        cid = self.uid()
        will = dict(topic=topic, payload=b"never", qos=1, props=[(r.WILL_DELAY_INTERVAL, 2)])
        conn = self.raw(r.V5, cid, clean=False, props=[(r.SESSION_EXPIRY_INTERVAL, 30)],
                        will=will)
        conn.close()
        # until the broker saw the client go (the bridge's client for it, or the client itself)
        h.wait_log(self.stack.broker.log_path,
                   r"Client %s (closed its connection|disconnected)" % re.escape(cid))
        again = self.raw(r.V5, cid, clean=False, props=[(r.SESSION_EXPIRY_INTERVAL, 30)])
        self.assertTrue(again.connack.session_present)
        obs.assert_no_message(3.0)
        again.send(r.disconnect(version=r.V5, props=[(r.SESSION_EXPIRY_INTERVAL, 0)]))
        again.wait_closed()
        obs.assert_no_message(0.3)

    def test_will_delay_longer_than_session_v5(self):
        # the will goes when the session ends, even before its delay
        obs, topic = self.will_watch()
        conn = self.raw(r.V5, props=[(r.SESSION_EXPIRY_INTERVAL, 1)],
                        will=dict(topic=topic, payload=b"session over", qos=1,
                                  props=[(r.WILL_DELAY_INTERVAL, 60)]))
        conn.close()
        self.assertEqual(obs.get(5).payload, b"session over")


class KeepaliveTest(h.IntegrationCase):

    def silent(self, version, keepalive, will_topic):
        conn = self.raw(version, keepalive=keepalive,
                        will=dict(topic=will_topic, payload=b"timed out", qos=1))
        return conn, time.monotonic()

    def test_silent_client_dropped_and_will_published(self):
        # Mosquitto 2.0.11's WebSocket listener notices the expiry late (5-7 s for keepalive 1),
        # so the shared bound is loose; test_silent_client_dropped_at_1_5x is the strict one
        obs = self.observer(V5)
        topics = [self.topic("will311"), self.topic("will5")]
        for t in topics:
            obs.subscribe(t, 1)
        conns = [self.silent(r.V311, 1, topics[0]), self.silent(r.V5, 1, topics[1])]
        for conn, start in conns:
            self.assert_closed(conn, timeout=12)
        got = sorted((m.topic, m.payload) for m in obs.get_n(2, timeout=3))
        self.assertEqual(got, sorted((t, b"timed out") for t in topics))

    @bridge_only("Mosquitto 2.0.11 drops silent WebSocket clients seconds after 1.5 x keepalive")
    def test_silent_client_dropped_at_1_5x(self):
        obs = self.observer(V5)
        topic = self.topic("will")
        obs.subscribe(topic, 1)
        conn, start = self.silent(r.V5, 2, topic)
        try:
            conn.wait_closed(2.0)
            self.fail("dropped before the keepalive period (2 s) had passed")
        except TimeoutError:
            pass
        self.assert_closed(conn, timeout=2.5)   # 1.5 x 2 s = 3 s, plus slack
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 4.5)
        self.assertEqual(obs.get(3).payload, b"timed out")

    def test_pinging_client_not_dropped(self):
        conn = self.raw(r.V311, keepalive=1)
        for _ in range(8):
            time.sleep(0.7)   # a ping just inside each keepalive period (the point)
            conn.send(r.pingreq())
            conn.expect(r.PINGRESP)

    def test_keepalive_zero_never_dropped(self):
        conn = self.raw(r.V5, keepalive=0)
        self.assertEqual(conn.quiet_for(3.0), [])
        conn.send(r.pingreq())
        conn.expect(r.PINGRESP)


if __name__ == "__main__":
    h.main()
