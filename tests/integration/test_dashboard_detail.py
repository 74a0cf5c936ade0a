"""The dashboard's message detail card and its chart in a real browser (tests/browser/scenarios/
dashboard-detail.mjs, Debian's headless Chromium) against a real broker and the real bridge; a
device on the broker publishes with MQTT 5 properties:

- a JSON payload shows as pretty JSON (the lines of json.dumps(indent=2)) that folds; the Text tab
  is the payload exactly; Base64 is Python's base64 of it; binary shows a hex dump of exactly its
  bytes, by default;
- QoS, retain, size and the v5 properties the device set show: content type, user properties (in
  order, a repeated key too), response topic, correlation data (as text and hex), message expiry
  (what the broker forwards: at most what was set), payload format;
- a click on an older log line shows that message, not the topic's latest;
- the diff against the previous message lists exactly the changed paths ({"t":21.5,"h":40} →
  {"t":22,"h":40,"x":1}: t changed, x added; h not), by lines for text, by bytes for binary;
- the chart holds two series, a numeric topic and a JSON field path (suggested from the topic's
  last message), with every published point, read back from uPlot's data; values that arrive at one
  timestamp (the page's clock fixed) keep x strictly increasing, both series drawn, no page error;
  the window selector sets the x range.

Screenshots (desktop light and dark, phone) go to tests/artifacts/dashboard-detail/. The driver
fails on any page error (uncaught exception, console.error, CSP violation).
"""

import base64
import glob
import json
import os

import harness
from harness import HOST, V5, ApiCase, BrowserDriver, PacketTypes

ARTIFACTS = os.path.join(harness.REPO_ROOT, "tests", "artifacts", "dashboard-detail")
SYNC = "test/sync"

JSON_TOPIC = "detail/dev1/state"
JSON_1 = {"t": 21.5, "h": 40, "nest": {"a": [1, 2, {"b": True}], "s": "x"}}
JSON_2 = {"t": 22, "h": 40, "nest": {"a": [1, 2, {"b": True}], "s": "x"}, "x": 1}
# The payload as sent, spacing included: the Text tab shows exactly this.
JSON_1_TEXT = '{"t": 21.5,  "h": 40, "nest": {"a": [1, 2, {"b": true}], "s": "x"}}'
USER_PROPS = [("site", "lab"), ("unit", "\u00b0C"), ("site", "lab-2")]
CORRELATION = b"req-42 \xe2\x9c\x93 \xff"
EXPIRY = 3600

BIN_TOPIC = "detail/dev1/raw"
BIN_1 = bytes(range(0, 40)) + b"Hello\x7f\xff\xfe"
BIN_2 = BIN_1[:5] + b"\xaa" + BIN_1[6:20] + b"\xbb" + BIN_1[21:]

TEXT_TOPIC = "detail/dev1/note"
TEXT_1 = "line one\nline two\nline three"
TEXT_2 = "line one\nline 2\nline three"

NUM_TOPIC = "detail/dev2/temp"
ENV_TOPIC = "detail/dev2/env"
PATH = "sensors.temp"


def env(temp, hum=40):
    return json.dumps({"sensors": {"temp": temp, "hum": hum}, "ok": True}).encode()


NUM_VALUES = [1.5, 2, 3.25]
PATH_VALUES = [21, 21.5, 22]
SAME_NUM = [7, 8]          # published with the page's clock fixed: one timestamp
SAME_PATH = [30]


def grouped(pairs):
    """User properties as MQTT.js gives them ({k: [v, ...]}), in the card's order: by key, in the
    order each key first appears."""
    order, values = [], {}
    for k, v in pairs:
        if k not in values:
            order.append(k)
            values[k] = []
        values[k].append(v)
    return [[k, v] for k in order for v in values[k]]


