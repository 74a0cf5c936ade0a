"""Shared sessions (mqtt_sessions "auto"), continued from test_shared.py, whose docstring says
how these tests run and which Mosquitto 2.0.11 facts they found: the session itself (takeover, also
between a shared and a dedicated session, keepalive), PUBLISH from browsers (properties, QoS 2 both
ways), a malformed packet closing only its session, a revoked token on SIGHUP, 300 browsers on one
broker subscription per filter, and mwb_sessions{mode=...}."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5, bridge_only  # noqa: E402
from shared_util import SharedCase, auto  # noqa: E402


# ---------------------------------------------------------------------------------------------
# the session itself


class TakeoverTest(SharedCase):

    def check_taken_over(self, first):
        """Closed; a 3.1.1 client gets nothing; a v5 DISCONNECT, if any, says 0x8E (Mosquitto
        2.0.11 sends none)."""
        disc = self.assert_closed(first)
        if first.version == r.V311:
            self.assertEqual(first.close_packets, [])
        elif disc is not None:
            self.assertEqual(disc.rc, 0x8E, repr(disc))
        return disc

    def test_takeover_within_the_bridge(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                cid = self.uid()
                topic = self.topic()
                first = self.raw(version, cid)
                self.sub(first, topic)
                second = self.raw(version, cid)
                self.assertFalse(second.connack.session_present)
                self.check_taken_over(first)
                # a clean start: the old subscription is not the new session's
                obs.publish(topic, b"old", 1)
                self.assertEqual(self.settle(second, 0.3), [])
                self.sub(second, topic, pid=2)
                obs.publish(topic, b"new", 1)
                self.assertEqual([p.payload for p in self.collect(second, 1)], [b"new"])

    @bridge_only("Mosquitto 2.0.11 closes the old connection without a DISCONNECT")
    def test_takeover_sends_0x8e(self):
        cid = self.uid()
        first = self.v5(cid)
        self.v311(cid)
        disc = self.check_taken_over(first)
        self.assertIsNotNone(disc, "no DISCONNECT 0x8E before the close")

    def test_takeover_between_shared_and_dedicated(self):
        # one client id, one session, whichever mode each connection got (a will makes one
        # dedicated)
        for order in ("dedicated first", "shared first"):
            with self.subTest(order):
                cid = self.uid()
                will = self.dedicated_will()
                first = self.v5(cid, will=will if order == "dedicated first" else None)
                second = self.v5(cid, will=None if order == "dedicated first" else will)
                self.check_taken_over(first)
                second.send(r.pingreq())
                second.expect(r.PINGRESP)
                self.assertEqual(self.settle(second, 0.2), [])

    def test_disconnect_with_session_expiry_after_zero_is_a_protocol_error(self):
        conn = self.v5()
        conn.send(r.disconnect(version=r.V5, props=[(r.SESSION_EXPIRY_INTERVAL, 30)]))
        disc = self.assert_closed(conn, v5_disconnect=True)
        self.assertEqual(disc.rc, 0x82)

    @bridge_only("Mosquitto 2.0.11 drops silent WebSocket clients seconds after 1.5 x keepalive")
    def test_keepalive_enforced(self):
        conns = [self.v5(keepalive=1), self.v311(keepalive=1)]
        start = time.monotonic()
        try:
            conns[0].wait_closed(1.0)
            self.fail("closed before the keepalive period (1 s) had passed")
        except TimeoutError:
            pass
        for conn in conns:
            disc = self.assert_closed(conn, timeout=max(0.1, start + 2.6 - time.monotonic()))
            if disc is not None:
                self.assertEqual(disc.rc, 0x8D, repr(disc))
        self.assertEqual(conns[1].close_packets, [])


# ---------------------------------------------------------------------------------------------
# PUBLISH from browsers


USER_PROPS = [("a", "1"), ("b", "2"), ("a", "3"), ("ünï", "çødé ✓"), ("empty", "")]
CORRELATION = bytes(range(256))


class PublishTest(SharedCase):

    @h.broker_needs("mqtt5", "the v5 properties reach a TCP subscriber")
    def test_publish_with_properties_reaches_a_tcp_subscriber(self):
        obs = self.observer(V5)
        conn = self.v5()
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = self.topic()
                obs.subscribe(topic, 2)
                payload = bytes(range(256)) + os.urandom(100)
                conn.send(r.publish(topic, payload, qos=qos, pid=qos + 10, version=r.V5, props=[
                    (r.PAYLOAD_FORMAT_INDICATOR, 0), (r.MESSAGE_EXPIRY_INTERVAL, 120),
                    (r.CONTENT_TYPE, "application/x-test; v=1"),
                    (r.RESPONSE_TOPIC, topic + "/reply"), (r.CORRELATION_DATA, CORRELATION)] +
                    [(r.USER_PROPERTY, up) for up in USER_PROPS]))
                if qos == 1:
                    ack = conn.expect(r.PUBACK)
                    self.assertEqual((ack.pid, ack.rc), (11, 0))
                elif qos == 2:
                    self.assertEqual(conn.expect(r.PUBREC).pid, 12)
                    conn.send(r.pubrel(12, version=r.V5))
                    self.assertEqual(conn.expect(r.PUBCOMP).pid, 12)
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos, msg.retain),
                                 (topic, payload, qos, False))
                p = msg.properties
                self.assertEqual(p.PayloadFormatIndicator, 0)
                self.assertTrue(115 <= p.MessageExpiryInterval <= 120, p.MessageExpiryInterval)
                self.assertEqual(p.ContentType, "application/x-test; v=1")
                self.assertEqual(p.ResponseTopic, topic + "/reply")
                self.assertEqual(p.CorrelationData, CORRELATION)
                self.assertEqual(p.UserProperty, USER_PROPS)
                self.assertFalse(hasattr(p, "TopicAlias"))
                obs.assert_no_message(0.1)

    @h.broker_needs("qos2", "a 3.1.1 browser and a TCP client get QoS 2 messages at QoS 2")
    def test_qos2_exactly_once_both_ways(self):
        # a shared browser publishes QoS 2, each PUBLISH sent twice (DUP) before its PUBREL; a
        # shared 3.1.1 browser and a TCP client get each exactly once, in order
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        pub, sub = self.v5(), self.v311()
        self.assertEqual(self.sub(sub, [(topic, 2)]), [2])
        payloads = [os.urandom(50) + b"%d" % i for i in range(5)]
        for i, payload in enumerate(payloads):
            pid = 100 + i
            pub.send(r.publish(topic, payload, qos=2, pid=pid, version=r.V5))
            self.assertEqual(pub.expect(r.PUBREC).pid, pid)
            pub.send(r.publish(topic, payload, qos=2, pid=pid, dup=True, version=r.V5))
            self.assertEqual(pub.expect(r.PUBREC).pid, pid)
            pub.send(r.pubrel(pid, version=r.V5))
            self.assertEqual(pub.expect(r.PUBCOMP).pid, pid)
        got = []
        deadline = time.monotonic() + h.TIMEOUT
        while len(got) < len(payloads) and time.monotonic() < deadline:
            p = sub.recv(max(0.0, deadline - time.monotonic()))
            if p.type == r.PUBLISH:
                self.assertEqual((p.qos, p.dup), (2, False), repr(p))
                got.append(p)
                sub.send(r.pubrec(p.pid))
            elif p.type == r.PUBREL:
                sub.send(r.pubcomp(p.pid))
        self.assertEqual([p.payload for p in got], payloads)
        # the last PUBREL and nothing else
        rest = sub.quiet_for(h.QUIET)
        for p in rest:
            self.assertEqual(p.type, r.PUBREL, repr(p))
            sub.send(r.pubcomp(p.pid))
        self.assertEqual([m.payload for m in obs.get_n(len(payloads))], payloads)
        obs.assert_no_message(0.2)
        self.assertEqual(sub.quiet_for(0.2), [])


# ---------------------------------------------------------------------------------------------
# one session's trouble is its own


class IsolationTest(SharedCase):

    def test_malformed_packet_closes_only_its_session(self):
        obs = self.observer()
        topic = self.topic()
        a, b = self.v5(), self.v311()
        for conn in (a, b):
            self.sub(conn, topic)
        # (v5: a DISCONNECT >= 0x80 first, as Mosquitto sends; 0x81 from Mosquitto, the bridge
        # may name the fault more precisely)
        bad_packets = [
            (r.V5, r.packet(0x36, r.mqtt_str(topic) + r.u16(1) + b"\x00x")),   # QoS 3
            (r.V5, r.subscribe(1, [(topic + "/#/x", 0)], version=r.V5)),
            (r.V311, r.publish((topic + "/").encode() + b"\xff", b"x")),
        ]
        for i, (version, bad) in enumerate(bad_packets):
            with self.subTest(i=i):
                conn = self.raw(version)
                self.sub(conn, topic)
                conn.send(bad)
                self.assert_closed(conn, timeout=3, v5_disconnect=version == r.V5)
                if version == r.V311:
                    self.assertEqual(conn.close_packets, [])
                obs.publish(topic, b"still %d" % i, 1)
                for good in (a, b):
                    self.assertEqual([p.payload for p in self.collect(good, 1)],
                                     [b"still %d" % i])
        a.send(r.publish(topic, b"from a", qos=1, pid=9, version=r.V5))
        self.assertEqual([p.payload for p in self.collect(b, 1)], [b"from a"])
        self.assertEqual([p.payload for p in self.collect(a, 1)], [b"from a"])
        acks = a.__dict__.get("acks") or [a.expect(r.PUBACK)]    # before or after its copy
        self.assertEqual([(p.type, p.pid, p.rc) for p in acks], [(r.PUBACK, 9, 0)])


# ---------------------------------------------------------------------------------------------
# tokens: SIGHUP


SECRETS = {name: "mwb_" + os.urandom(24).hex() for name in ("alice", "carol", "bob")}
HUB_USER, HUB_PASSWORD = "mwb-hub", "hub-" + os.urandom(8).hex()
OBS_USER, OBS_PASSWORD = "observer", "obs-" + os.urandom(8).hex()


def token(name):
    import hashlib
    return {"name": name, "sha256": hashlib.sha256(SECRETS[name].encode()).hexdigest(),
            "publish": ["mwbtest/#"], "subscribe": ["mwbtest/#"]}


def token_config(*names):
    return auto(auth={"mode": "tokens", "tokens": [token(n) for n in names]},
                mqtt_credentials="bridge",
                broker={"username": HUB_USER, "password": HUB_PASSWORD})


@bridge_only("tokens and SIGHUP are the bridge's")
@h.broker_needs("mosquitto", "Mosquitto's password_file for the hub's and the observer's logins")
class TokenReloadTest(SharedCase):
    """mqtt_credentials "bridge": shared sessions of tokens; SIGHUP removes carol's token."""
    passwords = {HUB_USER: HUB_PASSWORD, OBS_USER: OBS_PASSWORD}
    bridge_config = token_config("alice", "carol")

    def test_revoked_token_closes_its_shared_sessions(self):
        topic = self.topic()
        carol5 = self.v5(username="c", password=SECRETS["carol"])
        carol3 = self.v311(username="c", password=SECRETS["carol"])
        alice = self.v5(username="a", password=SECRETS["alice"])
        for conn in (carol5, carol3, alice):
            self.assertEqual(self.sub(conn, topic), [1])
        self.stack.bridge.write_config(token_config("alice", "bob"))
        os.kill(self.stack.bridge.pid, signal.SIGHUP)
        disc = self.assert_closed(carol5, v5_disconnect=True)
        self.assertEqual(disc.rc, 0x87)
        self.assert_closed(carol3)
        self.assertEqual(carol3.close_packets, [])
        # alice, on the same filter, goes on: one copy of each message
        obs = self.observer(username=OBS_USER, password=OBS_PASSWORD)
        obs.publish(topic, b"after", 1)
        self.assertEqual([p.payload for p in self.collect(alice, 1)], [b"after"])
        self.assertEqual(self.settle(alice, 0.3), [])
        # carol's secret is refused from now on, bob's (new) works
        conn = self.v5(username="c", password=SECRETS["carol"], expect_rc=None)
        self.assertEqual([(p.type, p.rc) for p in conn.wait_closed()], [(r.CONNACK, 0x86)])
        bob = self.v311(username="b", password=SECRETS["bob"])
        self.assertEqual(self.sub(bob, topic), [1])


