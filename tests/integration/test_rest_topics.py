"""Retained messages over REST (docs: "Retained messages"): GET /api/v1/topics/{topic} raw with its
content type and as a JSON envelope, 404 within about a second when there is none, PUT, DELETE,
and the listing GET /api/v1/topics?filter=F&limit=N. Retained values are set by paho observers
on Mosquitto's TCP port (and read back there after PUT/DELETE). Bridge only."""

import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import V5, PacketTypes, quote_query, quote_topic  # noqa: E402

ENVELOPE = {"Accept": "application/json"}
ANSWER_WITHIN = 1.5   # "each answers within about a second"


class TopicsBase(h.ApiCase):

    def setUp(self):
        self.pub = self.observer(V5)

    def retain(self, topic, payload, qos=1, **props):
        p = h.props(PacketTypes.PUBLISH, **props) if props else None
        self.pub.publish(topic, payload, qos, retain=True, properties=p)
        if qos == 0:
            # a QoS 1 publish behind it: once acked, the broker has stored the QoS 0 one
            self.pub.publish(self.topic("fence"), b"", 1)

    def get(self, topic, headers=None):
        resp = self.http("GET", "/api/v1/topics/" + quote_topic(topic), headers=headers)
        self.assertLess(resp.elapsed, ANSWER_WITHIN, "GET %s took %.2fs" % (topic, resp.elapsed))
        return resp

    def listing(self, query):
        resp = self.http("GET", "/api/v1/topics" + ("?" + query if query else ""))
        self.assertLess(resp.elapsed, ANSWER_WITHIN, "listing took %.2fs" % resp.elapsed)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.mime, "application/json", resp)
        body = resp.json()
        self.assertIsInstance(body.get("messages"), list, resp)
        self.assertIsInstance(body.get("truncated"), bool, resp)
        return body

    def payload_of(self, env):
        if "payload" in env:
            self.assertNotIn("payload_base64", env)
            return env["payload"].encode()
        return base64.b64decode(env["payload_base64"], validate=True)


