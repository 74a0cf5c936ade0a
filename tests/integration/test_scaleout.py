"""Scale-out (doc/design.md §7, README "Scale-out"): two bridge instances in front of one Mosquitto,
behind nginx running config/nginx/mqtt-web-bridge-scaleout.conf (round robin for /mqtt and the
REST API, streams sticky by client address).

MQTT-over-WebSocket clients connected through nginx land on both instances and exchange
messages byte for byte across them; a REST publish on instance A reaches an event stream on B;
a stream that resumes on B with an event id of A starts afresh (no replay, a comment that says
so, the retained values when asked for) while the same id on A replays what was missed; streams
through nginx stick to one instance, so a resume through nginx replays. Bridge only."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import HOST, V5, V311, quote_query  # noqa: E402

AFRESH = b": last event id unknown here: starting afresh"


def instance_of(event_id):
    """The instance part of an event id "INSTANCE-SEQ"."""
    inst, sep, seq = event_id.rpartition("-")
    assert sep and inst and seq.isdigit(), "bad event id %r" % event_id
    return inst


class ScaleOutTest(h.ApiCase):
    bridge_config = {"trusted_proxies": ["127.0.0.1"], "sse": {"replay": 1000}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.stack.bridge
        cls.b = h.start_bridge(cls.stack.broker.port, config=cls.bridge_config)
        cls.addClassCleanup(cls.b.cleanup)
        cls.wait_hub(cls.b.port)
        cls.nginx = h.Nginx("mqtt-web-bridge-scaleout.conf",
                            [(HOST, cls.a.port), (HOST, cls.b.port)])
        cls.addClassCleanup(cls.nginx.cleanup)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n%s\n%s\n" % (self.b.log(), self.nginx.log()))
        return out

    def setUp(self):
        self.pub = self.observer(V5)

    def mqtt_connections(self, bridge):
        return self.http("GET", "/api/v1/health", port=bridge.port).json()["connections"]["mqtt"]

    def test_websocket_clients_on_both_instances_exchange_messages(self):
        n = 6
        base_a, base_b = self.mqtt_connections(self.a), self.mqtt_connections(self.b)
        clients = []
        for i in range(n):
            c = h.make_client(self.nginx.port, V5 if i % 3 == 0 else V311, self.uid())
            self.addCleanup(c.close)
            clients.append(c)
        on_a = self.mqtt_connections(self.a) - base_a
        on_b = self.mqtt_connections(self.b) - base_b
        self.assertEqual(on_a + on_b, n)
        # round robin: half each
        self.assertEqual((on_a, on_b), (n // 2, n // 2))
        topics = [self.topic("c%d" % i) for i in range(n)]
        for c, t in zip(clients, topics):
            self.assertEqual(c.subscribe(t, 1), [1])
        payloads = [bytes([i]) * 3 + os.urandom(4096) + bytes(range(256)) for i in range(n)]
        # each one to its neighbour, who is on the other instance
        for i, c in enumerate(clients):
            c.publish(topics[(i + 1) % n], payloads[i], 1)
        for i, c in enumerate(clients):
            msg = c.get()
            self.assertEqual((msg.topic, msg.payload, msg.qos),
                             (topics[i], payloads[(i - 1) % n], 1))
        for c in clients:
            c.assert_no_message(0.3)

    def test_rest_publish_on_a_reaches_a_stream_on_b(self):
        base = self.topic("ab")
        s = self.stream(base + "/#", port=self.b.port)
        self.sse_sync(s, self.pub, base + "/sync")
        payload = bytes(range(256)) + b"\x00\xff end"
        resp = self.http("POST", "/api/v1/publish/%s/x?qos=1" % base, payload, port=self.a.port)
        self.assertEqual(resp.status, 200, resp)
        ev = s.next_event()
        self.assertEqual((ev.topic, ev.payload), (base + "/x", payload))
        # and through nginx both ways
        t = self.stream(base + "/#", port=self.nginx.port)
        self.sse_sync(t, self.pub, base + "/sync")
        resp = self.http("POST", "/api/v1/publish/%s/y?qos=1" % base, b"via nginx",
                         port=self.nginx.port)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(t.next_event().payload, b"via nginx")
        # s saw t's sync tokens too
        self.assertIsNotNone(s.poll_for(lambda e: e.payload == b"via nginx", h.TIMEOUT))

    def missed_after(self, base, port):
        """A stream on @port that got one event and closed, then two more events published:
        (the last id the stream saw, the payloads it missed). A second stream on @port keeps
        the instance subscribed meanwhile, and has seen them when this returns."""
        keeper = self.stream(base + "/#", port=port)
        s = self.stream(base + "/#", port=port)
        self.sse_sync([keeper, s], self.pub, base + "/sync")
        self.pub.publish(base + "/m", b"seen", 1)
        seen = s.next_event()
        self.assertEqual(seen.payload, b"seen")
        self.assertEqual(instance_of(keeper.next_event().id), instance_of(seen.id))
        s.close()
        missed = [b"missed-1", b"missed-2"]
        for p in missed:
            self.pub.publish(base + "/m", p, 1)
        self.assertEqual([e.payload for e in keeper.get_events(2)], missed)
        return seen.id, missed

    def test_resume_with_an_id_of_the_other_instance_starts_afresh(self):
        base = self.topic("resume")
        self.pub.publish(base + "/state", b"retained value", 1, retain=True)
        last_id, missed = self.missed_after(base, self.a.port)

        # on B: no replay, a comment that says so, live events, and the retained values
        on_b = self.sse("/api/v1/stream?topic=%s&retained=true" % quote_query(base + "/#"),
                        headers={"Last-Event-ID": last_id}, port=self.b.port)
        self.assertEqual(on_b.status, 200, on_b.response)
        first = on_b.next_event()
        self.assertEqual((first.topic, first.payload, first.id),
                         (base + "/state", b"retained value", None))
        dropped = self.sse_sync(on_b, self.pub, base + "/sync")[on_b]
        self.assertEqual([e.payload for e in dropped], [], "B replayed for A's id")
        self.assertIn(AFRESH, [c for c, _ in on_b.comments])
        self.pub.publish(base + "/m", b"live", 1)
        ev = on_b.next_event()
        self.assertEqual(ev.payload, b"live")
        self.assertNotEqual(instance_of(ev.id), instance_of(last_id))

        # the same id on A replays what was missed, and no retained values
        on_a = self.sse("/api/v1/stream?topic=%s&retained=true" % quote_query(base + "/m"),
                        headers={"Last-Event-ID": last_id}, port=self.a.port)
        self.assertEqual(on_a.status, 200, on_a.response)
        replayed = on_a.get_events(2)
        self.assertEqual([e.payload for e in replayed], missed)
        self.assertEqual({instance_of(e.id) for e in replayed}, {instance_of(last_id)})
        self.assertNotIn(AFRESH, [c for c, _ in on_a.comments])

    def test_streams_through_nginx_stick_to_one_instance(self):
        base = self.topic("sticky")
        last_id, missed = self.missed_after(base, self.nginx.port)
        again = self.sse("/api/v1/stream?topic=" + quote_query(base + "/m"),
                         headers={"Last-Event-ID": last_id}, port=self.nginx.port)
        self.assertEqual(again.status, 200, again.response)
        replayed = again.get_events(2)
        self.assertEqual([e.payload for e in replayed], missed)
        self.assertEqual({instance_of(e.id) for e in replayed}, {instance_of(last_id)})

    def test_event_ids_name_the_instance(self):
        base = self.topic("ids")
        sa = self.stream(base + "/#", port=self.a.port)
        sb = self.stream(base + "/#", port=self.b.port)
        self.sse_sync([sa, sb], self.pub, base + "/sync")
        self.pub.publish(base + "/m", b"x", 0)
        ia, ib = sa.next_event().id, sb.next_event().id
        self.assertNotEqual(instance_of(ia), instance_of(ib))
        health = [self.http("GET", "/api/v1/health", port=p).json() for p in
                  (self.a.port, self.b.port)]
        self.assertTrue(all(hh["broker"]["connected"] for hh in health), json.dumps(health))


if __name__ == "__main__":
    h.main()
