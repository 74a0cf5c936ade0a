"""Sessions: takeover, persistent sessions across reconnects, redelivery (DUP) of QoS 1/2 messages a
client received but never acknowledged, PUBREL redelivery, clean sessions, the broker going away."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5, PacketTypes  # noqa: E402


def persistent(version):
    """CONNECT keywords for a session that outlives the connection."""
    if version == r.V5:
        return dict(clean=False, props=[(r.SESSION_EXPIRY_INTERVAL, 120)])
    return dict(clean=False)


class TakeoverTest(h.IntegrationCase):

    def check_taken_over(self, first, version):
        """@first is closed; a v5 DISCONNECT, if any, says 0x8E.

        Mosquitto 2.0.11 closes the old connection without any DISCONNECT (over WebSocket and
        over TCP), so the bridge cannot relay a reason it never gets; if it sends one, it must be
        "session taken over".
        """
        disc = self.assert_closed(first)
        if version == r.V311:
            self.assertEqual(first.close_packets, [], "3.1.1 server sent packets at takeover")
        elif disc is not None:
            self.assertEqual(disc.rc, 0x8E, "DISCONNECT at takeover: %r" % disc)

    def test_takeover_raw(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                cid = self.uid()
                first = self.raw(version, cid)
                second = self.raw(version, cid)
                self.check_taken_over(first, version)
                second.send(r.pingreq())
                second.expect(r.PINGRESP)

    def test_takeover_keeps_session(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                cid = self.uid()
                topic = self.topic()
                first = self.raw(version, cid, **persistent(version))
                first.send(r.subscribe(1, [(topic, 1)], version=version))
                first.expect(r.SUBACK)
                second = self.raw(version, cid, **persistent(version))
                self.assertTrue(second.connack.session_present)
                self.check_taken_over(first, version)
                obs.publish(topic, b"to the new one", 1)
                p = second.expect(r.PUBLISH)
                self.assertEqual(p.payload, b"to the new one")
                second.send(r.puback(p.pid, version=version))
                second.send(r.disconnect(version=version,
                                         props=[(r.SESSION_EXPIRY_INTERVAL, 0)]
                                         if version == r.V5 else None))

    def test_takeover_paho(self):
        for version in h.VERSIONS:
            with self.subTest(version=version):
                cid = self.uid()
                a = self.paho(version, cid)
                b = self.paho(version, cid)
                a.wait_disconnected()
                self.assertFalse(b.disconnected.is_set())
                self.round_trip(b)

    def test_takeover_by_tcp_client(self):
        # the same client id connecting straight to the broker ends the WebSocket client (one
        # the broker sees: a will keeps it dedicated; a shared session's client id is the
        # bridge's business, see test_shared.py)
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                cid = self.uid()
                first = self.raw(version, cid, will=self.dedicated_will())
                self.observer(V5 if version == r.V5 else V311, client_id=cid)
                self.check_taken_over(first, version)

    def test_takeover_of_tcp_client(self):
        cid = self.uid()
        tcp = self.observer(V5, client_id=cid)
        ws = self.paho(V5, cid, will=self.dedicated_will())
        tcp.wait_disconnected()
        self.round_trip(ws)


class PersistentSessionTest(h.IntegrationCase):

    def stored_sessions(self):
        """The bridge's mwb_stored_sessions (None for Mosquitto's own listener)."""
        if h.TARGET != "bridge":
            return None
        resp = h.http_request(self.stack.bridge.port, "GET", "/metrics")
        return h.prom_samples(resp.body.decode()).get(("mwb_stored_sessions", ""), 0)

    def wait_gone(self, cid, stored):
        """Until the server has taken @cid's closed connection as gone and kept its session: the
        bridge stores one more (from @stored), Mosquitto logs the close."""
        deadline = time.monotonic() + h.TIMEOUT
        while True:
            if h.TARGET == "bridge":
                if self.stored_sessions() > stored:
                    return
            else:
                with open(self.stack.broker.log_path, errors="replace") as f:
                    if re.search(r"Client %s (closed its connection|disconnected)" % re.escape(cid),
                                 f.read()):
                        return
            self.assertLess(time.monotonic(), deadline, "the close of %s was not noticed" % cid)
            time.sleep(0.02)

    def wait_ended(self, cid):
        """Until the server has ended @cid's closed connection, its broker client too: the
        bridge logs the session's end, Mosquitto's listener the close."""
        if h.TARGET == "bridge":
            h.wait_log(self.stack.bridge.log_path,
                       r"debug session ended client_id=%s " % re.escape(cid))
        else:
            h.wait_log(self.stack.broker.log_path,
                       r"Client %s (closed its connection|disconnected)" % re.escape(cid))

    @h.broker_needs("qos2", "QoS 2 messages queued for a persistent session stay QoS 2")
    def test_queued_while_away_paho(self):
        obs = self.observer()
        for version in h.VERSIONS:
            with self.subTest(version=version):
                cid = self.uid()
                topic = self.topic()
                kw = {}
                if version == V5:
                    kw = dict(properties=h.props(PacketTypes.CONNECT, SessionExpiryInterval=60))
                c = self.paho(version, cid, clean=False, **kw)
                c.subscribe(topic, 2)
                c.disconnect()
                payloads = [b"", bytes(range(256)), os.urandom(5000)] + \
                           [b"n%d" % i for i in range(30)]
                for i, p in enumerate(payloads):
                    obs.publish(topic, p, 1 + i % 2)
                c = self.paho(version, cid, clean=False, clean_start=False, **kw)
                self.assertEqual(c.connack_result[1]["session present"], 1)
                got = c.get_n(len(payloads))
                # order holds per QoS level
                for qos in (1, 2):
                    self.assertEqual([m.payload for m in got if m.qos == qos],
                                     [p for i, p in enumerate(payloads) if 1 + i % 2 == qos])
                c.assert_no_message()
                c.disconnect()

    def test_clean_reconnect_discards_session(self):
        obs = self.observer()
        for version in h.VERSIONS:
            with self.subTest(version=version):
                cid = self.uid()
                topic = self.topic()
                kw = {}
                if version == V5:
                    kw = dict(properties=h.props(PacketTypes.CONNECT, SessionExpiryInterval=60))
                c = self.paho(version, cid, clean=False, **kw)
                c.subscribe(topic, 1)
                c.disconnect()
                obs.publish(topic, b"stale", 1)
                # (with a will: a clean 3.1.1 session without one would be shared in "auto",
                # and never reach the broker's session of that client id)
                c = self.paho(version, cid, clean=True, clean_start=True,
                              will=self.dedicated_will(), **kw)
                self.assertEqual(c.connack_result[1]["session present"], 0)
                c.assert_no_message()
                # the old subscription is gone too
                obs.publish(topic, b"after", 1)
                c.assert_no_message()
                c.disconnect()

    def redelivery(self, version, qos):
        obs = self.observer()
        cid = self.uid()
        topic = self.topic()
        first = self.raw(version, cid, **persistent(version))
        first.send(r.subscribe(1, [(topic, qos)], version=version))
        first.expect(r.SUBACK)
        payload = os.urandom(3000)
        obs.publish(topic, payload, qos)
        p = first.expect(r.PUBLISH)
        self.assertEqual((p.payload, p.qos, p.dup), (payload, qos, False))
        first.close()     # vanish without acking
        self.wait_ended(cid)
        second = self.raw(version, cid, **persistent(version))
        self.assertTrue(second.connack.session_present)
        again = second.expect(r.PUBLISH)
        self.assertEqual((again.topic, again.payload, again.qos), (topic, payload, qos))
        self.assertTrue(again.dup, "redelivered PUBLISH without DUP")
        self.assertEqual(again.pid, p.pid, "redelivered with another packet id")
        if qos == 1:
            second.send(r.puback(again.pid, version=version))
        else:
            second.send(r.pubrec(again.pid, version=version))
            self.assertEqual(second.expect(r.PUBREL).pid, again.pid)
            second.send(r.pubcomp(again.pid, version=version))
        self.assertEqual(second.quiet_for(h.QUIET), [])
        second.send(r.disconnect(version=version))
        second.wait_closed()
        # acknowledged now: not sent a third time
        third = self.raw(version, cid, **persistent(version))
        self.assertTrue(third.connack.session_present)
        self.assertEqual(third.quiet_for(h.QUIET), [])
        third.send(r.disconnect(version=version, props=[(r.SESSION_EXPIRY_INTERVAL, 0)]
                                if version == r.V5 else None))

    def test_unacked_qos1_redelivered_with_dup(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                self.redelivery(version, 1)

    @h.broker_needs("qos2", "a QoS 2 delivery at the broker")
    def test_unacked_qos2_redelivered_with_dup(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                self.redelivery(version, 2)

    def test_several_unacked_redelivered_in_order(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                cid = self.uid()
                topic = self.topic()
                first = self.raw(version, cid, **persistent(version))
                first.send(r.subscribe(1, [(topic, 1)], version=version))
                first.expect(r.SUBACK)
                for i in range(5):
                    obs.publish(topic, b"in flight %d" % i, 1)
                seen = [first.expect(r.PUBLISH) for _ in range(5)]
                # ack only the second one, then vanish; "while away" is published once the
                # server has taken the connection as gone (before, it could still go to the old
                # connection, and come again with DUP 1, as MQTT allows)
                first.send(r.puback(seen[1].pid, version=version))
                stored = self.stored_sessions()
                first.close()
                self.wait_gone(cid, stored)
                obs.publish(topic, b"while away", 1)
                second = self.raw(version, cid, **persistent(version))
                self.assertTrue(second.connack.session_present)
                got = [second.expect(r.PUBLISH) for _ in range(5)]
                self.assertEqual([p.payload for p in got[:4]],
                                 [b"in flight %d" % i for i in (0, 2, 3, 4)])
                self.assertTrue(all(p.dup for p in got[:4]))
                self.assertEqual(got[4].payload, b"while away")
                self.assertFalse(got[4].dup)
                for p in got:
                    second.send(r.puback(p.pid, version=version))
                self.assertEqual(second.quiet_for(h.QUIET), [])
                second.send(r.disconnect(version=version,
                                         props=[(r.SESSION_EXPIRY_INTERVAL, 0)]
                                         if version == r.V5 else None))

    @h.broker_needs("qos2", "a QoS 2 delivery at the broker")
    def test_pubrel_redelivered(self):
        # PUBREC sent, PUBREL received, vanished before PUBCOMP: the PUBREL comes again,
        # the message does not
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                cid = self.uid()
                topic = self.topic()
                first = self.raw(version, cid, **persistent(version))
                first.send(r.subscribe(1, [(topic, 2)], version=version))
                first.expect(r.SUBACK)
                obs.publish(topic, b"exactly once", 2)
                p = first.expect(r.PUBLISH)
                first.send(r.pubrec(p.pid, version=version))
                self.assertEqual(first.expect(r.PUBREL).pid, p.pid)
                first.close()
                self.wait_ended(cid)
                second = self.raw(version, cid, **persistent(version))
                self.assertTrue(second.connack.session_present)
                rel = second.expect(r.PUBREL)
                self.assertEqual(rel.pid, p.pid)
                second.send(r.pubcomp(rel.pid, version=version))
                self.assertEqual(second.quiet_for(h.QUIET), [])
                second.send(r.disconnect(version=version,
                                         props=[(r.SESSION_EXPIRY_INTERVAL, 0)]
                                         if version == r.V5 else None))

    def test_unacked_lost_with_clean_session(self):
        # a clean session (and v5 session expiry 0) keeps nothing: no redelivery
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                cid = self.uid()
                topic = self.topic()
                first = self.raw(version, cid, clean=True)
                first.send(r.subscribe(1, [(topic, 1)], version=version))
                first.expect(r.SUBACK)
                obs.publish(topic, b"x", 1)
                first.expect(r.PUBLISH)
                first.close()
                self.wait_ended(cid)
                second = self.raw(version, cid, clean=(version == r.V311))
                self.assertFalse(second.connack.session_present)
                self.assertEqual(second.quiet_for(h.QUIET), [])

    @h.broker_needs("mqtt5", "the broker ends a session when its v5 session expiry elapses")
    def test_session_expiry_elapses_v5(self):
        obs = self.observer()
        cid = self.uid()
        topic = self.topic()
        first = self.raw(r.V5, cid, clean=False, props=[(r.SESSION_EXPIRY_INTERVAL, 1)])
        first.send(r.subscribe(1, [(topic, 1)], version=r.V5))
        first.expect(r.SUBACK)
        first.send(r.disconnect(version=r.V5))
        first.wait_closed()
        obs.publish(topic, b"expires with the session", 1)
        time.sleep(2.5)   # the session expiry (1 s) must pass (the point)
        second = self.raw(r.V5, cid, clean=False, props=[(r.SESSION_EXPIRY_INTERVAL, 1)])
        self.assertFalse(second.connack.session_present)
        self.assertEqual(second.quiet_for(h.QUIET), [])


class BrokerGoneTest(h.IntegrationCase):
    """A fresh stack per test: these stop and restart Mosquitto."""

    @classmethod
    def setUpClass(cls):
        pass

    def setUp(self):
        type(self).stack = h.Stack()
        self.addCleanup(self.stack.cleanup)

    def test_broker_stop_closes_browsers(self):
        raw311 = self.raw(r.V311)
        raw5 = self.raw(r.V5)
        c = self.paho(V5)
        self.stack.broker.stop()
        for conn in (raw311, raw5):
            disc = self.assert_closed(conn, timeout=10)
            if disc is not None:
                self.assertGreaterEqual(disc.rc, 0x80)
        c.wait_disconnected(10)

    def test_broker_restart_new_connections_work(self):
        c = self.paho(V311)
        self.stack.broker.stop()
        c.wait_disconnected(10)
        self.stack.broker.start()
        deadline = time.monotonic() + 10
        while True:
            probe = h.Paho(self.ws_port, V311, self.uid())
            self.addCleanup(probe.close)
            rc, _, _ = probe.connect(expect_rc=None)
            if rc == 0 or time.monotonic() > deadline:
                break
            probe.close()
            time.sleep(0.5)
        self.assertEqual(rc, 0, "no successful CONNACK within 10 s of the broker restart")
        self.round_trip(probe)


if __name__ == "__main__":
    h.main()
