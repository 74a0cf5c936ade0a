"""Integration test harness: a real Mosquitto, the real bridge, real clients.

MWB_TARGET=bridge (default): the WebSocket endpoint under test is the bridge's ws://127.0.0.1:PORT/mqtt,
in front of Mosquitto's TCP listener; MWB_BINARY names the bridge executable (required).
MWB_TARGET=mosquitto: the endpoint under test is Mosquitto's own WebSocket listener. This is how the
tests themselves are validated: every behaviour the bridge shares with a broker must pass there too.
Tests that only make sense for the bridge are decorated with @bridge_only and are skipped ONLY for
MWB_TARGET=mosquitto.

Every process started here is stopped by its PID (SIGTERM, bounded wait, SIGKILL) from a cleanup that
runs also when a test fails. Every wait is bounded.
"""

import atexit
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes  # noqa: F401 (re-exported for the tests)
from paho.mqtt.properties import Properties

import rawws

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
HOST = "127.0.0.1"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

TARGET = os.environ.get("MWB_TARGET", "bridge")
if TARGET not in ("bridge", "mosquitto"):
    raise SystemExit("MWB_TARGET must be 'bridge' or 'mosquitto', not %r" % TARGET)

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
VERSIONS = (V311, V5)

TIMEOUT = 5.0          # default bound for anything that should happen "now"
QUIET = 0.7            # how long "nothing arrives" is watched


# Processes started here and not yet stopped. If the test run itself is killed (SIGTERM from
# meson's timeout, Ctrl-C), the handler below stops them by PID before exiting; PR_SET_PDEATHSIG
# covers a SIGKILL of the test process.
_live = {}
_dirs = set()


def _stop_all_and_exit(signum, frame):
    for proc in list(_live.values()):
        try:
            stop_process(proc, 2.0)
        except Exception:
            pass
    for d in list(_dirs):
        shutil.rmtree(d, ignore_errors=True)
    os._exit(128 + signum)


def make_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.add(d)
    return d


def remove_dir(d):
    shutil.rmtree(d, ignore_errors=True)
    _dirs.discard(d)


try:
    import ctypes
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl   # bound now: no import after fork
except (ImportError, OSError):
    _prctl = None


def _die_with_parent():
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))   # PR_SET_PDEATHSIG


def spawn(cmd, log_path, cwd=None):
    """Popen with output appended to @log_path; tracked until stop_process()."""
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, cwd=cwd,
                                preexec_fn=_die_with_parent)
    _live[proc.pid] = proc
    return proc


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _stop_all_and_exit)
    signal.signal(signal.SIGINT, _stop_all_and_exit)
atexit.register(lambda: [stop_process(p, 2.0) for p in list(_live.values())])


def bridge_only(reason):
    """Skip only when the target is Mosquitto's own listener, never against the bridge."""
    return unittest.skipIf(TARGET == "mosquitto", "bridge only (%s)" % reason)


def require_tool(path):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError("required tool missing: %s (install it; tests never skip for this)"
                             % path)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout, log_path):
    """Until @port accepts TCP; fails early when @proc exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("process %d exited with %s before listening on %d\n%s"
                                 % (proc.pid, proc.returncode, port, log_tail(log_path)))
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("port %d not accepting after %.1fs\n%s" % (port, timeout, log_tail(log_path)))


def log_tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(no log %s: %s)" % (path, e)
    return "--- %s (last %d lines) ---\n%s" % (path, lines, "\n".join(data[-lines:]))


def stop_process(proc, timeout=5.0):
    """SIGTERM, bounded wait, SIGKILL. Returns the exit code (negative: killed by that signal)."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    _live.pop(proc.pid, None)
    return proc.returncode


class Mosquitto:
    """A private Mosquitto: TCP listener .port and WebSocket listener .ws_port on 127.0.0.1."""

    def __init__(self, extra_conf="", acl=None, passwords=None, port=None, ws_port=None):
        require_tool(MOSQUITTO)
        self.dir = make_dir("mwb-mosq-")
        os.chmod(self.dir, 0o755)  # Mosquitto may drop root privileges to its own user
        self.log_path = os.path.join(self.dir, "mosquitto.log")
        self.extra_conf = extra_conf
        self.acl = acl
        self.passwords = passwords
        self.proc = None
        self.port = port
        self.ws_port = ws_port
        self.start()

    def _write_conf(self):
        lines = ["persistence false",
                 "log_dest file %s" % self.log_path,
                 "log_type all",
                 "connection_messages true",
                 "log_timestamp true"]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.passwords:
            require_tool(MOSQUITTO_PASSWD)
            pw = os.path.join(self.dir, "passwords")
            open(pw, "w").close()
            for user, password in self.passwords.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", pw, user, password], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
            os.chmod(pw, 0o644)
            lines += ["allow_anonymous false", "password_file %s" % pw]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl = os.path.join(self.dir, "acl")
            with open(acl, "w") as f:
                f.write(self.acl)
            os.chmod(acl, 0o644)
            lines.append("acl_file %s" % acl)
        if self.extra_conf:
            lines.append(self.extra_conf)
        lines += ["listener %d %s" % (self.port, HOST),
                  "listener %d %s" % (self.ws_port, HOST),
                  "protocol websockets"]
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(conf, 0o644)
        return conf

    def start(self):
        """(Re)start on the same ports when they are set, else on fresh ones (retrying races)."""
        fixed = self.port is not None
        for attempt in range(5):
            if not fixed:
                self.port, self.ws_port = free_port(), free_port()
            conf = self._write_conf()
            self.proc = spawn([MOSQUITTO, "-c", conf], self.log_path)
            try:
                wait_port(self.port, self.proc, 10, self.log_path)
                wait_port(self.ws_port, self.proc, 10, self.log_path)
                return self
            except AssertionError:
                stop_process(self.proc)
                if attempt == 4 or (fixed and attempt == 2):
                    raise
                time.sleep(0.2)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is None:
            return None
        return stop_process(self.proc)

    def cleanup(self):
        self.stop()
        remove_dir(self.dir)

    def log(self):
        return log_tail(self.log_path)


