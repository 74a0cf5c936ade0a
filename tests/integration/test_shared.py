"""Shared sessions (mqtt_sessions "auto", issue 12): a clean, will-less session whose identity the
bridge vouches for is served from the bridge's hub, with no broker client of its own, and must be
indistinguishable from a broker session for its client.

Every class of test_shared*.py runs the bridge in "auto" whatever MWB_SESSIONS says, and every
client is one a shared session serves (clean start, session expiry 0, no will, no username or
password, or a token with mqtt_credentials "bridge") unless the test says otherwise. Each behaviour
that a broker has too is checked against Mosquitto's own WebSocket listener (MWB_TARGET=mosquitto);
where Mosquitto 2.0.11 differs from MQTT 5 the test is @bridge_only and says how. Assertions are on
the packets as they arrived (rawws), byte for byte where the bytes are fixed.

Mosquitto 2.0.11 facts found by test_shared*.py (beside those in README.md):
- Its acl_file never refuses a SUBSCRIBE (it grants it and filters at delivery); its dynamic
  security plugin does (3.1.1 0x80, v5 0x87), so RefusalTest runs Mosquitto with that plugin.
- It sends retained messages to a new shared subscription ($share/G/F), which MQTT 5.0 (4.8.2)
  says it must not; the bridge does not.
- A v5 client with overlapping subscriptions that carry subscription identifiers gets one copy
  per subscription (each with its own identifier and QoS); a 3.1.1 client gets one copy at the
  highest QoS. The bridge sends one copy at the highest QoS with all the identifiers (MQTT 5.0
  3.3.4 allows both).
- When the next queued message of a client at its Receive Maximum has expired, it is dropped,
  and the messages queued after it are not sent until something else moves the queue.
- A DISCONNECT with a Session Expiry Interval > 0 after a CONNECT with 0 is answered with
  DISCONNECT 0x82.
"""

import glob
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import bridge_only  # noqa: E402
from shared_util import AUTO, SharedCase, auto  # noqa: E402


# ---------------------------------------------------------------------------------------------
# CONNECT