class TopicsTest(TopicsBase):

    # GET ----------------------------------------------------------------------------------

    @h.broker_needs("mqtt5", "the retained message's v5 content type")
    def test_get_raw_with_content_type(self):
        topic = self.topic()
        payload = b'{"t": 21.5, "u": "\xc2\xb0C"}'
        self.retain(topic, payload, ContentType="application/json; charset=utf-8")
        resp = self.get(topic)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, payload)
        self.assertEqual(resp.content_type, "application/json; charset=utf-8")

    def test_get_raw_without_content_type_is_octet_stream(self):
        topic = self.topic()
        payload = bytes(range(256))
        self.retain(topic, payload)
        resp = self.get(topic)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, payload)
        self.assertEqual(resp.mime, "application/octet-stream", resp)

    def test_get_raw_curl_readme_line(self):
        # curl http://127.0.0.1:8080/api/v1/topics/sensors/kitchen/temp
        topic = self.topic("sensors/kitchen/temp")
        self.retain(topic, b"21.5")
        status, body, rc, err = self.curl(self.url("/api/v1/topics/" + topic))
        self.assertEqual((rc, status, body), (0, 200, b"21.5"), err)

    @h.broker_needs("retained_wildcards", "the listing of a '#' filter")
    def test_readme_curl_lines(self):
        # the README's lines, on a topic of this test's own
        base = self.topic("lights")
        topic = base + "/hall/state"
        url = self.url("/api/v1/topics/" + topic)
        status, body, rc, err = self.curl("-X", "PUT", "-d", "on", url)
        self.assertEqual((rc, status), (0, 200), (body, err))
        status, body, rc, err = self.curl(url)
        self.assertEqual((rc, status, body), (0, 200, b"on"), err)
        status, body, rc, err = self.curl("-H", "Accept: application/json", url)
        self.assertEqual((rc, status), (0, 200), err)
        env = json.loads(body)
        self.assertEqual((env["topic"], env["payload"], env["retain"]), (topic, "on", True))
        status, body, rc, err = self.curl(self.url("/api/v1/topics?filter=%s/%%23&limit=50" % base))
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual([(m["topic"], m["payload"]) for m in json.loads(body)["messages"]],
                         [(topic, "on")])
        status, body, rc, err = self.curl("-X", "DELETE", url)
        self.assertEqual((rc, status), (0, 200), (body, err))
        status, body, rc, err = self.curl(url)
        self.assertEqual((rc, status), (0, 404), err)
        self.assertEqual(json.loads(body)["error"]["code"], "not_found")

    @h.broker_needs("mqtt5", "the retained message's v5 content type and user properties")
    def test_get_envelope_text(self):
        topic = self.topic()
        payload = "21.5 °C ✓".encode()
        self.retain(topic, payload, qos=1, ContentType="text/plain",
                    UserProperty=[("unit", "C"), ("src", "test")])
        resp = self.get(topic, ENVELOPE)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.mime, "application/json", resp)
        env = resp.json()
        self.assertEqual(env["topic"], topic)
        self.assertEqual(env["payload"], payload.decode())
        self.assertNotIn("payload_base64", env)
        self.assertIs(env["retain"], True)
        self.assertEqual(env["qos"], 1)
        self.assertEqual(env["content_type"], "text/plain")
        self.assertIsInstance(env["properties"], dict, env)
        self.assertEqual(env["properties"].get("user_properties"), [["unit", "C"], ["src", "test"]])

    def test_get_envelope_binary_is_base64(self):
        topic = self.topic()
        payload = b"\x00\xff\xfe\x80binary" + os.urandom(100)
        self.retain(topic, payload, qos=0)
        resp = self.get(topic, ENVELOPE)
        self.assertEqual(resp.status, 200, resp)
        env = resp.json()
        self.assertNotIn("payload", env)
        self.assertEqual(base64.b64decode(env["payload_base64"], validate=True), payload)
        self.assertEqual(env["topic"], topic)
        self.assertEqual(env["qos"], 0)
        self.assertIs(env["retain"], True)
        self.assertIsNone(env.get("content_type"), env)

    def test_get_envelope_empty_and_utf8_topic(self):
        topic = self.topic("café ✓/living room")
        self.retain(topic, "é".encode())
        resp = self.get(topic, ENVELOPE)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["topic"], topic)
        self.assertEqual(resp.json()["payload"], "é")
        resp = self.get(topic)
        self.assertEqual(resp.body, "é".encode())

    def test_get_large_value(self):
        topic = self.topic()
        payload = os.urandom(60 * 1024)
        self.retain(topic, payload)
        resp = self.get(topic)
        self.assertEqual((resp.status, resp.body), (200, payload))

    def test_404_when_none_within_a_second(self):
        for topic in (self.topic("never/set"), self.topic("café/none")):
            with self.subTest(topic=topic):
                t0 = time.monotonic()
                resp = self.get(topic)
                self.assert_error(resp, 404, "not_found")
                self.assertLess(time.monotonic() - t0, ANSWER_WITHIN)
                self.assert_error(self.get(topic, ENVELOPE), 404, "not_found")
        # a sibling or a parent with a value does not count
        parent = self.topic("p")
        self.retain(parent, b"parent")
        self.assert_error(self.get(parent + "/child"), 404, "not_found")

    def test_get_invalid_topic(self):
        obs = self.quiet_observer()
        base = self.topic("x")[:-2]
        for quoted in (base + "/%23", base + "/%2B/a", base + "/%FF"):
            with self.subTest(path=quoted):
                resp = self.http("GET", "/api/v1/topics/" + quoted)
                self.assert_error(resp, 400, "invalid_topic")
        self.assert_refused_by_http_layer("GET", "/api/v1/topics/" + base + "/a%00")
        obs.assert_no_message()

    @h.broker_needs("retained_wildcards", "listings of a '+' filter beside the reads")
    def test_get_many_at_once(self):
        # reads of several topics and of overlapping filters at the same time (they share the
        # bridge's markers and UNSUBSCRIBEs) each get their own values, nothing of the others'
        import threading
        n = 24
        base = self.topic("many")
        topics = [base + "/m%d" % i for i in range(n)]
        for i, t in enumerate(topics):
            self.retain(t, b"value-%d" % i)
        results, listings = {}, {}

        def read(i):
            results[i] = self.get(topics[i])

        def list_all(k):
            listings[k] = self.listing("filter=" + quote_query(base + "/+"))
        threads = [threading.Thread(target=read, args=(i,)) for i in range(n)]
        threads += [threading.Thread(target=list_all, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        for i in range(n):
            self.assertEqual((results[i].status, results[i].body), (200, b"value-%d" % i))
        want = sorted((t, b"value-%d" % i) for i, t in enumerate(topics))
        for k in range(4):
            self.assertIs(listings[k]["truncated"], False)
            self.assertEqual([(m["topic"], self.payload_of(m)) for m in listings[k]["messages"]],
                             want)

    # PUT / DELETE -------------------------------------------------------------------------

    @h.broker_needs("mqtt5", "the Content-Type header becomes the message's v5 content type")
    def test_put_then_get(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        payload = b"\x00put \xff value"
        resp = self.http("PUT", "/api/v1/topics/%s?qos=1" % topic, payload,
                         {"Content-Type": "application/x-test"})
        self.assertEqual(resp.status, 200, resp)
        self.assertIs(resp.json().get("ok"), True, resp)
        msg = obs.get()
        self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, payload, 1))
        self.assertEqual(msg.properties.ContentType, "application/x-test")
        resp = self.get(topic)
        self.assertEqual((resp.status, resp.body, resp.content_type),
                         (200, payload, "application/x-test"))
        # a fresh subscriber gets it as retained
        late = self.observer(V5)
        late.subscribe(topic, 2)
        msg = late.get()
        self.assertEqual((msg.payload, msg.retain), (payload, True))

    def test_put_replaces(self):
        topic = self.topic()
        self.assertEqual(self.http("PUT", "/api/v1/topics/%s?qos=1" % topic, b"one").status, 200)
        self.assertEqual(self.get(topic).body, b"one")
        self.assertEqual(self.http("PUT", "/api/v1/topics/%s?qos=2" % topic, b"two").status, 200)
        self.assertEqual(self.get(topic).body, b"two")

    def test_put_utf8_topic_and_curl(self):
        topic = self.topic("salle de bain/température")
        status, body, rc, err = self.curl("-X", "PUT", "--data-binary", "19",
                                          self.url("/api/v1/topics/%s?qos=1" % quote_topic(topic)))
        self.assertEqual((rc, status), (0, 200), (body, err))
        self.assertEqual(self.get(topic).body, b"19")

    def test_delete_then_404(self):
        obs = self.observer(V5)
        topic = self.topic()
        self.retain(topic, b"to be cleared")
        self.assertEqual(self.get(topic).body, b"to be cleared")
        obs.subscribe(topic, 2)
        self.assertEqual(obs.get().payload, b"to be cleared")   # the retained copy
        resp = self.http("DELETE", "/api/v1/topics/" + topic)
        self.assertEqual(resp.status, 200, resp)
        self.assertIs(resp.json().get("ok"), True, resp)
        msg = obs.get()   # DELETE publishes an empty retained message
        self.assertEqual((msg.topic, msg.payload), (topic, b""))
        self.assert_error(self.get(topic), 404, "not_found")
        late = self.observer(V5)
        late.subscribe(topic, 2)
        late.assert_no_message()
        # deleting what is not there is fine too
        self.assertEqual(self.http("DELETE", "/api/v1/topics/" + topic).status, 200)

    def test_put_delete_refused(self):
        obs = self.quiet_observer()
        topic = self.topic()
        self.assert_error(self.http("PUT", "/api/v1/topics/%s/%%23" % topic, b"x"),
                          400, "invalid_topic")
        self.assert_error(self.http("DELETE", "/api/v1/topics/%s/%%2B" % topic),
                          400, "invalid_topic")
        self.assert_error(self.http("PUT", "/api/v1/topics/%s?qos=3" % topic, b"x"),
                          400, "invalid_qos")
        self.assert_error(self.http("PUT", "/api/v1/topics/%s?bogus=1" % topic, b"x"),
                          400, "invalid_parameter")
        self.assert_allow(self.http("POST", "/api/v1/topics/" + topic, b"x"),
                          {"GET", "PUT", "DELETE"}, "POST")
        self.assert_allow(self.http("PATCH", "/api/v1/topics/" + topic, b"x"),
                          {"GET", "PUT", "DELETE"}, "PATCH")
        obs.assert_no_message()

    # listing ------------------------------------------------------------------------------

    def make_tree(self):
        base = self.topic("tree")
        values = {base + "/b": b"bee", base + "/a": b"ay", base + "/c/deep": b"\x00\xff",
                  base + "/a/x": b"ax", base + "/d": b"dee"}
        for t, v in values.items():
            self.retain(t, v, ContentType="text/plain") if t.endswith("/d") else self.retain(t, v)
        return base, values

    @h.broker_needs("retained_wildcards", "the listing of a '#' filter")
    @h.broker_needs("mqtt5", "a listed message's v5 content type")
    def test_listing_filter_sorted(self):
        base, values = self.make_tree()
        body = self.listing("filter=" + quote_query(base + "/#"))
        self.assertIs(body["truncated"], False)
        got = [(m["topic"], self.payload_of(m)) for m in body["messages"]]
        self.assertEqual(got, sorted(values.items()))
        for m in body["messages"]:
            self.assertIs(m["retain"], True, m)
        d = [m for m in body["messages"] if m["topic"].endswith("/d")][0]
        self.assertEqual(d["content_type"], "text/plain")
        deep = [m for m in body["messages"] if m["topic"].endswith("/c/deep")][0]
        self.assertIn("payload_base64", deep)

    @h.broker_needs("retained_wildcards", "the listing of '+' filters")
    def test_listing_single_level_wildcard(self):
        base, values = self.make_tree()
        body = self.listing("filter=" + quote_query(base + "/+"))
        self.assertEqual([m["topic"] for m in body["messages"]],
                         [base + "/a", base + "/b", base + "/d"])
        body = self.listing("filter=" + quote_query(base + "/+/deep"))
        self.assertEqual([m["topic"] for m in body["messages"]], [base + "/c/deep"])

    @h.broker_needs("retained_wildcards", "the listing of a '#' filter")
    def test_listing_limit_and_truncated(self):
        base, values = self.make_tree()
        f = quote_query(base + "/#")
        body = self.listing("filter=%s&limit=2" % f)
        self.assertIs(body["truncated"], True, body)
        self.assertEqual([m["topic"] for m in body["messages"]], sorted(values)[:2])
        body = self.listing("filter=%s&limit=5" % f)
        self.assertIs(body["truncated"], False, body)
        self.assertEqual(len(body["messages"]), 5)
        body = self.listing("filter=%s&limit=100" % f)
        self.assertIs(body["truncated"], False, body)
        self.assertEqual(len(body["messages"]), 5)

    def test_listing_exact_topic_and_none(self):
        base, values = self.make_tree()
        body = self.listing("filter=" + quote_query(base + "/a"))
        self.assertEqual([(m["topic"], m["payload"]) for m in body["messages"]],
                         [(base + "/a", "ay")])
        body = self.listing("filter=" + quote_query(base + "/nothing/#"))
        self.assertEqual(body, {"messages": [], "truncated": False})

    @h.broker_needs("retained_wildcards", "the listing of '#'")
    def test_listing_default_filter(self):
        base, values = self.make_tree()
        for path in ("/api/v1/topics", "/api/v1/topics?"):
            with self.subTest(path=path):
                resp = self.http("GET", path)
                self.assertEqual(resp.status, 200, resp)
                topics = [m["topic"] for m in resp.json()["messages"]]
                self.assertEqual(topics, sorted(topics))
                for t in values:
                    self.assertIn(t, topics)

    @h.broker_needs("retained_wildcards", "the listing of a '#' filter")
    def test_listing_many(self):
        # more retained messages than a broker sends at once (Mosquitto's inflight window is 20
        # for QoS 1/2): the listing still has them all
        base = self.topic("many")
        values = {"%s/%03d" % (base, i): b"v%d" % i for i in range(50)}
        for t, v in values.items():
            self.retain(t, v, qos=1 if len(v) % 2 else 2)
        body = self.listing("filter=" + quote_query(base + "/#"))
        self.assertEqual([(m["topic"], m["payload"].encode()) for m in body["messages"]],
                         sorted(values.items()))
        self.assertIs(body["truncated"], False)
        body = self.listing("filter=%s&limit=30" % quote_query(base + "/#"))
        self.assertEqual([m["topic"] for m in body["messages"]], sorted(values)[:30])
        self.assertIs(body["truncated"], True)

    def test_listing_of_wildcards_answers_in_time_on_every_broker(self):
        # what the broker sends for a wildcard filter, in time, sorted, and nothing that is not
        # there: all of the tree where the broker sends retained messages for wildcards (the
        # tests above), none of it on RabbitMQ 3.10 (exact topics only), never a hang
        base, values = self.make_tree()
        for f in (base + "/#", base + "/+", base + "/+/deep", "#"):
            with self.subTest(filter=f):
                body = self.listing("filter=" + quote_query(f))
                got = [(m["topic"], self.payload_of(m)) for m in body["messages"]]
                self.assertEqual(got, sorted(got), body)
                mine = {g for g in got if g[0].startswith(base + "/")}
                self.assertLessEqual(mine, set(values.items()), body)
        body = self.listing("filter=" + quote_query(base + "/a"))
        self.assertEqual([(m["topic"], m["payload"]) for m in body["messages"]],
                         [(base + "/a", "ay")])

    @h.broker_needs("retained_wildcards", "the listing of a '#' filter")
    def test_listing_after_delete(self):
        base, values = self.make_tree()
        self.assertEqual(self.http("DELETE", "/api/v1/topics/" + base + "/b").status, 200)
        body = self.listing("filter=" + quote_query(base + "/#"))
        self.assertNotIn(base + "/b", [m["topic"] for m in body["messages"]])
        self.assertEqual(len(body["messages"]), 4)

    def test_listing_bad_parameters(self):
        obs = self.quiet_observer()
        base = self.topic("x")
        for query, code in (("filter=" + quote_query(base + "/#/a"), "invalid_filter"),
                            ("filter=" + quote_query(base + "/a#"), "invalid_filter"),
                            ("filter=" + quote_query(base + "/a+"), "invalid_filter"),
                            ("filter=%FF", "invalid_filter"),
                            ("filter=", "invalid_filter"),
                            ("filter=a&limit=abc", "invalid_parameter"),
                            ("filter=a&limit=-1", "invalid_parameter"),
                            ("filter=a&bogus=1", "invalid_parameter")):
            with self.subTest(query=query):
                self.assert_error(self.http("GET", "/api/v1/topics?" + query), 400, code)
        obs.assert_no_message()


@h.bridge_only("the bridge's retained reads")
@h.broker_needs("mosquitto", "Mosquitto's acl_file refuses the markers")
class MarkerRefusedTest(TopicsBase):
    """A broker whose ACL refuses the bridge's markers (no writes to mqtt-web-bridge/#, as a
    locked-down broker may have): reads end on the UNSUBSCRIBE behind the refused marker
    instead, just as fast and just as complete, alone or many at once."""
    acl = "topic readwrite mwbtest/#\ntopic read mqtt-web-bridge/#\n"

    test_get_many_at_once = TopicsTest.test_get_many_at_once
    test_listing_filter_sorted = TopicsTest.test_listing_filter_sorted
    make_tree = TopicsTest.make_tree


if __name__ == "__main__":
    h.main()
