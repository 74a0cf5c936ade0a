"""Credentials in the broker URL (issue 13; README "Configuration" and "Security"): `--broker
mqtt://user:password@host:port` gives the bridge's own links that user name and password
(percent-decoded), Paho gets the URL without them, and no output shows the password: not the log
(at debug level), /api/v1/health, /metrics, --help, --check, the command line in /proc, nor the
start-up errors (a bad scheme, a malformed escape, credentials both in the URL and in the keys,
an option or argument typed wrongly), nor the log of a broker that refuses them. A Mosquitto
with a password_file checks that the broker really gets them. Bridge only."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402

USER = "mwb-url-user"
# Every character here must be percent-encoded in a URL's user info.
PASSWORD = "p@ss:w/rd%"
ENCODED = urllib.parse.quote(PASSWORD, safe="")     # p%40ss%3Aw%2Frd%25
OBS_USER, OBS_PASSWORD = "mwb-url-obs", "obs-pw-7"
# For the start-up errors: a password that exists nowhere else.
SECRET = "Zq7-secret-9Xw"
REFUSAL = 20.0      # a refused link is logged within this (the first attempt is at start-up)


def secret_forms(password):
    """@password as an output could show it: raw, percent-encoded (upper and lower case hex),
    JSON-escaped."""
    enc = urllib.parse.quote(password, safe="")
    forms = {password, enc, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), enc),
             json.dumps(password)[1:-1]}
    return [f.encode() for f in forms]


def binary():
    path = os.environ.get("MWB_BINARY")
    if not path:
        raise AssertionError("MWB_BINARY is not set")
    return os.path.abspath(path)


@h.bridge_only("the bridge's own broker URL")
@h.broker_needs("mosquitto", "a password_file that checks the bridge's user name and password")
class BrokerUrlTest(h.ApiCase):
    passwords = {USER: PASSWORD, OBS_USER: OBS_PASSWORD}

    @classmethod
    def setUpClass(cls):
        cls.broker = h.start_mosquitto(passwords=cls.passwords)
        cls.addClassCleanup(cls.broker.cleanup)
        cls.url = "mqtt://%s:%s@%s:%d" % (USER, ENCODED, h.HOST, cls.broker.port)
        cls.bare = "mqtt://%s:%d" % (h.HOST, cls.broker.port)
        cls.bridge = h.start_bridge(cls.broker.port, broker_url=cls.url)
        cls.addClassCleanup(cls.bridge.cleanup)
        cls.wait_hub(cls.bridge.port)

    @property
    def api_port(self):
        return self.bridge.port

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super(h.IntegrationCase, self).run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n[%s failed]\n%s\n%s\n" % (self.id(), self.broker.log(),
                                                         self.bridge.log()))
        return out

    # helpers ----------------------------------------------------------------------------

    def assert_hidden(self, what, data, password=PASSWORD):
        if isinstance(data, str):
            data = data.encode()
        for form in secret_forms(password):
            self.assertNotIn(form, data, "%s shows the password (as %r):\n%s"
                             % (what, form, data.decode(errors="replace")[-3000:]))

    def read_log(self, bridge):
        with open(bridge.log_path, "rb") as f:
            return f.read()

    def run_binary(self, *args, config=None):
        """The binary with @args (and --config @config when given), from an empty directory so
        that no default config is read: (exit code, stdout + stderr)."""
        d = h.make_dir("mwb-url-run-")
        self.addCleanup(h.remove_dir, d)
        cmd = [binary()]
        if config is not None:
            path = os.path.join(d, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            cmd += ["--config", path]
        cmd += ["--listen", "%s:%d" % (h.HOST, h.free_port())] + list(args)
        try:
            p = subprocess.run(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("%r kept running" % cmd)
        return p.returncode, p.stdout

    def start_error(self, args, config=None, needles=(), password=SECRET):
        """The bridge refuses to start (exit 2) with a message holding @needles, without
        @password."""
        code, out = self.run_binary(*args, config=config)
        self.assertEqual(code, 2, out)
        for needle in needles:
            self.assertIn(needle.encode(), out)
        self.assert_hidden("the error output of %r" % (args,), out, password)
        return out

    def wait_log(self, bridge, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            log = self.read_log(bridge)
            m = re.search(pattern, log)
            if m or time.monotonic() > deadline:
                return m, log
            time.sleep(0.1)

    # the working URL --------------------------------------------------------------------

    def test_broker_gets_credentials_and_publish_arrives(self):
        obs = h.TcpObserver(self.broker.port, h.V5, self.uid("obs"), username=OBS_USER,
                            password=OBS_PASSWORD)
        self.addCleanup(obs.close)
        obs.connect()
        topic = self.topic()
        obs.subscribe(topic, 1)
        resp = self.http("POST", "/api/v1/publish/%s?qos=1" % topic, b"through a URL")
        self.assertEqual(resp.status, 200, resp)
        msg = obs.get()
        self.assertEqual((msg.topic, msg.payload), (topic, b"through a URL"))
        # Mosquitto logs the user name of each client it let in.
        with open(self.broker.log_path, "rb") as f:
            self.assertIn(("u'%s'" % USER).encode(), f.read())

    def test_health_shows_url_without_userinfo(self):
        resp = self.http("GET", "/api/v1/health")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["broker"]["url"], self.bare, resp)
        self.assert_hidden("/api/v1/health", resp.body)
        self.assertNotIn(USER.encode(), resp.body)

    def test_no_output_shows_the_password(self):
        self.http("POST", "/api/v1/publish/%s" % self.topic(), b"x")
        health = self.http("GET", "/api/v1/health")
        self.assertEqual(health.status, 200, health)
        self.assert_hidden("/api/v1/health", health.body)
        metrics = self.http("GET", "/metrics")
        self.assertEqual(metrics.status, 200, metrics)
        self.assert_hidden("/metrics", metrics.body)
        log = self.read_log(self.bridge)
        self.assertIn(("broker-up url=%s " % self.bare).encode(), log)
        self.assertIn(("broker=%s" % self.bare).encode(), log)
        self.assert_hidden("the bridge's log", log)
        # What `ps` shows: the bridge takes the password out of its command line.
        with open("/proc/%d/cmdline" % self.bridge.pid, "rb") as f:
            cmdline = f.read()
        self.assertIn(("%s@%s:%d" % (USER, h.HOST, self.broker.port)).encode(), cmdline)
        self.assert_hidden("/proc/PID/cmdline", cmdline)

        code, out = self.run_binary("--help")
        self.assertEqual(code, 0, out)
        self.assertIn(b"USER:PASSWORD@HOST", out)
        self.assert_hidden("--help", out)

        code, out = self.run_binary("--check", "--broker", self.url, config={})
        self.assertEqual(code, 0, out)
        self.assertIn(("broker.url=%s\n" % self.bare).encode(), out)
        self.assertIn(b"broker.username=(set)\n", out)
        self.assertIn(b"broker.password=(set)\n", out)
        self.assertIn(b"broker.mqtt_version=auto\n", out)
        self.assert_hidden("--check", out)

        code, out = self.run_binary("--check",
                                    config={"broker": {"url": self.url, "mqtt_version": "3.1.1"}})
        self.assertEqual(code, 0, out)
        self.assertIn(("broker.url=%s\n" % self.bare).encode(), out)
        self.assertIn(b"broker.mqtt_version=3.1.1\n", out)
        self.assert_hidden("--check of a config file", out)

    # start-up errors --------------------------------------------------------------------

    def test_bad_scheme_error_hides_password(self):
        self.start_error(["--broker", "ftp://user:%s@host" % SECRET],
                         needles=["'broker.url' 'ftp://user:***@host' must start with"])
        self.start_error(["--broker", "user:%s@host:1883" % SECRET],
                         needles=["'user:***@host:1883' must start with"])
        self.start_error([], config={"broker": {"url": "http://user:%s@host" % SECRET}},
                         needles=["'broker.url' 'http://user:***@host'"])

    def test_malformed_escape_error(self):
        self.start_error(["--broker", "mqtt://user:%s%%4@host" % SECRET],
                         needles=["the password in the user info has a '%'"])
        self.start_error(["--broker", "mqtt://user:%s%%zz@host" % SECRET],
                         needles=["does not start an escape"])
        # Raw characters that end the user info early: the rest is not echoed either.
        self.start_error(["--broker", "mqtt://user:%s@x@host" % SECRET], password=SECRET)
        self.start_error(["--broker", "mqtt://user:%s/x@host" % SECRET], password=SECRET)

    def test_credentials_in_url_and_keys_conflict(self):
        url = "mqtt://user:%s@%s:%d" % (SECRET, h.HOST, self.broker.port)
        self.start_error(["--broker", url], config={"broker": {"username": "other"}},
                         needles=["'broker.url' holds credentials",
                                  "'broker.username' is set too"])
        # (the key's password holds SECRET too: both are checked at once)
        self.start_error([], config={"broker": {"url": url, "password": "k3y-" + SECRET}},
                         needles=["'broker.password' is set too"])
        self.start_error(["--broker", "mqtt://user@%s:%d" % (h.HOST, self.broker.port)],
                         config={"broker": {"password": SECRET}},
                         needles=["'broker.password' is set too"])

    def test_mistyped_command_line_hides_password(self):
        url = "mqtt://user:%s@host" % SECRET
        out = self.start_error(["--broker-url=" + url])
        self.assertIn(b"'--broker-url=mqtt://user:***@host'", out)
        out = self.start_error([url])
        self.assertIn(b"unexpected argument 'mqtt://user:***@host'", out)

    def test_mqtt_version_values(self):
        for value, shown in (("auto", "auto"), ("5", "5"), ("3.1.1", "3.1.1"), ("3.1", "3.1")):
            code, out = self.run_binary("--check", config={"broker": {"mqtt_version": value}})
            self.assertEqual(code, 0, out)
            self.assertIn(("broker.mqtt_version=%s\n" % shown).encode(), out)
        for value in ("4", "v5", 5):
            code, out = self.run_binary("--check", config={"broker": {"mqtt_version": value}})
            self.assertEqual(code, 2, out)
            self.assertIn(b"'broker.mqtt_version' must be", out)

    # refused credentials ----------------------------------------------------------------

    def refused_bridge(self, url, password):
        """A bridge with @url, which the broker refuses: it logs the refusal and keeps running
        (health 503), and shows @password nowhere."""
        bridge = h.start_bridge(self.broker.port, broker_url=url)
        self.addCleanup(bridge.cleanup)
        m, log = self.wait_log(bridge, rb"warn hub broker-down reason=refused code=0x[0-9a-f]{2} "
                               rb'error="(not authorized|bad user name or password)"', REFUSAL)
        self.assertTrue(m, "no refusal logged within %.0fs:\n%s" % (REFUSAL, log.decode()))
        self.assertIsNone(bridge.proc.poll(), "the bridge exited:\n%s" % log.decode())
        health = h.http_request(bridge.port, "GET", "/api/v1/health")
        self.assertEqual(health.status, 503, health)
        self.assertEqual(health.json()["broker"]["url"], self.bare, health)
        self.assertEqual(h.http_request(bridge.port, "POST", "/api/v1/publish/a/b", b"x").status,
                         503)
        if password:
            self.assert_hidden("/api/v1/health of a refused link", health.body, password)
            self.assert_hidden("/metrics of a refused link",
                               h.http_request(bridge.port, "GET", "/metrics").body, password)
            self.assert_hidden("the log of a refused link", self.read_log(bridge), password)
        return bridge

    def test_wrong_password_refused_and_not_logged(self):
        wrong = "wr@ng:" + SECRET + "/%"
        self.refused_bridge("mqtt://%s:%s@%s:%d" % (USER, urllib.parse.quote(wrong, safe=""),
                                                    h.HOST, self.broker.port), wrong)

    def test_user_name_only_refused(self):
        self.refused_bridge("mqtt://%s@%s:%d" % (USER, h.HOST, self.broker.port), None)


if __name__ == "__main__":
    h.main()