class ConnackTest(SharedCase):
    """CONNACK of a shared session: at once, session present 0, the properties a broker sends."""
    bridge_config = auto(limits={"max_packet_bytes": 300000})

    def test_connack_311(self):
        for cid in (None, ""):
            with self.subTest(client_id=cid):
                conn = self.v311(cid)
                self.assertEqual(conn.connack.raw, b"\x20\x02\x00\x00")
                conn.send(r.pingreq())
                self.assertEqual(conn.expect(r.PINGRESP).raw, b"\xd0\x00")

    def test_connack_v5_empty_id_gets_an_assigned_id(self):
        a, b = self.v5(""), self.v5("")
        ids = []
        for conn in (a, b):
            ack = conn.connack
            self.assertEqual((ack.rc, ack.session_present), (0, False), repr(ack))
            assigned = ack.prop(r.ASSIGNED_CLIENT_IDENTIFIER)
            self.assertTrue(assigned, "no Assigned Client Identifier in %r" % ack)
            ids.append(assigned)
        self.assertNotEqual(ids[0], ids[1])
        # two sessions, neither took the other over; each gets its own messages
        topic = self.topic()
        self.assertEqual(self.sub(a, topic), [1])
        b.send(r.publish(topic, b"from b", qos=1, pid=5, version=r.V5))
        self.assertEqual(b.expect(r.PUBACK).pid, 5)
        self.assertEqual([p.payload for p in self.collect(a, 1)], [b"from b"])
        b.send(r.pingreq())
        b.expect(r.PINGRESP)

    def test_connack_v5_properties(self):
        # what Mosquitto 2.0.11 sends ([(34, 10), (33, 20)]) and what a shared session must:
        # no property twice, and only values a client can act on
        conn = self.v5()
        ack = conn.connack
        self.assertEqual((ack.rc, ack.session_present), (0, False), repr(ack))
        ids = [k for k, _ in ack.props]
        self.assertEqual(len(ids), len(set(ids)), "a property twice: %r" % ack)
        self.assertIsNone(ack.prop(r.ASSIGNED_CLIENT_IDENTIFIER), repr(ack))
        self.assertGreaterEqual(ack.prop(r.TOPIC_ALIAS_MAXIMUM, 0), 1, repr(ack))
        self.assertTrue(1 <= ack.prop(r.RECEIVE_MAXIMUM, 65535) <= 65535, repr(ack))
        self.assertIn(ack.prop(r.MAXIMUM_QOS), (None, 0, 1), repr(ack))
        for pid in (r.RETAIN_AVAILABLE, r.WILDCARD_SUBSCRIPTION_AVAILABLE,
                    r.SUBSCRIPTION_IDENTIFIER_AVAILABLE, r.SHARED_SUBSCRIPTION_AVAILABLE):
            self.assertIn(ack.prop(pid), (None, 1), "0x%02x in %r" % (pid, ack))
        self.assertIsNone(ack.prop(r.SERVER_KEEP_ALIVE), repr(ack))   # no max_keepalive here
        # session present stays 0 for a clean start, also for a client id used before
        cid = self.uid()
        for _ in range(2):
            again = self.v5(cid)
            self.assertFalse(again.connack.session_present)
            again.send(r.disconnect(version=r.V5))
            again.wait_closed()

    @bridge_only("the bridge's own limits in the CONNACK, and its log of the session mode")
    def test_connack_v5_bridge_limits_same_in_both_modes(self):
        shared = self.v5()
        dedicated = self.v5(will=self.dedicated_will())
        for conn in (shared, dedicated):
            self.assertEqual(conn.connack.prop(r.MAXIMUM_PACKET_SIZE), 300000, repr(conn.connack))
        self.assertEqual(shared.connack.prop(r.TOPIC_ALIAS_MAXIMUM),
                         dedicated.connack.prop(r.TOPIC_ALIAS_MAXIMUM))
        self.assertEqual(shared.connack.prop(r.RECEIVE_MAXIMUM, 65535),
                         dedicated.connack.prop(r.RECEIVE_MAXIMUM, 65535))
        with open(self.stack.bridge.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace").splitlines()
        for conn, mode in ((shared, "shared"), (dedicated, "dedicated")):
            lines = [line for line in log if "client_id=%s " % conn.client_id in line]
            self.assertTrue([line for line in lines if " mode=%s" % mode in line],
                            "no log line says mode=%s:\n%s" % (mode, "\n".join(lines)))


@bridge_only("the bridge's link to the broker")
class BrokerDownTest(SharedCase):
    with_broker = False

    def test_connect_while_the_broker_is_down(self):
        conn = self.v311(expect_rc=None)
        self.assertEqual([p.raw for p in conn.wait_closed(10)], [b"\x20\x02\x00\x03"])
        conn = self.v5(expect_rc=None)
        self.assertEqual([(p.type, p.rc) for p in conn.wait_closed(10)], [(r.CONNACK, 0x88)])


@bridge_only("the bridge's link to the broker")
class BrokerStopTest(SharedCase):
    """A fresh stack: Mosquitto is stopped (by its PID) and started again on its ports."""

    @classmethod
    def setUpClass(cls):
        pass

    def setUp(self):
        type(self).stack = h.Stack(bridge_config=AUTO)
        self.addCleanup(self.stack.cleanup)
        h.ApiCase.wait_hub(self.stack.bridge.port)

    def test_broker_stop_closes_shared_sessions(self):
        # v5: DISCONNECT 0x89 "server busy" (0x88 "server unavailable" is a CONNACK code only,
        # MQTT 5.0 3.14.2.1), so that clients reconnect; CONNACK 0x88 while it is down
        topic = self.topic()
        v5 = self.v5()
        self.assertEqual(self.sub(v5, topic), [1])
        v5b = self.v5()
        v311 = self.v311()
        self.stack.broker.stop()
        for conn in (v5, v5b):
            disc = self.assert_closed(conn, timeout=10, v5_disconnect=True)
            self.assertEqual(disc.rc, 0x89, repr(conn.close_packets))
        self.assert_closed(v311, timeout=10)
        self.assertEqual(v311.close_packets, [])
        # while it is down: server unavailable
        conn = self.v5(expect_rc=None)
        self.assertEqual([(p.type, p.rc) for p in conn.wait_closed(10)], [(r.CONNACK, 0x88)])
        # started again: new shared sessions subscribe and receive
        self.stack.broker.start()
        deadline = time.monotonic() + 15
        while True:
            conn = self.v5(expect_rc=None)
            ack = conn.expect(r.CONNACK)
            if ack.rc == 0:
                break
            self.assertEqual(ack.rc, 0x88)
            self.assertLess(time.monotonic(), deadline, "no CONNACK 0 within 15 s of the restart")
            conn.close()
            time.sleep(0.2)
        self.assertEqual(self.sub(conn, topic), [1])
        obs = self.observer()
        obs.publish(topic, b"back", 1)
        self.assertEqual([p.payload for p in self.collect(conn, 1)], [b"back"])


# ---------------------------------------------------------------------------------------------
# SUBSCRIBE


class SubscribeTest(SharedCase):

    def test_publish_right_after_suback_is_never_missed(self):
        # SUBACK waits for the broker's subscription: a message published by a TCP client the
        # moment the SUBACK is in is delivered, for a filter new to the bridge and for one it has
        obs = self.observer()
        first, second = self.v5(), self.v311()
        for i in range(20):
            base = self.topic("r%d" % i)
            filt = (base, base + "/+", base + "/#")[i % 3]
            topic = base if i % 3 == 0 else base + "/x"
            self.assertEqual(self.sub(first, [(filt, 1)], pid=i + 1), [1])
            obs.publish(topic, b"a%d" % i, 0)
            got = self.collect(first, 1)
            self.assertEqual((got[0].topic, got[0].payload), (topic, b"a%d" % i), "round %d" % i)
            self.assertEqual(self.sub(second, [(filt, 1)], pid=i + 1), [1])
            obs.publish(topic, b"b%d" % i, 0)
            for conn in (first, second):
                got = self.collect(conn, 1)
                self.assertEqual((got[0].topic, got[0].payload), (topic, b"b%d" % i))
        self.assert_quiet([first, second], 0.2)

    def test_unsubscribe_by_one_browser_keeps_the_others(self):
        obs = self.observer()
        topic = self.topic()
        a, b = self.v5(), self.v311()
        for conn in (a, b):
            self.assertEqual(self.sub(conn, topic), [1])
        self.assertEqual(self.unsub(a, [topic]), [0x00])
        obs.publish(topic, b"for b", 1)
        self.assertEqual([p.payload for p in self.collect(b, 1)], [b"for b"])
        self.assertEqual(self.settle(a), [])
        # the last one leaves; subscribing again works at once
        self.unsub(b, [topic])
        self.assertEqual(self.sub(a, topic, pid=3), [1])
        obs.publish(topic, b"again", 1)
        self.assertEqual([p.payload for p in self.collect(a, 1)], [b"again"])
        self.assertEqual(self.settle(b, 0.2), [])


def _dynsec_plugin():
    found = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")
    if not found:
        raise AssertionError("Mosquitto's dynamic security plugin is missing "
                             "(mosquitto_dynamic_security.so; Debian's mosquitto has it)")
    return found[0]


@h.broker_needs("mosquitto", "Mosquitto's dynamic security plugin refuses")
class RefusalTest(SharedCase):
    """The broker refuses: Mosquitto with its dynamic security plugin, where every client (the
    bridge's links too) is anonymous and may subscribe to mwbtest/# and ro/# and the bridge's own
    topics, and publish to mwbtest/# and the bridge's own topics only. The broker's codes reach
    the browser (SUBACK 0x80 / 0x87, PUBACK / PUBREC 0x87), only after the broker answered."""

    ROLE = [
        {"acltype": "subscribePattern", "topic": "mwbtest/#", "allow": True},
        {"acltype": "subscribePattern", "topic": "ro/#", "allow": True},
        {"acltype": "subscribePattern", "topic": "mqtt-web-bridge/#", "allow": True},
        {"acltype": "publishClientSend", "topic": "mwbtest/#", "allow": True},
        {"acltype": "publishClientSend", "topic": "mqtt-web-bridge/#", "allow": True},
    ]

    @classmethod
    def setUpClass(cls):
        d = h.make_dir("mwb-dynsec-")
        os.chmod(d, 0o755)
        cls.addClassCleanup(h.remove_dir, d)
        path = os.path.join(d, "dynamic-security.json")
        with open(path, "w") as f:
            json.dump({"defaultACLAccess": {"publishClientSend": False,
                                            "publishClientReceive": True,
                                            "subscribe": False, "unsubscribe": True},
                       "clients": [],
                       "groups": [{"groupname": "anonymous", "roles": [{"rolename": "web"}]}],
                       "roles": [{"rolename": "web", "acls": cls.ROLE}],
                       "anonymousGroup": "anonymous"}, f)
        os.chmod(path, 0o666)
        cls.mosquitto_conf = "plugin %s\nplugin_opt_config_file %s" % (_dynsec_plugin(), path)
        super().setUpClass()

    def test_subscribe_refused_by_the_broker(self):
        for version, no in ((r.V311, 0x80), (r.V5, 0x87)):
            with self.subTest(version=version):
                base = self.topic()
                secret = "secret/%s" % self.uid()
                filters = [(base, 1), (secret, 1), (secret + "/#", 0), (base + "/+", 2)]
                a = self.raw(version)
                self.assertEqual(self.sub(a, filters), [1, no, no, 2])
                # a second browser asking for the same refused filter is refused too (by the
                # broker again, not by a cached answer that says yes)
                b = self.raw(version)
                self.assertEqual(self.sub(b, [(secret, 2), (base, 0)]), [no, 0])
                obs = self.observer()
                obs.publish(base, b"allowed", 1)
                self.assertEqual([p.payload for p in self.collect(a, 1)], [b"allowed"])
                self.assertEqual([(p.payload, p.qos) for p in self.collect(b, 1)],
                                 [(b"allowed", 0)])

    def test_publish_refused_by_the_broker(self):
        obs = self.observer()
        denied = "ro/%s" % self.uid()
        obs.subscribe(denied, 2)
        allowed = self.topic()
        obs.subscribe(allowed, 2)
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                no = 0x87 if version == r.V5 else 0
                conn = self.raw(version)
                conn.send(r.publish(denied, b"q1", qos=1, pid=1, version=version))
                ack = conn.expect(r.PUBACK)
                self.assertEqual((ack.pid, ack.rc), (1, no))
                conn.send(r.publish(denied, b"q2", qos=2, pid=2, version=version))
                rec = conn.expect(r.PUBREC)
                self.assertEqual((rec.pid, rec.rc), (2, no))
                if version == r.V311:
                    conn.send(r.pubrel(2))
                    self.assertEqual(conn.expect(r.PUBCOMP).raw, b"\x70\x02\x00\x02")
                conn.send(r.publish(denied, b"q0", version=version))
                conn.send(r.publish(allowed, b"yes", qos=1, pid=3, version=version))
                ack = conn.expect(r.PUBACK)
                self.assertEqual((ack.pid, ack.rc), (3, 0))
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload), (allowed, b"yes"))
                obs.assert_no_message(0.2)


