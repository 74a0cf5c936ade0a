"""Who gets in, and how much (doc/design.md §4, docs: "Limits"): the WebSocket Origin allow-list,
answered 403 before the upgrade, next to REST's CORS check; limits.max_connections over every
kind of connection (WebSocket, SSE, plain HTTP), answered 503 with Retry-After for a request and
for an upgrade, while the connections in place keep working and a closed one makes room;
limits.requests_per_minute per token (or per address without auth), 429 with Retry-After, one
token's use not touching another's; 413 over max_body_bytes with a token; slow clients cut off
(headers trickled a byte a second, a WebSocket with no CONNECT, a CONNECT trickled a byte a
second); an answer given before the body is read (413, 401, 403, 429) reaching a client that
writes its whole body before it reads. After each, the bridge still serves others, and its log
(-v) shows no secret. Bridge only."""

import hashlib
import http.client
import os
import secrets
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V5, quote_query, quote_topic  # noqa: E402

GOOD = "http://good.example"
EVIL = "http://evil.example"
SECRETS = {name: "mwb_" + secrets.token_urlsafe(32) for name in ("alice", "bob", "carol")}


def tokens():
    return [{"name": n, "sha256": hashlib.sha256(s.encode()).hexdigest(),
             "publish": ["mwbtest/#"], "subscribe": ["mwbtest/#"]} for n, s in SECRETS.items()]


def bearer(name):
    return {"Authorization": "Bearer " + SECRETS[name]}


class LimitsCase(h.ApiCase):

    def still_serving(self):
        """Health answers and a WebSocket client still publishes and receives. (A raw client:
        paho sends an Origin of its own, which OriginTest's list does not have.)"""
        resp = self.http("GET", "/api/v1/health")
        self.assertEqual(resp.status, 200, resp)
        conn = self.raw()
        topic = self.topic("alive")
        payload = os.urandom(16)
        conn.send(r.subscribe(1, [(topic, 1)]))
        self.assertEqual(conn.expect(r.SUBACK).codes, [1])
        conn.send(r.publish(topic, payload, qos=1, pid=2))
        got = {}
        for _ in range(2):
            p = conn.recv()
            got[p.type] = p
        self.assertEqual(set(got), {r.PUBACK, r.PUBLISH}, got)
        self.assertEqual(got[r.PUBLISH].payload, payload)

    def metrics(self, headers=None):
        resp = self.http("GET", "/metrics", headers=headers)
        self.assertEqual(resp.status, 200, resp)
        return h.prom_samples(resp.body.decode())

    def upgrade(self, path="/mqtt", origin=None):
        headers = {"Origin": origin} if origin else None
        w = r.WSClient(h.HOST, self.api_port, path=path, headers=headers)
        self.addCleanup(w.close)
        return w

    def assert_upgrade_refused(self, status, code, **kw):
        with self.assertRaises(r.HandshakeError) as cm:
            self.upgrade(**kw)
        e = cm.exception
        self.assertEqual(e.status, status, e.body)
        self.assertEqual(e.headers.get("content-type"), "application/json", e.headers)
        self.assertIn(b'"code":"%s"' % code.encode(), e.body)
        self.assertNotIn("upgrade", e.headers.get("connection", "").lower())
        return e


class OriginTest(LimitsCase):
    bridge_config = {"allowed_origins": [GOOD]}

    def test_websocket_origin_allowed_refused_absent(self):
        # allowed, and absent (not a browser): upgraded, and MQTT works over it
        for origin in (GOOD, None):
            with self.subTest(origin=origin):
                conn = r.MQTTConn(self.upgrade(origin=origin), r.V311)
                conn.send(r.connect(self.uid()))
                self.assertEqual(conn.expect(r.CONNACK).rc, 0)
        # another site, a sandboxed page ("null"), a look-alike: 403 before the upgrade
        for origin in (EVIL, "null", GOOD + ".evil.example", "http://GOOD.example:80"):
            with self.subTest(origin=origin):
                self.assert_upgrade_refused(403, "origin_not_allowed", origin=origin)
        self.assertGreaterEqual(
            self.metrics()[("mwb_connections_refused_total", '{reason="origin"}')], 4)
        self.still_serving()

    def test_upgrade_elsewhere_than_mqtt_is_404_before_upgrade(self):
        self.assert_upgrade_refused(404, "not_found", path="/api/v1/stream")
        self.assert_upgrade_refused(404, "not_found", path="/mqttx")
        self.still_serving()

    def test_rest_cors_uses_the_same_list(self):
        resp = self.http("GET", "/api/v1/health", headers={"Origin": GOOD})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.header("Access-Control-Allow-Origin"), GOOD)
        self.assert_error(self.http("GET", "/api/v1/health", headers={"Origin": EVIL}), 403,
                          "origin_not_allowed")
        resp = self.http("GET", "/api/v1/health")
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.header("Access-Control-Allow-Origin"), resp)
        self.assertGreaterEqual(self.metrics()[("mwb_http_refused_total", '{reason="origin"}')],
                                1)


