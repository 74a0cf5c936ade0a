"""Integration test harness: a real Mosquitto, the real bridge, real clients.

MWB_TARGET=bridge (default): the WebSocket endpoint under test is the bridge's ws://127.0.0.1:PORT/mqtt,
in front of Mosquitto's TCP listener; MWB_BINARY names the bridge executable (required).
MWB_TARGET=mosquitto: the endpoint under test is Mosquitto's own WebSocket listener. This is how the
tests themselves are validated: every behaviour the bridge shares with a broker must pass there too.
Tests that only make sense for the bridge are decorated with @bridge_only and are skipped ONLY for
MWB_TARGET=mosquitto.

MWB_SESSIONS=auto (default) or dedicated: the bridge's session mode. Every bridge started here gets
it as "mqtt_sessions" in its config file, unless the test's own config sets "mqtt_sessions". In
auto a session that allows it is shared (served by the hub: clean start, session expiry 0, no
will, and an identity the bridge vouches for: mqtt_credentials "bridge", or auth.mode "none" and
no username or password); every other session, and every session in dedicated, has its own
upstream client the broker sees. SHARED says whether such sessions are shared in this run (and
IntegrationCase.shared for a class's own bridge_config); IntegrationCase.dedicated_will() gives a
will that makes a session dedicated in every mode; a test that rewrites a bridge's config file
(SIGHUP) keeps the mode with with_sessions() or Bridge.write_config().

MWB_TEST_BROKER=mosquitto (default) or rabbitmq: the broker behind the bridge. With rabbitmq, each
test process starts one private RabbitMQ node (Debian's rabbitmq-server 3.10 with its MQTT plugin,
MQTT 3.1.1 only; class RabbitMQ) on free loopback ports, with its own node name, epmd port and
directories, and every Stack of that process uses it (and waits for the bridge's hub, whose first
connection takes an MQTT 5 attempt longer there). Observers (the tests' own TCP clients on the
broker) then speak MQTT 3.1.1 even where a test asks for V5 (observer_version()). What a test
needs that the broker may lack (BROKER_FEATURES: Mosquitto itself, MQTT 5 upstream, QoS 2 at the
broker, retained messages for wildcard filters, $share subscriptions, '.' in topics) is stated
with @broker_needs(feature, reason), or skip_unless_broker() in a subTest, and skipped ONLY when
the broker lacks it (BROKER_LACKS), with both reasons. (The name is not MWB_BROKER: scripts/run.sh
takes MWB_BROKER as a broker URL.) MWB_TARGET=mosquitto needs the Mosquitto broker.

Every process started here is stopped by its PID (SIGTERM, bounded wait, SIGKILL) from a cleanup that
runs also when a test fails (a RabbitMQ node by its process group: beam.smp, erl_child_setup and
their helpers; its epmd is a process of its own). Every wait is bounded.
"""

import atexit
import base64
import glob
import http.client
import json
import os
import queue
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes  # noqa: F401 (re-exported for the tests)
from paho.mqtt.properties import Properties

import rawws

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
CURL = "/usr/bin/curl"
HOST = "127.0.0.1"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

TARGET = os.environ.get("MWB_TARGET", "bridge")
if TARGET not in ("bridge", "mosquitto"):
    raise SystemExit("MWB_TARGET must be 'bridge' or 'mosquitto', not %r" % TARGET)

SESSIONS = os.environ.get("MWB_SESSIONS", "auto")
if SESSIONS not in ("auto", "dedicated"):
    raise SystemExit("MWB_SESSIONS must be 'auto' or 'dedicated', not %r" % SESSIONS)

# True when the endpoint under test serves a session that allows it (clean, no will, vouched-for
# identity) from the hub: no broker client per browser. False for Mosquitto and for dedicated.
SHARED = TARGET == "bridge" and SESSIONS == "auto"

BROKER = os.environ.get("MWB_TEST_BROKER", "mosquitto")
if BROKER not in ("mosquitto", "rabbitmq"):
    raise SystemExit("MWB_TEST_BROKER must be 'mosquitto' or 'rabbitmq', not %r" % BROKER)
if TARGET == "mosquitto" and BROKER != "mosquitto":
    raise SystemExit("MWB_TARGET=mosquitto tests Mosquitto's own WebSocket listener: it needs "
                     "MWB_TEST_BROKER=mosquitto")

# What a test may need from the broker, and what each broker lacks of it (with the reason the
# skip message gives). Facts about RabbitMQ 3.10.8 (Debian 12), observed with the node started
# here; see README.md, "RabbitMQ 3.10.8 facts".
BROKER_FEATURES = {
    "mosquitto": "Mosquitto itself: its log, $SYS topics, acl_file, password_file, plugins, "
                 "WebSocket listener",
    "mqtt5": "MQTT 5 between the bridge and the broker and for observers: properties, "
             "reason codes, session expiry, retain as published",
    "qos2": "QoS 2 at the broker: granted and delivered at QoS 2, PUBREC/PUBREL/PUBCOMP flows",
    "retained_wildcards": "retained messages for a wildcard subscription",
    "shared_subscriptions": "$share/GROUP/FILTER subscriptions at the broker",
    "topic_dots": "a '.' in a topic name arrives as it was published",
}
BROKER_LACKS = {
    "mosquitto": {},
    "rabbitmq": {
        "mosquitto": "RabbitMQ is not Mosquitto",
        "mqtt5": "RabbitMQ 3.10 speaks MQTT 3.1.1 only (an MQTT 5 CONNECT is closed without a "
                 "CONNACK)",
        "qos2": "RabbitMQ 3.10 grants QoS 1 for QoS 2 and handles a QoS 2 PUBLISH as QoS 1 "
                "(PUBACK, no PUBREC)",
        "retained_wildcards": "RabbitMQ 3.10 sends a retained message only to a subscription "
                              "to its exact topic",
        "shared_subscriptions": "RabbitMQ 3.10 takes $share/G/F as a plain topic filter",
        "topic_dots": "RabbitMQ 3.10 maps MQTT '/' to AMQP '.' and back: 'a.b' arrives as 'a/b'",
    },
}


