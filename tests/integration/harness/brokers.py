"""The broker behind the bridge: a private Mosquitto, or this test process's RabbitMQ node
(MWB_TEST_BROKER), and the bounded wait until one answers MQTT."""

import atexit
import glob
import os
import socket
import subprocess
import time

import rawws

from .processes import (Daemon, free_port, free_ports, log_tail, make_dir, remove_dir,
                        require_tool, spawn, stop_process, wait_port)
from .settings import BROKER, HOST

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


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
