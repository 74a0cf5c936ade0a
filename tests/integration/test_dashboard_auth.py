"""The dashboard and the bridge's tokens (issue 14: sign-in). With auth.mode "tokens" the page
asks for a token, checks it (GET /api/v1/whoami), connects with it (mqtt_credentials "bridge":
the token is the MQTT password), shows who is signed in and signs out; refusals show next to
what was refused. GET /api/v1/info tells a page whether it must sign in, to anyone, and gives no
secret away; GET /api/v1/whoami answers with the token's name and ACL. With auth.mode "none"
nothing of the sign-in shows; with mqtt_credentials "passthrough" the page asks for the broker's
own MQTT login too, and the broker's refusal brings the dialog back with the reason."""

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
DAVE_PASSWORD = secret()
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
        resp = self.http("POST", "/api/v1/info", body=b"x")
        self.assert_error(resp, 405, "method_not_allowed")
        self.assertEqual(resp.header("Allow"), "GET")

    def test_whoami(self):
        self.assert_error(self.http("GET", "/api/v1/whoami"), 401, "unauthorized")
        self.assert_error(self.http("GET", "/api/v1/whoami",
                                    headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
        resp = self.http("GET", "/api/v1/whoami", headers={"Authorization": "Bearer " + ALICE})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body), {"token": "alice", "publish": ["devices/alice/#"],
                                                 "subscribe": ["devices/alice/#"]})
        self.assertNotIn(ALICE.encode(), resp.body)
        # a wrong method is refused only once the token is known (as every endpoint)
        self.assert_error(self.http("POST", "/api/v1/whoami", body=b"x"), 401, "unauthorized")
        resp = self.http("POST", "/api/v1/whoami", body=b"x",
                         headers={"Authorization": "Bearer " + ALICE})
        self.assert_error(resp, 405, "method_not_allowed")
        self.assertEqual(resp.header("Allow"), "GET")

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
        self.assertTrue(data["mqtt_fields_hidden"], "bridge credentials need no MQTT login")
        self.assertNotEqual(data["state_before_signin"], "connected")
        # the token's subscribe ACL, not "#", is what the page subscribed at first
        self.assertEqual(data["filters"][:1], ["devices/alice/#"])
        self.assertFalse(data["open_after_reload"])
        # "Remember" was not ticked: kept for the tab only
        self.assertEqual(data["stored_after_reload"], [True, False])
        self.assertTrue(data["who_visible_on_phone"])
        self.assertEqual(data["stored_after_signout"], [None, None])
        self.assertNotEqual(data["state_after_signout"], "connected")
        self.assertTrue(data["auth_state_hidden_after_signout"])
        self.assertLess(data["bg_dark"]["luminance"], 0.1)
        with open(self.stack.bridge.log_path, encoding="utf-8", errors="replace") as f:
            self.assertNotIn(ALICE, f.read())


class DashboardNoAuthTest(ApiCase):
    """auth.mode "none": /info says so, whoami has no token, and the page shows no sign-in."""

    def test_info_and_whoami(self):
        info = self.http("GET", "/api/v1/info").json()
        self.assertEqual(info["auth"], {"mode": "none", "mqtt_credentials": "passthrough"})
        self.assertEqual(set(info), {"version", "auth", "broker", "features"})
        self.assertIsInstance(info["version"], str)
        self.assertTrue(info["broker"]["connected"])
        self.assertIn(info["broker"]["mqtt_version"], ("5", "3.1.1", "3.1"))
        self.assertIsInstance(info["features"]["request_response"], bool)
        resp = self.http("GET", "/api/v1/whoami")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json(), {"token": None, "publish": None, "subscribe": None})
        resp = self.http("DELETE", "/api/v1/whoami")
        self.assert_error(resp, 405, "method_not_allowed")
        self.assertEqual(resp.header("Allow"), "GET")

    def test_page_shows_no_sign_in(self):
        drv = BrowserDriver("dashboard-auth", dict(
            base="http://%s:%d" % (HOST, self.api_port), artifacts=ARTIFACTS, mode="none"))
        self.addCleanup(drv.cleanup)
        data = drv.assert_ok()
        self.assertEqual(data, {"dialog_open": False, "auth_state_hidden": True,
                                "signin_button_hidden": True})


@harness.bridge_only("tokens are the bridge's")
@harness.broker_needs("mosquitto", "a broker with a password file")
class DashboardPassthroughTest(ApiCase):
    """Tokens for REST, the broker's own user name and password for MQTT (dedicated sessions)."""
    passwords = {BROKER_USER: BROKER_PASSWORD, "dave": DAVE_PASSWORD}
    bridge_config = {"mqtt_credentials": "passthrough",
                     "broker": {"username": BROKER_USER, "password": BROKER_PASSWORD},
                     "auth": {"mode": "tokens", "tokens": TOKENS}}

    def test_info(self):
        info = self.http("GET", "/api/v1/info").json()
        self.assertEqual(info["auth"], {"mode": "tokens", "mqtt_credentials": "passthrough"})

    def test_sign_in_with_the_brokers_login(self):
        drv = BrowserDriver("dashboard-auth", dict(
            base="http://%s:%d" % (HOST, self.api_port), artifacts=ARTIFACTS, passthrough=True,
            token=ALICE, token_name="alice", mqtt_user="dave", mqtt_password=DAVE_PASSWORD))
        self.addCleanup(drv.cleanup)
        data = drv.assert_ok()
        self.assertFalse(data["mqtt_fields_hidden"])
        # Mosquitto 2 refuses a wrong password with v5 0x87, others may say 0x86
        self.assertIn(data["refusal"], ("Not authorized", "Bad token or credentials"))
        self.assertNotEqual(data["state_after_refusal"], "connected")
        self.assertTrue(data["token_kept"], "the token was good: only the MQTT login is asked again")
        self.assertFalse(data["open_after_reload"])
        log = self.stack.bridge.log_path
        with open(log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.assertNotIn(ALICE, text)
        self.assertNotIn(DAVE_PASSWORD, text)


if __name__ == "__main__":
    harness.main()
