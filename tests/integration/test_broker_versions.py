"""The bridge's own broker links over MQTT 3.1.1 and 3.1 (issue 13).

broker.mqtt_version pins the version in front of Mosquitto, which speaks all three, so what a
3.1.x broker link keeps, drops and refuses is checked here on every run. Against RabbitMQ
(MWB_TEST_BROKER=rabbitmq, MQTT 3.1.1 only) the same classes run with "auto": the bridge must
find 3.1.1 by itself. What is asserted:
- health, /metrics and the log say which version the link speaks; the broker sees it;
- REST publish, retained reads (overlapping ones at once), SSE and shared browser sessions
  (MQTT 5 and 3.1.1 browsers) work; v5 properties a REST call sets are dropped and counted;
- a retained value the broker replays to the hub's link (a new filter, a QoS raise) reaches no
  browser or stream as a live message;
- what needs MQTT 5 upstream answers clearly: request/response 501;
- an MQTT 5 browser whose session has a broker client of its own (mqtt_sessions "dedicated", a
  will, a persistent session, passthrough credentials) keeps an MQTT 5 session with the bridge
  while its client speaks 3.1.1: acks, wills (also DISCONNECT 0x04), persistence, QoS capped at
  what the broker takes, the broker's refusals as v5 reason codes, properties dropped and counted.
"""

import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import V5, quote_query  # noqa: E402

RABBIT = h.broker_lacks("mqtt5") is not None


def matches(filter_, topic):
    """MQTT topic matching for the plain filters used here (+ and a trailing #)."""
    f, t = filter_.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


