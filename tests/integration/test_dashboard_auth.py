"""The dashboard and the bridge's tokens (issue 14: sign-in). With auth.mode "tokens" the page
asks for a token, checks it (GET /api/v1/whoami), connects with it (mqtt_credentials "bridge":
the token is the MQTT password), shows who is signed in and signs out; refusals show next to
what was refused. GET /api/v1/info tells a page whether it must sign in, to anyone, and gives no
secret away; GET /api/v1/whoami answers with the token's name and ACL."""

import base64
import hashlib
import json
import os

import harness
from harness import HOST, V5, ApiCase, BrowserDriver

ARTIFACTS = os.path.join(harness.REPO_ROOT, "tests", "artifacts", "dashboard-auth")


def secret():
    return "mwb_" + base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")


ALICE = secret()
BROKER_USER, BROKER_PASSWORD = "mwb-bridge", secret()
DEVICE_USER, DEVICE_PASSWORD = "device", secret()
TOKENS = [{"name": "alice", "sha256": hashlib.sha256(ALICE.encode()).hexdigest(),
           "publish": ["devices/{name}/#"], "subscribe": ["devices/{name}/#"]}]


@harness.bridge_only("tokens are the bridge's")
@harness.broker_needs("mosquitto", "a broker with a password file")
class DashboardAuthTest(ApiCase):
    passwords = {BROKER_USER: BROKER_PASSWORD, DEVICE_USER: DEVICE_PASSWORD}
    bridge_config = {"mqtt_credentials": "bridge",
                     "broker": {"username": BROKER_USER, "password": BROKER_PASSWORD},
                     "auth": {"mode": "tokens", "tokens": TOKENS}}

    def test_info_is_open_and_tells_the_page_to_sign_in(self):
        resp = self.http("GET", "/api/v1/info")
        self.assertEqual(resp.status, 200, resp)
        info = json.loads(resp.body)
        self.assertEqual(info["auth"], {"mode": "tokens", "mqtt_credentials": "bridge"})
        self.assertTrue(info["broker"]["connected"])
        self.assertEqual(info["broker"]["mqtt_version"], "5")
        self.assertTrue(info["features"]["request_response"])
        for s in (BROKER_PASSWORD, ALICE, BROKER_USER, "mqtt://"):
            self.assertNotIn(s.encode(), resp.body)
        self.assert_error(self.http("POST", "/api/v1/info", body=b"x"), 405, "method_not_allowed")

    def test_whoami(self):
        self.assert_error(self.http("GET", "/api/v1/whoami"), 401, "unauthorized")
        self.assert_error(self.http("GET", "/api/v1/whoami",
                                    headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
        resp = self.http("GET", "/api/v1/whoami", headers={"Authorization": "Bearer " + ALICE})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body), {"token": "alice", "publish": ["devices/alice/#"],
                                                 "subscribe": ["devices/alice/#"]})

    def test_sign_in_and_out(self):
        dev = self.observer(V5, client_id=self.uid("device"), username=DEVICE_USER,
                            password=DEVICE_PASSWORD)
        sync = "devices/alice/sync"
        drv = BrowserDriver("dashboard-auth", dict(
            base="http://%s:%d" % (HOST, self.api_port), artifacts=ARTIFACTS, token=ALICE,
            token_name="alice", sync_topic=sync, allowed_filter="devices/alice/#",
            refused_filter="devices/bob/#", refused_topic="devices/bob/set"))
        self.addCleanup(drv.cleanup)
        drv.wait_step("sync")
        drv.until_step("synced", lambda: dev.publish(sync, b"sync", 0))
        drv.reply("synced")
        data = drv.assert_ok()
        # the token's subscribe ACL, not "#", is what the page subscribed at first
        self.assertEqual(data["filters"][:1], ["devices/alice/#"])
        self.assertFalse(data["open_after_reload"])
        self.assertEqual(data["stored_after_signout"], [None, None])
        self.assertNotEqual(data["state_after_signout"], "connected")
        with open(self.stack.bridge.log_path, encoding="utf-8", errors="replace") as f:
            self.assertNotIn(ALICE, f.read())


if __name__ == "__main__":
    harness.main()
