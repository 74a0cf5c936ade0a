"""The bridge binary (MWB_BINARY) as a process of the test's own, and Stack: a broker with,
for the bridge target, the bridge in front of it."""

import json
import os
import time

from .api import http_request
from .brokers import start_broker
from .processes import free_port, log_tail, make_dir, remove_dir, spawn, stop_process, wait_port
from .settings import BROKER, HOST, REPO_ROOT, TARGET, with_sessions

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