class Version311Case(h.ApiCase):
    """The bridge pinned to 3.1.1 in front of Mosquitto, or negotiating in front of RabbitMQ."""
    version = "3.1.1"
    level = 4
    bridge_config = {"mqtt_sessions": "auto",
                     "broker": {} if RABBIT else {"mqtt_version": "3.1.1"}}

    def health(self):
        resp = self.http("GET", "/api/v1/health")
        self.assertEqual(resp.status, 200, resp)
        return resp.json()

    def metric(self, name):
        resp = self.http("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        return h.prom_samples(resp.body.decode()).get((name, ""))

    def retain(self, topic, payload):
        obs = self.observer()
        obs.publish(topic, payload, 1, retain=True)
        self.addCleanup(obs.publish, topic, b"", 1, retain=True)


class LinkTest(Version311Case):

    def test_health_metrics_and_log_say_the_version(self):
        self.assertEqual(self.health()["broker"]["mqtt_version"], self.version)
        self.assertEqual(self.metric("mwb_broker_protocol_level"), self.level)
        with open(self.stack.bridge.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        self.assertRegex(log, r"broker-up url=\S+ mqtt_version=%s\b" % re.escape(self.version))
        if RABBIT:
            # it found 3.1.1 by itself: the MQTT 5 attempt was closed without a CONNACK
            self.assertIn("broker-refused-version version=5 reason=closed-without-connack "
                          "fallback=3.1.1", log)

    @h.broker_needs("mosquitto", "the broker's log of the protocol level")
    def test_the_broker_sees_the_version(self):
        with open(self.stack.broker.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        # Mosquitto's own numbering: p1 is 3.1, p2 3.1.1, p5 MQTT 5
        self.assertRegex(log, r"as mqtt-web-bridge-\S+ \(p%d," % {4: 2, 3: 1}[self.level])

    def test_request_response_is_not_supported(self):
        resp = self.http("POST", "/api/v1/request/" + self.topic(), body=b"x",
                         headers={"Content-Type": "text/plain"})
        self.assert_error(resp, 501, "not_supported")


class PublishTest(Version311Case):

    def test_rest_publish_properties_are_dropped_and_counted(self):
        topic = self.topic()
        obs = self.quiet_observer(topic)
        before = self.metric("mwb_broker_properties_dropped_total")
        resp = self.http("POST", "/api/v1/publish/" + h.quote_topic(topic) + "?qos=1",
                         body=b"21.5", headers={"Content-Type": "text/plain"})
        self.assertEqual(resp.status, 200, resp)
        got = obs.get()
        self.assertEqual((got.topic, got.payload, got.qos), (topic, b"21.5", 1))
        self.assertEqual(self.metric("mwb_broker_properties_dropped_total"), before + 1)
        # a publish without properties is not counted
        resp = self.http("POST", "/api/v1/publish/" + h.quote_topic(topic) + "?qos=1",
                         body=b"22")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(obs.get().payload, b"22")
        self.assertEqual(self.metric("mwb_broker_properties_dropped_total"), before + 1)


    def test_qos2_publishes_go_at_the_highest_qos_the_broker_takes(self):
        # RabbitMQ 3.10 grants QoS 1 for QoS 2 and answers a QoS 2 PUBLISH with a PUBACK: the
        # bridge learns that from a SUBACK and publishes at QoS 1 there; REST and a browser's
        # QoS 2 flow still complete
        topic = self.topic()
        obs = self.quiet_observer(topic)
        resp = self.http("POST", "/api/v1/publish/" + h.quote_topic(topic) + "?qos=2",
                         body=b"rest")
        self.assertEqual(resp.status, 200, resp)
        got = obs.get()
        self.assertEqual((got.payload, got.qos), (b"rest", h.broker_qos(2)))
        conn = self.raw(r.V5)
        conn.send(r.publish(topic, b"browser", qos=2, pid=9, version=r.V5))
        rec = conn.expect(r.PUBREC)
        self.assertEqual((rec.pid, rec.rc or 0), (9, 0))
        conn.send(r.pubrel(9, version=r.V5))
        self.assertEqual(conn.expect(r.PUBCOMP).pid, 9)
        got = obs.get()
        self.assertEqual((got.payload, got.qos), (b"browser", h.broker_qos(2)))
        # and the retained reader's markers: a read still ends at once
        self.retain(topic, b"kept")
        resp = self.http("GET", "/api/v1/topics/" + h.quote_topic(topic))
        self.assertEqual((resp.status, resp.body), (200, b"kept"))
        self.assertLess(resp.elapsed, 1.5)


class RetainedTest(Version311Case):

    def test_overlapping_reads_at_once_each_get_one_copy(self):
        # without subscription identifiers a retained message of one read's SUBSCRIBE also
        # reaches the others under way that match it; each still answers one copy per topic
        base = self.topic("tree")
        values = {base + "/a": b"1", base + "/b": b"2", base + "/c/d": b"3"}
        for t, v in values.items():
            self.retain(t, v)
        filters = [base + "/#", base + "/+", base + "/a", base + "/#", base + "/c/+"]
        results = {}

        def read(i):
            results[i] = self.http("GET", "/api/v1/topics?filter=" + quote_query(filters[i]))
        threads = [threading.Thread(target=read, args=(i,)) for i in range(len(filters))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(h.TIMEOUT)
        for i, f in enumerate(filters):
            resp = results[i]
            self.assertEqual(resp.status, 200, resp)
            body = resp.json()
            want = sorted((t, v) for t, v in values.items() if matches(f, t))
            got = [(m["topic"], m["payload"].encode()) for m in body["messages"]]
            if ("+" in f or "#" in f) and h.broker_lacks("retained_wildcards"):
                # the broker sends a wildcard SUBSCRIBE nothing: the read holds what exact
                # reads under way brought of its topics, each once and true
                self.assertEqual(len(got), len(set(got)), "filter %s: %r" % (f, got))
                self.assertLessEqual(set(got), set(want), "filter %s" % f)
            else:
                self.assertEqual(got, want, "filter %s" % f)
            self.assertIs(body["truncated"], False)

    def test_replayed_retained_reaches_no_browser_or_stream(self):
        # a 3.1.x broker sends a filter's retained messages again on every SUBSCRIBE of it:
        # the hub's first one and its re-SUBSCRIBE when a browser asks for a higher QoS
        topic = self.topic()
        self.retain(topic, b"kept")
        stream = self.stream(topic)
        low = self.raw(r.V311)
        low.send(r.subscribe(1, [(topic, 0)], version=r.V311))
        self.assertEqual(low.expect(r.SUBACK).codes, [0])
        got = low.recv(h.TIMEOUT)   # its own retained read
        self.assertEqual((got.topic, got.payload, got.retain), (topic, b"kept", True))
        high = self.raw(r.V5)
        high.send(r.subscribe(1, [(topic, 2)], version=r.V5))
        self.assertEqual(high.expect(r.SUBACK).codes, [h.broker_qos(2)])
        got = high.recv(h.TIMEOUT)
        self.assertEqual((got.topic, got.payload, got.retain), (topic, b"kept", True))
        # a live message then reaches all three, once; nothing before it
        obs = self.observer()
        obs.publish(topic, b"live", 1)
        for conn in (low, high):
            got = conn.recv(h.TIMEOUT)
            self.assertEqual((got.payload, got.retain), (b"live", False))
            if got.qos:
                conn.send(r.puback(got.pid, version=conn.version))
        ev = stream.next_event()
        self.assertEqual((ev.topic, ev.payload), (topic, b"live"))
        stream.assert_no_event()
        for conn in (low, high):
            self.assertEqual(conn.quiet_for(h.QUIET), [])


class SessionTest(Version311Case):

    def test_mqtt5_browser_gets_an_mqtt5_session(self):
        conn = self.raw(r.V5, "")
        self.assertTrue(conn.connack.prop(r.ASSIGNED_CLIENT_IDENTIFIER), repr(conn.connack))
        topic = self.topic()
        conn.send(r.subscribe(1, [(topic, r.sub_options(qos=1, no_local=True))],
                              props=[(r.SUBSCRIPTION_IDENTIFIER, 7)], version=r.V5))
        self.assertEqual(conn.expect(r.SUBACK).codes, [1])
        other = self.raw(r.V5)
        other.send(r.publish(topic, b"hi", qos=1, pid=3, version=r.V5))
        self.assertEqual(other.expect(r.PUBACK).pid, 3)
        got = conn.recv(h.TIMEOUT)
        self.assertEqual(got.raw, r.publish(topic, b"hi", qos=1, pid=got.pid, version=r.V5,
                                            props=[(r.SUBSCRIPTION_IDENTIFIER, 7)]))
        conn.send(r.puback(got.pid, version=r.V5))
        # its own publish does not come back (no-local, done by the bridge)
        conn.send(r.publish(topic, b"mine", qos=1, pid=4, version=r.V5))
        self.assertEqual(conn.expect(r.PUBACK).pid, 4)
        self.assertEqual(conn.quiet_for(h.QUIET), [])

    def test_311_browser_with_a_will_gets_its_own_session(self):
        topic = self.topic("will")
        obs = self.quiet_observer(topic)
        conn = self.raw(r.V311, will=dict(topic=topic, payload=b"gone"))
        conn.ws.close()
        got = obs.get()
        self.assertEqual((got.topic, got.payload), (topic, b"gone"))


class DedicatedSessionTest(Version311Case):
    """mqtt_sessions "dedicated": every browser has a broker client of its own, and an MQTT 5
    browser's client speaks 3.1.1 (the version the bridge's link found or was pinned to)."""
    bridge_config = {"mqtt_sessions": "dedicated",
                     "broker": {} if RABBIT else {"mqtt_version": "3.1.1"}}

    def wait_broker_log(self, pattern):
        deadline = time.monotonic() + h.TIMEOUT
        while not re.search(pattern, self.stack.broker.log()):
            self.assertLess(time.monotonic(), deadline, "broker log lacks %r" % pattern)
            time.sleep(0.05)

    def test_mqtt5_browser_gets_an_mqtt5_session_over_a_311_client(self):
        cid = self.uid()
        conn = self.raw(r.V5, cid)
        self.assertIsNotNone(conn.connack.prop(r.TOPIC_ALIAS_MAXIMUM), repr(conn.connack))
        if not RABBIT:
            self.wait_broker_log(r"as %s \(p2," % re.escape(cid))
        topic, out = self.topic(), self.topic("out")
        obs = self.quiet_observer(out)
        conn.send(r.subscribe(1, [(topic, r.sub_options(qos=1))],
                              props=[(r.SUBSCRIPTION_IDENTIFIER, 7)], version=r.V5))
        self.assertEqual(conn.expect(r.SUBACK).codes, [1])
        self.observer().publish(topic, b"hi", 1)
        got = conn.recv(h.TIMEOUT)
        # an MQTT 5 PUBLISH; what 3.1.1 cannot carry (the subscription identifier) is absent
        self.assertEqual(got.raw, r.publish(topic, b"hi", qos=1, pid=got.pid, version=r.V5))
        conn.send(r.puback(got.pid, version=r.V5))
        # a QoS 2 flow with properties: acked in MQTT 5, at the broker at the QoS it takes,
        # the properties dropped and counted
        before = self.metric("mwb_broker_properties_dropped_total")
        conn.send(r.publish(out, b"mine", qos=2, pid=9, version=r.V5,
                            props=[(r.USER_PROPERTY, ("k", "v")), (r.TOPIC_ALIAS, 1)]))
        rec = conn.expect(r.PUBREC)
        self.assertEqual((rec.pid, rec.rc or 0), (9, 0))
        conn.send(r.pubrel(9, version=r.V5))
        self.assertEqual(conn.expect(r.PUBCOMP).pid, 9)
        got = obs.get()
        self.assertEqual((got.topic, got.payload, got.qos), (out, b"mine", h.broker_qos(2)))
        self.assertEqual(self.metric("mwb_broker_properties_dropped_total"), before + 1)
        # the alias set above resolves: no properties left, so nothing more is counted
        conn.send(r.publish("", b"alias", qos=1, pid=10, version=r.V5, props=[(r.TOPIC_ALIAS, 1)]))
        self.assertEqual(conn.expect(r.PUBACK).pid, 10)
        self.assertEqual(obs.get().payload, b"alias")
        self.assertEqual(self.metric("mwb_broker_properties_dropped_total"), before + 1)
        # UNSUBACK has a v5 reason code per filter, though 3.1.1's has none
        conn.send(r.unsubscribe(2, [topic, topic + "/none"], version=r.V5))
        self.assertEqual(conn.expect(r.UNSUBACK).codes, [0, 0])
        conn.send(r.disconnect(version=r.V5))
        self.assert_closed(conn)

    def test_mqtt5_will_over_a_311_client(self):
        # the bridge publishes the will itself: 3.1.1's DISCONNECT always discards it
        for how in ("connection lost", "DISCONNECT 0x04", "DISCONNECT 0x00"):
            with self.subTest(how=how):
                topic = self.topic("will")
                obs = self.quiet_observer(topic)
                conn = self.raw(r.V5, will=dict(topic=topic, payload=b"gone", qos=1,
                                                props=[(r.CONTENT_TYPE, "text/plain")]))
                if how == "connection lost":
                    conn.ws.close()
                else:
                    conn.send(r.disconnect(0x04 if "4" in how else 0x00, version=r.V5))
                if how == "DISCONNECT 0x00":
                    self.assert_closed(conn)
                    obs.assert_no_message()
                    continue
                got = obs.get()
                self.assertEqual((got.topic, got.payload, got.qos), (topic, b"gone", 1))

    def test_mqtt5_persistent_session_over_a_311_client(self):
        cid = self.uid()
        topic = self.topic()
        keep = [(r.SESSION_EXPIRY_INTERVAL, 300)]
        conn = self.raw(r.V5, cid, clean=False, props=keep)
        self.assertFalse(conn.connack.session_present)
        conn.send(r.subscribe(1, [(topic, 1)], version=r.V5))
        self.assertEqual(conn.expect(r.SUBACK).codes, [1])
        conn.send(r.disconnect(version=r.V5))
        self.assert_closed(conn)
        if not RABBIT:
            self.wait_broker_log(r"Client %s disconnected" % re.escape(cid))
        # the broker kept it (3.1.1 clean session 0): no SUBSCRIBE needed
        conn = self.raw(r.V5, cid, clean=False, props=keep)
        self.assertTrue(conn.connack.session_present)
        self.observer().publish(topic, b"kept", 1)
        got = conn.recv(h.TIMEOUT)
        self.assertEqual((got.topic, got.payload), (topic, b"kept"))
        conn.send(r.puback(got.pid, version=r.V5))
        conn.send(r.disconnect(version=r.V5))
        self.assert_closed(conn)
        # clean start (or session expiry 0) is a clean 3.1.1 session: nothing resumed
        conn = self.raw(r.V5, cid, clean=True)
        self.assertFalse(conn.connack.session_present)
        conn = self.raw(r.V5, cid, clean=False)
        self.assertFalse(conn.connack.session_present)


@h.bridge_only("broker credentials checked by the broker for the bridge's own clients")
@h.broker_needs("mosquitto", "a broker with a password file")
class DedicatedRefusalTest(Version311Case):
    """The broker's 3.1.1 refusal of an MQTT 5 browser's client reaches it as a v5 reason code."""
    passwords = {"bridge": "bridge-pw", "dave": "d4ve-pw"}
    bridge_config = {"mqtt_sessions": "auto",
                     "broker": {"mqtt_version": "3.1.1", "username": "bridge",
                                "password": "bridge-pw"}}

    def test_wrong_password_gets_the_v5_code(self):
        # Mosquitto answers 3.1.1 code 5 (not authorized): 0x87 in MQTT 5
        conn = self.raw(r.V5, username="dave", password="wrong", expect_rc=0x87)
        self.assert_closed(conn)
        conn = self.raw(r.V5, username="dave", password="d4ve-pw")
        conn.send(r.pingreq())
        conn.expect(r.PINGRESP)


@h.broker_needs("mosquitto", "the link pinned to MQTT 3.1 (MQIsdp) in front of Mosquitto")
class Version31Test(Version311Case):
    """broker.mqtt_version "3.1": the link speaks MQIsdp; the same basics work."""
    version = "3.1"
    level = 3
    bridge_config = {"mqtt_sessions": "auto", "broker": {"mqtt_version": "3.1"}}

    test_health_metrics_and_log_say_the_version = LinkTest.test_health_metrics_and_log_say_the_version
    test_the_broker_sees_the_version = LinkTest.test_the_broker_sees_the_version
    test_rest_publish_properties_are_dropped_and_counted = \
        PublishTest.test_rest_publish_properties_are_dropped_and_counted
    test_mqtt5_browser_gets_an_mqtt5_session = SessionTest.test_mqtt5_browser_gets_an_mqtt5_session


if __name__ == "__main__":
    h.main()
