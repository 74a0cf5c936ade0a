"""The test case bases: IntegrationCase (one Stack per class, clients closed by cleanups, the logs'
tails printed on a failure) and ApiCase (the REST API and the SSE stream, bridge only)."""

import os
import random
import subprocess
import sys
import time
import unittest

import paho.mqtt.client as mqtt

import rawws

from .api import KeepAlive, SseStream, http_request, quote_query, raw_http
from .bridge import Stack, wait_hub
from .mqtt_clients import Paho, TcpObserver
from .processes import require_tool
from .settings import (HOST, TARGET, TIMEOUT, V311, V5, broker_qos, observer_version,
                       shared_sessions)

CURL = "/usr/bin/curl"

_unique = [0]


class IntegrationCase(unittest.TestCase):
    """Starts one Stack per class (override the class attributes to configure it).

    Helpers create clients that are closed by cleanups; on failure the logs' tails are printed.
    """

    mosquitto_conf = ""               # extra lines for mosquitto.conf
    acl = None
    passwords = None
    bridge_config = None
    with_broker = True

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(cls.mosquitto_conf, cls.acl, cls.passwords, cls.bridge_config,
                          cls.with_broker)
        cls.addClassCleanup(cls.stack.cleanup)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            stack = getattr(type(self), "stack", None)
            if stack is not None:
                sys.stderr.write("\n[%s failed; target=%s]\n%s\n" % (self.id(), TARGET, stack.logs()))
        return out

    # names ------------------------------------------------------------------------------

    def uid(self, prefix="c"):
        _unique[0] += 1
        return "%s-%s-%d-%04x" % (prefix, self._testMethodName[-20:], _unique[0],
                                  random.getrandbits(16))

    def topic(self, leaf="t"):
        _unique[0] += 1
        return "mwbtest/%s/%d-%04x/%s" % (self._testMethodName[-24:], _unique[0],
                                          random.getrandbits(16), leaf)

    # session modes ----------------------------------------------------------------------

    @property
    def shared(self):
        """Whether this class's endpoint serves a shareable session (clean start, session expiry
        0, no will, an identity the bridge vouches for) from the bridge's hub, so that the
        broker never sees its client id: the bridge in mqtt_sessions "auto" (MWB_SESSIONS and
        the class's bridge_config). False for Mosquitto's own listener and for "dedicated"."""
        return shared_sessions(type(self).bridge_config)

    def dedicated_will(self):
        """A will (for paho's and raw()'s will=) on a topic nobody watches: a session with a
        will has its own upstream client in every mode, so the broker sees its client id,
        takes it over, and ends or keeps its session as it would a client of its own."""
        return dict(topic=self.topic("dedicated-will"), payload=b"")

    # clients ----------------------------------------------------------------------------

    @property
    def ws_port(self):
        return self.stack.ws_port

    def paho(self, version=V311, client_id=None, clean=True, connect=True, expect_rc=0,
             clean_start=True, properties=None, will=None, **kw):
        """A paho client over WebSocket to the endpoint under test, connected unless told not."""
        c = Paho(self.ws_port, version, self.uid() if client_id is None else client_id,
                 clean=clean, **kw)
        self.addCleanup(c.close)
        if will:
            c.will_set(**will)
        if connect:
            c.connack_result = c.connect(expect_rc=expect_rc, clean_start=clean_start,
                                         properties=properties)
        return c

    def observer(self, version=V5, client_id=None, subscribe=None, qos=2, **kw):
        """A paho client straight on the broker's TCP port, optionally subscribed. It speaks
        observer_version(@version): MQTT 3.1.1 on a broker without MQTT 5 (RabbitMQ)."""
        c = TcpObserver(self.stack.broker.port, observer_version(version),
                        self.uid("obs") if client_id is None else client_id, **kw)
        self.addCleanup(c.close)
        c.connect()
        if subscribe:
            granted = c.subscribe(subscribe, qos)
            self.assertEqual(granted, [broker_qos(qos)])
        return c

    def ws(self, subprotocols=("mqtt",), path="/mqtt", **kw):
        """A raw WebSocket connection to the endpoint under test."""
        w = rawws.WSClient(HOST, self.ws_port, path=path, subprotocols=subprotocols, **kw)
        self.addCleanup(w.close)
        return w

    def raw(self, version=rawws.V311, client_id=None, expect_rc=0, subprotocols=("mqtt",),
            **connect_kw):
        """A raw MQTT connection (rawws.MQTTConn), CONNECT sent and CONNACK checked.

        expect_rc=None sends CONNECT without reading anything. The CONNACK is in .connack.
        """
        w = self.ws(subprotocols=subprotocols)
        conn = rawws.MQTTConn(w, version)
        cid = self.uid("raw") if client_id is None else client_id
        conn.client_id = cid
        conn.send(rawws.connect(cid, version=version, **connect_kw))
        conn.connack = None
        if expect_rc is not None:
            ack = conn.expect(rawws.CONNACK)
            self.assertEqual(ack.rc, expect_rc, "CONNACK %r" % ack)
            conn.connack = ack
        return conn

    # checks -----------------------------------------------------------------------------

    def assert_closed(self, conn, timeout=TIMEOUT, v5_disconnect=None):
        """The server ends @conn within @timeout.

        v5_disconnect=True: a v5 DISCONNECT with reason >= 0x80 must come before the end.
        Returns the DISCONNECT packet (or None) so a test can look at its reason; every packet
        that arrived before the end is left in conn.close_packets.
        """
        try:
            got = conn.wait_closed(timeout)
        except TimeoutError:
            self.fail("connection still open after %.1fs" % timeout)
        conn.close_packets = got
        disc = [p for p in got if p.type == rawws.DISCONNECT]
        if v5_disconnect:
            self.assertTrue(disc, "expected a DISCONNECT before the close, got %r" % got)
            self.assertGreaterEqual(disc[-1].rc, 0x80, "DISCONNECT reason %r" % disc[-1])
        return disc[-1] if disc else None

    def round_trip(self, client, topic=None, qos=1, payload=None):
        """@client (a connected Paho subscribed to nothing in particular) can still publish and
        receive: proves a bad connection elsewhere did not harm it."""
        topic = topic or self.topic("rt")
        client.subscribe(topic, qos)
        payload = payload if payload is not None else os.urandom(32)
        client.publish(topic, payload, qos)
        msg = client.get()
        self.assertEqual((msg.topic, msg.payload), (topic, payload))
        client.unsubscribe(topic)


