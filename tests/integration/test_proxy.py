"""Behind nginx (README "Behind nginx or Caddy"): config/nginx/mqtt-web-bridge.conf, run by a real
nginx on a loopback port in front of the real bridge, passes MQTT over WebSocket (v3.1.1 and v5,
byte for byte), event streams unbuffered (an event and the heartbeats come at once), REST
publishes (a chunked body too: nginx passes it on with a length) and keeps its upstream
connections alive.

trusted_proxies: when the direct peer is a trusted proxy, the client address for logs and the
per-address rate limit (limits.requests_per_minute without auth) is what X-Forwarded-For (else
Forwarded) names; from any other peer those headers are ignored. The whole of 127.0.0.0/8 is
loopback, so clients bind 127.0.0.2... as their source to be other hosts than nginx (127.0.0.1).
Bridge only."""

import http.client
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import HOST, TIMEOUT, V5, V311  # noqa: E402


def request(port, method, path, body=None, headers=None, source=None, timeout=TIMEOUT):
    """One HTTP request from @source (an address on lo, None: any): (status, headers, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}),
                     encode_chunked=not isinstance(body, (bytes, str, type(None))))
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def read_log(bridge):
    with open(bridge.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_log(bridge, pattern, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, read_log(bridge))
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError("no log line %r within %.1fs\n%s" % (pattern, timeout,
                                                                        bridge.log()))
        time.sleep(0.05)


class ProxyCase(h.ApiCase):
    """The class's bridge behind an nginx that runs config/nginx/mqtt-web-bridge.conf."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nginx = h.Nginx("mqtt-web-bridge.conf", [(HOST, cls.stack.bridge.port)])
        cls.addClassCleanup(cls.nginx.cleanup)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n%s\n" % self.nginx.log())
        return out

    def ws_from(self, source, port=None, version=V311):
        """A paho client over WebSocket from @source (via nginx unless @port), connected."""
        c = h.Paho(port or self.nginx.port, version, self.uid())
        self.addCleanup(c.close)
        kw = {"clean_start": True} if version == V5 else {}
        c.c.connect(HOST, port or self.nginx.port, 60, bind_address=source, **kw)
        c.c.loop_start()
        c.started = True
        rc = c.connack.get(timeout=TIMEOUT)[0]
        self.assertEqual(getattr(rc, "value", rc), 0)
        return c


class NginxTest(ProxyCase):
    bridge_config = {"trusted_proxies": ["127.0.0.1"], "sse": {"heartbeat_s": 1}}

    def setUp(self):
        self.pub = self.observer(V5)

    def test_mqtt_over_websocket_byte_for_byte(self):
        topic = self.topic("ws")
        payload = bytes(range(256)) + os.urandom(100 * 1024) + b"\x00end"
        for version in (V311, V5):
            with self.subTest(version=version):
                c = h.make_client(self.nginx.port, version, self.uid())
                self.addCleanup(c.close)
                self.assertEqual(c.subscribe(topic, 1), [1])
                c.publish(topic, payload, 1)
                msg = c.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, payload, 1))
                # from the broker's side too
                self.pub.subscribe(topic, 1)
                c.publish(topic, payload[::-1], 1)
                self.assertEqual(self.pub.get().payload, payload[::-1])
                self.assertEqual(c.get().payload, payload[::-1])
                self.pub.unsubscribe(topic)
                c.disconnect()

    def test_rest_publish_and_health(self):
        status, _, body = request(self.nginx.port, "GET", "/api/v1/health")
        self.assertEqual(status, 200, body)
        topic = self.topic("rest")
        self.pub.subscribe(topic, 1)
        payload = os.urandom(200 * 1024)
        status, _, body = request(self.nginx.port, "POST",
                                  "/api/v1/publish/%s?qos=1" % topic, payload)
        self.assertEqual(status, 200, body)
        msg = self.pub.get()
        self.assertEqual((msg.topic, msg.payload), (topic, payload))

    def test_chunked_body_reaches_the_bridge_with_a_length(self):
        topic = self.topic("chunked")
        self.pub.subscribe(topic, 1)
        # straight to the bridge: refused, it does not read chunked bodies
        resp = self.raw_http(b"POST /api/v1/publish/%s HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n"
                             b"0\r\n\r\n" % topic.encode())
        self.assertEqual(resp.status, 411, resp)
        # through nginx, which reads the body whole first
        status, _, body = request(self.nginx.port, "POST", "/api/v1/publish/%s?qos=1" % topic,
                                  iter([b"abc", b"def"]))
        self.assertEqual(status, 200, body)
        self.assertEqual(self.pub.get().payload, b"abcdef")

    def test_keepalive_to_the_bridge(self):
        # many requests through nginx; its upstream keepalive reuses connections: the bridge
        # counts far fewer sockets than requests
        before = h.prom_samples(self.http("GET", "/metrics").body.decode())
        for _ in range(20):
            status, _, _ = request(self.nginx.port, "GET", "/api/v1/health")
            self.assertEqual(status, 200)
        after = h.prom_samples(self.http("GET", "/metrics").body.decode())
        self.assertGreaterEqual(after[("mwb_http_requests_total", "")]
                                - before[("mwb_http_requests_total", "")], 20)
        self.assertLessEqual(after[("mwb_sockets", "")], before[("mwb_sockets", "")] + 2)

    def test_stream_is_not_buffered(self):
        base = self.topic("sse")
        s = self.stream(base + "/#", port=self.nginx.port)
        # nginx takes the bridge's X-Accel-Buffering: no for itself and does not pass it on
        self.assertIsNone(s.header("X-Accel-Buffering"))
        self.sse_sync(s, self.pub, base + "/sync")
        # one small event must come through alone, not wait for a buffer to fill
        t0 = time.monotonic()
        self.pub.publish(base + "/m", b"21.5", 0)
        ev = s.next_event(timeout=2)
        self.assertEqual((ev.topic, ev.payload), (base + "/m", b"21.5"))
        self.assertLess(time.monotonic() - t0, 1.0)
        # heartbeats (sse.heartbeat_s 1) come through one by one as well: two within a few seconds
        # (a buffering proxy would hold them until its buffer filled; the bridge's once-a-second
        # tick may space them up to 2 s apart on a busy machine)
        n = len(s.comments)
        deadline = time.monotonic() + 6.0
        while len(s.comments) - n < 2 and time.monotonic() < deadline:
            s.read_for(0.5)
        self.assertGreaterEqual(len(s.comments) - n, 2, s.comments)

    def test_resume_through_nginx(self):
        base = self.topic("resume")
        s = self.stream(base + "/#", port=self.nginx.port)
        self.sse_sync(s, self.pub, base + "/sync")
        self.pub.publish(base + "/m", b"one", 1)
        last = s.next_event()
        s.close()
        hub = '{path="broker_to_hub"}'
        seen = h.metric(self.api_port, "mwb_messages_total", hub)
        for p in (b"two", b"three"):
            self.pub.publish(base + "/m", p, 1)
        # until both reached the bridge (and with them its replay ring)
        h.wait_until(lambda: h.metric(self.api_port, "mwb_messages_total", hub) >= seen + 2,
                     what="two and three at the bridge's hub")
        again = self.sse("/api/v1/stream?topic=" + h.quote_query(base + "/m"),
                         headers={"Last-Event-ID": last.id}, port=self.nginx.port)
        self.assertEqual(again.status, 200, again.response)
        self.assertEqual([e.payload for e in again.get_events(2)], [b"two", b"three"])

    def test_ws_session_logs_the_client_address(self):
        c = self.ws_from("127.0.0.3")
        self.round_trip(c)
        wait_log(self.stack.bridge, r"debug ws open peer=127\.0\.0\.3 ")
        # straight to the bridge from an untrusted address, a forged header is not read
        c2 = self.ws_from("127.0.0.4", port=self.api_port)
        self.round_trip(c2)
        wait_log(self.stack.bridge, r"debug ws open peer=127\.0\.0\.4 ")