def broker_lacks(feature):
    """Why the broker of this run (MWB_TEST_BROKER) lacks @feature (a key of BROKER_FEATURES),
    or None when it has it."""
    if feature not in BROKER_FEATURES:
        raise AssertionError("unknown broker feature %r (BROKER_FEATURES)" % feature)
    return BROKER_LACKS[BROKER].get(feature)


def _needs_message(feature, reason):
    return "needs %s (%s); MWB_TEST_BROKER=%s: %s" % (feature, reason, BROKER,
                                                      broker_lacks(feature))


def broker_needs(feature, reason):
    """A test or class that needs @feature of the broker (BROKER_FEATURES), for @reason: skipped
    ONLY when the broker of this run lacks it, with both reasons in the skip message."""
    return unittest.skipIf(broker_lacks(feature) is not None, _needs_message(feature, reason))


def skip_unless_broker(case, feature, reason):
    """The same inside a test, for one subTest (e.g. the QoS 2 round of a loop over QoS)."""
    if broker_lacks(feature) is not None:
        case.skipTest(_needs_message(feature, reason))


def broker_qos(qos):
    """The QoS the broker of this run grants for a subscription at @qos, and so the QoS of what an
    observer subscribed at @qos receives of a message published at QoS >= @qos."""
    return min(qos, 1) if broker_lacks("qos2") else qos


def with_sessions(config):
    """A copy of the bridge config @config (a dict, or None) with "mqtt_sessions" from
    MWB_SESSIONS, unless @config sets it. Tests that write a bridge's config file themselves (for
    a SIGHUP) write this."""
    out = dict(config or {})
    out.setdefault("mqtt_sessions", SESSIONS)
    return out


def shared_sessions(config):
    """Whether a bridge started with @config serves shareable sessions from its hub."""
    return TARGET == "bridge" and with_sessions(config)["mqtt_sessions"] == "auto"


V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
VERSIONS = (V311, V5)


def observer_version(version):
    """The MQTT version an observer (a TCP client on the broker) speaks when a test asks for
    @version: V5 becomes V311 on a broker without MQTT 5 (RabbitMQ). A test that asserts what
    only V5 carries (properties, reason codes) says @broker_needs("mqtt5", ...)."""
    return V311 if version == V5 and broker_lacks("mqtt5") else version


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


def spawn(cmd, log_path, cwd=None, pipes=False, env=None, group=False):
    """Popen with output appended to @log_path; tracked until stop_process(). With @pipes, stdin
    and stdout are pipes for the caller (stderr still goes to the log). With @group, the process
    leads a process group of its own, and stop_process() ends the whole group."""
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if pipes else logf, stderr=logf,
                                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL, cwd=cwd,
                                env=env, preexec_fn=_die_with_parent, start_new_session=group)
    proc.mwb_group = group
    _live[proc.pid] = proc
    return proc


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _stop_all_and_exit)
    signal.signal(signal.SIGINT, _stop_all_and_exit)
# (atexit runs these last first: the processes stop, then their directories go)
atexit.register(lambda: [remove_dir(d) for d in list(_dirs)])
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


def _group_members(pgid):
    """PIDs of the live (not zombie) processes of process group @pgid."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


def _kill_group(pgid, timeout=3.0):
    """SIGKILL to what is left of process group @pgid (its leader has been waited for), and a
    bounded wait until none of it runs."""
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError("process group %d still running after SIGKILL: %r"
                                 % (pgid, _group_members(pgid)))
        time.sleep(0.02)


def stop_process(proc, timeout=5.0):
    """SIGTERM, bounded wait, SIGKILL. Returns the exit code (negative: killed by that signal).
    A process spawned with group=True takes what is left of its process group with it."""
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
    if getattr(proc, "mwb_group", False):
        _kill_group(proc.pid)
    _live.pop(proc.pid, None)
    return proc.returncode


class Daemon:
    """A server process of the test's own (.proc) with its directory (.dir): stopped by PID, its
    directory removed."""

    proc = None

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


class Mosquitto(Daemon):
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

    def log(self):
        return log_tail(self.log_path)


def start_mosquitto(extra_conf="", acl=None, passwords=None):
    return Mosquitto(extra_conf=extra_conf, acl=acl, passwords=passwords)


def _mqtt_ready(port, timeout):
    """Whether 127.0.0.1:@port answers an MQTT 3.1.1 CONNECT with CONNACK 0 (then DISCONNECT),
    and else what it did."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(rawws.connect("mwb-ready-%d" % os.getpid(), version=rawws.V311))
            data = b""
            while len(data) < 4:
                chunk = s.recv(4 - len(data))
                if not chunk:
                    break
                data += chunk
            if data == b"\x20\x02\x00\x00":
                s.sendall(b"\xe0\x00")
                return True, data
            return False, data
    except OSError as e:
        return False, e


def wait_mqtt(port, proc, timeout, log_path):
    """Until @port answers an MQTT 3.1.1 CONNECT with CONNACK 0; fails early when @proc exited."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("process %d exited with %s before MQTT was up on %d\n%s"
                                 % (proc.pid, proc.returncode, port, log_tail(log_path)))
        ok, last = _mqtt_ready(port, min(2.0, max(0.1, deadline - time.monotonic())))
        if ok:
            return
        time.sleep(0.1)
    raise AssertionError("no CONNACK 0 on port %d within %.1fs (last: %r)\n%s"
                         % (port, timeout, last, log_tail(log_path)))


def free_ports(n):
    """@n distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    ports = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"   # not /usr/sbin's: that one su's
EPMD = "/usr/bin/epmd"
RABBITMQ_BOOT_TIMEOUT = 90.0      # a first boot takes about 10 s on an idle 2-core machine
RABBITMQ_STOP_TIMEOUT = 15.0      # a clean shutdown (SIGTERM) before SIGKILL
_rabbitmq_seq = [0]


