"""SIGTERM under load (doc/design.md §5, README "Operation"): REST publishes at QoS 1 and
MQTT-over-WebSocket QoS 1 publishes keep coming while the bridge gets SIGTERM. Every publish the bridge acknowledged
(HTTP 200, PUBACK) must reach a TCP observer subscribed at Mosquitto, byte for byte; the bridge
exits 0 within a few seconds; a bridge started again serves. Bridge only."""

import http.client
import os
import queue
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import HOST, V5, V311  # noqa: E402

LOAD_BEFORE_S = 0.8     # publishing goes on this long before the signal
EXIT_WITHIN_S = 5.0     # the bridge's drain waits up to 3 s
REST_THREADS = 3
WS_CLIENTS = 3


class RestLoad(threading.Thread):
    """POSTs QoS 1 publishes of unique payloads on a keep-alive connection until stopped or
    the bridge stops answering; .acked holds the payloads answered 200."""

    def __init__(self, port, topic, n, stop):
        super().__init__(daemon=True)
        self.port, self.topic, self.n, self.stop = port, topic, n, stop
        self.acked = []
        self.answers = {}
        self.failures = 0

    def run(self):
        conn = None
        i = 0
        while not self.stop.is_set() and self.failures < 20:
            payload = b"rest-%d-%d-" % (self.n, i) + os.urandom(64)
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
                conn.request("POST", "/api/v1/publish/%s?qos=1" % self.topic, body=payload)
                resp = conn.getresponse()
                resp.read()
                self.answers[resp.status] = self.answers.get(resp.status, 0) + 1
                if resp.status == 200:
                    self.acked.append(payload)
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)   # a pause before a new connection (load, not a wait)
        if conn is not None:
            conn.close()


class WsLoad(threading.Thread):
    """A paho client over WebSocket publishing unique QoS 1 payloads until its connection ends;
    .acked holds the payloads whose PUBACK came."""

    def __init__(self, port, topic, n, version, stop):
        super().__init__(daemon=True)
        self.topic, self.n, self.stop = topic, n, stop
        self.client = h.make_client(port, version, "load-%d-%d" % (n, time.monotonic_ns()))
        self.sent = {}
        self.acked = []

    def run(self):
        c = self.client
        i = 0
        while not self.stop.is_set() and not c.disconnected.is_set():
            payload = b"ws-%d-%d-" % (self.n, i) + os.urandom(64)
            i += 1
            info = c.c.publish(self.topic, payload, 1)
            if info.rc != 0:
                break
            self.sent[info.mid] = payload
            # a little in flight at a time, as a browser would have
            time.sleep(0.002)

    def collect(self):
        """After the connection ended: the payloads whose PUBACK paho reported."""
        while True:
            try:
                mid = self.client.published.get_nowait()
            except queue.Empty:
                break
            if mid in self.sent:
                self.acked.append(self.sent[mid])
        return self.acked


class GracefulShutdownTest(h.IntegrationCase):
    mosquitto_conf = "max_queued_messages 1000000\nmax_inflight_messages 0"

    @classmethod
    def setUpClass(cls):
        if h.TARGET != "bridge":
            raise h.unittest.SkipTest("bridge only (the bridge's shutdown)")
        super().setUpClass()

    def test_sigterm_under_load_loses_no_acknowledged_publish(self):
        bridge = h.start_bridge(self.stack.broker.port)
        self.addCleanup(bridge.cleanup)
        h.ApiCase.wait_hub(bridge.port)
        base = self.topic("load")
        obs = self.observer(V5, subscribe=base + "/#", qos=1)

        stop = threading.Event()
        rest = [RestLoad(bridge.port, base + "/rest", n, stop) for n in range(REST_THREADS)]
        ws = [WsLoad(bridge.port, base + "/ws", n, V5 if n % 2 else V311, stop)
              for n in range(WS_CLIENTS)]
        for w in ws:
            self.addCleanup(w.client.close)
        for t in rest + ws:
            t.start()
        time.sleep(LOAD_BEFORE_S)   # the load runs a while before the signal (the point)
        # ... and on a loaded machine until each path has had its acknowledgements
        h.wait_until(lambda: sum(len(t.acked) for t in rest) > 20
                     and sum(w.client.published.qsize() for w in ws) > 20, timeout=15,
                     what="more than 20 acknowledged publishes over REST and WebSocket each")
        t0 = time.monotonic()
        os.kill(bridge.pid, signal.SIGTERM)
        try:
            code = bridge.proc.wait(EXIT_WITHIN_S + 2)
        except h.subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - t0
        bridge.stopped_by_test = True
        stop.set()
        for t in rest + ws:
            t.join(10)
        self.assertEqual(code, 0, "exit status after SIGTERM\n%s" % bridge.log())
        self.assertLess(took, EXIT_WITHIN_S, "the drain took %.1fs" % took)
        for w in ws:
            w.client.wait_disconnected()

        acked_rest = [p for t in rest for p in t.acked]
        acked_ws = [p for w in ws for p in w.collect()]
        self.assertGreater(len(acked_rest), 20, [t.answers for t in rest])
        self.assertGreater(len(acked_ws), 20)

        # every acknowledged publish is at the broker (the observer may see more: a publish
        # the broker took whose acknowledgement the shutdown cut off)
        want = {base + "/rest": set(acked_rest), base + "/ws": set(acked_ws)}
        self.assertEqual(len(want[base + "/rest"]), len(acked_rest))
        got = {base + "/rest": set(), base + "/ws": set()}
        deadline = time.monotonic() + 10
        while any(not want[k] <= got[k] for k in want) and time.monotonic() < deadline:
            try:
                msg = obs.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            self.assertIn(msg.topic, got)
            got[msg.topic].add(msg.payload)
        for k in want:
            lost = want[k] - got[k]
            self.assertEqual(len(lost), 0, "%s: %d of %d acknowledged publishes lost, e.g. %r\n%s"
                             % (k, len(lost), len(want[k]), sorted(lost)[:3], bridge.log()))
        sys.stderr.write("acknowledged before/while stopping: rest=%d ws=%d; exit after %.2fs\n"
                         % (len(acked_rest), len(acked_ws), took))

        # started again, it serves
        bridge.start()
        h.ApiCase.wait_hub(bridge.port)
        topic = self.topic("again")
        obs = self.observer(V5, subscribe=topic, qos=1)
        resp = h.http_request(bridge.port, "POST", "/api/v1/publish/%s?qos=1" % topic, b"again")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(obs.get().payload, b"again")
        c = h.make_client(bridge.port, V5, self.uid())
        self.addCleanup(c.close)
        self.round_trip(c)


if __name__ == "__main__":
    h.main()