class MaxConnectionsTest(LimitsCase):
    LIMIT = 4
    bridge_config = {"limits": {"max_connections": LIMIT}}

    def sockets(self):
        return self.metrics()[("mwb_sockets", "")]

    def test_every_kind_counts_and_a_closed_one_makes_room(self):
        # the harness's own requests are gone: only the metrics request itself is open
        deadline = time.monotonic() + 5
        while self.sockets() != 1:
            self.assertLess(time.monotonic(), deadline, "connections linger")
            time.sleep(0.05)
        topic = self.topic()
        ws1, ws2 = self.paho(V5), self.paho(V5)                      # 2 WebSocket
        stream = self.stream(topic)                                 # 1 SSE
        keep = self.keepalive()                                     # 1 plain HTTP
        self.assertEqual(keep.request("GET", "/api/v1/health").status, 200)

        # full: a request is answered 503 with a reason and Retry-After, an upgrade too
        resp = self.http("GET", "/api/v1/health")
        self.assert_error(resp, 503, "too_many_connections")
        self.assertTrue((resp.header("Retry-After") or "").isdigit(), resp)
        resp = self.http("GET", "/")
        self.assert_error(resp, 503, "too_many_connections")
        e = self.assert_upgrade_refused(503, "too_many_connections")
        self.assertTrue(e.headers.get("retry-after", "").isdigit(), e.headers)
        with self.assertRaises(AssertionError):
            self.stream(topic)

        # those inside keep working
        self.sse_sync(stream, ws1, topic)
        payload = os.urandom(32)
        ws2.publish(topic, payload, 1)
        self.assertEqual(stream.next_event().payload, payload)
        self.round_trip(ws1)
        self.assertEqual(keep.request("GET", "/api/v1/health").status, 200)

        # one goes: a new one gets in
        ws2.close()
        deadline = time.monotonic() + 5
        while True:
            resp = self.http("GET", "/api/v1/health")
            if resp.status == 200:
                break
            self.assertLess(time.monotonic(), deadline, "no room after a close: %r" % resp)
            time.sleep(0.05)
        keep.close()
        stream.close()
        deadline = time.monotonic() + 5
        while True:
            try:
                self.round_trip(self.paho(V5))
                break
            except Exception:   # the closes above are seen by the bridge a moment later
                self.assertLess(time.monotonic(), deadline, "no room for a WebSocket")
                time.sleep(0.1)
        refused = self.metrics()[("mwb_connections_refused_total", '{reason="max_connections"}')]
        self.assertGreaterEqual(refused, 4)