# ---------------------------------------------------------------------------------------------
# many browsers, and what the bridge says about them


def held_subscriptions(log_path):
    """{filter: {client id: QoS}} that Mosquitto holds by its log (log_type all): each
    "<client> <qos> <filter>" line of a SUBSCRIBE adds one, each "<client> <filter>" line of an
    UNSUBSCRIBE removes one. (Sessions that end are not followed: for long-lived clients.)"""
    with open(log_path, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()
    held, mode = {}, None
    for line in lines:
        m = re.match(r"^\d+: Received (SUBSCRIBE|UNSUBSCRIBE) from (\S+)$", line)
        if m:
            mode = m.group(1)
            continue
        if mode == "SUBSCRIBE":
            m = re.match(r"^\d+: (\S+) ([012]) (\S+)$", line)
            if m:
                held.setdefault(m.group(3), {})[m.group(1)] = int(m.group(2))
                continue
        elif mode == "UNSUBSCRIBE":
            m = re.match(r"^\d+: (\S+) (\S+)$", line)
            if m:
                held.get(m.group(2), {}).pop(m.group(1), None)
                continue
        if not re.match(r"^\d+: \t", line):
            mode = None
    return held


@bridge_only("one broker subscription per filter is the bridge's")
@h.broker_needs("mosquitto", "counts the subscriptions in Mosquitto's log")
class ScaleTest(SharedCase):
    """300 shared browsers on 4 filters: every browser gets every message of its filter, and the
    broker holds one subscription per filter (Mosquitto's log)."""
    N = 300

    def test_many_browsers_one_broker_subscription_per_filter(self):
        base = self.topic("scale")
        filters = [base + "/0/#", base + "/1/+", base + "/2/x", base + "/3/x/#"]
        topics = [base + "/0/a/b", base + "/1/y", base + "/2/x", base + "/3/x"]
        conns = []
        for i in range(self.N):
            version = r.V5 if i % 2 else r.V311
            conn = r.MQTTConn(self.ws(), version)
            conn.send(r.connect("", version=version) +
                      r.subscribe(1, [(filters[i % 4], 1)], version=version))
            conns.append(conn)
        for i, conn in enumerate(conns):
            self.assertEqual(conn.expect(r.CONNACK).rc, 0, "browser %d" % i)
            self.assertEqual(conn.expect(r.SUBACK).codes, [1], "browser %d" % i)
        obs = self.observer()
        for k, topic in enumerate(topics):
            obs.publish(topic, b"q0 %d" % k, 0)
            obs.publish(topic, b"q1 %d" % k, 1)
        for i, conn in enumerate(conns):
            got = self.collect(conn, 2)
            self.assertEqual([(p.topic, p.payload, p.qos) for p in got],
                             [(topics[i % 4], b"q0 %d" % (i % 4), 0),
                              (topics[i % 4], b"q1 %d" % (i % 4), 1)], "browser %d" % i)
        # nothing more for anyone (a quiet window, not a synchronisation)
        time.sleep(h.QUIET)
        for i, conn in enumerate(conns):
            self.assertEqual(conn.quiet_for(0.001), [], "browser %d" % i)
        # the broker: each filter once (a retained read's own subscription may linger briefly)
        deadline = time.monotonic() + 5
        while True:
            held = held_subscriptions(self.stack.broker.log_path)
            counts = {f: len(held.get(f, {})) for f in filters}
            if all(n == 1 for n in counts.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(counts, {f: 1 for f in filters},
                         "subscriptions the broker holds: %r" % {f: held.get(f) for f in filters})


@bridge_only("the bridge's metrics")
class MetricsTest(SharedCase):
    """mwb_sessions{mode="shared"} and {mode="dedicated"}: how many of each are open."""

    def sessions(self, port=None):
        text = self.metrics(port)
        self.assertRegex(text, r"(?m)^# TYPE mwb_sessions gauge$")
        s = h.prom_samples(text)
        return (s.get(("mwb_sessions", '{mode="shared"}')),
                s.get(("mwb_sessions", '{mode="dedicated"}')))

    def wait_sessions(self, expected, port=None):
        deadline = time.monotonic() + h.TIMEOUT
        while True:
            got = self.sessions(port)
            if got == expected:
                return
            self.assertLess(time.monotonic(), deadline, "mwb_sessions (shared, dedicated) %r, "
                            "expected %r" % (got, expected))
            time.sleep(0.05)

    def test_sessions_by_mode(self):
        self.wait_sessions((0, 0))
        shared = [self.v5(), self.v311(), self.paho(V5)]
        dedicated = [self.v5(will=self.dedicated_will()), self.paho(V311, clean=False),
                     self.v5(props=[(r.SESSION_EXPIRY_INTERVAL, 10)])]
        self.wait_sessions((3.0, 3.0))
        shared[0].send(r.disconnect(version=r.V5))
        shared[1].close()
        dedicated[0].send(r.disconnect(version=r.V5))
        self.wait_sessions((1.0, 2.0))
        shared[2].disconnect()
        dedicated[1].disconnect()
        dedicated[2].send(r.disconnect(version=r.V5, props=[(r.SESSION_EXPIRY_INTERVAL, 0)]))
        self.wait_sessions((0.0, 0.0))
        # mqtt_sessions "dedicated": every session has its own client
        other = h.start_bridge(self.stack.broker.port, config={"mqtt_sessions": "dedicated"})
        self.addCleanup(other.cleanup)
        h.ApiCase.wait_hub(other.port)
        conns = []
        for version in (r.V5, r.V311):
            conn = r.MQTTConn(r.WSClient(h.HOST, other.port), version)
            self.addCleanup(conn.close)
            conn.send(r.connect(self.uid(), version=version))
            self.assertEqual(conn.expect(r.CONNACK).rc, 0)
            conns.append(conn)
        self.wait_sessions((0.0, 2.0), port=other.port)


if __name__ == "__main__":
    h.main()
