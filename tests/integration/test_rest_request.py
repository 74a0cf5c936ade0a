"""Request/response over HTTP (docs: "Request/response"): POST /api/v1/request/{topic} publishes
the body as an MQTT 5 request (Response Topic of the bridge's, Correlation Data) and answers with
the first reply's payload and content type; 504 no_reply when none comes within timeout_ms.
The device is a tiny responder written here: a paho v5 client on Mosquitto's TCP port.
Bridge only."""

import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import V5, PacketTypes, quote_topic  # noqa: E402


class Responder:
    """Subscribes to @filter and answers every request on its Response Topic with its Correlation
    Data: payload and content type from @reply(msg) -> (bytes, str or None). @batch > 1 holds the
    requests until that many came (or 3 s passed) and answers them in reverse order. @delay
    waits before answering. @decoy first sends a reply with someone else's correlation data."""

    def __init__(self, case, filter, reply, batch=1, delay=0.0, decoy=False):
        self.c = case.observer(V5)
        self.c.subscribe(filter, 2)
        self.reply = reply
        self.batch = batch
        self.delay = delay
        self.decoy = decoy
        self.requests = []
        self.answered = 0
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        case.addCleanup(self.close)

    def run(self):
        pending, since = [], None
        while not self.stop.is_set():
            try:
                msg = self.c.messages.get(timeout=0.05)
                self.requests.append(msg)
                pending.append(msg)
                since = since or time.monotonic()
            except queue.Empty:
                pass
            if pending and (len(pending) >= self.batch or time.monotonic() - since > 3):
                if self.delay:
                    time.sleep(self.delay)   # a slow device (the point of @delay)
                for m in reversed(pending):
                    self.answer(m)
                pending, since = [], None

    def answer(self, m):
        try:
            rt = getattr(m.properties, "ResponseTopic", None)
            if rt is None:
                self.errors.append("request without Response Topic on %r" % m.topic)
                return
            corr = getattr(m.properties, "CorrelationData", None)
            if self.decoy:
                self.c.c.publish(rt, b"decoy reply", 1, properties=h.props(
                    PacketTypes.PUBLISH, CorrelationData=b"not-yours-" + (corr or b""),
                    ContentType="text/plain"))
            payload, ctype = self.reply(m)
            kw = {}
            if corr is not None:
                kw["CorrelationData"] = corr
            if ctype is not None:
                kw["ContentType"] = ctype
            self.c.c.publish(rt, payload, 1,
                             properties=h.props(PacketTypes.PUBLISH, **kw) if kw else None)
            self.answered += 1
        except Exception as e:  # reported by the test, not lost on this thread
            self.errors.append(repr(e))

    def close(self):
        self.stop.set()
        self.thread.join(5)


def echo_json(m):
    return b'{"echo":' + m.payload + b"}", "application/json"


