"""REST publish of JSON (docs: "Publish JSON"): POST /api/v1/publish with one message or an array (a
batch), split from test_rest_publish.py (the raw body, limits, ACL, CORS): payload kinds (strings,
numbers, booleans, objects and arrays sent compact, base64), QoS and retain, v5 properties, answers
per message, order, seen byte for byte by paho observers on Mosquitto's TCP port; every refused body
with its status and error code and nothing published by it; 415 without a JSON content type. Bridge
only: this endpoint is the bridge's."""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import V5  # noqa: E402
from test_rest_publish import JSON  # noqa: E402


class JsonPublishTest(h.ApiCase):

    def post(self, obj, headers=JSON):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        return self.http("POST", "/api/v1/publish", body, headers)

    def assert_ok(self, resp):
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.mime, "application/json", resp)
        body = resp.json()
        self.assertIs(body.get("ok"), True, resp)
        return body

    def test_single_message_payload_kinds(self):
        obs = self.observer(V5)
        cases = [
            ("21.5", b"21.5"),
            ("héllo ✓ 🌡", "héllo ✓ 🌡".encode()),
            ("", b""),
            ("line1\nline2\x00", b"line1\nline2\x00"),
            (42, b"42"),
            (21.5, b"21.5"),
            (-3, b"-3"),
            (True, b"true"),
            (False, b"false"),
            ({"a": 1, "b": [True, None, "x"], "c": {"d": "e"}},
             b'{"a":1,"b":[true,null,"x"],"c":{"d":"e"}}'),
            ([1, 2, 3], b"[1,2,3]"),
        ]
        for value, expect in cases:
            with self.subTest(payload=value):
                topic = self.topic()
                obs.subscribe(topic, 2)
                body = self.assert_ok(self.post({"topic": topic, "payload": value, "qos": 1}))
                self.assertEqual(body.get("topic", topic), topic)
                msg = obs.get()
                self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, expect, 1))

    def test_curl_readme_batch_line(self):
        # the README's line (topics a/1, a/2 under this test's own prefix):
        # curl -H 'Content-Type: application/json' \
        #   -d '[{"topic":"a/1","payload":{"on":true}},
        #        {"topic":"a/2","payload_base64":"AAEC","qos":1}]' \
        #   http://127.0.0.1:8080/api/v1/publish
        obs = self.observer(V5)
        base = self.topic("a")
        obs.subscribe(base + "/#", 2)
        status, body, rc, err = self.curl(
            "-H", "Content-Type: application/json",
            "-d", '[{"topic":"%s/1","payload":{"on":true}},'
                  '{"topic":"%s/2","payload_base64":"AAEC","qos":1}]' % (base, base),
            self.url("/api/v1/publish"))
        self.assertEqual((rc, status), (0, 200), (body, err))
        self.assertEqual([r["ok"] for r in json.loads(body)["results"]], [True, True])
        got = sorted((m.topic, m.payload, m.qos) for m in obs.get_n(2))
        self.assertEqual(got, [(base + "/1", b'{"on":true}', 0),
                               (base + "/2", b"\x00\x01\x02", 1)])

    def test_payload_object_with_whitespace_is_sent_compact(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        body = ('{ "topic" : "%s" ,\n "payload" : { "k" : [ 1 , 2 ] , "s" : "a b" } }'
                % topic).encode()
        self.assert_ok(self.post(body))
        self.assertEqual(obs.get().payload, b'{"k":[1,2],"s":"a b"}')

    def test_payload_base64(self):
        obs = self.observer(V5)
        for raw in (b"\x00\xff\xfe\x80", b"", os.urandom(60 * 1024)):
            with self.subTest(size=len(raw)):
                topic = self.topic()
                obs.subscribe(topic, 2)
                self.assert_ok(self.post({"topic": topic, "qos": 2,
                                          "payload_base64": base64.b64encode(raw).decode()}))
                msg = obs.get()
                self.assertEqual((msg.payload, msg.qos), (raw, h.broker_qos(2)))

    def test_qos_and_retain(self):
        obs = self.observer(V5)
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = self.topic()
                obs.subscribe(topic, 2)
                self.assert_ok(self.post({"topic": topic, "payload": "q", "qos": qos}))
                msg = obs.get()
                self.assertEqual((msg.qos, msg.retain), (h.broker_qos(qos), False))
        topic = self.topic()
        self.assert_ok(self.post({"topic": topic, "payload": "kept", "qos": 1, "retain": True}))
        late = self.observer(V5)
        late.subscribe(topic, 2)
        msg = late.get()
        self.assertEqual((msg.payload, msg.retain), (b"kept", True))

    def test_default_qos_0_not_retained(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        self.assert_ok(self.post({"topic": topic, "payload": "d"}))
        msg = obs.get()
        self.assertEqual((msg.payload, msg.qos, msg.retain), (b"d", 0, False))

    def test_utf8_and_odd_topics(self):
        # the JSON endpoint can write what a URL path cannot: empty levels, '.', '..'
        obs = self.observer(V5)
        base = self.topic("x")[:-2]
        obs.subscribe(base + "/#", 2)
        for topic in (base + "/café ✓", base + "//empty", base + "/./..", base + "/trailing/"):
            with self.subTest(topic=topic):
                if "." in topic:
                    h.skip_unless_broker(self, "topic_dots", "the topic arrives as published")
                body = self.assert_ok(self.post({"topic": topic, "payload": "t", "qos": 1}))
                self.assertEqual(body.get("topic", topic), topic)
                self.assertEqual(obs.get().topic, topic)

    @h.broker_needs("mqtt5", "the JSON properties become the message's v5 properties")
    def test_properties(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        props = {"content_type": "text/plain",
                 "user_properties": [["unit", "C"], ["unit", "F"], ["ünï", "çødé ✓"],
                                     ["e", ""]],
                 "message_expiry_interval": 120,
                 "response_topic": topic + "/reply",
                 "correlation_data": "corr-42"}
        self.assert_ok(self.post({"topic": topic, "payload": "21.5", "qos": 1,
                                  "properties": props}))
        msg = obs.get()
        p = msg.properties
        self.assertEqual(msg.payload, b"21.5")
        self.assertEqual(p.ContentType, "text/plain")
        self.assertEqual(p.UserProperty,
                         [("unit", "C"), ("unit", "F"), ("ünï", "çødé ✓"), ("e", "")])
        self.assertTrue(115 <= p.MessageExpiryInterval <= 120, p.MessageExpiryInterval)
        self.assertEqual(p.ResponseTopic, topic + "/reply")
        self.assertEqual(p.CorrelationData, b"corr-42")

    @h.broker_needs("mqtt5", "the JSON properties become the message's v5 properties")
    def test_properties_readme_example(self):
        obs = self.observer(V5)
        topic = self.topic("sensors/kitchen/temp")
        obs.subscribe(topic, 2)
        self.assert_ok(self.post({"topic": topic, "payload": "21.5", "qos": 1, "retain": True,
                                  "properties": {"content_type": "text/plain",
                                                 "user_properties": [["unit", "C"]]}}))
        msg = obs.get()
        self.assertEqual((msg.payload, msg.qos), (b"21.5", 1))
        self.assertEqual(msg.properties.ContentType, "text/plain")
        self.assertEqual(msg.properties.UserProperty, [("unit", "C")])

    @h.broker_needs("mqtt5", "asserts on the message's v5 properties")
    def test_content_type_with_charset(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        self.assert_ok(self.post({"topic": topic, "payload": "c"},
                                 {"Content-Type": "application/json; charset=utf-8"}))
        msg = obs.get()
        self.assertEqual(msg.payload, b"c")
        # the HTTP body type is not the message's content type
        self.assertFalse(hasattr(msg.properties, "ContentType"))

    def test_array_answers_per_message(self):
        obs = self.observer(V5)
        topics = [self.topic("a"), self.topic("b"), self.topic("c")]
        for t in topics:
            obs.subscribe(t, 2)
        resp = self.post([{"topic": topics[0], "payload": "one", "qos": 0},
                          {"topic": topics[1], "payload_base64": "AP8=", "qos": 1},
                          {"topic": topics[2], "payload": {"n": 3}, "qos": 2}])
        self.assertEqual(resp.status, 200, resp)
        results = resp.json().get("results")
        self.assertIsInstance(results, list, resp)
        self.assertEqual(len(results), 3, resp)
        for r in results:
            self.assertIs(r.get("ok"), True, resp)
        got = {m.topic: (m.payload, m.qos) for m in obs.get_n(3)}
        self.assertEqual(got, {topics[0]: (b"one", 0), topics[1]: (b"\x00\xff", 1),
                               topics[2]: (b'{"n":3}', h.broker_qos(2))})

    def test_array_of_one_answers_with_results(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        resp = self.post([{"topic": topic, "payload": "solo", "qos": 1}])
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(len(resp.json()["results"]), 1, resp)
        self.assertIs(resp.json()["results"][0]["ok"], True, resp)
        self.assertEqual(obs.get().payload, b"solo")

    def test_array_keeps_order(self):
        obs = self.observer(V5)
        topic = self.topic()
        obs.subscribe(topic, 2)
        resp = self.post([{"topic": topic, "payload": "m%02d" % i, "qos": 1} for i in range(30)])
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(len(resp.json()["results"]), 30)
        self.assertEqual([m.payload for m in obs.get_n(30)],
                         [b"m%02d" % i for i in range(30)])

    # refused requests ---------------------------------------------------------------------

    def test_bad_json(self):
        obs = self.quiet_observer()
        for body in (b"{", b"", b"not json", b'{"topic": "a", "payload": "x",}', b"\xff\xfe",
                     b'{"topic": "a"} trailing', b'{"topic": "a\xff", "payload": "x"}'):
            with self.subTest(body=body):
                self.assert_error(self.post(body), 400, "invalid_json")
        obs.assert_no_message()

    def test_invalid_messages(self):
        obs = self.quiet_observer()
        topic = self.topic()
        for obj, code in (
                ({"topic": topic, "payload": "x", "extra": 1}, "invalid_message"),
                ({"topic": topic, "payload": "x", "Qos": 1}, "invalid_message"),
                ("a string", "invalid_message"),
                (42, "invalid_message"),
                (None, "invalid_message"),
                ([1], "invalid_message"),
                ({"topic": topic, "payload": "x", "qos": 3}, "invalid_qos"),
                ({"topic": topic, "payload": "x", "qos": -1}, "invalid_qos"),
                ({"topic": topic, "payload": "x", "qos": 1.5}, "invalid_qos"),
                ({"topic": topic + "/#", "payload": "x"}, "invalid_topic"),
                ({"topic": topic + "/+/a", "payload": "x"}, "invalid_topic"),
                ({"topic": "", "payload": "x"}, "invalid_topic"),
                ({"topic": "a\u0000b", "payload": "x"}, "invalid_topic"),
                ({"topic": topic, "payload_base64": "!!!notbase64"}, "invalid_payload"),
                ({"topic": topic, "payload_base64": 42}, "invalid_payload"),
                ({"topic": topic, "payload": "x", "properties": {"user_properties": "u"}},
                 "invalid_properties"),
                ({"topic": topic, "payload": "x", "properties": {"nope": 1}},
                 "invalid_properties"),
                ({"topic": topic, "payload": "x",
                  "properties": {"message_expiry_interval": -5}}, "invalid_properties"),
                ({"topic": topic, "payload": "x", "properties": {"response_topic": "a/#"}},
                 "invalid_properties"),
                ({"topic": topic, "payload": "x", "properties": 7}, "invalid_properties")):
            with self.subTest(body=obj):
                self.assert_error(self.post(obj), 400, code)
        obs.assert_no_message()

    def test_invalid_ambiguous_codes(self):
        # the docs do not say which code these get; only that they are 400 with one of the
        # documented JSON body codes and publish nothing
        obs = self.quiet_observer()
        topic = self.topic()
        for obj in ({"payload": "x"},                                   # no topic
                    {"topic": topic, "payload": "x", "payload_base64": "eA=="},  # both
                    {"topic": topic, "payload": "x", "retain": "yes"},
                    {"topic": 42, "payload": "x"},
                    []):
            with self.subTest(body=obj):
                resp = self.post(obj)
                self.assertEqual(resp.status, 400, resp)
                self.assertIn(resp.json()["error"]["code"],
                              {"invalid_message", "invalid_topic", "invalid_payload",
                               "too_many_messages", "invalid_json"}, resp)
        obs.assert_no_message()

    def test_bad_message_in_batch_refuses_all(self):
        obs = self.quiet_observer()
        topic = self.topic()
        for bad in ({"topic": topic + "/#", "payload": "x"},
                    {"topic": topic, "payload": "x", "qos": 9},
                    {"topic": topic, "payload": "x", "unknown": True}):
            with self.subTest(bad=bad):
                resp = self.post([{"topic": topic, "payload": "first", "qos": 1},
                                  {"topic": topic, "payload": "second", "qos": 0}, bad])
                self.assertEqual(resp.status, 400, resp)
                self.assertTrue(resp.json()["error"]["code"].startswith("invalid_"), resp)
        obs.assert_no_message()

    def test_415_without_json_content_type(self):
        obs = self.quiet_observer()
        body = json.dumps({"topic": self.topic(), "payload": "x"}).encode()
        for headers in ({"Content-Type": "text/plain"}, {},
                        {"Content-Type": "application/x-www-form-urlencoded"},
                        {"Content-Type": "application/octet-stream"}):
            with self.subTest(headers=headers):
                self.assert_error(self.post(body, headers), 415, "unsupported_media_type")
        obs.assert_no_message()


if __name__ == "__main__":
    h.main()
