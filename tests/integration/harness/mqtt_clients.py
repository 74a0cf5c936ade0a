"""paho-mqtt clients with queues for what arrives and bounded waits: over WebSocket to the
endpoint under test, or on the broker's TCP listener (observers)."""

import queue
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from .settings import HOST, QUIET, TIMEOUT, V311, V5


def props(packet_type, **kw):
    """paho Properties for @packet_type (e.g. PacketTypes.PUBLISH) from keyword arguments."""
    p = Properties(packet_type)
    for name, value in kw.items():
        setattr(p, name, value)
    return p


class Paho:
    """A paho-mqtt client with queues for everything that arrives and bounded waits.

    Made with reconnect_on_failure=False: paho's loop thread would otherwise reconnect by itself,
    hiding drops and fighting session takeovers.
    """

    def __init__(self, port, version=V311, client_id="", clean=True, keepalive=60,
                 username=None, password=None, transport="websockets", host=HOST):
        self.version = version
        self.port = port
        self.host = host
        self.keepalive = keepalive
        self.clean = clean
        kwargs = dict(client_id=client_id, protocol=version, transport=transport,
                      reconnect_on_failure=False)
        if version != V5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(**kwargs)
        if transport == "websockets":
            self.c.ws_set_options(path="/mqtt")
        if username is not None:
            self.c.username_pw_set(username, password)
        self.connack = queue.Queue()
        self.messages = queue.Queue()
        self.subacks = queue.Queue()
        self.unsubacks = queue.Queue()
        self.published = queue.Queue()
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.disconnect_props = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = lambda c, u, mid: self.published.put(mid)
        self.c.on_disconnect = self._on_disconnect
        self.started = False

    # callbacks run on paho's loop thread: they only put into queues
    def _on_connect(self, c, u, flags, rc, properties=None):
        self.connack.put((rc, flags, properties))

    def _on_message(self, c, u, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, u, mid, granted, properties=None):
        self.subacks.put((mid, granted, properties))

    def _on_unsubscribe(self, c, u, mid, *rest):
        # v3: (mid); v5: (mid, properties, reasoncodes)
        self.unsubacks.put((mid, rest))

    def _on_disconnect(self, c, u, rc, properties=None):
        self.disconnect_rc = rc
        self.disconnect_props = properties
        self.disconnected.set()

    def will_set(self, topic, payload=None, qos=0, retain=False, properties=None):
        self.c.will_set(topic, payload, qos, retain, properties)

    def connect(self, expect_rc=0, clean_start=True, properties=None, timeout=TIMEOUT):
        """Connect and wait for CONNACK; asserts its code. Returns (rc, flags, properties)."""
        kwargs = dict(keepalive=self.keepalive)
        if self.version == V5:
            kwargs["clean_start"] = clean_start
            kwargs["properties"] = properties
        self.c.connect(self.host, self.port, **kwargs)
        self.c.loop_start()
        self.started = True
        try:
            rc, flags, cprops = self.connack.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no CONNACK within %.1fs" % timeout)
        code = rc.value if hasattr(rc, "value") else rc
        if expect_rc is not None and code != expect_rc:
            raise AssertionError("CONNACK code %s, expected %s" % (code, expect_rc))
        return code, flags, cprops

    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=TIMEOUT):
        """Subscribe and wait for SUBACK; returns the granted codes as ints."""
        if self.version == V5:
            if isinstance(topic, list):
                rc, mid = self.c.subscribe(topic, properties=properties)
            else:
                opts = options or mqtt.SubscribeOptions(qos=qos)
                rc, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("subscribe failed locally: %s" % rc)
        try:
            got_mid, granted, _ = self.subacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no SUBACK within %.1fs" % timeout)
        if got_mid != mid:
            raise AssertionError("SUBACK for mid %s, expected %s" % (got_mid, mid))
        return [g.value if hasattr(g, "value") else g for g in granted]

    def unsubscribe(self, topic, properties=None, timeout=TIMEOUT):
        if self.version == V5:
            rc, mid = self.c.unsubscribe(topic, properties=properties)
        else:
            rc, mid = self.c.unsubscribe(topic)
        try:
            got_mid, rest = self.unsubacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no UNSUBACK within %.1fs" % timeout)
        if got_mid != mid:
            raise AssertionError("UNSUBACK for mid %s, expected %s" % (got_mid, mid))
        if self.version == V5:
            codes = rest[1]
            codes = codes if isinstance(codes, list) else [codes]
            return [c.value for c in codes]
        return []

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, timeout=TIMEOUT):
        """Publish; for QoS 1/2 waits until the flow completed (PUBACK / PUBCOMP)."""
        info = self.c.publish(topic, payload, qos, retain, properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("publish failed locally: %s" % info.rc)
        if qos == 0:
            # QoS 0 has no ack; wait until paho wrote it so ordering with later packets holds
            info.wait_for_publish(timeout)
            return info
        deadline = time.monotonic() + timeout
        while True:
            try:
                mid = self.published.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("QoS %d publish to %r not acknowledged within %.1fs"
                                     % (qos, topic, timeout))
            if mid == info.mid:
                return info

    def get(self, timeout=TIMEOUT):
        """The next message; AssertionError when none arrives in time."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message within %.1fs" % timeout)

    def get_n(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            try:
                out.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError("%d of %d messages within %.1fs: %r"
                                     % (len(out), n, timeout, [m.topic for m in out]))
        return out

    def assert_no_message(self, within=QUIET):
        try:
            msg = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError("unexpected message on %r: %r" % (msg.topic, msg.payload[:60]))

    def wait_disconnected(self, timeout=TIMEOUT):
        if not self.disconnected.wait(timeout):
            raise AssertionError("still connected after %.1fs" % timeout)
        return self.disconnect_rc

    def disconnect(self, reasoncode=None, properties=None):
        """Clean DISCONNECT; waits until paho has seen the connection end."""
        if self.version == V5:
            self.c.disconnect(reasoncode=reasoncode, properties=properties)
        else:
            self.c.disconnect()
        self.disconnected.wait(TIMEOUT)

    def drop(self):
        """Close the TCP connection without DISCONNECT or WebSocket close (the client 'vanishes')."""
        sock = self.c.socket()
        sock = getattr(sock, "_socket", sock)   # under paho's WebsocketWrapper
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.disconnected.wait(TIMEOUT)
        self.c.loop_stop()
        self.started = False

    def close(self):
        """Cleanup: ends the loop thread and the socket whatever the state."""
        if self.started:
            try:
                if not self.disconnected.is_set():
                    self.c.disconnect()
            except Exception:
                pass
            self.c.loop_stop()
            self.started = False
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def make_client(port, version=V311, client_id="", clean=True, connect=True, **kw):
    """A paho client over WebSocket (path /mqtt) to @port, its network loop running; connected
    (CONNACK 0 asserted) unless connect=False. The caller closes it (Paho.close)."""
    c = Paho(port, version, client_id, clean=clean, **kw)
    if connect:
        try:
            c.connect()
        except BaseException:
            c.close()
            raise
    return c


class TcpObserver(Paho):
    """A paho client on the broker's TCP listener, beside the endpoint under test."""

    def __init__(self, broker_port, version=V311, client_id="", **kw):
        super().__init__(broker_port, version, client_id, transport="tcp", **kw)