class RequestTest(h.ApiCase):

    def request(self, topic, body=b"", query="", headers=None, timeout=h.TIMEOUT + 5):
        path = "/api/v1/request/" + quote_topic(topic) + ("?" + query if query else "")
        return self.http("POST", path, body, headers, timeout=timeout)

    def test_reply_payload_and_content_type(self):
        topic = self.topic("devices/lamp/cmd")
        r = Responder(self, topic, echo_json)
        resp = self.request(topic, b'{"n":1,"s":"\xc3\xa9"}', "timeout_ms=3000",
                            {"Content-Type": "application/json"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b'{"echo":{"n":1,"s":"\xc3\xa9"}}')
        self.assertEqual(resp.content_type, "application/json")
        self.assertEqual(r.errors, [])
        self.assertEqual(len(r.requests), 1)
        req = r.requests[0]
        self.assertEqual((req.topic, req.payload), (topic, b'{"n":1,"s":"\xc3\xa9"}'))
        self.assertTrue(req.properties.ResponseTopic.startswith("mqtt-web-bridge/reply/"),
                        req.properties.ResponseTopic)
        self.assertTrue(req.properties.CorrelationData, "no correlation data")

    def test_reply_content_type_kept_exactly(self):
        topic = self.topic()
        Responder(self, topic, lambda m: (b"a,b\n1,2\n", "text/csv; header=present"))
        resp = self.request(topic, b"q", "timeout_ms=3000")
        self.assertEqual((resp.status, resp.body), (200, b"a,b\n1,2\n"), resp)
        self.assertEqual(resp.content_type, "text/csv; header=present")

    def test_binary_reply_without_content_type(self):
        topic = self.topic()
        blob = bytes(range(256)) * 4 + b"\x00"
        Responder(self, topic, lambda m: (blob, None))
        resp = self.request(topic, b"\x00\xff", "timeout_ms=3000")
        self.assertEqual((resp.status, resp.body), (200, blob), resp)
        self.assertEqual(resp.mime, "application/octet-stream", resp)

    def test_large_and_empty(self):
        topic = self.topic()
        big = os.urandom(60 * 1024)
        r = Responder(self, topic, lambda m: (big if m.payload == b"big" else b"", "x/y"))
        resp = self.request(topic, b"big", "timeout_ms=3000")
        self.assertEqual((resp.status, resp.body), (200, big))
        resp = self.request(topic, b"", "timeout_ms=3000")
        self.assertEqual((resp.status, resp.body), (200, b""))
        self.assertEqual(r.requests[-1].payload, b"")

    def test_qos(self):
        topic = self.topic()
        r = Responder(self, topic, lambda m: (b"q%d" % m.qos, "text/plain"))
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                resp = self.request(topic, b"x", "qos=%d&timeout_ms=3000" % qos)
                self.assertEqual((resp.status, resp.body), (200, b"q%d" % qos), resp)
                self.assertEqual(r.requests[-1].qos, qos)

    def test_curl(self):
        # curl -d '{"cmd":"ping"}' -H 'Content-Type: application/json'
        #      'http://127.0.0.1:8080/api/v1/request/devices/lamp/cmd?timeout_ms=2000'
        topic = self.topic("devices/lamp/cmd")
        Responder(self, topic, lambda m: (b'{"pong":true}', "application/json"))
        status, body, rc, err = self.curl(
            "-d", '{"cmd":"ping"}', "-H", "Content-Type: application/json",
            self.url("/api/v1/request/%s?timeout_ms=2000" % topic))
        self.assertEqual((rc, status, body), (0, 200, b'{"pong":true}'), err)

    def test_curl_readme_line_without_body(self):
        # curl -X POST 'http://127.0.0.1:8080/api/v1/request/lamp/1/get?timeout_ms=2000'
        topic = self.topic("lamp/1/get")
        r = Responder(self, topic, lambda m: (b'{"on": true}', "application/json"))
        status, body, rc, err = self.curl("-X", "POST",
                                          self.url("/api/v1/request/%s?timeout_ms=2000" % topic))
        self.assertEqual((rc, status, body), (0, 200, b'{"on": true}'), err)
        self.assertEqual(r.requests[0].payload, b"")

    def test_no_reply_504(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        for timeout_ms in (200, 600):
            with self.subTest(timeout_ms=timeout_ms):
                t0 = time.monotonic()
                resp = self.request(topic, b"anyone?", "timeout_ms=%d" % timeout_ms)
                elapsed = time.monotonic() - t0
                self.assert_error(resp, 504, "no_reply")
                self.assertGreaterEqual(elapsed, timeout_ms / 1000.0 - 0.05)
                self.assertLess(elapsed, timeout_ms / 1000.0 + 1.0)
                # the request itself went out
                msg = obs.get()
                self.assertEqual(msg.payload, b"anyone?")

    def test_default_timeout_5s(self):
        topic = self.topic()
        t0 = time.monotonic()
        resp = self.request(topic, b"x", timeout=12)
        elapsed = time.monotonic() - t0
        self.assert_error(resp, 504, "no_reply")
        self.assertTrue(4.8 <= elapsed < 7.0, "default timeout took %.2fs" % elapsed)

    def test_reply_without_correlation_is_not_the_answer(self):
        # someone answers on the response topic, but with no correlation data at all
        topic = self.topic()
        obs = self.observer(V5)
        obs.subscribe(topic, 2)
        resp_holder = {}

        def call():
            resp_holder["r"] = self.request(topic, b"x", "timeout_ms=1500")
        t = threading.Thread(target=call)
        t.start()
        msg = obs.get()
        obs.c.publish(msg.properties.ResponseTopic, b"uncorrelated", 1)
        t.join(5)
        self.assert_error(resp_holder["r"], 504, "no_reply")

    def test_decoy_reply_ignored(self):
        topic = self.topic()
        r = Responder(self, topic, lambda m: (b"the real one", "text/plain"), decoy=True)
        resp = self.request(topic, b"x", "timeout_ms=3000")
        self.assertEqual((resp.status, resp.body), (200, b"the real one"), resp)
        self.assertEqual(r.errors, [])

    def test_concurrent_requests_get_their_own_replies(self):
        topic = self.topic()
        n = 10
        r = Responder(self, topic, lambda m: (b"reply:" + m.payload, "text/plain"), batch=n)
        results = {}

        def call(i):
            try:
                results[i] = self.request(topic, b"req-%d" % i, "timeout_ms=6000")
            except Exception as e:
                results[i] = e
        threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(r.errors, [])
        for i in range(n):
            resp = results.get(i)
            self.assertIsInstance(resp, h.HttpResponse, resp)
            self.assertEqual((resp.status, resp.body), (200, b"reply:req-%d" % i), resp)
        corr = [m.properties.CorrelationData for m in r.requests]
        self.assertEqual(len(set(corr)), n, "correlation data not unique: %r" % corr)

    def test_late_reply_is_harmless(self):
        topic = self.topic()
        r = Responder(self, topic, lambda m: (b"late", "text/plain"), delay=0.6)
        replies = self.quiet_observer("mqtt-web-bridge/reply/#")
        self.assert_error(self.request(topic, b"x", "timeout_ms=200"), 504, "no_reply")
        # the late reply reaches the bridge after the request ended: until the broker delivered
        # it (to the bridge and to this observer of the bridge's reply topics)
        self.assertEqual(replies.get(h.TIMEOUT).payload, b"late")
        h.wait_until(lambda: r.answered, what="the responder counting its answer")
        self.assertEqual(r.answered, 1)
        r.delay = 0
        resp = self.request(topic, b"y", "timeout_ms=3000")
        self.assertEqual((resp.status, resp.body), (200, b"late"), resp)

    def test_refused(self):
        obs = self.quiet_observer()
        topic = self.topic()
        for query, status, code in (("timeout_ms=abc", 400, "invalid_parameter"),
                                    ("timeout_ms=-1", 400, "invalid_parameter"),
                                    ("timeout_ms=", 400, "invalid_parameter"),
                                    ("timeout_ms=0", 400, "invalid_parameter"),
                                    ("timeout_ms=600001", 400, "invalid_parameter"),
                                    ("bogus=1", 400, "invalid_parameter"),
                                    ("qos=3", 400, "invalid_qos")):
            with self.subTest(query=query):
                self.assert_error(self.request(topic, b"x", query), status, code)
        for quoted in (quote_topic(topic) + "/%23", quote_topic(topic) + "/%2B/a",
                       quote_topic(topic) + "/%FF", ""):
            with self.subTest(path=quoted):
                resp = self.http("POST", "/api/v1/request/" + quoted + "?timeout_ms=200", b"x")
                self.assert_error(resp, 400, "invalid_topic")
        self.assert_allow(self.http("GET", "/api/v1/request/" + quote_topic(topic)),
                          {"POST"}, "GET")
        obs.assert_no_message()


if __name__ == "__main__":
    h.main()
