"""The bridge as a process (doc/design.md §5): graceful SIGTERM (WebSocket close 1001, v5 DISCONNECT 0x8B,
exit 0), start-up errors naming the bad config key (exit 2), no password in the logs.
All bridge only: Mosquitto has no such contract."""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402
from harness import bridge_only  # noqa: E402

SECRET = "pw-Zq81-never-logged"


@bridge_only("process behaviour of the bridge")
class ShutdownTest(h.IntegrationCase):

    @classmethod
    def setUpClass(cls):
        pass

    def setUp(self):
        type(self).stack = h.Stack()
        self.addCleanup(self.stack.cleanup)

    def test_sigterm_closes_clients_and_exits_0(self):
        v5 = self.raw(r.V5)
        v311 = self.raw(r.V311)
        code = self.stack.bridge.stop(timeout=10)
        self.assertEqual(code, 0, "exit code after SIGTERM")
        disc = self.assert_closed(v5, v5_disconnect=True)
        self.assertEqual(disc.rc, 0x8B, "v5 DISCONNECT at shutdown: %r" % disc)
        self.assert_closed(v311)
        self.assertEqual(v311.close_packets, [])
        for conn in (v5, v311):
            self.assertEqual(conn.ws.close_code, 1001, "WebSocket close code at shutdown")

    def test_sigterm_idle_exits_0(self):
        self.assertEqual(self.stack.bridge.stop(timeout=10), 0)


@bridge_only("password handling in the bridge's logs")
class LogTest(h.IntegrationCase):
    passwords = {"alice": SECRET}

    def test_password_never_logged(self):
        c = self.paho(h.V5, username="alice", password=SECRET)
        self.round_trip(c)
        c.disconnect()
        bad = self.raw(r.V311, username="alice", password=SECRET + "-wrong", expect_rc=None)
        bad.wait_closed()
        with open(self.stack.bridge.log_path, "rb") as f:
            log = f.read()
        self.assertTrue(log, "the bridge logged nothing with -v")
        self.assertNotIn(SECRET.encode(), log)


@bridge_only("command line and config of the bridge")
class StartupErrorTest(h.IntegrationCase):

    @classmethod
    def setUpClass(cls):
        pass

    def run_bridge(self, config, *args):
        binary = os.environ.get("MWB_BINARY")
        self.assertTrue(binary, "MWB_BINARY is not set")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(config, f)
        self.addCleanup(os.unlink, f.name)
        cmd = [binary, "--config", f.name, "--listen", "127.0.0.1:%d" % h.free_port()] + list(args)
        try:
            return subprocess.run(cmd, capture_output=True, timeout=10, cwd=h.REPO_ROOT)
        except subprocess.TimeoutExpired:
            self.fail("the bridge kept running with a bad config")

    def test_unknown_key_exit_2(self):
        res = self.run_bridge({"limits": {"max_packet_bytez": 10}})
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"max_packet_bytez", res.stdout + res.stderr)

    def test_wrong_type_exit_2(self):
        res = self.run_bridge({"limits": {"max_packet_bytes": "big"}})
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"max_packet_bytes", res.stdout + res.stderr)

    def test_version_and_help(self):
        binary = os.environ.get("MWB_BINARY")
        self.assertTrue(binary, "MWB_BINARY is not set")
        for flag in ("--version", "--help"):
            res = subprocess.run([binary, flag], capture_output=True, timeout=10)
            self.assertEqual(res.returncode, 0, flag)
            self.assertTrue(res.stdout.strip(), "%s printed nothing on stdout" % flag)


if __name__ == "__main__":
    h.main()
