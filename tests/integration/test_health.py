"""Operations (docs: "Health and metrics"): /api/v1/health 200/503 with the broker up/down,
/metrics in Prometheus text format with counters that move; a broker outage: health 503 and
publish 503 with Retry-After, then Mosquitto started again on the same port: health 200 within
the reconnect backoff, publish works, an SSE stream open across the outage carries on.
Bridge only."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import V5  # noqa: E402

JSON = {"Content-Type": "application/json"}
RECOVERY = 10.0      # the bridge's reconnect backoff must bring it back within this


def broker_up(body):
    """The broker state of a health answer: docs-api-draft.md says "broker": "up", the README
    "broker": {"connected": true, ...}; either is taken until the two agree."""
    b = body.get("broker")
    return b == "up" or (isinstance(b, dict) and b.get("connected") is True)


class HealthTest(h.ApiCase):

    def test_health_ok(self):
        resp = self.http("GET", "/api/v1/health")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.mime, "application/json", resp)
        body = resp.json()
        self.assertEqual(body.get("status"), "ok", body)
        self.assertTrue(broker_up(body), body)

    def test_health_curl(self):
        status, body, rc, err = self.curl(self.url("/api/v1/health"))
        self.assertEqual((rc, status), (0, 200), err)
        self.assertTrue(broker_up(json.loads(body)), body)

    def test_health_method_405(self):
        self.assert_allow(self.http("POST", "/api/v1/health", b""), {"GET"}, "POST")

    def counters(self):
        resp = self.http("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.mime, "text/plain", resp)
        text = resp.body.decode("utf-8")
        samples = h.prom_samples(text)
        self.assertTrue(samples, "no samples in /metrics:\n%s" % text)
        types = dict(line.split()[2:4] for line in text.splitlines()
                     if line.startswith("# TYPE "))
        self.assertTrue(types, "no # TYPE lines in /metrics")
        for t in types.values():
            self.assertIn(t, ("counter", "gauge", "histogram", "summary", "untyped"))
        return samples, types, text

    def test_metrics_format_and_counters_move(self):
        before, types, text = self.counters()
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        for qos in (0, 1, 2):
            resp = self.http("POST", "/api/v1/publish/%s?qos=%d" % (topic, qos), b"count me")
            self.assertEqual(resp.status, 200, resp)
        obs.get_n(3)
        after, types, text2 = self.counters()

        def is_counter(name):
            base = name
            for suffix in ("_total", "_count", "_sum", "_bucket"):
                if name.endswith(suffix) and name[:-len(suffix)] in types:
                    base = name[:-len(suffix)]
            return types.get(base) in ("counter", "histogram", "summary") or name.endswith("_total")
        moved = {k: (before.get(k, 0), v) for k, v in after.items()
                 if is_counter(k[0]) and v > before.get(k, 0)}
        self.assertTrue(moved, "no counter moved after 3 REST publishes:\n%s" % text2)
        # the counters the README names
        def delta(name, labels=""):
            return after.get((name, labels), 0) - before.get((name, labels), 0)
        self.assertEqual(delta("mwb_messages_total", '{path="rest_to_broker"}'), 3, text2)
        self.assertEqual(delta("mwb_publish_latency_seconds_count"), 3, text2)
        self.assertGreaterEqual(delta("mwb_http_requests_total"), 3, text2)
        for k, v in after.items():
            if is_counter(k[0]) and k in before:
                self.assertGreaterEqual(v, before[k], "counter %r went down" % (k,))


class OutageTest(h.ApiCase):
    """Mosquitto is stopped and started again on the same port (one test: the class's stack)."""
    bridge_config = {"sse": {"heartbeat_s": 1}}

    def wait_health(self, status, timeout):
        deadline = time.monotonic() + timeout
        while True:
            resp = self.http("GET", "/api/v1/health", timeout=2)
            if resp.status == status or time.monotonic() > deadline:
                return resp
            time.sleep(0.1)

    def assert_unavailable(self, resp):
        self.assert_error(resp, 503, "broker_unavailable")
        self.assertEqual(resp.header("Retry-After"), "5", resp)

    def test_outage_and_recovery(self):
        pub = self.observer(V5)
        base = self.topic("outage")
        s = self.stream(base + "/#")
        self.sse_sync(s, pub, base + "/sync")
        self.assertEqual(self.http("GET", "/api/v1/health").status, 200)

        self.stack.broker.stop()
        t_stop = time.monotonic()
        resp = self.wait_health(503, 5)
        self.assertEqual(resp.status, 503, "health with the broker stopped: %r" % resp)
        self.assertEqual(resp.mime, "application/json", resp)
        self.assertNotEqual(resp.json().get("status"), "ok", resp)
        self.assertFalse(broker_up(resp.json()), resp)
        self.assertEqual(resp.header("Retry-After"), "5", "README: 503 with Retry-After")
        for qos in (0, 1, 2):
            self.assert_unavailable(self.http("POST", "/api/v1/publish/%s?qos=%d" % (base, qos),
                                              b"lost"))
        self.assert_unavailable(self.http("POST", "/api/v1/publish", json.dumps(
            {"topic": base + "/j", "payload": "lost", "qos": 1}).encode(), JSON))
        self.assert_unavailable(self.http("PUT", "/api/v1/topics/%s?qos=1" % base, b"lost"))
        self.assert_unavailable(self.http("DELETE", "/api/v1/topics/" + base))
        self.assert_unavailable(self.http("GET", "/api/v1/topics/" + base))
        self.assert_unavailable(self.http("POST", "/api/v1/request/%s?timeout_ms=300" % base,
                                          b"anyone"))
        self.assertEqual(s.read_for(max(0.0, 2.2 - (time.monotonic() - t_stop))), [],
                         "events during the outage")
        self.assertFalse(s.closed, "the SSE stream was closed by the outage")
        during = [c for c in s.comments if c[1] >= t_stop]
        self.assertTrue(during, "no heartbeat on the stream during the outage")

        self.stack.broker.start()
        t_start = time.monotonic()
        resp = self.wait_health(200, RECOVERY)
        self.assertEqual(resp.status, 200, "health %.1fs after the broker came back: %r"
                         % (time.monotonic() - t_start, resp))
        obs = self.observer(V5)
        obs.subscribe(base + "/#", 2)
        for qos in (0, 1, 2):
            resp = self.http("POST", "/api/v1/publish/%s/after?qos=%d" % (base, qos), b"a%d" % qos)
            self.assertEqual(resp.status, 200, resp)
        self.assertEqual([m.payload for m in obs.get_n(3)], [b"a0", b"a1", b"a2"])

        # the stream opened before the outage carries on: the hub subscribed again
        self.assertFalse(s.closed, "the SSE stream was closed")
        s.events.clear()
        self.sse_sync(s, obs, base + "/sync", timeout=RECOVERY)
        for i in range(5):
            obs.publish(base + "/live", b"live%d" % i, 1)
        self.assertEqual([e.payload for e in s.get_events(5)], [b"live%d" % i for i in range(5)])


class BrokerDownAtStartTest(h.ApiCase):
    """The bridge started towards a port where no broker listens yet."""
    with_broker = False

    def test_503_then_up_when_the_broker_appears(self):
        resp = self.http("GET", "/api/v1/health")
        self.assertEqual(resp.status, 503, resp)
        self.assertEqual(resp.mime, "application/json", resp)
        self.assertFalse(broker_up(resp.json()), resp)
        resp = self.http("POST", "/api/v1/publish/mwbtest/down?qos=1", b"x")
        self.assert_error(resp, 503, "broker_unavailable")
        self.assertEqual(resp.header("Retry-After"), "5")
        resp = self.http("POST", "/api/v1/publish", b'{"topic": "mwbtest/down", "payload": "x"}',
                         JSON)
        self.assert_error(resp, 503, "broker_unavailable")
        self.assertEqual(resp.header("Retry-After"), "5")
        # the broker comes up on the port the bridge was told
        port = int(self.stack.bridge.broker_url.rsplit(":", 1)[1])
        broker = h.Mosquitto(port=port, ws_port=h.free_port())
        self.addCleanup(broker.cleanup)
        deadline = time.monotonic() + RECOVERY
        while self.http("GET", "/api/v1/health").status != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.http("GET", "/api/v1/health").status, 200,
                         "health within %.0fs of the broker starting" % RECOVERY)
        obs = h.TcpObserver(port, V5, self.uid("obs"))
        self.addCleanup(obs.close)
        obs.connect()
        obs.subscribe("mwbtest/#", 2)
        resp = self.http("POST", "/api/v1/publish/mwbtest/up?qos=1", b"up")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(obs.get().payload, b"up")


if __name__ == "__main__":
    h.main()