def start_mosquitto(extra_conf="", acl=None, passwords=None):
    return Mosquitto(extra_conf=extra_conf, acl=acl, passwords=passwords)


class Bridge:
    """The bridge binary from $MWB_BINARY, listening on 127.0.0.1:.port."""

    def __init__(self, broker_port, config=None, extra_args=(), broker_url=None):
        binary = os.environ.get("MWB_BINARY")
        if not binary:
            raise AssertionError("MWB_BINARY is not set: it must name the mqtt-web-bridge binary "
                                 "(or run with MWB_TARGET=mosquitto to validate the tests)")
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise AssertionError("MWB_BINARY=%s is not an executable file" % binary)
        self.binary = os.path.abspath(binary)
        self.dir = make_dir("mwb-bridge-")
        self.log_path = os.path.join(self.dir, "bridge.log")
        self.broker_url = broker_url or "mqtt://%s:%d" % (HOST, broker_port)
        self.config = config
        self.extra_args = list(extra_args)
        self.proc = None
        self.start()

    def command(self):
        cmd = [self.binary, "--listen", "%s:%d" % (HOST, self.port), "--broker", self.broker_url]
        if self.config is not None:
            path = os.path.join(self.dir, "config.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            cmd += ["--config", path]
        return cmd + ["-v"] + self.extra_args

    def start(self):
        for attempt in range(5):
            self.port = free_port()
            self.proc = spawn(self.command(), self.log_path, cwd=REPO_ROOT)
            self.stopped_by_test = False
            try:
                wait_port(self.port, self.proc, 10, self.log_path)
                return self
            except AssertionError:
                stop_process(self.proc)
                with open(self.log_path, "rb") as f:
                    port_race = b"in use" in f.read().lower()
                if attempt == 4 or not port_race:
                    raise
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=5.0):
        """SIGTERM, bounded wait, SIGKILL; the exit code. A test that stops the bridge itself
        checks the code; cleanup() then leaves it alone."""
        if self.proc is None:
            return None
        self.stopped_by_test = True
        return stop_process(self.proc, timeout)

    def cleanup(self):
        """Stops the bridge; it must exit 0. A crash, a hang past SIGTERM, or a sanitizer report
        (the sanitizer build exits non-zero on a leak or an error) fails the test here."""
        if self.proc is None:
            return
        died = self.proc.poll() is not None and not getattr(self, "stopped_by_test", False)
        checked = getattr(self, "stopped_by_test", False)
        code = stop_process(self.proc)
        log = self.log()
        remove_dir(self.dir)
        if died:
            raise AssertionError("the bridge died during the test (status %s)\n%s" % (code, log))
        if code != 0 and not checked:
            raise AssertionError("the bridge exited with status %s on SIGTERM\n%s" % (code, log))

    def log(self):
        return log_tail(self.log_path)


def start_bridge(broker_port, config=None, extra_args=(), broker_url=None):
    return Bridge(broker_port, config=config, extra_args=extra_args, broker_url=broker_url)


class Stack:
    """A Mosquitto and, for the bridge target, the bridge in front of it.

    .ws_port is the WebSocket endpoint under test; .broker.port is Mosquitto's TCP listener, used
    by observer clients that must not go through the endpoint under test.
    """

    def __init__(self, extra_conf="", acl=None, passwords=None, bridge_config=None,
                 with_broker=True):
        self.broker = None
        self.bridge = None
        try:
            if not with_broker:
                # the bridge in front of a port where nothing listens (broker down)
                self.bridge = start_bridge(free_port(), config=bridge_config)
                return
            self.broker = start_mosquitto(extra_conf, acl, passwords)
            if TARGET == "bridge":
                self.bridge = start_bridge(self.broker.port, config=bridge_config)
        except BaseException:
            self.cleanup()
            raise

    @property
    def ws_port(self):
        return self.bridge.port if self.bridge else self.broker.ws_port

    def logs(self):
        out = [self.broker.log()] if self.broker else []
        if self.bridge:
            out.append(self.bridge.log())
        return "\n".join(out)

    def cleanup(self):
        if self.bridge:
            self.bridge.cleanup()
        if self.broker:
            self.broker.cleanup()


# ---------------------------------------------------------------------------------------------
# paho-mqtt clients


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
    """A paho client on Mosquitto's TCP listener, beside the endpoint under test."""

    def __init__(self, broker_port, version=V311, client_id="", **kw):
        super().__init__(broker_port, version, client_id, transport="tcp", **kw)


# ---------------------------------------------------------------------------------------------
# test case base


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
        """A paho client straight on Mosquitto's TCP port, optionally subscribed."""
        c = TcpObserver(self.stack.broker.port, version, self.uid("obs") if client_id is None
                        else client_id, **kw)
        self.addCleanup(c.close)
        c.connect()
        if subscribe:
            granted = c.subscribe(subscribe, qos)
            self.assertEqual(granted, [qos])
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


def main():
    unittest.main(verbosity=2)
