"""MQTT over WebSocket credentials (README: "Credentials and ACLs"): mqtt_credentials "bridge"
(the CONNECT password is a token; its publish / subscribe ACL is enforced by the bridge; the
upstream logs in with broker.username) and "passthrough" (the broker judges the browser's own
username and password); limits.max_subscriptions. Everything against a Mosquitto that refuses
anonymous clients, for MQTT 3.1.1 and 5.0."""

import base64
import hashlib
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5, mqtt  # noqa: E402


def new_secret():
    """A secret in the bridge's own format: "mwb_" and 43 base64url characters."""
    return "mwb_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def sha256hex(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


ALICE = new_secret()
BOB = new_secret()
REVOKED = new_secret()
BROKER_USER, BROKER_PASSWORD = "mwb-bridge", new_secret()
OBSERVER_USER, OBSERVER_PASSWORD = "observer", new_secret()

ALICE_TOKEN = {"name": "alice", "sha256": sha256hex(ALICE), "publish": ["devices/{name}/#"],
               "subscribe": ["devices/+/status", "sensors/#"]}
BOB_TOKEN = {"name": "bob", "sha256": sha256hex(BOB), "publish": ["devices/{name}/#"],
             "subscribe": ["devices/{name}/#"]}
REVOKED_TOKEN = {"name": "carol", "sha256": sha256hex(REVOKED), "publish": ["devices/{name}/#"],
                 "subscribe": ["devices/{name}/#"]}

MAX_SUBSCRIPTIONS = 6


def bridge_config(tokens):
    return {"mqtt_credentials": "bridge",
            "broker": {"username": BROKER_USER, "password": BROKER_PASSWORD},
            "auth": {"mode": "tokens", "tokens": tokens},
            "limits": {"max_subscriptions": MAX_SUBSCRIPTIONS}}


