"""Shared sessions (mqtt_sessions "auto", issue 12): a clean, will-less session whose identity the
bridge vouches for is served from the bridge's hub, with no broker client of its own, and must be
indistinguishable from a broker session for its client.

Every class here runs the bridge in "auto" whatever MWB_SESSIONS says, and every client is one a
shared session serves (clean start, session expiry 0, no will, no username or password, or a
token with mqtt_credentials "bridge") unless the test says otherwise. Each behaviour that a broker
has too is checked against Mosquitto's own WebSocket listener (MWB_TARGET=mosquitto); where
Mosquitto 2.0.11 differs from MQTT 5 the test is @bridge_only and says how. Assertions are on the
packets as they arrived (rawws), byte for byte where the bytes are fixed.

Mosquitto 2.0.11 facts found here (beside those in README.md):
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
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5, PacketTypes, bridge_only  # noqa: E402

AUTO = {"mqtt_sessions": "auto"}


def auto(**extra):
    """A bridge config in mqtt_sessions "auto" with @extra keys."""
    return dict(extra, mqtt_sessions="auto")


class SharedCase(h.IntegrationCase):
    """The bridge in "auto"; its hub is up before the first test (a shared CONNECT while it is
    not is "server unavailable")."""
    bridge_config = AUTO

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if h.TARGET == "bridge" and cls.with_broker:
            h.ApiCase.wait_hub(cls.stack.bridge.port)

    # raw clients --------------------------------------------------------------------------

    def v5(self, client_id=None, **kw):
        return self.raw(r.V5, client_id, **kw)

    def v311(self, client_id=None, **kw):
        return self.raw(r.V311, client_id, **kw)

    def sub(self, conn, filters, pid=1, props=None):
        """SUBSCRIBE @filters ([(filter, options)] or one filter at QoS 1); the SUBACK's codes."""
        if isinstance(filters, str):
            filters = [(filters, 1)]
        conn.send(r.subscribe(pid, filters, props=props, version=conn.version))
        ack = conn.expect(r.SUBACK)
        self.assertEqual(ack.pid, pid, repr(ack))
        return ack.codes

    def unsub(self, conn, filters, pid=2):
        conn.send(r.unsubscribe(pid, filters, version=conn.version))
        ack = conn.expect(r.UNSUBACK)
        self.assertEqual(ack.pid, pid, repr(ack))
        return ack.codes

    def handle(self, conn, p, out):
        """Acknowledges one received packet as a client would: PUBLISH QoS 1 PUBACK, QoS 2
        PUBREC, PUBREL PUBCOMP. PUBLISHes go to @out, PUBACK / PUBCOMP (of the client's own
        publishes) to conn.acks; anything else fails."""
        if p.type == r.PUBLISH:
            out.append(p)
            if p.qos == 1:
                conn.send(r.puback(p.pid, version=conn.version))
            elif p.qos == 2:
                conn.send(r.pubrec(p.pid, version=conn.version))
        elif p.type == r.PUBREL:
            conn.send(r.pubcomp(p.pid, version=conn.version))
        elif p.type in (r.PUBACK, r.PUBCOMP):
            conn.__dict__.setdefault("acks", []).append(p)
        else:
            self.fail("unexpected %r" % p)

    def collect(self, conn, n, timeout=h.TIMEOUT):
        """The next @n PUBLISHes (acknowledged, QoS 2 flows completed as they come)."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            try:
                p = conn.recv(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.fail("%d of %d PUBLISHes within %.1fs: %r" % (len(out), n, timeout, out))
            self.handle(conn, p, out)
        return out

    def settle(self, conn, within=h.QUIET):
        """Every PUBLISH that arrives within @within, each acknowledged as it comes; [] when
        none."""
        deadline = time.monotonic() + within
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                p = conn.recv(left)
            except TimeoutError:
                return out
            self.handle(conn, p, out)

    def assert_quiet(self, conns, within=h.QUIET):
        """None of @conns receives a PUBLISH within @within (watched together; a PUBREL of a
        QoS 2 delivery is answered)."""
        deadline = time.monotonic() + within
        for i, conn in enumerate(conns):
            got = self.settle(conn, max(0.0, deadline - time.monotonic()))
            self.assertEqual(got, [], "unexpected PUBLISH to client %d" % i)

    def metrics(self, port=None):
        resp = h.http_request(port or self.stack.bridge.port, "GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        return resp.body.decode()


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


# ---------------------------------------------------------------------------------------------
# delivery to browsers


class DeliveryTest(SharedCase):

    @h.broker_needs("qos2", "a browser at QoS 2 gets a QoS 2 message at QoS 2")
    def test_qos_downgraded_per_browser(self):
        # three browsers on one filter, subscribed at QoS 0, then 1, then 2 (the upstream QoS
        # rises twice), each gets min(message QoS, its own), byte for byte
        obs = self.observer()
        topic = self.topic()
        conns = [self.v5(), self.v5(), self.v311()]
        for qos, conn in enumerate(conns):
            self.assertEqual(self.sub(conn, [(topic, qos)]), [qos])
        for mqos in (0, 1, 2):
            obs.publish(topic, b"m%d" % mqos, mqos)
        for sqos, conn in enumerate(conns):
            got = self.collect(conn, 3)
            self.assertEqual(sorted((p.payload, p.qos) for p in got),
                             [(b"m%d" % m, min(m, sqos)) for m in (0, 1, 2)], "QoS %d" % sqos)
            for p in got:
                self.assertFalse(p.dup or p.retain, repr(p))
                self.assertEqual(p.raw, r.publish(topic, p.payload, qos=p.qos, pid=p.pid,
                                                  version=conn.version))
        self.assert_quiet(conns, 0.3)

    def test_no_local_per_browser(self):
        obs = self.observer()
        topic = self.topic()
        a, b = self.v5(), self.v5()
        self.assertEqual(self.sub(a, [(topic, r.sub_options(qos=1, no_local=True))]), [1])
        self.assertEqual(self.sub(b, [(topic, 1)]), [1])
        a.send(r.publish(topic, b"from a", qos=1, pid=7, version=r.V5))
        self.assertEqual(a.expect(r.PUBACK).pid, 7)
        got = self.collect(b, 1)
        # what b gets is what a sent: nothing added for a's sake
        self.assertEqual(got[0].raw, r.publish(topic, b"from a", qos=1, pid=got[0].pid,
                                               version=r.V5))
        b.send(r.publish(topic, b"from b", version=r.V5))
        obs.publish(topic, b"from tcp", 1)
        self.assertEqual(sorted(p.payload for p in self.collect(b, 2)), [b"from b", b"from tcp"])
        got = self.collect(a, 2)
        self.assertEqual(sorted(p.payload for p in got), [b"from b", b"from tcp"])
        for p in got:
            self.assertEqual(p.props, [])
        self.assert_quiet([a, b], 0.3)

    def test_subscription_identifiers_per_browser(self):
        obs = self.observer()
        base = self.topic("sid")
        a, b, c, d = self.v5(), self.v5(), self.v5(), self.v5()
        self.sub(a, base + "/x", props=[(r.SUBSCRIPTION_IDENTIFIER, 5)])
        self.sub(b, base + "/x", props=[(r.SUBSCRIPTION_IDENTIFIER, 9)])
        self.sub(c, base + "/x")
        self.sub(d, base + "/+", props=[(r.SUBSCRIPTION_IDENTIFIER, 268435455)])
        obs.publish(base + "/x", b"x", 1)
        for conn, ids in ((a, [5]), (b, [9]), (c, []), (d, [268435455])):
            p = self.collect(conn, 1)[0]
            self.assertEqual(p.props_all(r.SUBSCRIPTION_IDENTIFIER), ids)
            self.assertEqual(p.raw, r.publish(base + "/x", b"x", qos=1, pid=p.pid, version=r.V5,
                                              props=[(r.SUBSCRIPTION_IDENTIFIER, i)
                                                     for i in ids]))
        self.assert_quiet([a, b, c, d], 0.3)

    @bridge_only("Mosquitto 2.0.11 sends a v5 client one copy per matching subscription, each "
                 "with its own identifier and QoS (here QoS 1 with [2], then QoS 0 with [1])")
    def test_overlapping_subscriptions_v5_one_copy_all_ids(self):
        obs = self.observer()
        base = self.topic("ov")
        a = self.v5()
        self.sub(a, [(base + "/a/#", 0)], props=[(r.SUBSCRIPTION_IDENTIFIER, 1)])
        self.sub(a, [(base + "/a/b", 1)], pid=2, props=[(r.SUBSCRIPTION_IDENTIFIER, 2)])
        obs.publish(base + "/a/b", b"both", 2)
        obs.publish(base + "/a/c", b"one", 2)
        got = self.collect(a, 2)
        self.assertEqual([(p.payload, p.qos) for p in got], [(b"both", 1), (b"one", 0)])
        self.assertEqual(sorted(got[0].props_all(r.SUBSCRIPTION_IDENTIFIER)), [1, 2])
        self.assertEqual(got[1].props_all(r.SUBSCRIPTION_IDENTIFIER), [1])
        self.assertEqual(self.settle(a), [])

    def test_overlapping_subscriptions_311_one_copy(self):
        obs = self.observer()
        base = self.topic("ov3")
        a = self.v311()
        self.assertEqual(self.sub(a, [(base + "/a/#", 0), (base + "/a/b", 1)]), [0, 1])
        obs.publish(base + "/a/b", b"both", 2)
        got = self.collect(a, 1)
        self.assertEqual((got[0].payload, got[0].qos), (b"both", 1))
        self.assertEqual(self.settle(a), [])

    @h.broker_needs("shared_subscriptions", "the hub subscribes $share/G/F at the broker")
    def test_share_group_each_message_to_one_member(self):
        obs = self.observer()
        topic = self.topic()
        group = "$share/g%d/%s" % (os.getpid(), topic)
        a, b, plain = self.v5(), self.v311(), self.v5()
        self.assertEqual(self.sub(a, [(group, 1)]), [1])
        self.assertEqual(self.sub(b, [(group, 1)]), [1])
        self.assertEqual(self.sub(plain, topic), [1])
        payloads = [b"%02d" % i for i in range(30)]
        for p in payloads:
            obs.publish(topic, p, 1)
        self.assertEqual([p.payload for p in self.collect(plain, 30)], payloads)
        got_a, got_b = self.settle(a, 0.5), self.settle(b, 0.2)
        members = [p.payload for p in got_a + got_b]
        self.assertEqual(sorted(members), payloads, "lost or duplicated in the group")
        for p in got_a + got_b:
            self.assertEqual((p.topic, p.qos, p.retain), (topic, 1, False))
        # each member's share comes in order
        for got in (got_a, got_b):
            self.assertEqual([p.payload for p in got], sorted(p.payload for p in got))

    def test_maximum_packet_size_per_browser(self):
        obs = self.observer()
        topic = self.topic()
        small = self.v5(props=[(r.MAXIMUM_PACKET_SIZE, 200)])
        big = self.v5()
        for conn in (small, big):
            self.sub(conn, topic)
        large = os.urandom(1000)
        obs.publish(topic, large, 1)
        obs.publish(topic, b"small", 1)
        self.assertEqual([p.payload for p in self.collect(big, 2)], [large, b"small"])
        got = self.collect(small, 1)
        self.assertEqual([p.payload for p in got], [b"small"])
        self.assertEqual(self.settle(small, 0.3), [])

    def test_topic_aliases_to_a_browser_resolve(self):
        # the server may use topic aliases up to the browser's Topic Alias Maximum (2): every
        # PUBLISH names its topic, directly or by an alias set before, and no alias exceeds 2
        obs = self.observer()
        base = self.topic("al")
        conn = self.v5(props=[(r.TOPIC_ALIAS_MAXIMUM, 2)])
        self.sub(conn, base + "/#")
        order = ["a", "b", "a", "c", "a", "b", "c", "c"]
        for i, leaf in enumerate(order):
            obs.publish("%s/%s" % (base, leaf), b"%d" % i, 1)
        aliases, topics = {}, []
        for p in self.collect(conn, len(order)):
            alias = p.prop(r.TOPIC_ALIAS)
            if alias is not None:
                self.assertTrue(1 <= alias <= 2, repr(p))
                if p.topic:
                    aliases[alias] = p.topic
                else:
                    self.assertIn(alias, aliases, "an alias never set: %r" % p)
            else:
                self.assertTrue(p.topic, repr(p))
            topics.append((p.topic or aliases[alias], p.payload))
        self.assertEqual(topics, [("%s/%s" % (base, leaf), b"%d" % i)
                                  for i, leaf in enumerate(order)])


class RetainedTest(SharedCase):

    def retained(self, obs, topic, payload):
        obs.publish(topic, payload, 1, retain=True)
        self.addCleanup(obs.publish, topic, b"", 1, retain=True)

    def test_retain_handling_per_browser(self):
        obs = self.observer()
        topic = self.topic()
        self.retained(obs, topic, b"kept")
        x, y, z = self.v5(), self.v5(), self.v5()

        def expect_retained(conn, qos=1):
            got = self.collect(conn, 1)
            self.assertEqual((got[0].payload, got[0].retain, got[0].qos), (b"kept", True, qos))
            self.assertEqual(got[0].raw, r.publish(topic, b"kept", qos=qos, pid=got[0].pid,
                                                   retain=True, version=r.V5))

        self.sub(x, [(topic, r.sub_options(qos=1, retain_handling=0))])
        expect_retained(x)
        # y: 2 sends nothing; 1 on an existing subscription nothing; 0 again the retained one
        self.sub(y, [(topic, r.sub_options(qos=1, retain_handling=2))])
        self.sub(y, [(topic, r.sub_options(qos=1, retain_handling=1))], pid=2)
        self.assertEqual(self.settle(y), [])
        self.sub(y, [(topic, r.sub_options(qos=1, retain_handling=0))], pid=3)
        expect_retained(y)
        # z: 1 on a new subscription sends it, at z's own (lower) QoS
        self.sub(z, [(topic, r.sub_options(qos=0, retain_handling=1))])
        expect_retained(z, qos=0)
        self.sub(z, [(topic, r.sub_options(qos=0, retain_handling=1))], pid=2)
        # none of this reached anyone else
        self.assert_quiet([x, y, z])
        # a live message: once to each, retain 0
        obs.publish(topic, b"live", 1)
        for conn in (x, y, z):
            got = self.collect(conn, 1)
            self.assertEqual((got[0].payload, got[0].retain), (b"live", False))

    def test_retained_only_to_the_subscriber_when_upstream_qos_rises(self):
        obs = self.observer()
        topic = self.topic()
        self.retained(obs, topic, b"kept")
        low, high, old = self.v5(), self.v5(), self.v311()
        self.sub(low, [(topic, 0)])
        self.assertEqual([(p.payload, p.qos, p.retain) for p in self.collect(low, 1)],
                         [(b"kept", 0, True)])
        self.sub(high, [(topic, 2)])
        self.assertEqual([(p.payload, p.qos, p.retain) for p in self.collect(high, 1)],
                         [(b"kept", 1, True)])
        self.sub(old, [(topic, 1)])        # 3.1.1: always the retained messages
        self.assertEqual([(p.payload, p.qos, p.retain) for p in self.collect(old, 1)],
                         [(b"kept", 1, True)])
        self.assert_quiet([low, high, old])

    def test_retained_before_live(self):
        # a TCP client publishes a retained counter every few milliseconds; a browser that
        # subscribes gets the retained value first (RETAIN 1), then live ones (RETAIN 0) that
        # are newer, never an older value after a newer one; for a filter new to the bridge and
        # for one another browser holds already
        obs = self.observer()
        topic = self.topic()
        stop = threading.Event()

        def publish():
            i = 1
            while not stop.is_set():
                obs.c.publish(topic, b"%06d" % i, 0, retain=True)
                i += 1
                stop.wait(0.004)
        obs.publish(topic, b"%06d" % 0, 1, retain=True)    # a retained value exists
        self.addCleanup(obs.publish, topic, b"", 1, retain=True)
        t = threading.Thread(target=publish, daemon=True)
        t.start()
        self.addCleanup(t.join, 2)
        self.addCleanup(stop.set)
        for round_ in ("new filter", "held by another"):
            with self.subTest(round_):
                conn = self.raw(r.V5 if round_ == "new filter" else r.V311)
                self.sub(conn, [(topic, 0)])
                got = []
                deadline = time.monotonic() + 0.4
                while time.monotonic() < deadline:
                    try:
                        got.append(conn.recv(max(0.0, deadline - time.monotonic())))
                    except TimeoutError:
                        break
                self.assertGreater(len(got), 5, "live messages did not flow")
                seen = [(p.payload.decode(), int(p.retain)) for p in got]
                self.assertTrue(got[0].retain, "the first was not the retained one: (value, "
                                "RETAIN) %r...; RETAIN 1 at %r of %d" % (
                                    seen[:4], [i for i, x in enumerate(seen) if x[1]], len(seen)))
                self.assertEqual([p.retain for p in got[1:]], [False] * (len(got) - 1),
                                 "RETAIN 1 after the first")
                values = [int(p.payload) for p in got]
                if h.broker_lacks("mqtt5") and values[1:2] == values[:1]:
                    # over 3.1.1 a live message does not say it was published retained: the
                    # newest value can come twice, as the retained one and live (README, Brokers)
                    values = values[1:]
                self.assertEqual(values, sorted(set(values)), "an older value after a newer one")
                # (the first browser stays subscribed: the filter is held in the second round)
        stop.set()

    @h.broker_needs("retained_wildcards", "browsers on a '+' filter get its retained values")
    def test_many_browsers_at_once_each_get_their_own_retained(self):
        # browsers subscribe at the same moment to filters new to the bridge: their retained
        # reads share markers and UNSUBSCRIBEs, and each still gets exactly the retained values
        # of its own filter, RETAIN 1, byte for byte, and nothing else
        base = self.topic("burst")
        n = 120
        obs = self.observer()
        topics = ["%s/%d/v" % (base, k) for k in range(n)]
        for k, topic in enumerate(topics):
            obs.publish(topic, b"kept %d" % k, 1, retain=True)
            self.addCleanup(obs.publish, topic, b"", 1, retain=True)
        wildcard = base + "/+/v"
        conns = []
        for i in range(n):
            version = r.V5 if i % 2 else r.V311
            conn = r.MQTTConn(self.ws(), version)
            conn.send(r.connect("", version=version) +
                      r.subscribe(1, [(wildcard if i % 20 == 0 else topics[i], 1)],
                                  version=version))
            conns.append(conn)
        for i, conn in enumerate(conns):
            self.assertEqual(conn.expect(r.CONNACK).rc, 0, "browser %d" % i)
            self.assertEqual(conn.expect(r.SUBACK).codes, [1], "browser %d" % i)
        for i, conn in enumerate(conns):
            want = list(range(n)) if i % 20 == 0 else [i]
            got = sorted(self.collect(conn, len(want)), key=lambda p: p.topic)
            self.assertEqual([(p.topic, p.payload, p.retain) for p in got],
                             sorted((topics[k], b"kept %d" % k, True) for k in want),
                             "browser %d" % i)
            if i % 20:
                self.assertEqual(got[0].raw, r.publish(topics[i], b"kept %d" % i, qos=1,
                                                       pid=got[0].pid, retain=True,
                                                       version=conn.version))
        self.assert_quiet(conns)

    @h.broker_needs("mqtt5", "the hub's subscription is retain-as-published at the broker (a "
                    "3.1.1 broker sends RETAIN 0 to a subscription that exists)")
    def test_retain_as_published_per_browser(self):
        obs = self.observer()
        topic = self.topic()
        rap, plain, old = self.v5(), self.v5(), self.v311()
        self.sub(rap, [(topic, r.sub_options(qos=1, retain_as_published=True,
                                             retain_handling=2))])
        self.sub(plain, [(topic, r.sub_options(qos=1, retain_handling=2))])
        self.sub(old, [(topic, 1)])
        # "old" gets live messages once its retained read is over (a retained value published
        # during the read would come as the retained one): a live message it gets says so
        obs.publish(topic, b"s", 1)
        self.addCleanup(obs.publish, topic, b"", 1, retain=True)
        obs.publish(topic, b"r", 1, retain=True)
        obs.publish(topic, b"n", 1)
        for conn, flags in ((rap, [False, True, False]), (plain, [False, False, False]),
                            (old, [False, False, False])):
            got = self.collect(conn, 3)
            self.assertEqual([(p.payload, p.retain) for p in got],
                             list(zip([b"s", b"r", b"n"], flags)))

    @bridge_only("Mosquitto 2.0.11 sends retained messages to a new $share subscription, which "
                 "MQTT 5.0 (4.8.2) forbids")
    @h.broker_needs("shared_subscriptions", "the hub subscribes $share/G/F at the broker")
    def test_shared_subscription_gets_no_retained(self):
        obs = self.observer()
        topic = self.topic()
        self.retained(obs, topic, b"kept")
        member, plain = self.v5(), self.v311()
        self.assertEqual(self.sub(member, [("$share/g/" + topic, 1)]), [1])
        self.assertEqual(self.settle(member), [])
        self.sub(plain, topic)
        self.assertEqual([(p.payload, p.retain) for p in self.collect(plain, 1)],
                         [(b"kept", True)])
        obs.publish(topic, b"live", 1)
        for conn in (member, plain):
            self.assertEqual([(p.payload, p.retain) for p in self.collect(conn, 1)],
                             [(b"live", False)])
        self.assertEqual(self.settle(member, 0.2), [])


@h.broker_needs("mosquitto", "Mosquitto's $SYS topics")
class DollarTest(SharedCase):
    """Wildcards never match topics starting with $: a browser on # sees none of the $SYS
    messages that another browser on $SYS/# gets through the same bridge. (Clients cannot
    publish to $ topics at Mosquitto; its $SYS tree is published every second here.)"""
    mosquitto_conf = "sys_interval 1"

    def test_wildcards_never_match_dollar_topics(self):
        every, sys_ = self.v311(), self.v5()
        self.assertEqual(self.sub(every, [("#", 0), ("+/broker/uptime", 0)]), [0, 0])
        self.assertEqual(self.sub(sys_, [("$SYS/broker/uptime", 0)]), [0])
        # the $SYS message is there (retained, or within the 1 s interval)
        p = sys_.expect(r.PUBLISH, timeout=3)
        self.assertEqual(p.topic, "$SYS/broker/uptime")
        obs = self.observer()
        obs.publish("x/broker/uptime", b"not $", 0)
        # past the next $SYS interval: only the one message (the bridge's own marker and reply
        # topics never reach browsers either)
        got = [p.topic for p in self.settle(every, 1.5)]
        self.assertEqual([t for t in got if t.startswith("$")], [], "a wildcard matched $")
        self.assertEqual(got, ["x/broker/uptime"])


@h.broker_needs("mqtt5", "the observer publishes with a v5 message expiry interval")
class ExpiryTest(SharedCase):
    """Message expiry counts down while a message waits for a browser at its Receive
    Maximum (1), and an expired one is never sent."""

    def waiting(self, *messages):
        obs = self.observer()
        topic = self.topic()
        conn = self.v5(props=[(r.RECEIVE_MAXIMUM, 1)])
        self.sub(conn, topic)
        obs.publish(topic, b"m0", 1)
        for payload, expiry in messages:
            obs.publish(topic, payload, 1, properties=None if expiry is None else
                        h.props(PacketTypes.PUBLISH, MessageExpiryInterval=expiry))
        first = conn.expect(r.PUBLISH)
        self.assertEqual(first.payload, b"m0")
        time.sleep(2.2)               # the waiting messages age (not a synchronisation)
        conn.send(r.puback(first.pid, version=r.V5))
        return conn

    def test_expiry_counts_down_while_waiting(self):
        conn = self.waiting((b"m1", 60), (b"m2", None))
        got = self.collect(conn, 2)
        self.assertEqual([p.payload for p in got], [b"m1", b"m2"])
        left = got[0].prop(r.MESSAGE_EXPIRY_INTERVAL)
        self.assertTrue(55 <= left <= 58, "expiry %r after waiting 2.2 s" % left)
        self.assertIsNone(got[1].prop(r.MESSAGE_EXPIRY_INTERVAL))

    def test_expired_while_waiting_is_dropped(self):
        conn = self.waiting((b"m1", 1), (b"m2", 60), (b"m3", None))
        got = self.settle(conn, 1.0)
        self.assertNotIn(b"m1", [p.payload for p in got], "an expired message was sent")
        if h.TARGET == "bridge":
            # Mosquitto 2.0.11 stops there: what was queued after the expired message waits
            # until something else moves its queue (see the module's docstring)
            self.assertEqual([p.payload for p in got], [b"m2", b"m3"])
            self.assertTrue(55 <= got[0].prop(r.MESSAGE_EXPIRY_INTERVAL) <= 58, repr(got[0]))


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