class TrustedProxyRateTest(ProxyCase):
    """limits.requests_per_minute 2 per address (no auth): each client behind nginx has its own."""

    bridge_config = {"trusted_proxies": ["127.0.0.1", "::1"],
                     "limits": {"requests_per_minute": 2}}

    def publish(self, port, source, headers=None):
        return request(port, "POST", "/api/v1/publish/" + self.topic("rate"), b"x",
                       headers=headers, source=source)[0]

    def test_each_client_behind_the_proxy_has_its_own_limit(self):
        self.assertEqual([self.publish(self.nginx.port, "127.0.0.2") for _ in range(3)],
                         [200, 200, 429])
        wait_log(self.stack.bridge, r"refused status=429 peer=127\.0\.0\.2 ")
        # another host behind the same proxy is not limited by the first one's requests
        self.assertEqual(self.publish(self.nginx.port, "127.0.0.3"), 200)
        # a client that names another address in X-Forwarded-For is still itself: nginx
        # appends the address it saw, and that one is not trusted
        self.assertEqual([self.publish(self.nginx.port, "127.0.0.6",
                                       {"X-Forwarded-For": "127.0.0.%d" % (10 + i)})
                          for i in range(3)], [200, 200, 429])
        self.assertEqual(self.publish(self.nginx.port, "127.0.0.2",
                                      {"X-Forwarded-For": "127.0.0.99"}), 429)

    def test_headers_of_an_untrusted_peer_are_ignored(self):
        got = [self.publish(self.api_port, "127.0.0.5",
                            {"X-Forwarded-For": "198.51.100.%d" % i,
                             "Forwarded": "for=198.51.100.%d" % i}) for i in range(3)]
        self.assertEqual(got, [200, 200, 429])
        wait_log(self.stack.bridge, r"refused status=429 peer=127\.0\.0\.5 ")

    def test_forwarded_header_from_a_trusted_peer(self):
        fwd = {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}
        got = [self.publish(self.api_port, "127.0.0.1", fwd) for _ in range(3)]
        self.assertEqual(got, [200, 200, 429])
        wait_log(self.stack.bridge, r"refused status=429 peer=2001:db8::7 ")
        self.assertEqual(self.publish(self.api_port, "127.0.0.1",
                                      {"Forwarded": "for=192.0.2.8"}), 200)
        # X-Forwarded-For wins over Forwarded when both are there
        both = {"X-Forwarded-For": "192.0.2.9", "Forwarded": 'for="[2001:db8::7]"'}
        self.assertEqual(self.publish(self.api_port, "127.0.0.1", both), 200)

    def test_garbage_names_the_proxy(self):
        # an unparseable hop: the trusted peer that reported it is taken as the client
        bad = {"X-Forwarded-For": "<script>"}
        got = [self.publish(self.api_port, "127.0.0.1", bad) for _ in range(3)]
        self.assertEqual(got, [200, 200, 429])
        wait_log(self.stack.bridge, r"refused status=429 peer=127\.0\.0\.1 ")


if __name__ == "__main__":
    h.main()