class CredentialsCase(h.IntegrationCase):
    """Helpers shared by both modes."""

    def bridge_log(self):
        with open(self.stack.bridge.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def broker_log(self):
        with open(self.stack.broker.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tcp_observer(self, *filters):
        """A v5 client on Mosquitto's TCP port (its own broker account), subscribed to @filters."""
        obs = self.observer(username=OBSERVER_USER, password=OBSERVER_PASSWORD)
        for f in filters:
            self.assertEqual(obs.subscribe(f, 2), [2])
        return obs

    def metric(self, name, labels):
        resp = h.http_request(self.stack.bridge.port, "GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        return h.prom_samples(resp.body.decode()).get((name, labels))

    def assert_broker_never_saw(self, client_id):
        """No upstream client was made for @client_id: the refusal came before Paho."""
        # a check that something never appears: a connection the bridge made would be in the
        # broker's log within this window
        time.sleep(0.2)
        self.assertNotIn(" as %s " % client_id, self.broker_log())


@h.bridge_only("mqtt_credentials is the bridge's")
class BridgeCredentialsTest(CredentialsCase):
    passwords = {BROKER_USER: BROKER_PASSWORD, OBSERVER_USER: OBSERVER_PASSWORD}
    bridge_config = bridge_config([ALICE_TOKEN, BOB_TOKEN])

    def alice(self, version, **kw):
        return self.paho(version, username="whoever", password=ALICE, **kw)

    def assert_serving(self):
        """After a refusal the bridge still serves a good token end to end."""
        c = self.alice(V5)
        topic = "devices/alice/status"
        self.assertEqual(c.subscribe(topic, 1), [1])
        payload = os.urandom(16)
        c.publish(topic, payload, 1)
        msg = c.get()
        self.assertEqual((msg.topic, msg.payload), (topic, payload))
        c.disconnect()

    # CONNECT ------------------------------------------------------------------------------

    def test_good_token_connects_as_the_bridge(self):
        # a session with a will (inside alice's publish ACL) has its own upstream client in
        # every mode; a plain clean one in mqtt_sessions "auto" is shared: served by the hub,
        # which logged in as broker.username, and the broker never sees the browser's client id
        for version in h.VERSIONS:
            for will in (True, False):
                with self.subTest(version=version, will=will):
                    self.check_connects_as_the_bridge(version, will)

    def check_connects_as_the_bridge(self, version, will):
        cid = self.uid()
        c = self.alice(version, client_id=cid,
                       will=dict(topic="devices/alice/will", payload=b"") if will else None)
        self.assertEqual(c.connack_result[0], 0)
        if self.shared and not will:
            self.assert_broker_never_saw("alice/" + cid)
            self.assert_broker_never_saw(cid)
            self.assertNotIn("u'whoever'", self.broker_log())
            c.disconnect()
            return
        # Mosquitto refuses anonymous clients: the upstream logged in with
        # broker.username, never with the browser's username or the token
        deadline = time.monotonic() + h.TIMEOUT
        # under "TOKEN/ID", so that tokens cannot take over each other's client ids
        pattern = re.compile(r" as %s \(.*u'%s'\)" % (re.escape("alice/" + cid),
                                                     re.escape(BROKER_USER)))
        while not pattern.search(self.broker_log()):
            self.assertLess(time.monotonic(), deadline,
                            "broker log has no login of %s as %s\n%s"
                            % (cid, BROKER_USER, self.stack.broker.log()))
            time.sleep(0.05)
        self.assertNotIn("u'whoever'", self.broker_log())
        c.disconnect()

    def test_username_is_ignored(self):
        # any username, or none at all in v5 (3.1.1 has no password without a username)
        for username in ("alice", "", "bob"):
            c = self.paho(V311, username=username, password=ALICE)
            c.disconnect()
        conn = self.raw(r.V5, password=ALICE)
        conn.send(r.disconnect(version=r.V5))
        conn.wait_closed()

    def test_unknown_token_refused_311(self):
        for password in (new_secret(), ALICE[:-1], ALICE + "x", "", BROKER_PASSWORD):
            with self.subTest(password=password[:8]):
                cid = self.uid("bad")
                conn = self.raw(r.V311, client_id=cid, username="alice", password=password,
                                expect_rc=None)
                got = conn.wait_closed()
                self.assertEqual([p.raw for p in got], [b"\x20\x02\x00\x05"])
                self.assert_broker_never_saw(cid)
        self.assert_serving()

    def test_unknown_token_refused_v5(self):
        for password in (new_secret(), BOB[:20], ""):
            with self.subTest(password=password[:8]):
                cid = self.uid("bad")
                conn = self.raw(r.V5, client_id=cid, username="alice", password=password,
                                expect_rc=None)
                got = conn.wait_closed()
                self.assertEqual([(p.type, p.rc) for p in got], [(r.CONNACK, 0x86)])
                self.assert_broker_never_saw(cid)
        self.assert_serving()

    def test_missing_token_refused(self):
        for version, expect in ((r.V311, (r.CONNACK, 5)), (r.V5, (r.CONNACK, 0x86))):
            for username in (None, "alice"):
                with self.subTest(version=version, username=username):
                    cid = self.uid("none")
                    conn = self.raw(version, client_id=cid, username=username, expect_rc=None)
                    got = conn.wait_closed()
                    self.assertEqual([(p.type, p.rc) for p in got], [expect])
                    self.assert_broker_never_saw(cid)
        self.assert_serving()

    def test_paho_sees_the_refusal(self):
        c = self.paho(V311, username="alice", password="wrong", expect_rc=5)
        c.wait_disconnected()
        c = self.paho(V5, username="alice", password="wrong", expect_rc=0x86)
        c.wait_disconnected()
        self.assert_serving()

    def test_will_outside_publish_acl_refused(self):
        for version, code in ((r.V311, 5), (r.V5, 0x87)):
            with self.subTest(version=version):
                cid = self.uid("will")
                conn = self.raw(version, client_id=cid, password=ALICE, username="a",
                                will=dict(topic="devices/bob/will", payload=b"gone"),
                                expect_rc=None)
                got = conn.wait_closed()
                self.assertEqual([(p.type, p.rc) for p in got], [(r.CONNACK, code)])
                self.assert_broker_never_saw(cid)
        self.assert_serving()

    def test_will_inside_publish_acl(self):
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = "devices/alice/will-%d" % version
                obs = self.tcp_observer(topic)
                payload = os.urandom(24)
                conn = self.raw(version, username="a", password=ALICE,
                                will=dict(topic=topic, payload=payload, qos=1))
                conn.close()  # vanish: the will is published
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload), (topic, payload))

    # SUBSCRIBE ----------------------------------------------------------------------------

    def test_subscribe_mixed_filters(self):
        for version, no in ((r.V311, 0x80), (r.V5, 0x87)):
            with self.subTest(version=version):
                u = self.uid("s")
                conn = self.raw(version, username="a", password=ALICE)
                filters = [("sensors/%s/#" % u, 1),            # inside sensors/#
                           ("devices/%s/cmd" % u, 1),          # not readable
                           ("devices/+/status", 0),            # exactly an ACL filter
                           ("#", 2),                           # wider than the ACL
                           ("$share/g%s/sensors/%s/a" % (u[-4:], u), 2),  # judged by its filter
                           ("devices/#", 1),                   # wider than devices/+/status
                           ("sensors/%s/+" % u, 2)]
                conn.send(r.subscribe(7, filters, version=version))
                ack = conn.expect(r.SUBACK)
                self.assertEqual(ack.pid, 7)
                self.assertEqual(ack.codes, [1, no, 0, no, 2, no, 2])
                # the allowed ones deliver what a TCP client publishes, byte for byte
                obs = self.tcp_observer()
                payload = bytes(range(256)) + os.urandom(64)
                obs.publish("devices/%s/cmd" % u, b"not for alice", 1)
                obs.publish("sensors/%s/x" % u, payload, 1)
                got = conn.expect(r.PUBLISH)
                self.assertEqual((got.topic, got.payload), ("sensors/%s/x" % u, payload))
                if got.qos:
                    conn.send(r.puback(got.pid, version=version))
                # two subscriptions match it (sensors/u/# and sensors/u/+): a second copy may
                # come; the refused filter's message never does
                for p in conn.quiet_for(h.QUIET):
                    self.assertEqual(p.type, r.PUBLISH)
                    self.assertNotEqual(p.topic, "devices/%s/cmd" % u)
                    if p.qos:
                        conn.send(r.puback(p.pid, version=version))

    def test_subscribe_all_refused(self):
        # nothing goes to the broker; the SUBACK still comes, in order with the others
        for version, no in ((r.V311, 0x80), (r.V5, 0x87)):
            with self.subTest(version=version):
                conn = self.raw(version, username="a", password=ALICE)
                conn.send(r.subscribe(1, [("sensors/ok/%d" % version, 1)], version=version))
                conn.send(r.subscribe(2, [("other/#", 1), ("devices/x/y", 0)],
                                      version=version))
                conn.send(r.subscribe(3, [("sensors/ok2/%d" % version, 2)], version=version))
                acks = [conn.expect(r.SUBACK) for _ in range(3)]
                self.assertEqual([(a.pid, a.codes) for a in acks],
                                 [(1, [1]), (2, [no, no]), (3, [2])])

    def test_subscribe_paho(self):
        for version in h.VERSIONS:
            with self.subTest(version=version):
                c = self.alice(version)
                u = self.uid("p")
                if version == V5:
                    filters = [("sensors/%s" % u, mqtt.SubscribeOptions(qos=1)),
                               ("secret/%s" % u, mqtt.SubscribeOptions(qos=1))]
                    self.assertEqual(c.subscribe(filters), [1, 0x87])
                else:
                    self.assertEqual(c.subscribe([("sensors/%s" % u, 1), ("secret/%s" % u, 1)]),
                                     [1, 0x80])
                obs = self.tcp_observer()
                obs.publish("secret/%s" % u, b"no", 1)
                obs.publish("sensors/%s" % u, b"yes", 1)
                self.assertEqual(c.get().payload, b"yes")
                c.assert_no_message()

    # PUBLISH ------------------------------------------------------------------------------

    def test_publish_outside_acl_v5(self):
        u = self.uid("p5")
        obs = self.tcp_observer("devices/#")
        conn = self.raw(r.V5, username="a", password=ALICE)
        denied = "devices/bob/%s" % u
        conn.send(r.publish(denied, b"q0", qos=0, version=r.V5))
        conn.send(r.publish(denied, b"q1", qos=1, pid=11, version=r.V5))
        ack = conn.expect(r.PUBACK)
        self.assertEqual((ack.pid, ack.rc), (11, 0x87))
        conn.send(r.publish(denied, b"q2", qos=2, pid=12, version=r.V5))
        rec = conn.expect(r.PUBREC)
        self.assertEqual((rec.pid, rec.rc), (12, 0x87))
        # an allowed one after them arrives, byte for byte, and is the first the broker saw
        allowed = "devices/alice/%s" % u
        payload = os.urandom(100)
        conn.send(r.publish(allowed, payload, qos=1, pid=13, version=r.V5))
        ack = conn.expect(r.PUBACK)
        self.assertEqual((ack.pid, ack.rc), (13, 0))
        msg = obs.get()
        self.assertEqual((msg.topic, msg.payload), (allowed, payload))
        obs.assert_no_message()
        self.assertGreaterEqual(self.metric("mwb_mqtt_denied_total", '{kind="publish"}'), 3)

    def test_publish_outside_acl_311(self):
        # as Mosquitto does: dropped, but acknowledged, so that the client does not retry
        u = self.uid("p3")
        obs = self.tcp_observer("devices/#")
        conn = self.raw(r.V311, username="a", password=ALICE)
        denied = "devices/bob/%s" % u
        conn.send(r.publish(denied, b"q0", qos=0))
        conn.send(r.publish(denied, b"q1", qos=1, pid=21))
        self.assertEqual(conn.expect(r.PUBACK).raw, b"\x40\x02\x00\x15")
        conn.send(r.publish(denied, b"q2", qos=2, pid=22))
        self.assertEqual(conn.expect(r.PUBREC).raw, b"\x50\x02\x00\x16")
        conn.send(r.pubrel(22))
        self.assertEqual(conn.expect(r.PUBCOMP).raw, b"\x70\x02\x00\x16")
        allowed = "devices/alice/%s" % u
        for qos in (0, 1, 2):
            payload = os.urandom(50) + bytes([qos])
            conn.send(r.publish(allowed, payload, qos=qos, pid=30 + qos))
            if qos == 1:
                conn.expect(r.PUBACK)
            elif qos == 2:
                conn.expect(r.PUBREC)
                conn.send(r.pubrel(32))
                conn.expect(r.PUBCOMP)
            msg = obs.get()
            self.assertEqual((msg.topic, msg.payload), (allowed, payload))
        obs.assert_no_message()

    def test_publish_paho_denied_completes(self):
        # paho's QoS 1/2 flows end (no retry forever) and nothing reaches the broker
        obs = self.tcp_observer("devices/#")
        for version in h.VERSIONS:
            with self.subTest(version=version):
                c = self.alice(version)
                for qos in (0, 1, 2):
                    c.publish("devices/bob/x", b"denied", qos)
                c.publish("devices/alice/x", b"allowed", 1)
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload), ("devices/alice/x", b"allowed"))
                obs.assert_no_message()
                c.disconnect()

    def test_name_substitution(self):
        # "devices/{name}/#" is devices/alice/# for alice and devices/bob/# for bob
        obs = self.tcp_observer("devices/#")
        bob = self.paho(V5, username="x", password=BOB)
        self.assertEqual(bob.subscribe("devices/bob/#", 1), [1])
        self.assertEqual(bob.subscribe("devices/alice/#", 1), [0x87])
        alice = self.alice(V5)
        alice.publish("devices/alice/n", b"a", 1)
        alice.publish("devices/bob/n", b"a-as-bob", 1)
        bob.publish("devices/bob/n", b"b", 1)
        bob.publish("devices/alice/n", b"b-as-alice", 1)
        got = sorted((m.topic, m.payload) for m in obs.get_n(2))
        self.assertEqual(got, [("devices/alice/n", b"a"), ("devices/bob/n", b"b")])
        obs.assert_no_message()
        msg = bob.get()
        self.assertEqual((msg.topic, msg.payload), ("devices/bob/n", b"b"))
        bob.assert_no_message()

    def test_client_ids_are_per_token(self):
        # every upstream logs in as the bridge: were client ids shared, bob could end alice's
        # connection by taking her id, or resume the session she left, subscriptions included
        for version in h.VERSIONS:
            with self.subTest(version=version):
                cid = self.uid("shared")
                u = self.uid("r")
                alice = self.alice(version, client_id=cid, clean=False)
                self.assertEqual(alice.subscribe("sensors/%s" % u, 1), [1])
                bob = self.paho(version, client_id=cid, clean=False, username="x",
                                password=BOB)
                self.assertFalse(alice.disconnected.wait(h.QUIET), "bob took over alice's id")
                self.assertEqual(bob.connack_result[1]["session present"], 0)
                obs = self.tcp_observer()
                obs.publish("sensors/%s" % u, b"for alice only", 1)
                msg = alice.get()
                self.assertEqual((msg.topic, msg.payload), ("sensors/%s" % u, b"for alice only"))
                bob.assert_no_message()
                alice.disconnect()
                bob.disconnect()
                if version != V311:
                    continue
                # alice's persistent session is hers again, and still not bob's
                bob = self.paho(version, client_id=cid, clean=False, username="x", password=BOB)
                self.assertEqual(bob.connack_result[1]["session present"], 1)
                alice = self.alice(version, client_id=cid, clean=False)
                self.assertEqual(alice.connack_result[1]["session present"], 1)
                alice.disconnect()
                bob.disconnect()
                self.alice(version, client_id=cid, clean=True).disconnect()
                self.paho(version, client_id=cid, clean=True, username="x",
                          password=BOB).disconnect()

    # max_subscriptions ------------------------------------------------------------------

    def test_max_subscriptions(self):
        for version, over in ((r.V311, 0x80), (r.V5, 0x97)):
            with self.subTest(version=version):
                base = "sensors/%s/" % self.uid("q")
                conn = self.raw(version, username="a", password=ALICE)
                # refused filters do not count
                conn.send(r.subscribe(1, [(base + "a", 1), (base + "b", 1), ("x/y", 1),
                                          (base + "c", 1), (base + "d", 1)], version=version))
                self.assertEqual(conn.expect(r.SUBACK).codes,
                                 [1, 1, 0x80 if version == r.V311 else 0x87, 1, 1])
                # 4 of 6: a again replaces itself, e and f fit, g does not
                conn.send(r.subscribe(2, [(base + "a", 2), (base + "e", 0), (base + "f", 0),
                                          (base + "g", 0)], version=version))
                self.assertEqual(conn.expect(r.SUBACK).codes, [2, 0, 0, over])
                conn.send(r.subscribe(3, [(base + "g", 0)], version=version))
                self.assertEqual(conn.expect(r.SUBACK).codes, [over])
                # an UNSUBSCRIBE makes room
                conn.send(r.unsubscribe(4, [base + "a"], version=version))
                conn.expect(r.UNSUBACK)
                conn.send(r.subscribe(5, [(base + "g", 1), (base + "h", 1)], version=version))
                self.assertEqual(conn.expect(r.SUBACK).codes, [1, over])
                # the refused filter really is not subscribed; g is
                obs = self.tcp_observer()
                obs.publish(base + "h", b"h", 1)
                obs.publish(base + "g", b"g", 1)
                p = conn.expect(r.PUBLISH)
                self.assertEqual((p.topic, p.payload), (base + "g", b"g"))
        self.assertGreaterEqual(
            self.metric("mwb_mqtt_denied_total", '{kind="subscription_quota"}'), 4)
        self.assertGreaterEqual(self.metric("mwb_mqtt_denied_total", '{kind="subscribe"}'), 2)

    def test_quota_is_per_connection(self):
        base = "sensors/%s/" % self.uid("pc")
        a = self.raw(r.V5, username="a", password=ALICE)
        b = self.raw(r.V5, username="a", password=ALICE)
        filters = [(base + str(i), 0) for i in range(MAX_SUBSCRIPTIONS)]
        for conn in (a, b):
            conn.send(r.subscribe(1, filters, version=r.V5))
            self.assertEqual(conn.expect(r.SUBACK).codes, [0] * MAX_SUBSCRIPTIONS)

    # logs ---------------------------------------------------------------------------------

    def test_zz_no_secret_in_log(self):
        # runs last (alphabetical): every secret used above, and the bridge's own password
        log = self.bridge_log()
        self.assertIn("token=alice", log)   # the log was written at debug level
        for secret in (ALICE, BOB, BROKER_PASSWORD, ALICE[:-1], BOB[:20]):
            self.assertNotIn(secret, log)
            self.assertNotIn(secret[4:24], log)


