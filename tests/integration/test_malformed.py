"""Malformed input from a raw client: each case must end that connection (v5: with a DISCONNECT
carrying a reason >= 0x80 wherever Mosquitto sends one) and must not harm the witnesses, two paho
clients that stay connected through the whole class and keep publishing and receiving.

MOSQ_DISCONNECT records what Mosquitto 2.0.11 sends to a v5 client before it closes (checked
against its own WebSocket listener): a reason code, or None when it just closes the connection.
Where it sends one, the bridge must send a DISCONNECT >= 0x80 too; where it does not, the bridge
may (>= 0x80) or may not.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V311, V5  # noqa: E402

BAD = "mwbbad"    # every bad PUBLISH aims below this prefix; the witnesses watch it

BOTH = (r.V311, r.V5)


def v5_props(version, props=None):
    return r.properties(props) if version == r.V5 else b""


# name: (versions, connect first, build(version) -> bytes sent, Mosquitto's v5 DISCONNECT)
CASES = {
    # fixed header
    "remaining_length_5_bytes": (BOTH, True, lambda v: b"\x30\xff\xff\xff\xff\x7f", None),
    "remaining_length_5_bytes_first_packet":
        (BOTH, False, lambda v: b"\x10\xff\xff\xff\xff\x7f", None),
    "remaining_length_shorter_than_topic":
        (BOTH, True, lambda v: r.packet(0x30, b"\x00\x10" + BAD.encode()), 0x81),
    "reserved_packet_type_0": (BOTH, True, lambda v: r.packet(0x00, b""), 0x82),
    "connack_from_client": (BOTH, True, lambda v: r.packet(0x20, b"\x00\x00"), None),
    "disconnect_reserved_flags": (BOTH, True, lambda v: r.packet(0xE1, b""), None),
    # PUBLISH
    "publish_invalid_utf8_topic":
        (BOTH, True, lambda v: r.publish(BAD.encode() + b"/\xff", b"x", version=v), 0x81),
    "publish_utf16_surrogate_topic":
        (BOTH, True, lambda v: r.publish(BAD.encode() + b"/\xed\xa0\x80", b"x", version=v), 0x81),
    "publish_nul_in_topic":
        (BOTH, True, lambda v: r.publish(BAD.encode() + b"/a\x00b", b"x", version=v), 0x81),
    "publish_topic_with_hash":
        (BOTH, True, lambda v: r.publish(BAD + "/#", b"x", version=v), 0x82),
    "publish_topic_with_plus":
        (BOTH, True, lambda v: r.publish(BAD + "/+/x", b"x", version=v), 0x82),
    "publish_empty_topic_without_alias":
        (BOTH, True, lambda v: r.publish("", b"x", version=v), 0x82),
    "publish_qos_3":
        (BOTH, True, lambda v: r.packet(0x36, r.mqtt_str(BAD + "/q3") + r.u16(1) +
                                        v5_props(v) + b"x"), 0x81),
    "publish_qos1_packet_id_0":
        (BOTH, True, lambda v: r.publish(BAD + "/pid0", b"x", qos=1, pid=0, version=v), 0x82),
    "publish_qos2_packet_id_0":
        (BOTH, True, lambda v: r.publish(BAD + "/pid0", b"x", qos=2, pid=0, version=v), 0x82),
    "pubrel_reserved_flags":
        (BOTH, True, lambda v: r.packet(0x60, r.u16(3)), None),
    # SUBSCRIBE / UNSUBSCRIBE
    "subscribe_packet_id_0":
        (BOTH, True, lambda v: r.subscribe(0, [(BAD + "/s", 0)], version=v), 0x81),
    "subscribe_reserved_flags":
        (BOTH, True, lambda v: r.subscribe(1, [(BAD + "/s", 0)], version=v, flags=0x0), 0x81),
    "subscribe_no_filters":
        (BOTH, True, lambda v: r.packet(0x82, r.u16(1) + v5_props(v)), 0x81),
    "subscribe_hash_not_last":
        (BOTH, True, lambda v: r.subscribe(1, [(BAD + "/#/x", 0)], version=v), 0x81),
    "subscribe_plus_inside_level":
        (BOTH, True, lambda v: r.subscribe(1, [(BAD + "/a+", 0)], version=v), 0x81),
    "subscribe_invalid_utf8_filter":
        (BOTH, True, lambda v: r.subscribe(1, [(BAD.encode() + b"/\xff", 0)], version=v), 0x81),
    "subscribe_empty_filter":
        (BOTH, True, lambda v: r.subscribe(1, [("", 0)], version=v), 0x81),
    "subscribe_qos_3": (BOTH, True, lambda v: r.subscribe(1, [(BAD, 3)], version=v), 0x81),
    "unsubscribe_packet_id_0":
        (BOTH, True, lambda v: r.unsubscribe(0, [BAD + "/s"], version=v), 0x81),
    "unsubscribe_reserved_flags":
        (BOTH, True, lambda v: r.unsubscribe(1, [BAD + "/s"], version=v, flags=0x0), 0x81),
    "unsubscribe_no_filters":
        (BOTH, True, lambda v: r.packet(0xA2, r.u16(1) + v5_props(v)), 0x81),
    "subscribe_311_option_bits": ((r.V311,), True,
                                  lambda v: r.subscribe(1, [(BAD, 0x04)], version=v), None),
    "subscribe_v5_retain_handling_3":
        ((r.V5,), True, lambda v: r.subscribe(1, [(BAD, 0x30)], version=v), 0x81),
    "subscribe_v5_reserved_option_bits":
        ((r.V5,), True, lambda v: r.subscribe(1, [(BAD, 0xC0)], version=v), 0x81),
    # connection order and CONNECT
    "first_packet_publish":
        (BOTH, False, lambda v: r.publish(BAD + "/first", b"x", version=v), None),
    "first_packet_pingreq": (BOTH, False, lambda v: r.pingreq(), None),
    "first_packet_subscribe":
        (BOTH, False, lambda v: r.subscribe(1, [(BAD, 0)], version=v), None),
    "second_connect":
        (BOTH, True, lambda v: r.connect("again", version=v), None),
    "connect_reserved_flag":
        (BOTH, False, lambda v: r.connect("rf", version=v, reserved_flag=True), None),
    "connect_bad_protocol_name":
        (BOTH, False, lambda v: r.connect("pn", version=v, protocol_name="MQTX"), None),
    "connect_invalid_utf8_client_id":
        (BOTH, False, lambda v: r.connect(b"id\xff", version=v), None),
    "connect_will_topic_wildcard":
        (BOTH, False, lambda v: r.connect("wt", version=v,
                                          will=dict(topic=BAD + "/#", payload=b"")), None),
    "connect_will_topic_invalid_utf8":
        (BOTH, False, lambda v: r.connect("wu", version=v,
                                          will=dict(topic=BAD.encode() + b"\xff", payload=b"")),
         None),
    "connect_will_qos_3":
        (BOTH, False, lambda v: r.connect("wq", version=v,
                                          will=dict(topic=BAD, payload=b"", qos=3)), None),
    "connect_will_qos_without_will_flag":
        (BOTH, False, lambda v: r.packet(0x10, r.mqtt_str("MQTT") + bytes([v, 0x0A]) +
                                         r.u16(60) + v5_props(v) + r.mqtt_str("wf")), None),
    "connect_311_password_without_username":
        ((r.V311,), False, lambda v: r.connect("pw", version=v, password="x"), None),
    # v5 properties
    "v5_duplicate_property_publish":
        ((r.V5,), True, lambda v: r.publish(BAD + "/dup", b"x", version=v,
                                            props=[(r.PAYLOAD_FORMAT_INDICATOR, 0),
                                                   (r.PAYLOAD_FORMAT_INDICATOR, 0)]), None),
    "v5_duplicate_property_connect":
        ((r.V5,), False, lambda v: r.connect("dc", version=v,
                                             props=[(r.SESSION_EXPIRY_INTERVAL, 10),
                                                    (r.SESSION_EXPIRY_INTERVAL, 10)]), None),
    "v5_property_not_allowed_in_publish":
        ((r.V5,), True, lambda v: r.publish(BAD + "/p", b"x", version=v,
                                            props=[(r.SESSION_EXPIRY_INTERVAL, 10)]), 0x81),
    "v5_unknown_property_id":
        ((r.V5,), True, lambda v: r.packet(0x30, r.mqtt_str(BAD + "/p") + b"\x02\x7f\x00"),
         0x81),
    "v5_property_length_past_end":
        ((r.V5,), True, lambda v: r.packet(0x30, r.mqtt_str(BAD + "/p") + b"\x10\x01"), 0x81),
    "v5_user_property_invalid_utf8":
        ((r.V5,), True, lambda v: r.publish(BAD + "/p", b"x", version=v,
                                            props=[(r.USER_PROPERTY, (b"\xff", b"v"))]), None),
    "v5_subscription_identifier_0":
        ((r.V5,), True, lambda v: r.subscribe(1, [(BAD, 0)], version=v,
                                              props=[(r.SUBSCRIPTION_IDENTIFIER, 0)]), 0x81),
    "v5_topic_alias_0":
        ((r.V5,), True, lambda v: r.publish(BAD + "/a", b"x", version=v,
                                            props=[(r.TOPIC_ALIAS, 0)]), 0x81),
    "v5_topic_alias_above_maximum":
        ((r.V5,), True, lambda v: r.publish(BAD + "/a", b"x", version=v,
                                            props=[(r.TOPIC_ALIAS, 65535)]), 0x94),
    "v5_unknown_topic_alias":
        ((r.V5,), True, lambda v: r.publish("", b"x", version=v,
                                            props=[(r.TOPIC_ALIAS, 3)]), 0x82),
    "v5_connect_receive_maximum_0":
        ((r.V5,), False, lambda v: r.connect("rm0", version=v,
                                             props=[(r.RECEIVE_MAXIMUM, 0)]), None),
}

# steps that must go through cleanly before the bad packet: name -> [(bytes(version), type)]
PRE = {
    "pubrel_reserved_flags": [(lambda v: r.publish("mwbpre/rel", b"x", qos=2, pid=3, version=v),
                               r.PUBREC)],
}


class MalformedTest(h.IntegrationCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.witnesses = []
        for version in (V311, V5):
            w = h.Paho(cls.stack.ws_port, version, "witness-%d-%d" % (version, os.getpid()),
                       keepalive=5)
            cls.addClassCleanup(w.close)
            w.connect()
            w.inbox = "mwbwitness/%d/%d" % (os.getpid(), version)
            w.subscribe([(BAD + "/#", 2), (w.inbox, 2)] if version == V311 else
                        [(BAD + "/#", h.mqtt.SubscribeOptions(qos=2)),
                         (w.inbox, h.mqtt.SubscribeOptions(qos=2))])
            cls.witnesses.append(w)

    def witnesses_fine(self):
        for w in self.witnesses:
            self.assertFalse(w.disconnected.is_set(), "a witness was disconnected")
            w.assert_no_message(0.05)
        # each publishes to the other, byte-exact, QoS 1 and 2
        a, b = self.witnesses
        for src, dst in ((a, b), (b, a)):
            for qos in (1, 2):
                payload = os.urandom(100)
                src.publish(dst.inbox, payload, qos)
                msg = dst.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos), (dst.inbox, payload, qos))

    def open_connections(self, versions, connect_first):
        """One connection per version, CONNECTs sent together: a server whose CONNACK is slow
        keeps the test short."""
        conns = []
        for version in versions:
            conn = r.MQTTConn(self.ws(), version)
            if connect_first:
                conn.send(r.connect(self.uid("raw"), version=version))
            conns.append(conn)
        if connect_first:
            for conn in conns:
                self.assertEqual(conn.expect(r.CONNACK).rc, 0)
        return conns

    def check_case(self, name):
        versions, connect_first, build, mosq_disconnect = CASES[name]
        for version, conn in zip(versions, self.open_connections(versions, connect_first)):
            with self.subTest(version=version):
                for step, expected in PRE.get(name, []):
                    conn.send(step(version))
                    conn.expect(expected)
                conn.send(build(version))
                must_disconnect = version == r.V5 and mosq_disconnect is not None
                disc = self.assert_closed(conn, timeout=3, v5_disconnect=must_disconnect)
                for p in conn.close_packets:
                    if p.type == r.CONNACK and not connect_first:
                        self.assertNotEqual(p.rc, 0, "CONNACK 0 for a bad CONNECT")
                    elif p.type == r.DISCONNECT and version == r.V5:
                        self.assertGreaterEqual(p.rc, 0x80)
                    else:
                        self.fail("unexpected answer to bad input: %r" % p)
                if disc is not None:
                    self.assertEqual(version, r.V5, "DISCONNECT sent to a 3.1.1 client")
                self.witnesses_fine()

    def test_bad_packet_after_good_one_in_same_frame(self):
        topic = BAD + "/good-then-bad"
        for version, conn in zip(BOTH, self.open_connections(BOTH, True)):
            with self.subTest(version=version):
                good = r.publish(topic, b"good %d" % version, qos=0, version=version)
                bad = r.packet(0x36, r.mqtt_str(topic) + r.u16(1) + v5_props(version) + b"bad")
                conn.send(good + bad)
                self.assert_closed(conn, timeout=3)
                for w in self.witnesses:
                    msg = w.get()
                    self.assertEqual((msg.topic, msg.payload), (topic, b"good %d" % version))
                self.witnesses_fine()

    def test_many_bad_connections_at_once(self):
        conns = self.open_connections(BOTH * 10, True)
        for conn in conns:
            conn.send(r.publish(BAD + "/#", b"x", version=conn.version))
        for conn in conns:
            self.assert_closed(conn, timeout=3)
        self.witnesses_fine()

    def test_duplicate_user_properties_are_allowed(self):
        # the one property that may repeat: not malformed
        conn = self.raw(r.V5, props=[(r.USER_PROPERTY, ("a", "1")), (r.USER_PROPERTY, ("a", "1"))])
        conn.send(r.pingreq())
        conn.expect(r.PINGRESP)


def _make(name):
    def test(self):
        self.check_case(name)
    test.__name__ = "test_" + name
    test.__doc__ = None
    return test


for _name in CASES:
    setattr(MalformedTest, "test_" + _name, _make(_name))


if __name__ == "__main__":
    h.main()