class DashboardDetailTest(ApiCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for old in glob.glob(os.path.join(ARTIFACTS, "*.png")):
            os.remove(old)

    @harness.broker_needs("mqtt5", "the card shows the MQTT 5 properties the device sets")
    def test_detail_and_chart(self):
        dev = self.observer(V5, client_id=self.uid("device"))
        config = dict(
            base="http://%s:%d" % (HOST, self.api_port), artifacts=ARTIFACTS, sync_topic=SYNC,
            json=dict(topic=JSON_TOPIC),
            binary=dict(topic=BIN_TOPIC, diff_summary="binary: 2 bytes changed"),
            text=dict(topic=TEXT_TOPIC, second=TEXT_2),
            chart=dict(num_topic=NUM_TOPIC, json_topic=ENV_TOPIC, path=PATH,
                       suggestions=["sensors.temp", "sensors.hum"],
                       num_label=NUM_TOPIC, path_label="%s \u00b7 %s" % (ENV_TOPIC, PATH),
                       num_values=[0.5] + NUM_VALUES, path_values=[20.5] + PATH_VALUES,
                       same_num=SAME_NUM, same_path=SAME_PATH))
        drv = BrowserDriver("dashboard-detail", config, timeout=120.0)
        self.addCleanup(drv.cleanup)

        drv.wait_step("sync")
        drv.until_step("synced", lambda: dev.publish(SYNC, b"sync", 1))
        drv.reply("synced")

        props = harness.props(PacketTypes.PUBLISH, ContentType="application/json",
                              UserProperty=USER_PROPS, ResponseTopic="detail/dev1/reply",
                              CorrelationData=CORRELATION, MessageExpiryInterval=EXPIRY,
                              PayloadFormatIndicator=1)
        drv.wait_step("json-1")
        dev.publish(JSON_TOPIC, JSON_1_TEXT.encode(), qos=1, properties=props)
        drv.reply("json-1")
        drv.wait_step("json-2")
        dev.publish(JSON_TOPIC, json.dumps(JSON_2).encode(), qos=1)
        drv.reply("json-2")

        for name, payload in (("binary-1", BIN_1), ("binary-2", BIN_2)):
            drv.wait_step(name)
            dev.publish(BIN_TOPIC, payload, qos=1)
            drv.reply(name)
        for name, payload in (("text-1", TEXT_1), ("text-2", TEXT_2)):
            drv.wait_step(name)
            dev.publish(TEXT_TOPIC, payload.encode(), qos=1)
            drv.reply(name)

        # the chart: one point each before the series are added, then three each
        drv.wait_step("chart-seed")
        dev.publish(NUM_TOPIC, b"0.5", qos=1)
        dev.publish(ENV_TOPIC, env(20.5), qos=1)
        drv.reply("chart-seed")
        drv.wait_step("chart-points", timeout=60.0)
        for n, p in zip(NUM_VALUES, PATH_VALUES):
            dev.publish(NUM_TOPIC, str(n).encode(), qos=1)
            dev.publish(ENV_TOPIC, env(p), qos=1)
        drv.reply("chart-points")
        drv.wait_step("same-time", timeout=60.0)
        dev.publish(NUM_TOPIC, str(SAME_NUM[0]).encode(), qos=1)
        dev.publish(ENV_TOPIC, env(SAME_PATH[0]), qos=1)
        dev.publish(NUM_TOPIC, str(SAME_NUM[1]).encode(), qos=1)
        drv.reply("same-time")

        data = drv.assert_ok()

        # JSON: pretty (json.dumps' lines, indentation aside), folding, the exact text, base64
        pretty = [line.strip() for line in json.dumps(JSON_1, indent=2).splitlines()]
        self.assertEqual(data["json_lines"], pretty)
        self.assertEqual(data["folded_summary"], '"nest": { 2 keys }')
        self.assertEqual(data["text"], JSON_1_TEXT)
        self.assertEqual(data["base64_json"], base64.b64encode(JSON_1_TEXT.encode()).decode())

        # flags and v5 properties
        m = data["meta"]
        self.assertEqual(m["qos"], "0")      # as received: the page subscribes to "#" at QoS 0
        self.assertEqual(m["retain"], "no")
        self.assertEqual(m["size"], "%d bytes" % len(JSON_1_TEXT.encode()))
        self.assertEqual(m["content-type"], "application/json")
        self.assertEqual(m["user_properties"], grouped(USER_PROPS))
        self.assertEqual(m["response-topic"], "detail/dev1/reply")
        self.assertEqual(m["correlation_text"], CORRELATION.decode("utf-8", "replace"))
        self.assertEqual(m["correlation_hex"], " ".join("%02x" % c for c in CORRELATION))
        expiry = int(m["expiry"].rstrip(" s"))
        self.assertTrue(EXPIRY - 10 <= expiry <= EXPIRY, m["expiry"])
        self.assertEqual(m["payload-format"], "1 \u00b7 UTF-8 text")
        self.assertEqual(data["first_diff"], "The first message of this topic seen here.")

        # the diff: exactly t changed and x added (h and nest unchanged)
        self.assertEqual(data["diff"], [["t", "changed", "t: 21.5 \u2192 22"],
                                        ["x", "added", "x: 1"]])
        self.assertTrue(data["diff_summary"].startswith("1 changed, 1 added"), data["diff_summary"])

        # the older log line: that message, marked in the log; "Show latest" offered
        self.assertTrue(data["older"]["x_absent"], data["older"])
        self.assertEqual(data["older"]["current"], [None, "true"])
        self.assertTrue(data["older"]["latest_button"])

        # binary: the hex dump is exactly the bytes, with offsets and ASCII; base64
        rows = data["hex"]
        self.assertEqual(bytes.fromhex("".join(r["hex"] for r in rows)), BIN_1)
        self.assertEqual([r["offset"] for r in rows],
                         ["%08x" % i for i in range(0, len(BIN_1), 16)])
        self.assertEqual("".join(r["ascii"] for r in rows),
                         "".join(chr(c) if 0x20 <= c < 0x7f else "." for c in BIN_1))
        self.assertTrue(data["json_tab_disabled_for_binary"])
        self.assertEqual(data["base64_binary"], base64.b64encode(BIN_1).decode())

        self.assertEqual(data["text_diff"], ["- line two", "+ line 2"])

        # the chart: both series with all their points, on one strictly increasing x axis
        self.assertEqual(data["series"], [[NUM_TOPIC, ""], [ENV_TOPIC, PATH]])
        self.assertIn("sensors.nope", data["path_error"])
        for snap in (data["chart"], data["same_time"]):
            xs = snap["data"][0]
            self.assertTrue(all(a < b for a, b in zip(xs, xs[1:])), "x not increasing: %r" % xs)
            self.assertEqual(snap["labels"], [config["chart"]["num_label"],
                                              config["chart"]["path_label"]])
        cols = data["same_time"]["data"]
        num = [v for v in cols[1] if v is not None]
        path = [v for v in cols[2] if v is not None]
        self.assertEqual(num, [0.5] + NUM_VALUES + SAME_NUM)
        self.assertEqual(path, [20.5] + PATH_VALUES + SAME_PATH)
        # the values that arrived at one time: 7 and 30 share a row (one common x), 8 is 1 ms on
        row7 = cols[1].index(SAME_NUM[0])
        self.assertEqual(cols[2][row7], SAME_PATH[0], cols)
        row8 = cols[1].index(SAME_NUM[1])
        self.assertAlmostEqual(cols[0][row8] - cols[0][row7], 0.001, places=6)

        self.assertEqual(data["labels_after_remove"], [config["chart"]["path_label"]])

        # the window selector sets the x range
        for w, x in data["windows"].items():
            self.assertAlmostEqual(x[1] - x[0], float(w), delta=1.0, msg="window %s: %r" % (w, x))

        shots = drv.finish()["screenshots"]
        for name in ("detail-desktop-light", "detail-desktop-dark", "detail-phone-light",
                     "detail-phone-dark", "detail-phone-chart-dark"):
            self.assertIn(os.path.join(ARTIFACTS, name + ".png"), shots)


if __name__ == "__main__":
    harness.main()