class ApiCase(IntegrationCase):
    """A case for the REST API and the SSE stream: they exist only on the bridge, so the whole
    class is skipped for MWB_TARGET=mosquitto (and only then)."""

    @classmethod
    def setUpClass(cls):
        if TARGET != "bridge":
            raise unittest.SkipTest("bridge only (the REST API and SSE stream are the bridge's)")
        super().setUpClass()
        if cls.with_broker:
            cls.wait_hub(cls.stack.bridge.port)

    @staticmethod
    def wait_hub(port, timeout=10.0):
        wait_hub(port, timeout)

    @property
    def api_port(self):
        return self.stack.bridge.port

    def url(self, path, port=None):
        return "http://%s:%d%s" % (HOST, port or self.api_port, path)

    def http(self, method, path, body=None, headers=None, timeout=TIMEOUT, port=None):
        return http_request(port or self.api_port, method, path, body, headers, timeout)

    def assert_refused_by_http_layer(self, method, path, body=None):
        """A URL lws's parser refuses before the bridge sees it: a broken percent-encoding gets
        lws's own 403, and an encoded NUL ends the connection. Either way nothing goes on."""
        try:
            resp = self.http(method, path, body)
        except AssertionError as e:
            if "closed the connection without an answer" in str(e):
                return
            raise
        self.assertIn(resp.status, (400, 403), resp)

    def keepalive(self, port=None):
        k = KeepAlive(port or self.api_port)
        self.addCleanup(k.close)
        return k

    def raw_http(self, data, timeout=TIMEOUT, port=None):
        return raw_http(port or self.api_port, data, timeout)

    def sse(self, path, headers=None, rcvbuf=None, timeout=TIMEOUT, read_head=True, port=None):
        s = SseStream(port or self.api_port, path, headers, rcvbuf, timeout, read_head)
        self.addCleanup(s.close)
        return s

    def stream(self, *filters, **kw):
        """An SSE stream of @filters (percent-encoded), asserted 200; extra query in kw['query']."""
        query = "&".join("topic=" + quote_query(f) for f in filters)
        if kw.get("query"):
            query += "&" + kw.pop("query")
        s = self.sse("/api/v1/stream?" + query, **kw)
        self.assertEqual(s.status, 200, "stream %s: %r" % (query, s.response))
        return s

    def curl(self, *args, timeout=TIMEOUT):
        """curl -sS --max-time @timeout -w '\\n%{http_code}' @args: (status, body, exit code,
        stderr)."""
        require_tool(CURL)
        cmd = [CURL, "-sS", "--max-time", "%g" % timeout, "-w", "\n%{http_code}"] + list(args)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout + 5)
        body, _, code = p.stdout.rpartition(b"\n")
        return int(code or b"0"), body, p.returncode, p.stderr

    def quiet_observer(self, filter="#", **kw):
        """An observer on the broker's TCP port subscribed to @filter at QoS 2 without the
        retained messages: it sees only what is published from now on. v5: retain handling 2;
        3.1.1 (a broker without MQTT 5): it publishes a token to a topic @filter matches and
        drops everything that arrives before the token (the retained messages come before a
        message published after the SUBACK on the same connection)."""
        version = observer_version(V5)
        c = TcpObserver(self.stack.broker.port, version, self.uid("quiet"), **kw)
        self.addCleanup(c.close)
        c.connect()
        if version == V5:
            granted = c.subscribe(filter, options=mqtt.SubscribeOptions(qos=2, retainHandling=2))
        else:
            granted = c.subscribe(filter, 2)
        self.assertEqual(granted, [broker_qos(2)])
        if version != V5:
            token = os.urandom(16).hex().encode()
            levels = ["mwbtest" if lvl == "#" else "quiet" if lvl == "+" else lvl
                      for lvl in filter.split("/")]
            c.publish("/".join(levels), token, 1)
            deadline = time.monotonic() + TIMEOUT
            while c.get(max(0.0, deadline - time.monotonic())).payload != token:
                pass
        return c

    def assert_error(self, resp, status, code, allow=None):
        """@resp is the JSON error {"error": {"code": @code, "message": "..."}} with @status."""
        self.assertEqual(resp.status, status, "expected %d %s, got %r" % (status, code, resp))
        self.assertEqual(resp.mime, "application/json", "error content type: %r" % resp)
        body = resp.json()
        self.assertIsInstance(body, dict, resp)
        self.assertIsInstance(body.get("error"), dict, "no error object: %r" % resp)
        self.assertEqual(body["error"].get("code"), code, "error code: %r" % resp)
        msg = body["error"].get("message")
        self.assertTrue(isinstance(msg, str) and msg, "error message missing: %r" % resp)
        return body["error"]

    def assert_allow(self, resp, methods, refused):
        """405 method_not_allowed with an Allow header that lists @methods and not @refused."""
        self.assert_error(resp, 405, "method_not_allowed")
        allow = resp.header("Allow")
        self.assertIsNotNone(allow, "405 without Allow: %r" % resp)
        listed = {m.strip().upper() for m in allow.split(",") if m.strip()}
        self.assertTrue(set(methods) <= listed, "Allow %r lacks %r" % (allow, methods))
        self.assertNotIn(refused, listed, "Allow %r lists the refused %s" % (allow, refused))

    def sse_sync(self, streams, publisher, topic, timeout=TIMEOUT):
        """Publishes tokens to @topic (matched by every stream's filters) until each of @streams
        delivered the same last token; everything before it is dropped. Afterwards every
        stream's subscription is live at the broker, and only what is published later follows.
        Returns {stream: [events dropped that were not sync tokens]}."""
        if isinstance(streams, SseStream):
            streams = [streams]
        deadline = time.monotonic() + timeout
        tag = self.uid("sync")
        prefix = tag.encode()
        dropped = {s: [] for s in streams}
        i = 0
        while time.monotonic() < deadline:
            token = ("%s-%d" % (tag, i)).encode()
            publisher.publish(topic, token, 0)
            ok = True
            for s in streams:
                if s.poll_for(lambda ev: ev.json.get("topic") == topic and ev.payload == token,
                              0.3, dropped[s]) is None:
                    ok = False
            if ok:
                return {s: [ev for ev in evs if not (ev.json.get("topic") == topic
                                                     and ev.payload.startswith(prefix))]
                        for s, evs in dropped.items()}
            i += 1
        self.fail("streams did not deliver a message on %r within %.1fs" % (topic, timeout))