class RabbitMQ(Daemon):
    """A private RabbitMQ node (Debian's rabbitmq-server) with its MQTT plugin: MQTT 3.1.1 on
    127.0.0.1:.port, where a client without credentials is RabbitMQ's default user guest (allowed
    from loopback only); AMQP on .amqp_port, the Erlang distribution on .dist_port, and an epmd
    of its own on .epmd_port, all on 127.0.0.1. Node name mwbtest-PID-N@localhost; configuration,
    data (Mnesia, retained messages) and logs in .dir; HOME is .dir (the Erlang cookie). Nothing
    system-wide is read, written or started: not /etc/rabbitmq, /var/lib/rabbitmq,
    /var/log/rabbitmq, the system's epmd (port 4369) or the system's service.

    Ready means: the MQTT port answers a 3.1.1 CONNECT with CONNACK 0 (bounded by
    RABBITMQ_BOOT_TIMEOUT). NOTIFY_SOCKET (a socket of ours) makes the start script exec the Erlang
    VM, as under systemd, instead of waiting on it from a shell: so .pid is the VM's own (beam.smp;
    SIGSTOP pauses the broker). The VM leads a process group of its own, and stop() ends it whole
    (erl_child_setup, inet_gethost, the epmd-starter VM), then its epmd."""

    def __init__(self):
        require_tool(RABBITMQ_SERVER)
        require_tool(EPMD)
        self.dir = make_dir("mwb-rabbitmq-")
        _rabbitmq_seq[0] += 1
        self.node = "mwbtest-%d-%d@localhost" % (os.getpid(), _rabbitmq_seq[0])
        self.log_path = os.path.join(self.dir, "rabbitmq.out")     # the VM's stdout and stderr
        self.epmd_log = os.path.join(self.dir, "epmd.out")
        self.proc = self.epmd = self.notify = None
        self.port = self.amqp_port = self.dist_port = self.epmd_port = None
        self.boot_seconds = None
        self.start()

    def path(self, name):
        return os.path.join(self.dir, name)

    def _write_files(self):
        conf = ["listeners.tcp.1 = %s:%d" % (HOST, self.amqp_port),
                "mqtt.listeners.tcp.1 = %s:%d" % (HOST, self.port),
                "mqtt.allow_anonymous = true",
                "loopback_users.guest = true",
                "log.console = false",
                "log.file.level = info"]
        with open(self.path("rabbitmq.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        with open(self.path("enabled_plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        open(self.path("rabbitmq-env.conf"), "w").close()

    def _env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_", "NOTIFY_SOCKET"))}
        env.update({
            "HOME": self.dir,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_CONF_ENV_FILE": self.path("rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": self.path("rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": self.path("advanced.config"),    # none
            "RABBITMQ_ENABLED_PLUGINS_FILE": self.path("enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": self.path("mnesia"),
            "RABBITMQ_LOG_BASE": self.path("log"),
            "RABBITMQ_MOTD_FILE": self.path("motd"),                          # none
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_CRASH_DUMP": self.path("erl_crash.dump"),
            "NOTIFY_SOCKET": self.path("notify"),
        })
        return env

    def start(self):
        """(Re)start: on the same ports and data when they are set, else on fresh ports
        (retrying port races)."""
        fixed = self.port is not None
        attempts = 3 if fixed else 5
        for attempt in range(attempts):
            if not fixed:
                self.port, self.amqp_port, self.dist_port, self.epmd_port = free_ports(4)
            self._write_files()
            t0 = time.monotonic()
            try:
                self.epmd = spawn([EPMD, "-port", str(self.epmd_port), "-address", HOST],
                                  self.epmd_log)
                wait_port(self.epmd_port, self.epmd, 10, self.epmd_log)
                if os.path.exists(self.path("notify")):
                    os.unlink(self.path("notify"))
                self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.notify.bind(self.path("notify"))
                self.proc = spawn([RABBITMQ_SERVER], self.log_path, cwd=self.dir,
                                  env=self._env(), group=True)
                wait_mqtt(self.port, self.proc, RABBITMQ_BOOT_TIMEOUT, self.log_path)
                self.boot_seconds = time.monotonic() - t0
                return self
            except AssertionError:
                self.stop()
                race = "eaddrinuse" in self.log().lower() or "in use" in self.log().lower()
                if attempt == attempts - 1 or not race:
                    raise
                time.sleep(0.2)
        return self

    def stop(self):
        """Stops the node (SIGTERM: a clean shutdown, bounded; then SIGKILL; then the rest of
        its process group) and its epmd. Returns the node's exit code."""
        code = None
        if self.proc is not None:
            code = stop_process(self.proc, RABBITMQ_STOP_TIMEOUT)
        if self.epmd is not None:
            stop_process(self.epmd)
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        return code

    def cleanup(self):
        """Nothing: the node serves every Stack of this test process (rabbitmq_node()) and is
        stopped when the process ends (shutdown())."""

    def shutdown(self):
        self.stop()
        remove_dir(self.dir)

    def log(self):
        logs = sorted(glob.glob(os.path.join(self.dir, "log", "*.log")))
        return "\n".join([log_tail(self.log_path)] + [log_tail(p) for p in logs])


_rabbitmq = [None]


def rabbitmq_node():
    """The RabbitMQ node of this test process: started at the first call, started again (on its
    ports, with its data) when a test stopped it, stopped when the process exits. One node per
    process, not per class: a node takes seconds to boot (RABBITMQ_BOOT_TIMEOUT)."""
    node = _rabbitmq[0]
    if node is None:
        node = _rabbitmq[0] = RabbitMQ()
        atexit.register(node.shutdown)
    elif node.proc is None or node.proc.poll() is not None:
        node.start()
    return node


# A class's mosquitto_conf lines that only lift a limit of Mosquitto's, which RabbitMQ does not
# have: dropped for RabbitMQ. Any other line needs Mosquitto (@broker_needs("mosquitto", ...)).
MOSQUITTO_TUNING = ("max_queued_messages ",)


def start_broker(extra_conf="", acl=None, passwords=None):
    """The broker of this run (MWB_TEST_BROKER): a private Mosquitto with @extra_conf, @acl and
    @passwords, or this process's RabbitMQ node (rabbitmq_node()). .port is its MQTT TCP port."""
    if BROKER == "mosquitto":
        return start_mosquitto(extra_conf, acl, passwords)
    if acl is not None or passwords is not None:
        raise AssertionError("acl and passwords are Mosquitto's files: a test that needs them "
                             "says @broker_needs(\"mosquitto\", ...)")
    for line in (extra_conf or "").splitlines():
        if line.strip() and not line.startswith(MOSQUITTO_TUNING):
            raise AssertionError("mosquitto.conf line %r needs Mosquitto: the test says "
                                 "@broker_needs(\"mosquitto\", ...)" % line)
    return rabbitmq_node()


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
        """The command line; the config file (always written: MWB_SESSIONS goes into it) is
        .config with "mqtt_sessions" added unless it has one (with_sessions())."""
        cmd = [self.binary, "--listen", "%s:%d" % (HOST, self.port), "--broker", self.broker_url]
        path = os.path.join(self.dir, "config.json")
        with open(path, "w") as f:
            json.dump(with_sessions(self.config), f)
        cmd += ["--config", path]
        return cmd + ["-v"] + self.extra_args

    @property
    def config_path(self):
        return os.path.join(self.dir, "config.json")

    def write_config(self, config):
        """Replaces the config file (for a SIGHUP) with with_sessions(@config), written aside and
        renamed, so that the bridge never reads half a file; @config becomes .config. A str is
        written as it is (a broken file)."""
        tmp = self.config_path + ".new"
        with open(tmp, "w") as f:
            if isinstance(config, str):
                f.write(config)
            else:
                json.dump(with_sessions(config), f)
        os.rename(tmp, self.config_path)
        if not isinstance(config, str):
            self.config = config

    def start(self):
        for attempt in range(5):
            self.port = free_port()
            self.proc = spawn(self.command(), self.log_path, cwd=REPO_ROOT)
            self.stopped_by_test = False
            try:
                wait_port(self.port, self.proc, 10, self.log_path)
                self._wait_listening()
                return self
            except AssertionError:
                stop_process(self.proc)
                with open(self.log_path, "rb") as f:
                    text = f.read().lower()
                # lws words a port taken meanwhile by another process "(-1 98)" (EADDRINUSE)
                port_race = b"in use" in text or b"listen-failed" in text
                if attempt == 4 or not port_race:
                    raise
        return self

    def _wait_listening(self, timeout=10.0):
        """Until the bridge logs that it listens: the port may have answered for another
        process that took it between free_port() and the bridge's bind."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                if b" main listening url=" in f.read():
                    return
            if self.proc.poll() is not None:
                raise AssertionError("the bridge exited (status %s) before listening\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("the bridge did not log 'listening' within %.0fs\n%s"
                                     % (timeout, self.log()))
            time.sleep(0.02)

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


def wait_hub(port, timeout=10.0):
    """Until the bridge's own broker connections are up (health 200, and its retained reader
    connected): the bridge listens before they have connected, and a first request would get
    503 by a race. (Against RabbitMQ the reader's first 3.1.1 attempt is sometimes reset too,
    and it comes a second later.)"""
    deadline = time.monotonic() + timeout
    while True:
        resp = http_request(port, "GET", "/api/v1/health", timeout=2)
        if resp.status == 200 and resp.json().get("retained_reader", {}).get("connected"):
            return
        if time.monotonic() > deadline:
            raise AssertionError("the bridge's hub not up within %.1fs: %r" % (timeout, resp))
        time.sleep(0.05)


class Stack:
    """A broker (start_broker(): Mosquitto, or this process's RabbitMQ node) and, for the bridge
    target, the bridge in front of it.

    .ws_port is the WebSocket endpoint under test; .broker.port is the broker's MQTT TCP
    listener, used by observer clients that must not go through the endpoint under test.
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
            self.broker = start_broker(extra_conf, acl, passwords)
            if TARGET == "bridge":
                self.bridge = start_bridge(self.broker.port, config=bridge_config)
                if BROKER == "rabbitmq":
                    # The bridge listens before its hub is up; in front of Mosquitto the hub is
                    # up at once, in front of RabbitMQ only after its MQTT 5 CONNECT was closed
                    # and a 3.1.1 one accepted (later still after a backoff, on a busy machine),
                    # and a shared session that comes first gets "server unavailable".
                    wait_hub(self.bridge.port)
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
    """A paho client on the broker's TCP listener, beside the endpoint under test."""

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


# ---------------------------------------------------------------------------------------------
# HTTP: the REST API and the SSE stream (these exist only on the bridge)


def quote_topic(topic):
    """@topic as a URL path: UTF-8 percent-encoded, '/' kept ('+' %2B, '#' %23, ' ' %20)."""
    return urllib.parse.quote(topic, safe="/")


def quote_query(value):
    """A query value with everything but unreserved characters percent-encoded ('+' is %2B)."""
    return urllib.parse.quote(value, safe="")


class HttpResponse:
    """One HTTP answer: .status, .reason, .headers (a list of (name, value)), .body (bytes),
    .elapsed (seconds from sending the request to the end of the body)."""

    def __init__(self, status, reason, headers, body, elapsed=0.0):
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        self.body = bytes(body)
        self.elapsed = elapsed

    def header(self, name, default=None):
        """The first header @name (case-insensitive), else @default."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def content_type(self):
        return self.header("Content-Type")

    @property
    def mime(self):
        """The media type of Content-Type without parameters, lower case ('' when none)."""
        return (self.content_type or "").split(";")[0].strip().lower()

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("answer is not JSON (%s): %r" % (e, self))

    def __repr__(self):
        return "<HTTP %s %s %r body=%r>" % (self.status, self.reason, self.headers, self.body[:300])


def http_request(port, method, path, body=None, headers=None, timeout=TIMEOUT, conn=None):
    """One request with http.client, on @conn (keep-alive) or on a fresh connection closed after."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return HttpResponse(resp.status, resp.reason, resp.getheaders(), data,
                            time.monotonic() - t0)
    except socket.timeout:
        raise AssertionError("%s %s: no complete answer within %.1fs" % (method, path, timeout))
    except (http.client.RemoteDisconnected, ConnectionResetError) as e:
        raise AssertionError("%s %s: the server closed the connection without an answer (%s)"
                             % (method, path, e))
    finally:
        if own:
            conn.close()


class KeepAlive:
    """One HTTP/1.1 connection for several requests. It never reconnects by itself: a request after
    the server closed the connection fails, and .local_port() tells the connection apart."""

    def __init__(self, port, timeout=TIMEOUT):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.conn.connect()
        self.conn.auto_open = 0
        self.port = self.conn.sock.getsockname()[1]

    def request(self, method, path, body=None, headers=None):
        if self.conn.sock is None:
            raise AssertionError("the server closed the keep-alive connection before %s %s"
                                 % (method, path))
        if self.conn.sock.getsockname()[1] != self.port:
            raise AssertionError("a new connection was opened")
        try:
            return http_request(None, method, path, body, headers, conn=self.conn)
        except http.client.NotConnected:
            raise AssertionError("the server closed the keep-alive connection before %s %s"
                                 % (method, path))

    def close(self):
        self.conn.close()


def _dechunk(data):
    """(body, complete) of a chunked body prefix."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), False
        size = int(data[pos:eol].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out), True
        if len(data) < eol + 2 + size + 2:
            out += data[eol + 2:eol + 2 + size]
            return bytes(out), False
        out += data[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def _parse_head(buf):
    """(status, reason, headers, rest) when @buf holds a whole response head, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise AssertionError("bad HTTP status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, buf[end + 4:]


def _parse_response(buf, eof=False):
    head = _parse_head(buf)
    if head is None:
        return None
    status, reason, headers, rest = head
    resp = HttpResponse(status, reason, headers, b"")
    length = resp.header("Content-Length")
    if (resp.header("Transfer-Encoding") or "").lower() == "chunked":
        body, complete = _dechunk(rest)
        if not complete and not eof:
            return None
        resp.body = body
    elif length is not None:
        if len(rest) < int(length):
            return None if not eof else HttpResponse(status, reason, headers, rest)
        resp.body = rest[:int(length)]
    elif not eof and status not in (204, 304) and not 100 <= status < 200:
        return None
    else:
        resp.body = rest
    return resp


def raw_http(port, data, timeout=TIMEOUT):
    """Sends the request bytes @data on a fresh connection while reading, and returns the first
    final answer (HttpResponse, interim 1xx skipped) even when the server answers before taking
    the whole body. .unsent is how many bytes of @data the server never took."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setblocking(False)
    t0 = time.monotonic()
    deadline = t0 + timeout
    sent, got, eof = 0, b"", False
    try:
        while True:
            resp = _parse_response(got, eof)
            if resp is not None and 100 <= resp.status < 200:
                got = got[got.find(b"\r\n\r\n") + 4:]
                continue
            if resp is not None:
                break
            if eof:
                raise AssertionError("connection closed without a complete answer: %r" % got[:300])
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no complete HTTP answer within %.1fs (got %r)"
                                     % (timeout, got[:300]))
            r, w, _ = select.select([sock], [sock] if sent < len(data) else [], [], left)
            if r:
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    chunk = None
                except ConnectionResetError:
                    chunk = b""
                if chunk == b"":
                    eof = True
                elif chunk:
                    got += chunk
            if w:
                try:
                    sent += sock.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    data = data[:sent]
        resp.elapsed = time.monotonic() - t0
        resp.unsent = len(data) - sent
        return resp
    finally:
        sock.close()


class SseEvent:
    """One dispatched event: .id, .data (str), .raw (the block's bytes, blank line included),
    .t (time.monotonic() of arrival); .json, .topic and .payload (bytes) decode the data."""

    def __init__(self, id_, data, raw, t):
        self.id = id_
        self.data = data
        self.raw = raw
        self.t = t
        self._json = None

    @property
    def json(self):
        if self._json is None:
            try:
                self._json = json.loads(self.data)
            except ValueError as e:
                raise AssertionError("event data is not JSON (%s): %r" % (e, self.data))
        return self._json

    @property
    def topic(self):
        return self.json.get("topic")

    @property
    def payload(self):
        """The payload bytes, from "payload" (UTF-8 text) or "payload_base64"."""
        j = self.json
        if "payload" in j and "payload_base64" in j:
            raise AssertionError("both payload and payload_base64 in %r" % self.data)
        if "payload" in j:
            return j["payload"].encode("utf-8")
        if "payload_base64" in j:
            return base64.b64decode(j["payload_base64"], validate=True)
        raise AssertionError("no payload in %r" % self.data)

    def __repr__(self):
        return "<SseEvent %r>" % self.raw[:200]


class SseStream:
    """GET @path on a raw socket, then the text/event-stream read incrementally with bounded
    waits. .status/.headers/.header(); for a status other than 200, .response holds the whole
    answer. .body is every body byte so far (chunked decoding done), .comments the comment lines
    with their arrival times, .retry the last retry: value. With read_head=False nothing is
    read at all (a slow reader); @rcvbuf shrinks the socket's receive buffer."""

    def __init__(self, port, path, headers=None, rcvbuf=None, timeout=TIMEOUT, read_head=True):
        self.path = path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n" % (path, HOST, port)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode("utf-8"))
        self.status = None
        self.headers = []
        self.response = None
        self.body = bytearray()
        self.closed = False
        self.events = []          # dispatched, not yet taken
        self.received = 0         # events dispatched in all
        self.comments = []        # (line bytes, time)
        self.retry = None
        self._in = b""
        self._chunked = False
        self._raw_body = b""
        self._line = b""
        self._block = []
        self._block_id = None
        self._block_data = []
        if read_head:
            self.read_head(timeout)

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def _read(self, deadline):
        """One recv until @deadline: the bytes, or None (nothing in time, or closed)."""
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return None
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(262144)
        except socket.timeout:
            return None
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return None
        return data

    def _recv(self, deadline):
        """Reads once into the body (until @deadline); False when nothing came in time."""
        data = self._read(deadline)
        if data is None:
            return False
        self._feed(data)
        return True

    def read_head(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            head = _parse_head(self._in)
            if head is not None:
                break
            if self.closed:
                raise AssertionError("stream %s closed before its head: %r" % (self.path, self._in))
            data = self._read(deadline)
            if data is not None:
                self._in += data
            elif time.monotonic() >= deadline:
                raise AssertionError("no response head for %s within %.1fs" % (self.path, timeout))
        status, _reason, headers, rest = head
        if status != 200:
            # an error answer: read it whole
            while True:
                resp = _parse_response(self._in, eof=self.closed)
                if resp is not None or time.monotonic() >= deadline:
                    break
                data = self._read(deadline)
                if data is not None:
                    self._in += data
            self.response = resp or _parse_response(self._in, eof=True)
            self.status, self.headers = status, headers
            return self
        self.status, self.headers = status, headers
        self._chunked = (self.header("Transfer-Encoding") or "").lower() == "chunked"
        self._in = b""
        self._feed(rest)
        return self

    def _feed(self, data):
        if self._chunked:
            self._raw_body += data
            body, _ = _dechunk(self._raw_body)
            new = body[len(self.body):]
        else:
            new = data
        self.body += new
        self._line += new
        while True:
            nl = self._line.find(b"\n")
            if nl < 0:
                break
            line, self._line = self._line[:nl], self._line[nl + 1:]
            self._on_line(line)

    def _on_line(self, line):
        now = time.monotonic()
        if line == b"":
            raw = b"".join(x + b"\n" for x in self._block) + b"\n"
            if self._block_data:
                self.events.append(SseEvent(self._block_id, "\n".join(self._block_data), raw, now))
                self.received += 1
            self._block, self._block_id, self._block_data = [], None, []
            return
        self._block.append(line)
        if line.startswith(b":"):
            self.comments.append((line, now))
            return
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"id":
            self._block_id = text
        elif name == b"data":
            self._block_data.append(text)
        elif name == b"retry":
            self.retry = text

    def next_event(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.events:
            if self.closed:
                raise AssertionError("stream %s closed (after %d events)"
                                     % (self.path, self.received))
            if not self._recv(deadline) and time.monotonic() >= deadline:
                raise AssertionError("no event on %s within %.1fs" % (self.path, timeout))
        return self.events.pop(0)

    def get_events(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            try:
                out.append(self.next_event(max(0.0, deadline - time.monotonic())))
            except AssertionError as e:
                raise AssertionError("%d of %d events: %s; got %r" % (len(out), n, e,
                                     [x.data[:80] for x in out[-5:]]))
        return out

    def take(self, n, timeout=TIMEOUT):
        """Up to @n events, whatever came within @timeout (never raises: compare the result)."""
        deadline = time.monotonic() + timeout
        while len(self.events) < n and not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        out, self.events = self.events[:n], self.events[n:]
        return out

    def poll_for(self, pred, timeout, dropped=None):
        """Takes events until one satisfies @pred (returned) or @timeout passes (None); the
        others taken are appended to @dropped when given."""
        deadline = time.monotonic() + timeout
        while True:
            while self.events:
                ev = self.events.pop(0)
                if pred(ev):
                    return ev
                if dropped is not None:
                    dropped.append(ev)
            if self.closed or time.monotonic() >= deadline:
                return None
            self._recv(deadline)

    def read_for(self, seconds):
        """Reads whatever comes for @seconds; the events taken (comments are in .comments)."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        out, self.events = self.events, []
        return out

    def assert_no_event(self, within=QUIET):
        got = self.read_for(within)
        if got:
            raise AssertionError("unexpected events on %s: %r" % (self.path, got[:5]))

    def wait_closed(self, timeout=TIMEOUT):
        """True when the server ended the stream within @timeout (what came is kept)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def prom_samples(text):
    """{(name, labels): value} of a Prometheus text exposition; AssertionError on a bad line."""
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+-?\d+)?$')
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            if not re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line) \
                    and not line.startswith("# "):
                raise AssertionError("bad Prometheus comment line %r" % line)
            continue
        m = line_re.match(line)
        if not m:
            raise AssertionError("bad Prometheus sample line %r" % line)
        try:
            value = float(m.group(3))
        except ValueError:
            raise AssertionError("bad Prometheus value in %r" % line)
        out[(m.group(1), m.group(2) or "")] = value
    return out


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


# ---------------------------------------------------------------------------------------------
# Browser tests: headless Chromium driven by tests/browser/drive.mjs, pages of a second origin,
# and a proxy that cuts a browser's connections


NODE = "/usr/bin/node"
CHROMIUM = "/usr/bin/chromium"
BROWSER_DIR = os.path.join(REPO_ROOT, "tests", "browser")
ARTIFACTS = os.path.join(REPO_ROOT, "tests", "artifacts", "browser")   # gitignored


def _pids_with_arg(text):
    """PIDs of the processes whose command line contains @text."""
    needle = text.encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if needle in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def kill_pids_with_arg(text, timeout=3.0):
    """Stops (SIGTERM, bounded wait, SIGKILL) every process whose command line holds @text, by
    PID: here, a Chromium left behind by its driver, found by its profile directory."""
    pids = _pids_with_arg(text)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    def running(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = [p for p in pids if running(p)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


class BrowserDriver:
    """node tests/browser/drive.mjs @scenario in Debian's headless Chromium, talking JSON lines.

    The configuration goes on its stdin (with a fresh profile directory and the artifacts
    directory added); the driver stops at named steps where the test acts (publishes, cuts a
    proxy) and answers with reply(). finish() returns its result. Missing node, Chromium or
    playwright-core fail the test: nothing is skipped."""

    def __init__(self, scenario, config, timeout=60.0):
        require_tool(NODE)
        require_tool(CHROMIUM)
        if not os.path.isfile(os.path.join(BROWSER_DIR, "node_modules", "playwright-core",
                                           "package.json")):
            raise AssertionError("playwright-core is not installed in tests/browser: run "
                                 "`npm ci --prefix tests/browser` (scripts/test.sh does)")
        self.scenario = scenario
        self.timeout = timeout
        self.dir = make_dir("mwb-browser-")
        self.profile = os.path.join(self.dir, "profile")
        self.log_path = os.path.join(self.dir, "drive.log")
        # screenshots go to config["artifacts"] when the test names a directory of its own
        config = dict({"artifacts": ARTIFACTS}, **config)
        config.update(profile=self.profile, timeout_ms=int(timeout * 1000))
        self.lines = queue.Queue()
        self.noise = []
        self.result = None
        self.proc = spawn([NODE, os.path.join(BROWSER_DIR, "drive.mjs"), scenario], self.log_path,
                          cwd=BROWSER_DIR, pipes=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self._send(config)

    def _read(self):
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw.decode("utf-8"))
            except ValueError:
                self.noise.append(raw.decode("utf-8", "replace").rstrip())
                continue
            self.lines.put(msg)
        self.lines.put(None)

    def _send(self, obj):
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise AssertionError("the driver is gone (%s)\n%s" % (e, self.log()))

    def _next(self, timeout, what):
        try:
            msg = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("driver %s: no %s within %.1fs\n%s"
                                 % (self.scenario, what, timeout, self.log()))
        if msg is None:
            raise AssertionError("driver %s exited before %s\n%s" % (self.scenario, what, self.log()))
        if msg.get("type") == "result":
            self.result = msg
            if what != "result":
                raise AssertionError("driver %s ended before %s:\n%s"
                                     % (self.scenario, what, self.describe(msg)))
        return msg

    def wait_step(self, name, timeout=20.0):
        """Until the driver reaches step @name; its data."""
        msg = self._next(timeout, "step '%s'" % name)
        if msg.get("name") != name:
            raise AssertionError("driver %s: step '%s', expected '%s'"
                                 % (self.scenario, msg.get("name"), name))
        return msg.get("data") or {}

    def reply(self, name, **data):
        """Lets a waiting step @name go on, with @data for the page."""
        self._send(dict(data, step=name))

    def until_step(self, name, action, interval=0.2, timeout=15.0):
        """Calls @action() every @interval until the driver reaches step @name (e.g. publishing
        until the page shows a message); the step's data."""
        deadline = time.monotonic() + timeout
        while True:
            action()
            try:
                msg = self.lines.get(timeout=interval)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise AssertionError("driver %s: no step '%s' within %.1fs\n%s"
                                         % (self.scenario, name, timeout, self.log()))
                continue
            if msg is None or msg.get("type") == "result" or msg.get("name") != name:
                if msg is not None and msg.get("type") == "result":
                    self.result = msg
                raise AssertionError("driver %s: waiting for step '%s', got %s\n%s"
                                     % (self.scenario, name,
                                        self.describe(msg) if msg else "its end", self.log()))
            return msg.get("data") or {}

    def finish(self, timeout=None):
        """The driver's result line (after it exited, bounded)."""
        if self.result is None:
            self._next(timeout or self.timeout, "result")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("driver %s did not exit after its result" % self.scenario)
        return self.result

    @staticmethod
    def describe(result):
        out = []
        if result.get("failure"):
            out.append("failure: %s" % result["failure"])
        for e in result.get("page_errors") or []:
            out.append("page error: %s" % e)
        return "\n".join(out) or json.dumps(result)[:2000]

    def assert_ok(self, result=None):
        """The scenario passed, with no page error, and the driver exited 0."""
        result = result or self.finish()
        if not result.get("ok") or result.get("page_errors") or self.proc.returncode != 0:
            raise AssertionError("browser scenario %s failed (exit %s):\n%s\nscreenshots: %s\n%s"
                                 % (self.scenario, self.proc.returncode, self.describe(result),
                                    ", ".join(result.get("screenshots") or []), self.log()))
        return result.get("data") or {}

    def log(self):
        extra = ("\n--- driver stdout (not JSON) ---\n" + "\n".join(self.noise[-20:])) \
            if self.noise else ""
        return log_tail(self.log_path) + extra

    def cleanup(self):
        """Stops the driver by its PID, then any Chromium process still using its profile."""
        stop_process(self.proc, 10.0)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        kill_pids_with_arg(self.profile)
        remove_dir(self.dir)


class StaticServer:
    """`python3 -m http.server` on a free 127.0.0.1 port serving a fresh directory: a second
    origin for pages that embed the bridge. write() adds a file; url() names one."""

    def __init__(self):
        self.dir = make_dir("mwb-site-")
        self.root = os.path.join(self.dir, "site")
        os.mkdir(self.root)
        self.log_path = os.path.join(self.dir, "http.log")
        for attempt in range(5):
            self.port = free_port()
            self.proc = spawn([sys.executable, "-m", "http.server", str(self.port), "--bind", HOST,
                               "--directory", self.root], self.log_path)
            try:
                wait_port(self.port, self.proc, 10, self.log_path)
                return
            except AssertionError:
                stop_process(self.proc)
                if attempt == 4:
                    raise

    @property
    def origin(self):
        return "http://%s:%d" % (HOST, self.port)

    def url(self, name):
        return "%s/%s" % (self.origin, name)

    def write(self, name, text):
        with open(os.path.join(self.root, name), "w", encoding="utf-8") as f:
            f.write(text)
        return self.url(name)

    def cleanup(self):
        stop_process(self.proc)
        remove_dir(self.dir)


class TcpProxy:
    """A TCP proxy on 127.0.0.1:.port in front of 127.0.0.1:@target_port that a test can cut.

    cut() ends every connection at once (both sides see the end); hold() makes new connections
    wait, accepted but not forwarded, until release(). .heads lists the first bytes each client
    sent (its request head), in the order they came. Threads only; stop() ends them all."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.1)       # so the accept loop sees stop()
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []                  # [client, upstream-or-None] being served
        self.heads = []
        self.accepted = 0
        self.released = threading.Event()
        self.released.set()
        self.stopped = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self.lock:
                self.accepted += 1
                self.threads.append(t)
            t.start()

    def _serve(self, client):
        pair = [client, None]
        with self.lock:
            self.pairs.append(pair)
        try:
            while not self.released.wait(0.05):      # held: the client waits for its answer
                if self.stopped or pair[0] is None:
                    return
            pair[1] = upstream = socket.create_connection((HOST, self.target_port), TIMEOUT)
            first = True
            while not self.stopped:
                readable, _, _ = select.select([client, upstream], [], [], 0.1)
                for s in readable:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    if s is client and first:
                        first = False
                        with self.lock:
                            self.heads.append(data.decode("latin-1"))
                    try:
                        (upstream if s is client else client).sendall(data)
                    except OSError:
                        return
        except (OSError, ValueError):
            return
        finally:
            with self.lock:
                if pair in self.pairs:
                    self.pairs.remove(pair)
            for s in (client, pair[1]):
                if s is not None:
                    s.close()

    def hold(self):
        self.released.clear()

    def release(self):
        self.released.set()

    def forwarding(self):
        """How many connections are forwarded to the target right now."""
        with self.lock:
            return sum(1 for p in self.pairs if p[1] is not None)

    def cut(self):
        """Ends every forwarded connection (shutdown both ways); how many there were."""
        with self.lock:
            pairs = [p for p in self.pairs if p[1] is not None]
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return len(pairs)

    def stop(self):
        self.stopped = True
        self.released.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.cut()
        for t in list(self.threads):
            t.join(2.0)


# ---------------------------------------------------------------------------------------------
# nginx in front of bridges: the example configs of config/nginx/, run as they are but for the
# listen address, the certificate lines and the upstream servers


NGINX = "/usr/sbin/nginx"
NGINX_EXAMPLES = os.path.join(REPO_ROOT, "config", "nginx")


def nginx_site(example, port, upstreams):
    """The server part of config/nginx/@example for a test: "listen 443 ssl" becomes plain HTTP
    on 127.0.0.1:@port, the ssl_certificate lines go, and the example's upstream servers are
    replaced in order by @upstreams (("127.0.0.1", port) pairs). Each replacement must match,
    so an example that drifts from what is tested fails here."""
    with open(os.path.join(NGINX_EXAMPLES, example)) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^(\s*)listen 443 ssl;$", r"\1listen %s:%d;" % (HOST, port), text)
    if n != 1:
        raise AssertionError("%s: expected one 'listen 443 ssl;', found %d" % (example, n))
    text, n = re.subn(r"(?m)^\s*ssl_certificate(_key)? .*\n", "", text)
    if n != 2:
        raise AssertionError("%s: expected the two ssl_certificate lines, found %d" % (example, n))
    examples = []
    for m in re.finditer(r"(?m)^\s*server (\S+?:\d+)[ ;]", text):
        if m.group(1) not in examples:
            examples.append(m.group(1))
    if len(examples) != len(upstreams):
        raise AssertionError("%s names %d upstream servers %r, the test has %d"
                             % (example, len(examples), examples, len(upstreams)))
    for old, (host, p) in zip(examples, upstreams):
        text = re.sub(r"(?m)^(\s*server )%s([ ;])" % re.escape(old), r"\g<1>%s:%d\2" % (host, p),
                      text)
    return text


class Nginx(Daemon):
    """nginx -c CONF -p DIR in the foreground (daemon off), one worker, logs and temp files in
    its own directory, listening on 127.0.0.1:.port with @site (nginx_site()) in its http block."""

    def __init__(self, example, upstreams):
        require_tool(NGINX)
        self.dir = make_dir("mwb-nginx-")
        os.chmod(self.dir, 0o755)
        self.log_path = os.path.join(self.dir, "error.log")
        self.access_path = os.path.join(self.dir, "access.log")
        self.example = example
        self.upstreams = list(upstreams)
        self.proc = None
        for attempt in range(5):
            self.port = free_port()
            conf = self._write_conf()
            self.proc = spawn([NGINX, "-e", self.log_path, "-c", conf, "-p", self.dir,
                               "-g", "daemon off; pid %s;" % os.path.join(self.dir, "nginx.pid")],
                              self.log_path)
            try:
                wait_port(self.port, self.proc, 10, self.log_path)
                return
            except AssertionError:
                stop_process(self.proc)
                with open(self.log_path, "rb") as f:
                    race = b"in use" in f.read()
                if attempt == 4 or not race:
                    raise

    def _write_conf(self):
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        lines = []
        if os.geteuid() == 0:
            lines.append("user root;")      # else its worker runs as nobody, shut out of dir
        lines += ["worker_processes 1;",
                  "error_log %s info;" % self.log_path,
                  "events { worker_connections 1024; }",
                  "http {",
                  "    access_log %s;" % self.access_path]
        lines += ["    %s_temp_path %s;" % (k, os.path.join(tmp, k))
                  for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
        lines += [nginx_site(self.example, self.port, self.upstreams), "}"]
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def log(self):
        return log_tail(self.log_path) + "\n" + log_tail(self.access_path)


def main():
    unittest.main(verbosity=2)