@h.bridge_only("mqtt_credentials is the bridge's")
class BridgeReloadTest(CredentialsCase):
    """SIGHUP: a session whose token is gone is closed; others keep their connection."""
    passwords = {BROKER_USER: BROKER_PASSWORD, OBSERVER_USER: OBSERVER_PASSWORD}
    bridge_config = bridge_config([ALICE_TOKEN, REVOKED_TOKEN])

    def test_revoked_token_closes_its_sessions(self):
        carol5 = self.raw(r.V5, username="c", password=REVOKED)
        carol3 = self.raw(r.V311, username="c", password=REVOKED)
        alice = self.paho(V5, username="a", password=ALICE)
        self.stack.bridge.write_config(bridge_config([ALICE_TOKEN, BOB_TOKEN]))
        os.kill(self.stack.bridge.pid, signal.SIGHUP)
        disc = self.assert_closed(carol5, v5_disconnect=True)
        self.assertEqual(disc.rc, 0x87)
        self.assert_closed(carol3)
        self.assertEqual(alice.subscribe("devices/+/status", 1), [1])
        alice.publish("devices/alice/status", b"still here", 1)
        self.assertEqual(alice.get().payload, b"still here")
        # the new token works at once, the old one no longer does
        self.paho(V5, username="b", password=BOB).disconnect()
        conn = self.raw(r.V5, username="c", password=REVOKED, expect_rc=None)
        self.assertEqual([(p.type, p.rc) for p in conn.wait_closed()], [(r.CONNACK, 0x86)])


