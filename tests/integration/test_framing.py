"""WebSocket framing of MQTT: a packet split over frames (binary and continuation frames), several
packets in one frame, packets straddling frames, control frames, text frames, RSV bits, and the
bridge's limits.max_packet_bytes."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import bridge_only  # noqa: E402


def chunks(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


class FramingTest(h.IntegrationCase):

    def test_packet_split_over_binary_frames(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = self.topic()
                obs.subscribe(topic, 1)
                conn = r.MQTTConn(self.ws(), version)
                # CONNECT one byte per WebSocket message
                for b in chunks(r.connect(self.uid(), version=version, keepalive=30), 1):
                    conn.ws.send_binary(b)
                self.assertEqual(conn.expect(r.CONNACK).rc, 0)
                # a 60 KB PUBLISH in 61 messages; the first holds only half of the length bytes
                payload = os.urandom(60 * 1024)
                pkt = r.publish(topic, payload, qos=1, pid=9, version=version)
                conn.ws.send_binary(pkt[:2])
                for part in chunks(pkt[2:], 1000):
                    conn.ws.send_binary(part)
                self.assertEqual(conn.expect(r.PUBACK).pid, 9)
                msg = obs.get()
                self.assertTrue(msg.payload == payload, "payload differs")

    def test_packet_split_over_continuation_frames(self):
        obs = self.observer()
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = self.topic()
                obs.subscribe(topic, 1)
                ws = self.ws()
                conn = r.MQTTConn(ws, version)
                ws.send_fragmented(r.connect(self.uid(), version=version), [3, 4, 1])
                conn.expect(r.CONNACK)
                payload = bytes(range(256)) * 40
                ws.send_fragmented(r.publish(topic, payload, qos=1, pid=3, version=version),
                                   [1, 1, 2, 500, 4000])
                self.assertEqual(conn.expect(r.PUBACK).pid, 3)
                self.assertEqual(obs.get().payload, payload)

    def test_ping_frame_between_fragments(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 1)
        conn = self.raw(r.V311)
        pkt = r.publish(topic, b"around a ping", qos=1, pid=5)
        conn.ws.send_frame(r.OP_BINARY, pkt[:5], fin=False)
        conn.ws.send_frame(r.OP_PING, b"mid")
        conn.ws.send_frame(r.OP_CONT, pkt[5:], fin=True)
        fin, op, payload = conn.ws.recv_frame()
        self.assertEqual((op, payload), (r.OP_PONG, b"mid"))
        self.assertEqual(conn.expect(r.PUBACK).pid, 5)
        self.assertEqual(obs.get().payload, b"around a ping")

    def test_websocket_ping_answered(self):
        conn = self.raw(r.V5)
        conn.ws.send_frame(r.OP_PING, b"\x00hello\xff")
        fin, op, payload = conn.ws.recv_frame()
        self.assertEqual((fin, op, payload), (True, r.OP_PONG, b"\x00hello\xff"))

    def test_several_packets_in_one_frame(self):
        # CONNECT, SUBSCRIBE, PUBLISH (to itself), PINGREQ, all in one frame: everything after
        # CONNECT must wait for the CONNACK, not be lost
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                topic = self.topic()
                conn = r.MQTTConn(self.ws(), version)
                frame = (r.connect(self.uid(), version=version) +
                         r.subscribe(1, [(topic, 1)], version=version) +
                         r.publish(topic, b"to myself", qos=1, pid=2, version=version) +
                         r.pingreq())
                conn.ws.send_binary(frame)
                first = conn.recv()
                self.assertEqual((first.type, first.rc), (r.CONNACK, 0))
                got = {}
                for _ in range(4):
                    p = conn.recv()
                    got[p.type] = p
                self.assertEqual(sorted(got), sorted([r.SUBACK, r.PUBACK, r.PUBLISH, r.PINGRESP]))
                self.assertEqual(got[r.SUBACK].codes, [1])
                self.assertEqual(got[r.PUBACK].pid, 2)
                self.assertEqual(got[r.PUBLISH].payload, b"to myself")

    def test_many_packets_in_one_frame(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 1)
        conn = self.raw(r.V5)
        frame = b"".join(r.publish(topic, b"%03d" % i, qos=1, pid=i + 1, version=r.V5)
                         for i in range(100))
        conn.ws.send_binary(frame)
        acks = [conn.expect(r.PUBACK).pid for _ in range(100)]
        self.assertEqual(sorted(acks), list(range(1, 101)))
        self.assertEqual([m.payload for m in obs.get_n(100)], [b"%03d" % i for i in range(100)])

    def test_packets_straddling_frames(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 1)
        conn = self.raw(r.V311)
        stream = b"".join(r.publish(topic, b"s%d" % i + b"." * (i * 37), qos=1, pid=i + 1)
                          for i in range(10))
        for part in chunks(stream, 77):
            conn.ws.send_binary(part)
        for _ in range(10):
            conn.expect(r.PUBACK)
        got = obs.get_n(10)
        self.assertEqual([m.payload for m in got], [b"s%d" % i + b"." * (i * 37) for i in range(10)])

    def test_server_sends_binary_frames(self):
        obs = self.observer()
        topic = self.topic()
        conn = self.raw(r.V5)
        conn.send(r.subscribe(1, [(topic, 0)], version=r.V5))
        conn.expect(r.SUBACK)
        obs.publish(topic, b"binary please", 0)
        # MQTTConn.recv raises on any non-binary data frame
        self.assertEqual(conn.expect(r.PUBLISH).payload, b"binary please")
        self.assertEqual(conn.text_frames, 0)

    def test_rsv_bits_close(self):
        conn = self.raw(r.V311)
        conn.ws.send_frame(r.OP_BINARY, r.pingreq(), rsv=4)
        self.assert_closed(conn)

    def test_client_close_frame(self):
        conn = self.raw(r.V311)
        conn.ws.send_close(1000)
        try:
            conn.wait_closed(h.TIMEOUT)
        except TimeoutError:
            self.fail("server kept the connection after a close frame")
        if conn.ws.close_code is not None:
            self.assertEqual(conn.ws.close_code, 1000)

    @bridge_only("Mosquitto's WebSocket listener treats text frames like binary ones")
    def test_text_frame_closes(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 1)
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                conn = self.raw(version)
                conn.ws.send_text(r.publish(topic, b"text", version=version))
                self.assert_closed(conn)
                obs.assert_no_message()
        with self.subTest(first_packet=True):
            ws = self.ws()
            conn = r.MQTTConn(ws, r.V311)
            ws.send_text(r.connect(self.uid()))
            self.assert_closed(conn)
            self.assertEqual(conn.close_packets, [], "a text-frame CONNECT was answered")

    @bridge_only("Mosquitto's WebSocket listener does not limit packet sizes")
    def test_huge_remaining_length_closes_without_buffering(self):
        # default limits.max_packet_bytes is 1 MB: a declared 256 MB packet is refused at once
        conn = self.raw(r.V5)
        conn.ws.send_binary(b"\x30\xff\xff\xff\x7f" + r.mqtt_str("a") + b"\x00")
        start = time.monotonic()
        self.assert_closed(conn, timeout=3)
        self.assertLess(time.monotonic() - start, 3)


@bridge_only("limits.max_packet_bytes is the bridge's config; Mosquitto's WebSocket listener "
             "ignores even its own max_packet_size")
class PacketLimitTest(h.IntegrationCase):
    bridge_config = {"limits": {"max_packet_bytes": 1000}}

    def test_packet_under_limit_works(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 1)
        for version in (r.V311, r.V5):
            conn = self.raw(version)
            n = 1000 - len(r.publish(topic, b"", qos=1, pid=1, version=version))
            while len(r.publish(topic, b"x" * n, qos=1, pid=1, version=version)) > 1000:
                n -= 1     # the remaining length takes one more byte past 127
            payload = os.urandom(n)
            pkt = r.publish(topic, payload, qos=1, pid=1, version=version)
            self.assertEqual(len(pkt), 1000)
            conn.send(pkt)
            self.assertEqual(conn.expect(r.PUBACK).pid, 1)
            self.assertEqual(obs.get().payload, payload)

    def test_packet_over_limit_closes_before_it_is_complete(self):
        obs = self.observer()
        topic = self.topic()
        obs.subscribe(topic, 1)
        for version in (r.V311, r.V5):
            with self.subTest(version=version):
                conn = self.raw(version)
                pkt = r.publish(topic, os.urandom(5000), qos=1, pid=1, version=version)
                conn.ws.send_binary(pkt[:200])   # the rest never comes
                disc = self.assert_closed(conn, timeout=3)
                if disc is not None:
                    self.assertEqual(disc.rc, 0x95)   # packet too large
                obs.assert_no_message()

    def test_packet_over_limit_split_over_frames(self):
        conn = self.raw(r.V311)
        pkt = r.publish(self.topic(), os.urandom(1500), qos=0)
        try:
            for part in chunks(pkt, 100)[:12]:
                conn.ws.send_binary(part)
        except OSError:
            pass  # closed on the first frame already: its header announced too many bytes
        self.assert_closed(conn, timeout=3)

    def test_other_connection_unharmed(self):
        good = self.paho(h.V5)
        conn = self.raw(r.V5)
        conn.send(r.publish(self.topic(), os.urandom(2000), version=r.V5))
        self.assert_closed(conn, timeout=3)
        self.round_trip(good)


if __name__ == "__main__":
    h.main()
