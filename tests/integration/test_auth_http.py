"""Access tokens on the HTTP side (doc/design.md §4, docs: "Access tokens"): with auth.mode "tokens"
every /api/v1 request but /health needs "Authorization: Bearer SECRET" or "?access_token=SECRET"
(401 and WWW-Authenticate otherwise); publishes, retained writes and requests need the token's
publish ACL, retained reads, topic lists and streams its subscribe ACL (403 forbidden, naming the
topic or filter); "{name}" in an ACL is the token's name; /metrics needs a token only with
auth.metrics "token"; a CORS preflight needs none. What is allowed is delivered byte for byte to
paho observers on Mosquitto's TCP port, and what is refused reaches nobody. The secrets are made
here at random, the config holds their SHA-256, and the bridge's log (run with -v: every level)
never shows one. Bridge only."""

import hashlib
import json
import os
import queue
import secrets
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import V5, PacketTypes, quote_query, quote_topic  # noqa: E402

ALICE = "mwb_" + secrets.token_urlsafe(32)
BOB = "mwb_" + secrets.token_urlsafe(32)
UNKNOWN = "mwb_" + secrets.token_urlsafe(32)
SECRETS = (ALICE, BOB, UNKNOWN)
REALM = 'Bearer realm="mqtt-web-bridge"'
JSON = {"Content-Type": "application/json"}