class RateLimitTest(LimitsCase):
    RPM = 30   # a token every 2 s
    bridge_config = {"auth": {"mode": "tokens", "tokens": tokens()},
                     "limits": {"requests_per_minute": RPM, "max_body_bytes": 1024}}

    def publish(self, who, conn=None, topic="mwbtest/rate/t"):
        path = "/api/v1/publish/" + quote_topic(topic)
        if conn is not None:
            return conn.request("POST", path, b"x", bearer(who))
        return self.http("POST", path, b"x", bearer(who))

    def assert_429(self, resp):
        self.assert_error(resp, 429, "rate_limited")
        ra = resp.header("Retry-After")
        self.assertTrue(ra and ra.isdigit(), resp)
        self.assertTrue(1 <= int(ra) <= 60 // self.RPM, resp)
        return int(ra)

    def test_per_token_burst_then_429_other_tokens_untouched(self):
        k = self.keepalive()
        for i in range(self.RPM):
            self.assertEqual(self.publish("alice", k).status, 200, i)
        wait = self.assert_429(self.publish("alice", k))
        self.assert_429(self.publish("alice"))
        # another token, health, and metrics are not alice's budget
        self.assertEqual(self.publish("bob").status, 200)
        for _ in range(5):
            self.assertEqual(self.http("GET", "/api/v1/health").status, 200)
        self.metrics()
        # a refused request took nothing: after Retry-After, exactly one more goes through
        # (a refused POST's body was not read: its connection closed, so a new one)
        time.sleep(wait + 0.2)   # the rate limit's window must pass (the point)
        self.assertEqual(self.publish("alice").status, 200)
        self.assert_429(self.publish("alice"))
        self.assertGreaterEqual(self.metrics()[("mwb_http_refused_total",
                                                '{reason="rate_limited"}')], 3)

    def test_a_stream_counts_once_when_opened(self):
        topic = "mwbtest/rate/stream"
        pub = self.observer(V5)
        s = self.stream(topic, headers=bearer("carol"))
        for i in range(self.RPM - 1):
            self.assertEqual(self.publish("carol", topic=topic).status, 200, i)
        self.assert_429(self.publish("carol"))
        refused = self.sse("/api/v1/stream?topic=" + quote_query(topic), headers=bearer("carol"))
        self.assert_429(refused.response)
        # the open stream is not cut: it goes on delivering
        self.sse_sync(s, pub, topic)

    def test_body_too_large_with_a_token(self):
        resp = self.http("POST", "/api/v1/publish/mwbtest/rate/big", b"x" * 2000,
                         {"Authorization": "Bearer " + SECRETS["bob"]})
        self.assert_error(resp, 413, "body_too_large")

    def test_zz_still_serving_and_no_secret_logged(self):
        self.still_serving()
        with open(self.stack.bridge.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertIn("status=429", log)
        for s in SECRETS.values():
            self.assertNotIn(s, log)
            self.assertNotIn(quote_query(s), log)


class RateLimitByAddressTest(LimitsCase):
    """Without auth, the budget is the client address's: 127.0.0.2 is another client."""
    bridge_config = {"limits": {"requests_per_minute": 3}}

    def get_from(self, source):
        c = http.client.HTTPConnection(h.HOST, self.api_port, timeout=h.TIMEOUT,
                                       source_address=(source, 0))
        try:
            return h.http_request(None, "POST", "/api/v1/publish/mwbtest/addr", b"x", conn=c)
        finally:
            c.close()

    def test_per_address(self):
        for _ in range(3):
            self.assertEqual(self.get_from("127.0.0.1").status, 200)
        self.assert_error(self.get_from("127.0.0.1"), 429, "rate_limited")
        self.assertEqual(self.get_from("127.0.0.2").status, 200)
        # health is not rate limited
        self.assertEqual(self.http("GET", "/api/v1/health").status, 200)


def write_all_then_read(port, method, path, body, headers=None):
    """What http.client and requests do: the head and the whole @body in one sendall(), and only
    then the answer is read. A server that answers early and closes at once resets the
    connection under the body, and the client sees a broken pipe instead of the answer."""
    head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (method, path, len(body))
    head += "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    sock = socket.create_connection((h.HOST, port), timeout=h.TIMEOUT)
    got = b""
    try:
        try:
            sock.sendall(head.encode() + b"\r\n" + body)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise AssertionError("the bridge closed the connection under the body (%s)" % e)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError as e:
                raise AssertionError("reset before a complete answer (%s); got %r"
                                     % (e, got[:300]))
            resp = h.api._parse_response(got + chunk, eof=not chunk)
            if resp is not None:
                return resp
            if not chunk:
                raise AssertionError("closed before a complete answer: %r" % got[:300])
            got += chunk
    finally:
        sock.close()


def client_write_all_then_read(port, method, path, body, headers=None):
    """The same with Python's http.client, as a script would."""
    conn = http.client.HTTPConnection(h.HOST, port, timeout=h.TIMEOUT)
    try:
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
        except (BrokenPipeError, ConnectionResetError) as e:
            raise AssertionError("the bridge closed the connection under the body (%s)" % e)
        resp = conn.getresponse()
        return h.HttpResponse(resp.status, resp.reason, resp.getheaders(), resp.read())
    finally:
        conn.close()


class EarlyAnswerBodyTooLargeTest(LimitsCase):
    """An answer given before the body is read (413 from the declared Content-Length) reaches a
    client that writes its whole body first: the bridge reads and discards that body before it
    closes (a lingering close), instead of resetting the connection under it."""
    bridge_config = {"limits": {"max_body_bytes": 1024}}
    BODY = 4 * 1024 * 1024   # several MB over the limit: more than the sockets' buffers hold

    def test_413_reaches_a_client_that_writes_the_body_first(self):
        obs = self.quiet_observer()
        path = "/api/v1/publish/%s?qos=1" % self.topic()
        body = os.urandom(self.BODY)
        for send in (write_all_then_read, client_write_all_then_read):
            with self.subTest(client=send.__name__):
                resp = send(self.api_port, "POST", path, body)
                self.assert_error(resp, 413, "body_too_large")
                self.assertEqual((resp.header("Connection") or "").lower(), "close", resp)
        resp = client_write_all_then_read(self.api_port, "PUT", "/api/v1/topics/" + self.topic(),
                                          body)
        self.assert_error(resp, 413, "body_too_large")
        obs.assert_no_message()
        self.still_serving()

    def closed_after(self, declared):
        """Seconds until the bridge closes a connection whose head declared @declared bytes of
        body, of which the client sends only a little and then waits, its 413 read."""
        # (a read may wait the whole linger, 5 s, and more on a busy machine: past the 8 s bound)
        sock = socket.create_connection((h.HOST, self.api_port), timeout=3 * h.TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(b"POST /api/v1/publish/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     % (self.topic().encode(), declared) + b"z" * 1000)
        t0, got = time.monotonic(), b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            got += chunk
        self.assertTrue(got.startswith(b"HTTP/1.1 413 "), got[:100])
        return time.monotonic() - t0

    def test_the_linger_is_bounded(self):
        # a body that stops coming is waited for about 5 s, one of over 8 MiB not at all
        self.assertTrue(4.0 <= self.closed_after(2 * 1024 * 1024) <= 8.0)
        self.assertLess(self.closed_after(64 * 1024 * 1024), 1.0)
        self.still_serving()


class EarlyAnswerRefusedTest(LimitsCase):
    """The same for the other answers given before the body is read, with a body under
    limits.max_body_bytes: 401 (no token, an unknown one), 403 (an origin not allowed) and 429."""
    RPM = 2
    bridge_config = {"auth": {"mode": "tokens", "tokens": tokens()},
                     "allowed_origins": [GOOD],
                     "limits": {"requests_per_minute": RPM, "max_body_bytes": 8 * 1024 * 1024}}
    BODY = 4 * 1024 * 1024

    def refused(self, status, code, headers):
        path = "/api/v1/publish/mwbtest/linger/%s" % code
        for send in (write_all_then_read, client_write_all_then_read):
            with self.subTest(status=status, client=send.__name__):
                resp = send(self.api_port, "POST", path, os.urandom(self.BODY), headers)
                self.assert_error(resp, status, code)

    def test_401_403_429_reach_a_client_that_writes_the_body_first(self):
        obs = self.quiet_observer("mwbtest/linger/#")
        self.refused(401, "unauthorized", None)
        self.refused(401, "invalid_token", {"Authorization": "Bearer mwb_not_a_token"})
        self.refused(403, "origin_not_allowed", dict(bearer("alice"), Origin=EVIL))
        for _ in range(self.RPM):
            self.assertEqual(self.http("POST", "/api/v1/publish/mwbtest/linger/ok", b"x",
                                       bearer("bob")).status, 200)
        self.refused(429, "rate_limited", bearer("bob"))
        # only the requests let in were published
        for _ in range(self.RPM):
            self.assertEqual(obs.get().topic, "mwbtest/linger/ok")
        obs.assert_no_message()
        self.still_serving()


@h.unittest.skipIf(h.SESSIONS == "dedicated", "no MQTT session is made here: the run in the "
                   "default mqtt_sessions covers it")
class SlowClientTest(LimitsCase):
    """Three slow clients side by side, each fed a byte a second: all are cut off after about
    10 s, while others are served meanwhile."""

    def test_slow_clients_are_cut_off(self):
        started = time.monotonic()
        header = socket.create_connection((h.HOST, self.api_port), timeout=h.TIMEOUT)
        self.addCleanup(header.close)
        header.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        silent = self.upgrade()
        trickle = self.upgrade()
        connect = r.connect(self.uid(), keepalive=60)
        conns = {"headers": (header, lambda i: header.sendall(b"a")),
                 "no CONNECT": (silent.sock, None),
                 "CONNECT trickled": (trickle.sock,
                                      lambda i: trickle.send_binary(connect[i % len(connect):
                                                                            i % len(connect) + 1]))}
        closed = {}
        i = 0
        while len(closed) < len(conns) and time.monotonic() - started < 20:
            time.sleep(1.0)   # a byte a second: the slowness is the point
            for name, (sock, feed) in conns.items():
                if name in closed:
                    continue
                try:
                    if feed:
                        feed(i)
                    sock.setblocking(False)
                    try:
                        while True:
                            data = sock.recv(4096)
                            if not data:
                                raise ConnectionResetError
                    except BlockingIOError:
                        pass
                    finally:
                        sock.setblocking(True)
                except (ConnectionResetError, BrokenPipeError, OSError):
                    closed[name] = time.monotonic() - started
            i += 1
            if i == 5:
                # meanwhile, others are served
                self.still_serving()
        sys.stderr.write("cut off after (s): %r\n" % {k: round(v, 1) for k, v in closed.items()})
        self.assertEqual(set(closed), set(conns), "still open after 20 s: %r" % closed)
        for name, t in closed.items():
            self.assertTrue(8.0 <= t <= 14.0, "%s cut off after %.1f s" % (name, t))
        self.still_serving()
        # both WebSockets ended waiting for their CONNECT, and /metrics says so
        self.assertEqual(self.metrics()[("mwb_disconnects_total", '{reason="connect_timeout"}')],
                         2)


if __name__ == "__main__":
    h.main()