@h.broker_needs("qos2", "a QoS 2 flow at the broker (PUBREC after the broker's)")
class AckTest(SharedCase):
    """PUBACK / PUBREC reach a shared browser only after the broker answered: with Mosquitto
    stopped (SIGSTOP by its PID) nothing is acknowledged, and once it goes on, everything is,
    and each message reached the broker once."""

    def test_acks_wait_for_the_broker(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 2)
        conn = self.v5()
        pid = self.stack.broker.pid
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(os.kill, pid, signal.SIGCONT)
        conn.send(r.publish(topic, b"one", qos=1, pid=1, version=r.V5))
        conn.send(r.publish(topic, b"two", qos=2, pid=2, version=r.V5))
        self.assertEqual(conn.quiet_for(h.QUIET), [], "acknowledged while the broker stood still")
        os.kill(pid, signal.SIGCONT)
        acks = {p.type: p for p in (conn.recv(), conn.recv())}
        self.assertEqual(sorted(acks), [r.PUBACK, r.PUBREC])
        self.assertEqual((acks[r.PUBACK].pid, acks[r.PUBACK].rc), (1, 0))
        self.assertEqual((acks[r.PUBREC].pid, acks[r.PUBREC].rc), (2, 0))
        conn.send(r.pubrel(2, version=r.V5))
        self.assertEqual(conn.expect(r.PUBCOMP).pid, 2)
        got = sorted((m.payload, m.qos) for m in obs.get_n(2))
        self.assertEqual(got, [(b"one", 1), (b"two", 2)])
        obs.assert_no_message(0.2)


if __name__ == "__main__":
    h.main()