def sha256(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def tokens():
    return [
        {"name": "alice", "sha256": sha256(ALICE),
         "publish": ["mwbtest/pub/#", "mwbtest/{name}/#", "mwbtest/req/#"],
         "subscribe": ["mwbtest/sub/#", "mwbtest/{name}/#"]},
        {"name": "bob", "sha256": sha256(BOB),
         "publish": ["mwbtest/{name}/#"], "subscribe": ["mwbtest/{name}/#"]},
    ]


def bearer(secret):
    return {"Authorization": "Bearer " + secret}


def assert_no_secret(case, text):
    """None of the test's secrets (raw or percent-encoded) in @text (bytes or str)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for s in SECRETS:
        for form in (s, quote_query(s), s[4:]):
            case.assertNotIn(form, text)


class AuthCase(h.ApiCase):

    def space(self, area, name=None):
        """A fresh topic under mwbtest/@area/ (or mwbtest/@name/ for the {name} ACLs)."""
        return "mwbtest/%s/%s/t" % (area if name is None else name, self.uid("x"))

    def publish(self, topic, body=b"p", headers=None, query=""):
        return self.http("POST", "/api/v1/publish/" + quote_topic(topic) + query, body, headers)

    def assert_401(self, resp, offered):
        if offered:
            err = self.assert_error(resp, 401, "invalid_token")
            self.assertEqual(resp.header("WWW-Authenticate"), REALM + ', error="invalid_token"',
                             resp)
        else:
            err = self.assert_error(resp, 401, "unauthorized")
            self.assertEqual(resp.header("WWW-Authenticate"), REALM, resp)
        assert_no_secret(self, resp.body)
        return err

    def assert_403(self, resp, what):
        err = self.assert_error(resp, 403, "forbidden")
        self.assertIn("'%s'" % what, err["message"], resp)
        assert_no_secret(self, resp.body)
        return err

    def assert_ok(self, resp):
        self.assertEqual(resp.status, 200, resp)
        assert_no_secret(self, resp.body)
        return resp


class AuthHttpTest(AuthCase):
    bridge_config = {"auth": {"mode": "tokens", "tokens": tokens(), "metrics": "token"}}

    def requests(self, topic):
        """(name, method, path, body, headers) of every guarded endpoint, about @topic."""
        q = quote_topic(topic)
        return [
            ("publish raw", "POST", "/api/v1/publish/" + q, b"x", {}),
            ("publish json", "POST", "/api/v1/publish",
             json.dumps({"topic": topic, "payload": "x"}).encode(), JSON),
            ("retained read", "GET", "/api/v1/topics/" + q, None, {}),
            ("retained list", "GET", "/api/v1/topics?filter=" + quote_query(topic), None, {}),
            ("retained set", "PUT", "/api/v1/topics/" + q, b"x", {}),
            ("retained clear", "DELETE", "/api/v1/topics/" + q, None, {}),
            ("request", "POST", "/api/v1/request/" + q + "?timeout_ms=200", b"x", {}),
            ("stream", "GET", "/api/v1/stream?topic=" + quote_query(topic), None, {}),
            ("metrics", "GET", "/metrics", None, {}),
        ]

    def call(self, method, path, body, headers, query=None):
        if query:
            path += ("&" if "?" in path else "?") + query
        if path.startswith("/api/v1/stream"):
            s = self.sse(path, headers=headers)
            if s.status == 200:
                s.close()
                return h.HttpResponse(200, "OK", s.headers, b"")
            return s.response
        return self.http(method, path, body, headers)

    def test_no_token_is_401_everywhere_and_nothing_is_sent(self):
        topic = self.space("pub")
        quiet = self.quiet_observer("mwbtest/#")
        for name, method, path, body, headers in self.requests(topic):
            with self.subTest(endpoint=name):
                self.assert_401(self.call(method, path, body, headers), offered=False)
        quiet.assert_no_message()

    def test_unknown_token_is_401_invalid_token_in_header_and_query(self):
        topic = self.space("pub")
        quiet = self.quiet_observer("mwbtest/#")
        for name, method, path, body, headers in self.requests(topic):
            with self.subTest(endpoint=name, via="header"):
                self.assert_401(self.call(method, path, body, dict(headers, **bearer(UNKNOWN))),
                                offered=True)
            with self.subTest(endpoint=name, via="query"):
                self.assert_401(self.call(method, path, body, headers,
                                          "access_token=" + quote_query(UNKNOWN)), offered=True)
        quiet.assert_no_message()

    def test_other_schemes_and_empty_bearer_are_no_token(self):
        topic = self.space("pub")
        for value in ("Basic " + UNKNOWN, "Bearer", "Token " + ALICE):
            with self.subTest(authorization=value.split(" ")[0]):
                self.assert_401(self.publish(topic, headers={"Authorization": value}),
                                offered=False)

    def test_bearer_scheme_is_case_insensitive_and_spaces_are_trimmed(self):
        obs = self.observer(V5)
        topic = self.space("pub")
        obs.subscribe(topic, 1)
        self.assert_ok(self.publish(topic, b"case", {"Authorization": "bEaReR   %s  " % ALICE}))
        self.assertEqual(obs.get().payload, b"case")

    def test_health_is_open(self):
        for headers in ({}, bearer(UNKNOWN)):
            resp = self.http("GET", "/api/v1/health", headers=headers)
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json()["status"], "ok")

    def test_header_and_query_token_both_deliver(self):
        obs = self.observer(V5)
        topic = self.space("pub")
        obs.subscribe(topic, 1)
        payload = os.urandom(64)
        self.assert_ok(self.publish(topic, payload, bearer(ALICE), "?qos=1"))
        self.assertEqual(obs.get().payload, payload)
        self.assert_ok(self.publish(topic, payload[::-1], None,
                                    "?qos=1&access_token=" + quote_query(ALICE)))
        self.assertEqual(obs.get().payload, payload[::-1])

    def test_the_header_wins_over_the_query(self):
        obs = self.observer(V5)
        topic = self.space("pub")
        obs.subscribe(topic, 1)
        self.assert_ok(self.publish(topic, b"h", bearer(ALICE),
                                    "?access_token=" + quote_query(UNKNOWN)))
        self.assertEqual(obs.get().payload, b"h")
        self.assert_401(self.publish(topic, b"q", bearer(UNKNOWN),
                                     "?access_token=" + quote_query(ALICE)), offered=True)
        obs.assert_no_message()

    def test_raw_publish_outside_the_acl_is_403(self):
        quiet = self.quiet_observer("mwbtest/#")
        for topic in (self.space("sub"), self.space("other"), "mwbtest/pubx/t", "mwbtest"):
            with self.subTest(topic=topic):
                self.assert_403(self.publish(topic, b"no", bearer(ALICE)), topic)
        quiet.assert_no_message()

    def test_json_publish_one_forbidden_message_is_403(self):
        quiet = self.quiet_observer("mwbtest/#")
        topic = self.space("sub")
        resp = self.http("POST", "/api/v1/publish",
                         json.dumps({"topic": topic, "payload": "no"}).encode(),
                         dict(JSON, **bearer(ALICE)))
        self.assert_403(resp, topic)
        quiet.assert_no_message()

    def test_json_batch_answers_403_per_message_and_sends_the_rest(self):
        obs = self.quiet_observer("mwbtest/#")
        ok1, bad, ok2 = self.space("pub"), self.space("bob"), self.space("alice", "alice")
        batch = [{"topic": ok1, "payload": "one", "qos": 1},
                 {"topic": bad, "payload": "two", "qos": 1},
                 {"topic": ok2, "payload": "three", "qos": 1}]
        resp = self.assert_ok(self.http("POST", "/api/v1/publish", json.dumps(batch).encode(),
                                        dict(JSON, **bearer(ALICE))))
        results = resp.json()["results"]
        self.assertEqual([r["ok"] for r in results], [True, False, True], resp)
        self.assertEqual(results[1]["error"]["code"], "forbidden", resp)
        self.assertIn(bad, results[1]["error"]["message"], resp)
        got = sorted((m.topic, m.payload) for m in obs.get_n(2))
        self.assertEqual(got, sorted([(ok1, b"one"), (ok2, b"three")]))
        obs.assert_no_message()

    def test_name_substitution(self):
        obs = self.quiet_observer("mwbtest/#")
        mine_a, mine_b = self.space(None, "alice"), self.space(None, "bob")
        self.assert_ok(self.publish(mine_a, b"a", bearer(ALICE)))
        self.assert_ok(self.publish(mine_b, b"b", bearer(BOB)))
        self.assertEqual(sorted((m.topic, m.payload) for m in obs.get_n(2)),
                         sorted([(mine_a, b"a"), (mine_b, b"b")]))
        # each one's {name} space is not the other's, and "{name}" is not a literal level
        self.assert_403(self.publish(mine_b, b"x", bearer(ALICE)), mine_b)
        self.assert_403(self.publish(mine_a, b"x", bearer(BOB)), mine_a)
        self.assert_403(self.publish("mwbtest/{name}/t", b"x", bearer(BOB)), "mwbtest/{name}/t")
        obs.assert_no_message()
        # bob may stream his own space and not alice's
        s = self.stream("mwbtest/bob/#", headers=bearer(BOB))
        self.sse_sync(s, self.observer(V5), mine_b)
        self.assert_403(self.sse("/api/v1/stream?topic=" + quote_query("mwbtest/alice/#"),
                                 headers=bearer(BOB)).response, "mwbtest/alice/#")

    def test_retained_set_clear_read_and_list(self):
        obs = self.observer(V5)
        inside = self.space("sub")
        mine = self.space(None, "alice")
        # PUT/DELETE publish: they need the publish ACL ("mwbtest/sub/#" is read-only for alice)
        self.assert_403(self.http("PUT", "/api/v1/topics/" + quote_topic(inside), b"v",
                                  bearer(ALICE)), inside)
        self.assert_403(self.http("DELETE", "/api/v1/topics/" + quote_topic(inside), None,
                                  bearer(ALICE)), inside)
        obs.publish(inside, b"retained value", 1, retain=True)
        self.addCleanup(lambda: obs.publish(inside, b"", 1, retain=True))
        self.assert_ok(self.http("PUT", "/api/v1/topics/" + quote_topic(mine) + "?qos=1",
                                 b"mine", bearer(ALICE)))
        self.addCleanup(lambda: obs.publish(mine, b"", 1, retain=True))
        # reads need the subscribe ACL
        resp = self.assert_ok(self.http("GET", "/api/v1/topics/" + quote_topic(inside),
                                        headers=bearer(ALICE)))
        self.assertEqual(resp.body, b"retained value")
        resp = self.assert_ok(self.http("GET", "/api/v1/topics/" + quote_topic(mine),
                                        headers=bearer(ALICE)))
        self.assertEqual(resp.body, b"mine")
        self.assert_403(self.http("GET", "/api/v1/topics/" + quote_topic(inside),
                                  headers=bearer(BOB)), inside)
        prefix = inside.rsplit("/", 1)[0]
        resp = self.assert_ok(self.http("GET", "/api/v1/topics?filter=" + quote_query(prefix + "/#"),
                                        headers=bearer(ALICE)))
        self.assertEqual([m["topic"] for m in resp.json()["messages"]], [inside], resp)
        for f in ("#", "mwbtest/#", "+/sub/#", "mwbtest/+/x"):
            with self.subTest(filter=f):
                self.assert_403(self.http("GET", "/api/v1/topics?filter=" + quote_query(f),
                                          headers=bearer(ALICE)), f)
        # no filter means "#": refused for a token that may not read everything
        self.assert_403(self.http("GET", "/api/v1/topics", headers=bearer(ALICE)), "#")
        self.assert_ok(self.http("DELETE", "/api/v1/topics/" + quote_topic(mine), None,
                                 bearer(ALICE)))

    def test_stream_filters_must_lie_inside_the_acl(self):
        pub = self.observer(V5)
        base = self.space("sub").rsplit("/", 1)[0]
        # "mwbtest/sub/X/+/temp" lies inside "mwbtest/sub/#": allowed, and it delivers
        s = self.stream(base + "/+/temp", headers=bearer(ALICE))
        sync_topic = base + "/sync/temp"
        self.sse_sync(s, pub, sync_topic)
        payload = os.urandom(48)
        pub.publish(base + "/kitchen/temp", payload, 1)
        ev = s.next_event()
        self.assertEqual((ev.topic, ev.payload), (base + "/kitchen/temp", payload))
        # the EventSource way: the token in the query
        q = self.stream(base + "/#", query="access_token=" + quote_query(ALICE))
        self.sse_sync(q, pub, sync_topic)
        # not wholly inside: refused, naming the filter, even next to allowed ones
        for filters in (["#"], ["mwbtest/#"], ["+/sub/#"], [base + "/#", "mwbtest/pub/#"],
                        ["$share/g/mwbtest/#"], ["$share/g/#"]):
            with self.subTest(filters=filters):
                path = "/api/v1/stream?" + "&".join("topic=" + quote_query(f) for f in filters)
                refused = self.sse(path, headers=bearer(ALICE))
                self.assertIsNotNone(refused.response, "stream opened for %r" % filters)
                bad = [f for f in filters if not f.startswith(base)][0]
                self.assert_403(refused.response, bad)

    def test_request_needs_the_publish_acl(self):
        topic = self.space("req")
        responder = self.observer(V5)
        responder.subscribe(topic, 1)
        stop = threading.Event()

        def answer():
            while not stop.is_set():
                try:
                    m = responder.messages.get(timeout=0.05)
                except queue.Empty:
                    continue
                rt = getattr(m.properties, "ResponseTopic", None)
                corr = getattr(m.properties, "CorrelationData", None)
                if rt:
                    responder.c.publish(rt, b"reply:" + m.payload, 1, properties=h.props(
                        PacketTypes.PUBLISH, CorrelationData=corr))
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        self.addCleanup(t.join, 2)
        self.addCleanup(stop.set)
        resp = self.assert_ok(self.http("POST", "/api/v1/request/" + quote_topic(topic), b"ping",
                                        bearer(ALICE)))
        self.assertEqual(resp.body, b"reply:ping")
        outside = self.space("sub")
        self.assert_403(self.http("POST", "/api/v1/request/" + quote_topic(outside), b"ping",
                                  bearer(ALICE)), outside)
        self.assert_403(self.http("POST", "/api/v1/request/" + quote_topic(topic), b"ping",
                                  bearer(BOB)), topic)

    def test_metrics_need_a_token_here(self):
        self.assert_401(self.http("GET", "/metrics"), offered=False)
        self.assert_401(self.http("GET", "/metrics", headers=bearer(UNKNOWN)), offered=True)
        # any valid token, whatever its ACL
        for secret in (ALICE, BOB):
            resp = self.assert_ok(self.http("GET", "/metrics", headers=bearer(secret)))
            samples = h.prom_samples(resp.body.decode())
            self.assertIn(("mwb_http_refused_total", '{reason="unauthorized"}'), samples)

    def test_refusals_are_counted(self):
        def refused():
            text = self.http("GET", "/metrics", headers=bearer(ALICE)).body.decode()
            s = h.prom_samples(text)
            return (s[("mwb_http_refused_total", '{reason="unauthorized"}')],
                    s[("mwb_http_refused_total", '{reason="forbidden"}')])
        before = refused()
        topic = self.space("sub")
        self.publish(topic)
        self.publish(topic, headers=bearer(UNKNOWN))
        self.publish(topic, headers=bearer(ALICE))
        after = refused()
        self.assertEqual((after[0] - before[0], after[1] - before[1]), (2, 1))

    def test_preflight_needs_no_token_and_allows_authorization(self):
        resp = self.http("OPTIONS", "/api/v1/publish/mwbtest/pub/x",
                         headers={"Origin": "http://page.example",
                                  "Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "authorization"})
        self.assertIn(resp.status, (200, 204), resp)
        self.assertIn("authorization", (resp.header("Access-Control-Allow-Headers") or "").lower(),
                      resp)
        # the refusal itself carries CORS headers: the page can read why, and Retry-After
        resp = self.http("POST", "/api/v1/publish/mwbtest/pub/x", b"x",
                         {"Origin": "http://page.example"})
        self.assert_401(resp, offered=False)
        self.assertIsNotNone(resp.header("Access-Control-Allow-Origin"), resp)
        self.assertIn("www-authenticate",
                      (resp.header("Access-Control-Expose-Headers") or "").lower(), resp)

    def test_keep_alive_after_refusals(self):
        """401 and 403 answers leave a keep-alive connection usable (no body was pending)."""
        k = self.keepalive()
        topic = self.space("pub")
        self.assert_401(k.request("GET", "/api/v1/topics/" + quote_topic(topic)), offered=False)
        self.assert_403(k.request("GET", "/api/v1/topics/" + quote_topic(topic),
                                  headers=bearer(BOB)), topic)
        self.assertEqual(k.request("GET", "/api/v1/health").status, 200)

    def test_zz_log_shows_no_secret(self):
        """Runs last (by name): every secret has been sent by now, in headers and queries."""
        # one more of each kind, so that this test stands on its own too
        self.publish("mwbtest/pub/zz", headers=bearer(UNKNOWN))
        self.publish("mwbtest/pub/zz", query="?access_token=" + quote_query(UNKNOWN))
        self.publish("mwbtest/pub/zz", query="?access_token=" + quote_query(ALICE))
        self.sse("/api/v1/stream?topic=%23&access_token=" + quote_query(BOB)).close()
        # a check that something never appears: lines the bridge writes after its answers
        # (a connection's end) get this long to show (each refusal is logged before its answer)
        time.sleep(0.3)
        with open(self.stack.bridge.log_path, "rb") as f:
            log = f.read()
        self.assertIn(b"debug", log, "the bridge must run with -v for this check")
        self.assertIn(b"status=401", log)
        assert_no_secret(self, log)


class MetricsOpenTest(AuthCase):
    """auth.metrics "open" (the default): /metrics answers without a token, the API does not."""
    bridge_config = {"auth": {"mode": "tokens", "tokens": tokens()}}

    def test_metrics_open_api_guarded(self):
        resp = self.http("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        self.assertIn(b"mwb_http_refused_total", resp.body)
        self.assert_401(self.http("GET", "/api/v1/topics/mwbtest/sub/x"), offered=False)
        resp = self.http("GET", "/api/v1/health")
        self.assertEqual(resp.status, 200, resp)


class ReloadStreamsTest(AuthCase):
    """SIGHUP re-reads the tokens: an open stream whose token is gone, or whose filters its new
    ACL no longer covers, is closed; the others carry on under the new table."""
    bridge_config = {"auth": {"mode": "tokens", "tokens": tokens()}}

    def reload(self, token_list):
        cfg = dict(self.bridge_config, auth={"mode": "tokens", "tokens": token_list})
        with open(os.path.join(self.stack.bridge.dir, "config.json"), "w") as f:
            json.dump(h.with_sessions(cfg), f)   # MWB_SESSIONS stays
        os.kill(self.stack.bridge.pid, signal.SIGHUP)

    def test_sighup_moves_or_closes_streams(self):
        pub = self.observer(V5)
        a = self.stream("mwbtest/alice/#", headers=bearer(ALICE))
        b = self.stream("mwbtest/bob/#", headers=bearer(BOB))
        self.sse_sync(a, pub, "mwbtest/alice/sync")
        self.sse_sync(b, pub, "mwbtest/bob/sync")
        alice = tokens()[0]
        self.reload([alice])                       # bob is gone
        self.assertTrue(b.wait_closed(5), "bob's stream still open")
        self.sse_sync(a, pub, "mwbtest/alice/sync")
        self.assert_401(self.publish("mwbtest/bob/x", headers=bearer(BOB)), offered=True)
        self.reload([dict(alice, subscribe=["mwbtest/alice/only/#"])])   # alice narrowed
        self.assertTrue(a.wait_closed(5), "alice's stream outlived her narrower ACL")
        c = self.stream("mwbtest/alice/only/#", headers=bearer(ALICE))
        self.sse_sync(c, pub, "mwbtest/alice/only/sync")
        self.assert_403(self.sse("/api/v1/stream?topic=" + quote_query("mwbtest/alice/#"),
                                 headers=bearer(ALICE)).response, "mwbtest/alice/#")


if __name__ == "__main__":
    h.main()
