"""The Server-Sent Events stream (docs: "Server-Sent Events"): GET /api/v1/stream?topic=F...
Headers, retry:, event text byte for byte, ordering, wildcards, several filters, heartbeat
comments, resume with Last-Event-ID / ?last_event_id=, ids of another instance, retained=true,
one broker subscription for two streams of one filter (Mosquitto's log), a slow reader that does
not slow a fast one, bad filters. Messages are published by paho observers on Mosquitto's TCP
port. Bridge only."""

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import V5, quote_query  # noqa: E402


def expected_data(topic, payload, qos, retain, ts):
    """The documented data line: compact JSON, keys in the documented order."""
    return ('{"topic":%s,"payload":%s,"qos":%d,"retain":%s,"ts":%d}'
            % (json.dumps(topic, ensure_ascii=False), json.dumps(payload, ensure_ascii=False),
               qos, "true" if retain else "false", ts))


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class SseTest(h.ApiCase):
    bridge_config = {"sse": {"heartbeat_s": 1, "replay": 1000},
                     "limits": {"max_subscriptions": 4}}
    mosquitto_conf = "max_queued_messages 100000"

    def setUp(self):
        self.pub = self.observer(V5)

    def check_event(self, ev, topic, payload, qos=0, retain=False):
        """@ev is exactly "id: ID\\ndata: {json}\\n\\n" for this message (qos None: any)."""
        self.assertTrue(ev.id and re.fullmatch(r"[\x21-\x7e]+", ev.id), "bad id %r" % ev.id)
        j = ev.json
        self.assertEqual(j.get("topic"), topic, ev)
        self.assertEqual(ev.payload, payload, ev)
        if qos is None:
            qos = j.get("qos")
            self.assertIn(qos, (0, 1, 2), ev)
        self.assertEqual(j.get("qos"), qos, ev)
        self.assertIs(j.get("retain"), retain, ev)
        ts = j.get("ts")
        self.assertIsInstance(ts, int, ev)
        self.assertLess(abs(ts - time.time() * 1000), 5000, "ts %r is not now" % ts)
        if is_utf8(payload):
            self.assertIn("payload", j, ev)
            data = expected_data(topic, payload.decode("utf-8"), qos, retain, ts)
            if payload.isascii() and topic.isascii() and all(0x20 <= c < 0x7f and c not in b'"\\'
                                                            for c in payload):
                # byte for byte: the whole event text
                self.assertEqual(ev.raw, b"id: %s\ndata: %s\n\n" % (ev.id.encode(), data.encode()))
        else:
            self.assertNotIn("payload", j, ev)
            self.assertEqual(j.get("payload_base64"), base64.b64encode(payload).decode(), ev)
            self.assertEqual(list(j)[:5], ["topic", "payload_base64", "qos", "retain", "ts"], ev)
        self.assertEqual(ev.raw.count(b"\n"), 3, "an event is two lines and a blank: %r" % ev.raw)

    # the stream itself ---------------------------------------------------------------------

    def test_headers_and_retry(self):
        s = self.stream(self.topic("x") + "/#")
        self.assertEqual(s.header("Content-Type", "").split(";")[0].strip(), "text/event-stream")
        self.assertEqual(s.header("Cache-Control"), "no-cache")
        self.assertEqual(s.header("X-Accel-Buffering"), "no")
        self.assertIsNone(s.header("Content-Length"), "a stream has no length")
        deadline = time.monotonic() + 3
        while len(s.body) < 12 and time.monotonic() < deadline:
            s._recv(deadline)
        self.assertTrue(bytes(s.body).startswith(b"retry: 2000\n"), bytes(s.body[:80]))
        self.assertEqual(s.retry, "2000")

    def test_event_text_byte_for_byte(self):
        base = self.topic("sensors")
        s = self.stream(base + "/#")
        self.sse_sync(s, self.pub, base + "/sync")
        self.pub.publish(base + "/kitchen/temp", b"21.5", 0)
        ev = s.next_event()
        self.check_event(ev, base + "/kitchen/temp", b"21.5", 0, False)
        ts = ev.json["ts"]
        self.assertEqual(ev.data, '{"topic":"%s/kitchen/temp","payload":"21.5","qos":0,'
                                  '"retain":false,"ts":%d}' % (base, ts))

    def test_payload_kinds(self):
        base = self.topic("k")
        s = self.stream(base + "/#")
        self.sse_sync(s, self.pub, base + "/sync")
        payloads = [b"plain", "héllo ✓ 🌡".encode(), b"", b"line1\nline2\r\n",
                    b'{"a": [1, "x"]}',
                    b'quote " and \\ backslash', b"tab\there", b"a\x00b", b"\x00\xff\xfe",
                    b"\xc3\x28", b"\xed\xa0\x80", os.urandom(60 * 1024), bytes(range(256))]
        for p in payloads:
            self.pub.publish(base + "/p", p, 0)
        evs = s.get_events(len(payloads))
        for p, ev in zip(payloads, evs):
            with self.subTest(payload=p[:20]):
                self.check_event(ev, base + "/p", p)
        # a JSON text payload is a string, not an embedded object
        self.assertEqual(evs[4].json["payload"], '{"a": [1, "x"]}')

    def test_utf8_topic(self):
        base = self.topic("ü")
        s = self.stream(base + "/#")
        self.sse_sync(s, self.pub, base + "/sync")
        topic = base + "/salle de bain/température ✓"
        self.pub.publish(topic, b"19", 0)
        self.check_event(s.next_event(), topic, b"19")

    def test_event_qos_is_the_message_qos(self):
        base = self.topic("q")
        s = self.stream(base + "/#")
        self.sse_sync(s, self.pub, base + "/sync")
        for qos in (0, 1, 2):
            self.pub.publish(base + "/q", b"q%d" % qos, qos)
        evs = s.get_events(3)
        if h.broker_lacks("mixed_qos_order"):
            evs.sort(key=lambda ev: ev.payload)  # MQTT orders a topic's messages per QoS only
        for qos, ev in enumerate(evs):
            self.check_event(ev, base + "/q", b"q%d" % qos, h.broker_qos(qos))

    def test_order_of_200(self):
        base = self.topic("o")
        s = self.stream(base + "/#")
        self.sse_sync(s, self.pub, base + "/sync")
        sent = []
        for i in range(200):
            p = (b"\xff%03d" % i) if i % 10 == 0 else (b"m%03d" % i)
            topic = base + "/t%d" % (i % 3)
            sent.append((topic, p))
            self.pub.publish(topic, p, 1 if i % 2 else 0)
        evs = s.get_events(200, timeout=10)
        got = [(e.topic, e.payload) for e in evs]
        if h.broker_lacks("mixed_qos_order"):
            # in the order published per topic and QoS, as MQTT asks of a broker (§4.6)
            qos_of = {m: i % 2 for i, m in enumerate(sent)}
            self.assertEqual(sorted(got), sorted(sent))
            for key in set((t, qos_of[(t, p)]) for t, p in sent):
                self.assertEqual([m for m in got if (m[0], qos_of[m]) == key],
                                 [m for m in sent if (m[0], qos_of[m]) == key], key)
        else:
            self.assertEqual(got, sent)
        ids = [e.id for e in evs]
        self.assertEqual(len(set(ids)), 200, "duplicate ids")
        ts = [e.json["ts"] for e in evs]
        self.assertEqual(ts, sorted(ts), "ts goes back")
        s.assert_no_event(0.3)

    def test_curl_readme_line(self):
        # curl -N 'http://127.0.0.1:8080/api/v1/stream?topic=sensors/%23'
        h.require_tool(h.CURL)
        base = self.topic("sensors")
        proc = subprocess.Popen([h.CURL, "-sS", "-N", "--max-time", "8",
                                 self.url("/api/v1/stream?topic=%s/%%23" % base)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        h._live[proc.pid] = proc
        self.addCleanup(h.stop_process, proc)
        out = bytearray()
        reader = threading.Thread(target=lambda: [out.extend(c) for c in
                                                  iter(lambda: proc.stdout.read1(65536), b"")],
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + 5
        i = 0
        while time.monotonic() < deadline and b'"payload":"21.5"' not in out:
            self.pub.publish(base + "/kitchen/temp", b"21.5", 0)
            time.sleep(0.2)
            i += 1
        self.pub.publish(base + "/kitchen/temp", b"22.0", 1)
        while time.monotonic() < deadline + 2 and b'"payload":"22.0"' not in out:
            time.sleep(0.05)
        h.stop_process(proc)
        reader.join(3)
        text = bytes(out)
        self.assertTrue(text.startswith(b"retry: 2000\n"), text[:100])
        self.assertRegex(text, rb'\nid: \S+\ndata: \{"topic":"' + re.escape(base.encode())
                         + rb'/kitchen/temp","payload":"22.0","qos":[01],"retain":false,'
                           rb'"ts":\d+\}\n\n')

    # filters -------------------------------------------------------------------------------

    def test_wildcards(self):
        base = self.topic("w")
        literal = self.sse("/api/v1/stream?topic=%s/+/temp" % base)      # '+' as written
        encoded = self.sse("/api/v1/stream?topic=%s/%%2B/temp" % base)    # '+' as %2B
        multi = self.sse("/api/v1/stream?topic=%s/%%23" % base)           # '#' as %23
        for s in (literal, encoded, multi):
            self.assertEqual(s.status, 200, s.response)
        self.sse_sync([literal, encoded, multi], self.pub, base + "/sync/temp")
        sent = [base + "/kitchen/temp", base + "/kitchen/hum", base + "/bath/temp",
                base + "/kitchen/temp/x", base + "/temp", base + "/a b/temp"]
        for t in sent:
            self.pub.publish(t, t.encode(), 0)
        want = [base + "/kitchen/temp", base + "/bath/temp", base + "/a b/temp"]
        for s in (literal, encoded):
            got = [e.topic for e in s.get_events(3)]
            self.assertEqual(got, want, s.path)
            s.assert_no_event(0.3)
        self.assertEqual([e.topic for e in multi.get_events(len(sent))], sent)
        multi.assert_no_event(0.3)

    def test_query_plus_is_a_space_in_a_longer_level(self):
        # '+' is a space in a query: "a+b" is the level "a b", not a wildcard
        base = self.topic("sp")
        s = self.sse("/api/v1/stream?topic=%s/a+b" % base)
        self.assertEqual(s.status, 200, s.response)
        self.sse_sync(s, self.pub, base + "/a b")
        self.pub.publish(base + "/a b", b"this", 0)
        ev = s.next_event()
        self.assertEqual((ev.topic, ev.payload), (base + "/a b", b"this"))

    def test_several_topic_params(self):
        one, two, three = self.topic("one"), self.topic("two"), self.topic("three")
        s = self.stream(one + "/x", two + "/#", three + "/+/z")
        self.sse_sync(s, self.pub, two + "/sync")
        for t in (one + "/x", one + "/y", two + "/a/b", three + "/q/z", three + "/z",
                  self.topic("other") + "/x", one + "/x"):
            self.pub.publish(t, t.encode(), 0)
        got = [e.topic for e in s.get_events(4)]
        self.assertEqual(got, [one + "/x", two + "/a/b", three + "/q/z", one + "/x"])
        s.assert_no_event(0.3)

    def test_overlapping_filters_deliver_once(self):
        base = self.topic("ov")
        s = self.stream(base + "/#", base + "/a", base + "/+")
        self.sse_sync(s, self.pub, base + "/a")
        self.pub.publish(base + "/a", b"once", 0)
        self.pub.publish(base + "/b/c", b"deep", 0)
        got = [(e.topic, e.payload) for e in s.get_events(2)]
        self.assertEqual(got, [(base + "/a", b"once"), (base + "/b/c", b"deep")])
        s.assert_no_event(0.3)

    def test_invalid_filter_400(self):
        obs = self.quiet_observer()
        base = self.topic("bad")
        for query in ("topic=" + quote_query(base + "/#/a"), "topic=" + quote_query(base + "/a#"),
                      "topic=" + quote_query(base + "/a+"), "topic=%s/a%%2Bb" % base,
                      "topic=%FF", "topic=", "topic=ok&topic=" + quote_query("x/#/y")):
            with self.subTest(query=query):
                resp = self.http("GET", "/api/v1/stream?" + query)
                self.assert_error(resp, 400, "invalid_filter")
        self.assert_refused_by_http_layer("GET", "/api/v1/stream?topic=a%00b")
        obs.assert_no_message()

    def test_bad_parameters_400(self):
        for query in ("topic=a&retained=maybe", "topic=a&bogus=1"):
            with self.subTest(query=query):
                self.assert_error(self.http("GET", "/api/v1/stream?" + query), 400,
                                  "invalid_parameter")
        # no filter at all: a 400, with either of the two codes that could fit
        resp = self.http("GET", "/api/v1/stream")
        self.assertEqual(resp.status, 400, resp)
        self.assertIn(resp.json()["error"]["code"], ("invalid_filter", "invalid_parameter"))

    def test_too_many_filters_400(self):
        base = self.topic("many")
        ok = self.stream(*["%s/%d" % (base, i) for i in range(4)])   # limits.max_subscriptions 4
        self.assertEqual(ok.status, 200)
        resp = self.http("GET", "/api/v1/stream?" + "&".join(
            "topic=%s/%d" % (base, i) for i in range(5)))
        self.assert_error(resp, 400, "too_many_filters")

    def test_method_405(self):
        self.assert_allow(self.http("POST", "/api/v1/stream?topic=a", b""), {"GET"}, "POST")

    # heartbeat -----------------------------------------------------------------------------

    def test_heartbeat_comments(self):
        s = self.stream(self.topic("idle") + "/#")
        t0 = time.monotonic()
        got = s.read_for(4.6)
        self.assertEqual(got, [], "events on an idle stream")
        comments = [(line, t) for line, t in s.comments if t >= t0]
        for line, _ in comments:
            self.assertEqual(line, b": keepalive")
        gaps = [round(b[1] - a[1], 2) for a, b in zip(comments, comments[1:])]
        # "every sse.heartbeat_s seconds" on an idle stream: about 1 s apart
        self.assertGreaterEqual(len(comments), 3, "heartbeats in 4.6 s with sse.heartbeat_s 1, "
                                "gaps %r" % gaps)
        for g in gaps:
            self.assertTrue(0.5 < g < 1.6, "heartbeat gaps %r with sse.heartbeat_s 1" % gaps)
        # a comment is a block of its own: it never splits an event
        self.assertNotIn(b": keepalive\nid:", bytes(s.body))

    # resume --------------------------------------------------------------------------------

    def resume(self, how, keeper=False):
        base = self.topic("resume")
        path = "/api/v1/stream?topic=" + quote_query(base + "/#")
        a = self.sse(path)
        self.assertEqual(a.status, 200)
        streams = [a]
        if keeper:   # another stream of the same filter stays open throughout
            streams.append(self.sse(path))
        self.sse_sync(streams, self.pub, base + "/sync")
        for i in range(1, 6):
            self.pub.publish(base + "/m", b"m%d" % i, 1)
        first = a.get_events(5)
        self.assertEqual([e.payload for e in first], [b"m%d" % i for i in range(1, 6)])
        last = first[2].id             # the client had handled m1..m3 when it lost the stream
        a.close()
        if not keeper:
            # away until the bridge noticed (it looks for gone clients once a second), well
            # within EventSource's reconnect delay of "retry: 2000" plus a slow network
            h.wait_until(lambda: h.metric(self.api_port, "mwb_connections",
                                          '{kind="sse"}') == 0,
                         what="the bridge noticing the stream's close")
        hub = '{path="broker_to_hub"}'
        seen = h.metric(self.api_port, "mwb_messages_total", hub)
        for i in range(6, 9):          # published while it was away
            self.pub.publish(base + "/m", b"m%d" % i, 1)
        # until they reached the bridge (and with them its replay ring)
        h.wait_until(lambda: h.metric(self.api_port, "mwb_messages_total", hub) >= seen + 3,
                     what="m6..m8 at the bridge's hub")
        if how == "header":
            b = self.sse(path, headers={"Last-Event-ID": last})
        else:
            b = self.sse(path + "&last_event_id=" + quote_query(last))
        self.assertEqual(b.status, 200, b.response)
        replayed = b.take(5)
        self.assertEqual([e.payload for e in replayed], [b"m%d" % i for i in range(4, 9)],
                         "replay after %s; m6..m8 were published while away" % last)
        self.assertEqual([e.id for e in replayed[:2]], [e.id for e in first[3:]],
                         "a replayed event keeps its id")
        for e in replayed:
            self.check_event(e, base + "/m", e.payload, None)
        for i in range(9, 12):
            self.pub.publish(base + "/m", b"m%d" % i, 1)
        live = b.get_events(3)
        self.assertEqual([e.payload for e in live], [b"m%d" % i for i in range(9, 12)])
        b.assert_no_event(0.5)
        ids = [e.id for e in replayed + live]
        self.assertEqual(len(set(ids)), len(ids))

    def test_resume_last_event_id_header(self):
        self.resume("header")

    def test_resume_last_event_id_query(self):
        self.resume("query")

    def test_resume_while_another_stream_keeps_the_filter(self):
        self.resume("header", keeper=True)

    def test_resume_with_foreign_id_starts_cleanly(self):
        base = self.topic("foreign")
        f = base + "/#"
        other = h.start_bridge(self.stack.broker.port, config=self.bridge_config)
        self.addCleanup(other.cleanup)
        self.wait_hub(other.port)
        on_other = self.stream(f, port=other.port)
        keeper = self.stream(f)
        self.sse_sync([on_other, keeper], self.pub, base + "/sync")
        for i in range(3):
            self.pub.publish(base + "/m", b"old%d" % i, 1)
        foreign_id = on_other.get_events(3)[-1].id
        own_ids = [e.id for e in keeper.get_events(3)]
        self.assertNotIn(foreign_id, own_ids, "two instances made the same event id")
        for bad in (foreign_id, "nonsense", "0", "-1", "x-1", own_ids[0] + "x", "a" * 300):
            with self.subTest(last_event_id=bad):
                s = self.sse("/api/v1/stream?topic=" + quote_query(f),
                             headers={"Last-Event-ID": bad})
                self.assertEqual(s.status, 200, s.response)
                dropped = self.sse_sync(s, self.pub, base + "/sync")[s]
                self.assertEqual([e.payload for e in dropped], [],
                                 "replayed for an id that is not this instance's")
                self.pub.publish(base + "/m", b"live", 0)
                self.assertEqual(s.next_event().payload, b"live")
                s.close()

    # retained ------------------------------------------------------------------------------

    @h.broker_needs("retained_wildcards", "the retained values of a '#' filter")
    def test_retained_true_sends_retained_first(self):
        base = self.topic("ret")
        self.pub.publish(base + "/b", b"rb", 1, retain=True)
        self.pub.publish(base + "/a", b"ra", 1, retain=True)
        self.pub.publish(base + "/c/d", b"\x00\xffrc", 1, retain=True)
        s = self.stream(base + "/#", query="retained=true")
        first = s.get_events(3)
        got = sorted((e.topic, e.payload) for e in first)
        self.assertEqual(got, [(base + "/a", b"ra"), (base + "/b", b"rb"),
                               (base + "/c/d", b"\x00\xffrc")])
        for e in first:
            self.assertIs(e.json["retain"], True, e)
            # README: no id: (not part of the replayable sequence); whether they have a "ts"
            # is not said
            self.assertIsNone(e.id, e)
            self.assertEqual(list(e.json)[:4], ["topic", "payload" if is_utf8(e.payload)
                                                else "payload_base64", "qos", "retain"], e)
        dropped = self.sse_sync(s, self.pub, base + "/sync")[s]
        self.assertEqual(dropped, [], "more than the retained values before the live ones")
        self.pub.publish(base + "/a", b"live", 0)
        ev = s.next_event()
        self.check_event(ev, base + "/a", b"live", 0, False)

    @h.broker_needs("retained_wildcards", "the retained values of a '#' filter")
    def test_retained_true_on_a_filter_already_subscribed(self):
        # the retained values come also when the broker subscription exists already
        base = self.topic("ret2")
        keeper = self.stream(base + "/#")
        self.sse_sync(keeper, self.pub, base + "/sync")
        self.pub.publish(base + "/x", b"rx", 1, retain=True)
        s = self.stream(base + "/#", query="retained=true")
        ev = s.next_event()
        self.assertEqual((ev.topic, ev.payload, ev.json["retain"]), (base + "/x", b"rx", True))

    def test_no_retained_without_the_option(self):
        base = self.topic("noret")
        self.pub.publish(base + "/r", b"old retained", 1, retain=True)
        s = self.stream(base + "/#")           # a new filter: the broker sends the hub its retained
        dropped = self.sse_sync(s, self.pub, base + "/sync")[s]
        self.assertEqual([e.payload for e in dropped], [])
        for param in ("retained=false",):
            s2 = self.stream(base + "/#", query=param)
            dropped = self.sse_sync(s2, self.pub, base + "/sync")[s2]
            self.assertEqual([e.payload for e in dropped], [])

    # sharing -------------------------------------------------------------------------------

    def broker_subscriptions(self, filt):
        """How many times a client subscribed to @filt, by Mosquitto's log_type all lines
        "<time>: <client id> <qos> <filter>" that follow "Received SUBSCRIBE"."""
        with open(self.stack.broker.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        return len(re.findall(r"(?m)^\d+: \S+ [012] %s$" % re.escape(filt), log))

    def assert_one_broker_subscription(self, filt):
        """Exactly one SUBSCRIBE for @filt in the broker's log, once there is one: a stream can
        get its first messages through a wider filter the hub holds before its own SUBSCRIBE
        reaches the broker."""
        h.wait_until(lambda: self.broker_subscriptions(filt), what="a SUBSCRIBE for %s in the "
                     "broker's log" % filt)
        self.assertEqual(self.broker_subscriptions(filt), 1,
                         "SUBSCRIBEs for %s in the broker's log" % filt)

    @h.broker_needs("mosquitto", "counts the SUBSCRIBEs in Mosquitto's log")
    def test_two_streams_share_one_broker_subscription(self):
        base = self.topic("share")
        f = base + "/#"
        a = self.stream(f)
        b = self.stream(f)
        self.sse_sync([a, b], self.pub, base + "/sync")
        c = self.stream(f)
        self.sse_sync([a, b, c], self.pub, base + "/sync")
        self.assert_one_broker_subscription(f)
        self.pub.publish(base + "/x", b"to all", 0)
        for s in (a, b, c):
            ev = s.next_event()
            self.assertEqual(ev.payload, b"to all")
            s.assert_no_event(0.2)
        # a different filter is a subscription of its own
        d = self.stream(base + "/x")
        self.sse_sync([d], self.pub, base + "/x")
        self.assert_one_broker_subscription(base + "/x")
        self.assertEqual(self.broker_subscriptions(f), 1)


class SlowReaderTest(h.ApiCase):
    """limits.max_queue_bytes 256 KiB: a stream whose reader never reads loses events or is cut
    off, and a fast stream of the same filter gets all 2000 messages (8 MB) promptly."""
    bridge_config = {"limits": {"max_queue_bytes": 262144}}
    mosquitto_conf = "max_queued_messages 100000"

    def test_slow_reader_does_not_slow_a_fast_one(self):
        pub = self.observer(V5)
        base = self.topic("slow")
        f = base + "/#"
        path = "/api/v1/stream?topic=" + quote_query(f)
        slow = self.sse(path, rcvbuf=4096)
        self.assertEqual(slow.status, 200)
        fast = self.stream(f)
        self.sse_sync(fast, pub, base + "/sync")
        pad = b"x" * 4000
        n, batch = 2000, 25
        # paced in batches of 100 KB (under half of the 256 KiB queue, where web/sse.c starts
        # dropping): a fast reader keeps up, while the slow one is 8 MB behind at the end, more
        # than the kernel's socket buffers (tcp_wmem max 4 MB) can hide
        t0 = time.monotonic()
        evs, slowest = [], 0.0
        for start in range(0, n, batch):
            tb = time.monotonic()
            for i in range(start, start + batch):
                pub.c.publish(base + "/m", b"%04d" % i + pad, 0)
            evs += fast.get_events(batch, timeout=5)
            slowest = max(slowest, time.monotonic() - tb)
        elapsed = time.monotonic() - t0
        self.assertEqual([e.payload[:4] for e in evs], [b"%04d" % i for i in range(n)])
        self.assertLess(elapsed, 10.0, "2000 events to the fast reader took %.1fs" % elapsed)
        self.assertLess(slowest, 2.0, "a batch of %d took %.2fs to reach the fast reader"
                        % (batch, slowest))
        # the slow one: what it gets now is bounded, in order, without duplicates
        slow_events = [e for e in slow.read_for(2.0)
                       if e.json.get("topic") == base + "/m"]
        seqs = [int(e.payload[:4]) for e in slow_events]
        self.assertEqual(seqs, sorted(set(seqs)), "slow reader's events out of order or repeated")
        self.assertTrue(slow.closed or len(seqs) < n,
                        "the slow reader got all %d events: nothing was bounded" % n)
        # drops are counted
        samples = h.prom_samples(self.http("GET", "/metrics").body.decode())
        drops = samples.get(("mwb_dropped_total", '{reason="slow_sse"}'), 0)
        cut = samples.get(("mwb_disconnects_total", '{reason="slow_sse"}'), 0)
        self.assertTrue(drops > 0 or cut > 0, "mwb_dropped_total{reason=\"slow_sse\"} %r, "
                        "mwb_disconnects_total{reason=\"slow_sse\"} %r" % (drops, cut))
        # and the bridge serves on
        again = self.stream(f)
        self.sse_sync(again, pub, base + "/sync")
        self.assertEqual(self.http("GET", "/api/v1/health").status, 200)


if __name__ == "__main__":
    h.main()
