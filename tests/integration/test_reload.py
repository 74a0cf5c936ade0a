"""Tokens made with --new-token, and SIGHUP re-reading the token list.

The real bridge with auth.mode "tokens" and mqtt_credentials "bridge" in front of a real
Mosquitto. A reload keeps the event streams and MQTT connections whose token is still in the
file (under its new filters), closes those whose token is gone, refuses the removed secret from
then on, accepts a new one, and changes nothing when the new file is broken. No secret is logged.
"""
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
import unittest

import harness as h


def token(name, secret, publish=(), subscribe=()):
    return {"name": name, "sha256": hashlib.sha256(secret.encode()).hexdigest(),
            "publish": list(publish), "subscribe": list(subscribe)}


class NewTokenTest(unittest.TestCase):
    """--new-token prints a secret whose SHA-256 is the one in the entry it prints."""

    def run_new_token(self, name):
        binary = os.environ["MWB_BINARY"]
        return subprocess.run([binary, "--new-token", name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=10)

    def test_secret_and_entry(self):
        p = self.run_new_token("kitchen-1")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().splitlines()
        secret = lines[0]
        self.assertRegex(secret, r"^mwb_[A-Za-z0-9_-]{43}$")
        entry = json.loads(lines[-1])
        self.assertEqual(entry, {"name": "kitchen-1",
                                 "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                                 "publish": [], "subscribe": []})
        # the secret appears once, on its own line
        self.assertEqual(p.stdout.decode().count(secret), 1)
        again = self.run_new_token("kitchen-1").stdout.decode().splitlines()[0]
        self.assertNotEqual(again, secret)

    def test_bad_name(self):
        p = self.run_new_token("a/b")
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"not valid", p.stderr)
        self.assertEqual(p.stdout, b"")


class CheckTest(unittest.TestCase):
    """--check prints the effective security settings, never a secret."""

    def test_check_prints_settings_not_secrets(self):
        d = h.make_dir("mwb-check-")
        self.addCleanup(h.remove_dir, d)
        password = "pw-" + secrets.token_urlsafe(16)
        path = os.path.join(d, "c.json")
        with open(path, "w") as f:
            json.dump({"broker": {"username": "web", "password": password},
                       "auth": {"mode": "tokens", "metrics": "token",
                                "tokens": [token("a", "s3cret", ["x/#"], ["y/#"])]},
                       "mqtt_credentials": "bridge",
                       "allowed_origins": ["https://a.example", "https://b.example"],
                       "limits": {"requests_per_minute": 60}}, f)
        p = subprocess.run([os.environ["MWB_BINARY"], "--check", "--config", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        for line in ("auth.mode=tokens", "auth.tokens=1", "auth.metrics=token",
                     "mqtt_credentials=bridge", "broker.password=(set)",
                     "allowed_origins=https://a.example,https://b.example",
                     "limits.requests_per_minute=60"):
            self.assertIn(line + "\n", out)
        self.assertNotIn(password, out + p.stderr.decode())
        self.assertNotIn(hashlib.sha256(b"s3cret").hexdigest(), out)


class ReloadTest(h.ApiCase):
    keep = "k-" + secrets.token_urlsafe(24)
    gone = "g-" + secrets.token_urlsafe(24)
    fresh = "f-" + secrets.token_urlsafe(24)
    bridge_config = {
        "auth": {"mode": "tokens", "tokens": [
            token("keep", keep, publish=["in/{name}/#"], subscribe=["out/#"]),
            token("gone", gone, publish=["in/{name}/#"], subscribe=["out/#"]),
        ]},
        "mqtt_credentials": "bridge",
    }

    def config_path(self):
        return os.path.join(self.stack.bridge.dir, "config.json")

    def write_config(self, cfg):
        # written aside and renamed: the bridge never reads a half-written file
        tmp = self.config_path() + ".new"
        with open(tmp, "w") as f:
            if isinstance(cfg, str):
                f.write(cfg)
            else:
                json.dump(h.with_sessions(cfg), f)   # MWB_SESSIONS stays
        os.rename(tmp, self.config_path())

    def sighup_and_wait(self, marker):
        """SIGHUP, then until the bridge logged a line with @marker after it."""
        with open(self.stack.bridge.log_path, "rb") as f:
            before = len(f.read())
        os.kill(self.stack.bridge.pid, signal.SIGHUP)
        deadline = time.monotonic() + h.TIMEOUT
        while time.monotonic() < deadline:
            with open(self.stack.bridge.log_path, "rb") as f:
                new = f.read()[before:]
            if marker in new:
                return new.decode("utf-8", "replace")
            time.sleep(0.05)
        self.fail("no %r in the log within %.1fs after SIGHUP:\n%s"
                  % (marker, h.TIMEOUT, self.stack.bridge.log()))

    def publish(self, secret, topic, payload):
        return self.http("POST", "/api/v1/publish/" + topic, payload,
                         {"Authorization": "Bearer " + secret})

    def mqtt(self, secret, version=h.V5):
        return self.paho(version, username="u", password=secret)

    def restore(self):
        self.write_config(self.bridge_config)
        self.sighup_and_wait(b"reload tokens=2")

    def test_reload_keeps_closes_and_adds(self):
        self.addCleanup(self.restore)
        stream_keep = self.stream("out/#", query="access_token=" + self.keep)
        stream_gone = self.stream("out/#", query="access_token=" + self.gone)
        mqtt_keep = self.mqtt(self.keep)
        mqtt_gone = self.mqtt(self.gone)
        self.assertEqual(mqtt_keep.subscribe("out/#", qos=1), [1])
        self.assertEqual(self.publish(self.keep, "out/x", b"nope").status, 403)

        self.write_config({
            "auth": {"mode": "tokens", "tokens": [
                token("keep", self.keep, publish=["in/{name}/#", "out/#"], subscribe=["out/#"]),
                token("fresh", self.fresh, publish=["out/#"], subscribe=["out/#"]),
            ]},
            "mqtt_credentials": "bridge",
        })
        log = self.sighup_and_wait(b"reload tokens=2")
        # at least this test's two; a stream an earlier test closed may not be noticed yet
        closed = int(re.search(r"reload tokens=2 closed=(\d+)", log).group(1))
        self.assertGreaterEqual(closed, 2, log)

        # the removed token's stream and MQTT connection end; its secret is refused from now on
        self.assertTrue(stream_gone.wait_closed(h.TIMEOUT), "stream of a removed token kept")
        self.assertTrue(mqtt_gone.disconnected.wait(h.TIMEOUT), "MQTT of a removed token kept")
        self.assertEqual(self.publish(self.gone, "in/gone/x", b"x").status, 401)

        # the kept token has its new rights, on the connections it already had
        body = b"after reload \x00\xff"
        resp = self.publish(self.keep, "out/a", body)
        self.assertEqual(resp.status, 200, resp)
        ev = stream_keep.next_event()
        self.assertEqual((ev.topic, ev.payload), ("out/a", body))
        msg = mqtt_keep.get()
        self.assertEqual((msg.topic, msg.payload), ("out/a", body))

        # a token added by the reload works at once, over HTTP and MQTT
        self.assertEqual(self.publish(self.fresh, "out/b", b"fresh").status, 200)
        self.assertEqual(stream_keep.next_event().payload, b"fresh")
        mqtt_fresh = self.mqtt(self.fresh, version=h.V311)
        self.assertEqual(mqtt_fresh.subscribe("out/#", qos=0), [0])

    def test_broken_file_changes_nothing(self):
        self.addCleanup(self.restore)
        stream = self.stream("out/#", query="access_token=" + self.gone)
        self.write_config('{"auth": {"mode": "tokens", "tokens": [}')
        log = self.sighup_and_wait(b"reload-failed")
        self.assertIn("kept=old", log)
        self.write_config({"auth": {"mode": "tokens", "tokens": [{"name": "x"}]}})
        self.sighup_and_wait(b"reload-failed")
        # both old tokens still work, the stream is still open
        self.assertEqual(self.publish(self.gone, "in/gone/y", b"y").status, 200)
        self.assertEqual(self.publish(self.keep, "in/keep/y", b"y").status, 200)
        self.mqtt(self.gone, version=h.V311)
        self.assertFalse(stream.wait_closed(h.QUIET))

    def test_z_no_secret_in_the_log(self):
        # after the other tests: unittest runs methods by name, this one sorts last
        self.mqtt(self.keep)
        self.assertEqual(self.publish(self.gone, "in/gone/z", b"z").status, 200)
        self.stream("out/#", query="access_token=" + self.keep).close()
        with open(self.stack.bridge.log_path, "rb") as f:
            log = f.read()
        for s in (self.keep, self.gone, self.fresh):
            self.assertNotIn(s.encode(), log)
            # nor a recognisable part of it
            self.assertNotIn(s[2:18].encode(), log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