@h.bridge_only("mqtt_credentials is the bridge's")
class PassthroughCredentialsTest(CredentialsCase):
    """The default: the broker checks the browser's own username and password. Mosquitto 2.0
    answers a wrong password with "not authorized" (3.1.1 code 5, v5 0x87); the bridge passes
    the broker's code on."""
    passwords = {"dave": "d4ve-pw", OBSERVER_USER: OBSERVER_PASSWORD}
    bridge_config = {"limits": {"max_subscriptions": 3},
                     "auth": {"mode": "tokens", "tokens": [ALICE_TOKEN]}}

    def test_right_password_connects(self):
        for version in h.VERSIONS:
            with self.subTest(version=version):
                cid = self.uid()
                c = self.paho(version, client_id=cid, username="dave", password="d4ve-pw")
                # not a token check: the ACL of the bridge's tokens does not apply
                topic = "anywhere/%s" % cid
                self.assertEqual(c.subscribe(topic, 1), [1])
                c.publish(topic, b"x", 1)
                self.assertEqual(c.get().payload, b"x")
                self.assertRegex(self.broker_log(), r" as %s \(.*u'dave'\)" % re.escape(cid))
                c.disconnect()

    def test_wrong_password_gets_the_brokers_refusal(self):
        for version, code in ((V311, 5), (V5, 0x87)):
            with self.subTest(version=version):
                c = self.paho(version, username="dave", password="wrong", expect_rc=code)
                c.wait_disconnected()
                # a token is not a broker password
                c = self.paho(version, username="dave", password=ALICE, expect_rc=code)
                c.wait_disconnected()
                c = self.paho(version, username="dave", password="d4ve-pw")
                c.disconnect()

    def test_max_subscriptions(self):
        for version, over in ((r.V311, 0x80), (r.V5, 0x97)):
            with self.subTest(version=version):
                base = "q/%s/" % self.uid()
                conn = self.raw(version, username="dave", password="d4ve-pw")
                conn.send(r.subscribe(1, [(base + c, 1) for c in "abcd"], version=version))
                self.assertEqual(conn.expect(r.SUBACK).codes, [1, 1, 1, over])

    def test_zz_no_password_in_log(self):
        log = self.bridge_log()
        self.assertNotIn("d4ve-pw", log)
        self.assertNotIn(ALICE, log)


if __name__ == "__main__":
    h.main()
