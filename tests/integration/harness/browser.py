"""Browser tests: headless Chromium driven by tests/browser/drive.mjs, and pages of a second
origin."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from .processes import (free_port, log_tail, make_dir, remove_dir, require_tool, spawn,
                        stop_process, wait_port)
from .settings import HOST, REPO_ROOT

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
        self.steps_seen = 0
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

    # The first step comes after node, Chromium and the page have started: on a loaded 2-core
    # machine (four test files at a time) that alone took over 20 s once.
    FIRST_STEP_TIMEOUT = 60.0

    def wait_step(self, name, timeout=20.0):
        """Until the driver reaches step @name; its data."""
        if not self.steps_seen:
            timeout = max(timeout, self.FIRST_STEP_TIMEOUT)
        msg = self._next(timeout, "step '%s'" % name)
        self.steps_seen += 1
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
        if not self.steps_seen:
            timeout = max(timeout, self.FIRST_STEP_TIMEOUT)
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
            self.steps_seen += 1
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
