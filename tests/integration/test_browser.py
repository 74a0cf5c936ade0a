"""The browser side in a real browser: Debian's headless Chromium (driven by
tests/browser/drive.mjs through playwright-core) against a real broker (Mosquitto, or RabbitMQ
3.10 with MWB_TEST_BROKER=rabbitmq) and the real bridge.

- the dashboard at / shows what a device publishes, publishes what the device receives (byte for
  byte, QoS, retain, content type, user properties), builds the topic tree, charts a topic, and
  remembers its subscriptions;
- /view shows retained values at load and live ones after;
- <mqtt-live> from /embed.js works on pages of a second origin (classic and module script, a
  strict CSP), fires its message event, and resumes with Last-Event-ID after its stream was cut;
- the bridge serves the pages with their content types, ETags, CSP and CORS (no browser).

The driver fails a scenario on any page error (uncaught exception, console.error, CSP violation).
Screenshots (light and dark) go to tests/artifacts/browser/, which git ignores.

In front of RabbitMQ 3.10 (MQTT 3.1.1 only; see tests/integration/README.md):
- the device is a 3.1.1 client, granted QoS 1 for QoS 2 (broker_qos()); it cannot see the retain
  flag as published nor MQTT 5 properties, so the dashboard's retained publish is checked as the
  retained value a new subscription to its topic gets, and its properties as the publishes whose
  properties the bridge counted dropped (mwb_broker_properties_dropped_total);
- the dashboard (MQTT 5) under MWB_SESSIONS=dedicated has a broker client of its own that speaks
  3.1.1: the same checks hold;
- the broker sends no retained messages for a wildcard filter: /view of devices/# gets its values
  published live once it is open, and <mqtt-live> on resume/# has no retained value (that part of
  test_embed_resume is a skipped subTest).
"""

import base64
import glob
import os
import time

import harness
from harness import HOST, TIMEOUT, V5, ApiCase, BrowserDriver, StaticServer, TcpProxy, mqtt

# A broker without retained messages for wildcard filters (RabbitMQ 3.10) shows a /view of
# devices/# no value at load: the test publishes them live instead.
RETAINED_WILDCARDS = harness.broker_lacks("retained_wildcards") is None

STATIC = os.path.join(harness.REPO_ROOT, "static")

# What the dashboard's publish form sends; the device checks each arrives exactly so.
FORMS = [
    dict(topic="actuators/d1/set", payload='{\n  "target": 22.5,\n  "note": "h\u00e9llo \u2713"\n}',
         qos=1, retain=True, content_type="application/json",
         user_props=[("source", "dashboard"), ("unit", "\u00b0C")]),
    dict(topic="actuators/d1/mode", payload="eco", qos=2, retain=False, content_type="",
         user_props=[]),
]


def user_props_text(pairs):
    """The publish form's user properties field: one "key=value" a line."""
    return "\n".join("%s=%s" % kv for kv in pairs)


SITE_CSS = """body { font: 16px/1.4 system-ui, sans-serif; margin: 2rem; background: #f6f7f9;
  color: #1d2330; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 1rem; }
@media (prefers-color-scheme: dark) { body { background: #12151b; color: #e6e9ef; } }
"""


def embed_page(title, script, bridge_port, head_extra="", elements=None):
    """A page of the second origin hosting <mqtt-live> elements."""
    elements = elements or """
<mqtt-live id="temp" topic="devices/#" format="value" field="temp" unit="\u00b0C" label="Temperature"></mqtt-live>
<mqtt-live id="json" topic="devices/+/state" format="json" label="State"></mqtt-live>
<mqtt-live id="log" topic="devices/#" format="log" lines="3" label="Recent messages"></mqtt-live>
<mqtt-live id="darkel" topic="devices/#" format="value" field="temp" unit="\u00b0C" label="Dark element" theme="dark"></mqtt-live>
"""
    return """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
%s
<title>%s</title>
<link rel="icon" href="favicon.svg">
<link rel="stylesheet" href="site.css">
%s
</head>
<body>
<h1>%s</h1>
<p>A page of another origin with live values from the bridge.</p>
<div class="grid">%s</div>
</body>
</html>
""" % (head_extra, title, script % {"bridge": "http://%s:%d" % (HOST, bridge_port)}, title,
       elements)


class BrowserTest(ApiCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for old in glob.glob(os.path.join(harness.ARTIFACTS, "*.png")):
            os.remove(old)

    # helpers ----------------------------------------------------------------------------

    @property
    def base(self):
        return "http://%s:%d" % (HOST, self.api_port)

    def browser(self, scenario, **config):
        drv = BrowserDriver(scenario, dict(config, base=self.base))
        self.addCleanup(drv.cleanup)
        return drv

    def device(self, subscribe=None):
        """An MQTT 5 client on the broker's TCP port (3.1.1 on a broker without MQTT 5): the
        device side. Its subscription (QoS 2, what the broker grants of it) keeps the retain flag
        as published where MQTT 5 has that, so a retained publish shows as one."""
        dev = self.observer(V5, client_id=self.uid("device"))
        if subscribe:
            # (a 3.1.1 client subscribes at qos=, an MQTT 5 one with options=)
            granted = dev.subscribe(subscribe, qos=2, options=mqtt.SubscribeOptions(
                qos=2, retainAsPublished=True))
            self.assertEqual(granted, [harness.broker_qos(2)])
        return dev

    def metric(self, name):
        resp = self.http("GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        return harness.prom_samples(resp.body.decode()).get((name, ""))

    def retain(self, dev, topic, payload):
        """Publishes a retained value, cleared again when the test ends."""
        dev.publish(topic, payload, qos=1, retain=True)
        self.addCleanup(dev.publish, topic, b"", 1, True)

    def site(self):
        site = StaticServer()
        self.addCleanup(site.cleanup)
        site.write("site.css", SITE_CSS)
        site.write("favicon.svg", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
                   '<circle cx="8" cy="8" r="7" fill="#2563eb"/></svg>')
        return site

    # 1. the dashboard -------------------------------------------------------------------

    def test_dashboard(self):
        # the dashboard connects with MQTT 5 (static/js/connection.js): shared in "auto", in
        # "dedicated" with a broker client of its own (over 3.1.1 in front of RabbitMQ)
        dev = self.device(subscribe="actuators/#")
        self.addCleanup(dev.publish, FORMS[0]["topic"], b"", 1, True)   # the form's retained one
        forms = [dict(f, user_props_text=user_props_text(f["user_props"])) for f in FORMS]
        drv = self.browser("dashboard", sync_topic="test/sync", forms=forms)

        # the page is connected and subscribed to "#" once it shows what is published now
        drv.wait_step("sync")
        drv.until_step("synced", lambda: dev.publish("test/sync", b"sync", 0))
        drv.reply("synced")

        drv.wait_step("device-publish")
        dev.publish("devices/d1/temp", b"21.5", qos=1)
        drv.reply("device-publish")

        drv.wait_step("more-topics")
        more = [("devices/d2/temp", "19.0"), ("devices/d1/humidity", "40"),
                ("home/kitchen/light", "on")]
        for topic, payload in more:
            dev.publish(topic, payload.encode(), qos=1)
        drv.reply("more-topics", published=more)

        drv.wait_step("chart-values")
        for v in (b"22.0", b"22.5", b"23.0"):
            dev.publish("devices/d1/temp", v, qos=1)
        drv.reply("chart-values")

        # Without MQTT 5 at the broker (RabbitMQ) a live message arrives with RETAIN 0 and no
        # properties: the bridge dropped them before the broker, and counts each such publish.
        v311_broker = harness.broker_lacks("mqtt5") is not None
        dropped = self.metric("mwb_broker_properties_dropped_total") if v311_broker else None
        for i, form in enumerate(FORMS):
            self.assertEqual(drv.wait_step("form-sent"), {"index": i})
            msg = dev.get()
            payload = form["payload"].encode("utf-8")
            self.assertEqual(msg.topic, form["topic"])
            self.assertEqual(msg.payload, payload)
            self.assertEqual(msg.qos, harness.broker_qos(form["qos"]))
            if v311_broker:
                self.assertFalse(msg.retain)
                if form["content_type"] or form["user_props"]:
                    dropped += 1
                self.assertEqual(self.metric("mwb_broker_properties_dropped_total"), dropped)
            else:
                self.assertEqual(bool(msg.retain), form["retain"])
                p = msg.properties
                self.assertEqual(getattr(p, "ContentType", ""), form["content_type"])
                self.assertEqual(getattr(p, "UserProperty", []), form["user_props"])
            if form["retain"]:
                # the broker keeps it: a new subscription to its topic gets it as retained
                kept = self.observer(V5, subscribe=form["topic"], qos=1).get()
                self.assertEqual((kept.topic, kept.payload, bool(kept.retain)),
                                 (form["topic"], payload, True))
            drv.reply("form-sent")
        dev.assert_no_message()

        data = drv.assert_ok()
        self.assertEqual(data["filters_after_reload"], ["#", "devices/+/temp"])
        self.assertEqual(data["filters_after_remove"], ["#"])
        self.assertLess(data["bg_dark"]["luminance"] + 0.3, data["bg_light"]["luminance"],
                        "dark theme is not darker: %r" % data)

    # 2. /view ---------------------------------------------------------------------------

    def test_view(self):
        dev = self.device()
        retained = [("devices/d1/temp", "21.5"), ("devices/d2/temp", "19.0")]
        for topic, payload in retained:
            self.retain(dev, topic, payload.encode())
        site = self.site()
        view_url = self.base + "/view?topic=devices/%23&title=Temps&unit=%C2%B0C"
        iframe = site.write("iframe.html", """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>framed view</title>
<link rel="icon" href="favicon.svg">
<link rel="stylesheet" href="site.css"></head>
<body><h1>A page framing /view</h1>
<iframe src="%s" width="640" height="320" title="Temps"></iframe>
</body></html>
""" % view_url.replace("&", "&amp;"))
        drv = self.browser("view", view_url=view_url, retained=retained, live_value="22.0",
                           iframe_page=iframe, retained_at_load=RETAINED_WILDCARDS)

        def values_shown(page):
            """Where the broker sends no retained messages for devices/# (RabbitMQ), @page
            ("view", "dark", "iframe") shows the retained values once they are published live."""
            if RETAINED_WILDCARDS:
                return
            drv.wait_step("await-values:" + page)
            drv.until_step("values-seen:" + page,
                           lambda: [dev.publish(topic, value.encode(), qos=1)
                                    for topic, value in retained])
            drv.reply("values-seen:" + page)

        values_shown("view")
        drv.wait_step("await-live")
        drv.until_step("live-seen", lambda: dev.publish("devices/d1/temp", b"22.0", 1))
        dev.publish("devices/d3/temp", b"18.25", qos=1)
        drv.reply("live-seen")
        values_shown("dark")
        values_shown("iframe")

        data = drv.assert_ok()
        self.assertIn("Temps", data["text"] + data["title"])
        self.assertIn("\u00b0C", data["text"])
        self.assertLess(data["bg_dark"]["luminance"] + 0.3, data["bg_light"]["luminance"],
                        "&theme=dark is not darker: %r" % data)

    # 3. <mqtt-live> ---------------------------------------------------------------------

    def test_embed(self):
        """Classic and module script on a second origin, and a strict CSP without inline
        styles: values, the JSON view, the log, the message event with the parsed message."""
        dev = self.device()
        site = self.site()
        port = self.api_port
        pages = {
            "classic": site.write("classic.html", embed_page(
                "mqtt-live: classic script", '<script src="%(bridge)s/embed.js"></script>', port)),
            "module": site.write("module.html", embed_page(
                "mqtt-live: module script",
                '<script type="module" src="%(bridge)s/embed.js"></script>', port)),
            "csp": site.write("csp.html", embed_page(
                "mqtt-live: strict CSP", '<script src="%(bridge)s/embed.js"></script>', port,
                head_extra='<meta http-equiv="Content-Security-Policy" content="default-src '
                           "'self' http://%s:%d; style-src 'self'; img-src 'self'; "
                           "object-src 'none'; base-uri 'none'\">" % (HOST, port))),
        }
        state = b'{"temp": 21.5, "hum": 40}'
        binary = b"\xff\x00\x01"
        drv = self.browser("embed", pages=pages, sync_topic="devices/sync/state")
        for label in pages:
            drv.wait_step("sync:" + label)
            drv.until_step("synced:" + label,
                           lambda: dev.publish("devices/sync/state", b'{"sync": true}', 0))
            drv.reply("synced:" + label)
            drv.wait_step("publish:" + label)
            dev.publish("devices/bin/raw", binary, qos=1)
            dev.publish("devices/d1/state", state, qos=1)
            drv.reply("publish:" + label)

        data = drv.assert_ok()
        for label in pages:
            page = data[label]
            self.assertEqual(sorted(s for _, s in page["states"]), ["open"] * len(page["ids"]),
                             "%s: %r" % (label, page["states"]))
            events = [e for e in page["events"] if e["detail"].get("topic") != "devices/sync/state"]
            by_id = {}
            for e in events:
                self.assertTrue(e["bubbles"] and e["composed"], "%s: %r" % (label, e))
                by_id.setdefault(e["id"], []).append(e["detail"])
            # every element got each matching message once, with the parsed message as detail
            self.assertEqual([d["topic"] for d in by_id.get("temp", [])],
                             ["devices/bin/raw", "devices/d1/state"], "%s: %r" % (label, by_id))
            self.assertEqual([d["topic"] for d in by_id.get("json", [])], ["devices/d1/state"],
                             "%s: %r" % (label, by_id))
            raw, st = by_id["temp"]
            self.assertEqual(base64.b64decode(raw["payload_base64"]), binary, label)
            self.assertNotIn("payload", raw, label)
            self.assertEqual(st["payload"].encode("utf-8"), state, label)
            for d in (raw, st):
                self.assertIn(d["qos"], (0, 1, 2), label)
                self.assertIs(d["retain"], False, label)
                self.assertIsInstance(d["ts"], (int, float), label)
            self.assertEqual(page["value_text"], "21.5", label)
        # without inline styles (strict CSP) the element looks the same
        self.assertEqual(data["csp"]["style"], data["classic"]["style"])
        self.assertEqual(data["csp"]["style_dark"], data["classic"]["style_dark"])

    def test_embed_resume(self):
        """The element's stream goes through a proxy; the proxy cuts it and holds the element's
        reconnection while messages are published: after it lets go, the element has every
        message once, in order, because it resumed with Last-Event-ID (and the retained value
        it got at the start is not fired again: where the broker sends retained messages for
        its wildcard filter resume/#)."""
        dev = self.device()
        self.retain(dev, "resume/state", b"on")
        site = self.site()
        proxy = TcpProxy(self.api_port)
        self.addCleanup(proxy.stop)
        per_phase = 5
        page = site.write("resume.html", embed_page(
            "mqtt-live: resume", '<script src="%(bridge)s/embed.js"></script>', self.api_port,
            elements='<mqtt-live id="resume" topic="resume/#" format="log" lines="20" '
                     'bridge="http://%s:%d" label="Through a proxy"></mqtt-live>'
                     % (HOST, proxy.port)))
        drv = self.browser("embed-resume", page=page, sync_topic="resume/sync",
                           per_phase=per_phase)
        drv.wait_step("sync")
        drv.until_step("synced", lambda: dev.publish("resume/sync", b"sync", 0))
        drv.reply("synced")

        drv.wait_step("before-cut")
        for i in range(per_phase):
            dev.publish("resume/m/%d" % i, str(i).encode(), qos=1)
        drv.reply("before-cut")

        drv.wait_step("cut")
        self.assertEqual(proxy.forwarding(), 1, "the element's stream goes through the proxy")
        heads_before = len(proxy.heads)
        proxy.hold()
        self.assertEqual(proxy.cut(), 1)
        drv.reply("cut")

        drv.wait_step("disconnected")
        # the proxy's threads see the cut within their select() round; under load that can
        # come after the page saw it
        deadline = time.monotonic() + TIMEOUT
        while proxy.forwarding() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(proxy.forwarding(), 0)
        for i in range(per_phase, 2 * per_phase):
            dev.publish("resume/m/%d" % i, str(i).encode(), qos=1)
        proxy.release()
        drv.reply("disconnected")

        data = drv.assert_ok()
        got = [(e["detail"]["topic"], e["detail"].get("payload")) for e in data["events"]
               if e["detail"].get("topic", "").startswith("resume/m/")]
        self.assertEqual(got, [("resume/m/%d" % i, str(i)) for i in range(2 * per_phase)])
        resumed = proxy.heads[heads_before:]
        self.assertTrue(resumed, "no reconnection through the proxy")
        self.assertTrue(any("last-event-id:" in h.lower() or "last_event_id=" in h
                            for h in resumed), "reconnected without Last-Event-ID: %r" % resumed)
        self.assertEqual(data["states"][-1], "open", data["states"])
        with self.subTest("the retained value, once"):
            harness.skip_unless_broker(self, "retained_wildcards",
                                       "the element's filter resume/# is a wildcard")
            retained = [e["detail"] for e in data["events"]
                        if e["detail"].get("topic") == "resume/state"]
            self.assertEqual([(d["payload"], d["retain"]) for d in retained], [("on", True)])

    # 4. headers (no browser) ------------------------------------------------------------

    def test_headers(self):
        files = [("/", "index.html", "text/html"),
                 ("/view", "view.html", "text/html"),
                 ("/view?topic=devices/%23&title=T", "view.html", "text/html"),
                 ("/embed.js", "embed.js", "text/javascript"),
                 ("/vendor/mqtt/mqtt.esm.js", "vendor/mqtt/mqtt.esm.js", "text/javascript"),
                 ("/vendor/uplot/uPlot.min.css", "vendor/uplot/uPlot.min.css", "text/css")]
        for path, name, mime in files:
            with self.subTest(path=path):
                with open(os.path.join(STATIC, name), "rb") as f:
                    body = f.read()
                resp = self.http("GET", path)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(resp.mime, mime, resp)
                self.assertEqual(resp.body, body, "%s is not %s byte for byte" % (path, name))
                etag = resp.header("ETag")
                self.assertTrue(etag, "no ETag: %r" % resp)
                again = self.http("GET", path, headers={"If-None-Match": etag})
                self.assertEqual(again.status, 304, again)
                self.assertEqual(again.body, b"", again)
                self.assertEqual(again.header("ETag"), etag, again)
                changed = self.http("GET", path, headers={"If-None-Match": '"not-it"'})
                self.assertEqual(changed.status, 200, changed)
                if mime == "text/html":
                    self.assert_csp(resp)

        foreign = "http://pages.example:8000"
        resp = self.http("GET", "/embed.js", headers={"Origin": foreign})
        self.assertEqual(resp.status, 200, resp)
        self.assertIn(resp.header("Access-Control-Allow-Origin"), (foreign, "*"), resp)

    def assert_csp(self, resp):
        """A Content-Security-Policy that lets no inline or eval'd script run."""
        csp = resp.header("Content-Security-Policy")
        self.assertTrue(csp, "no Content-Security-Policy: %r" % resp)
        directives = {}
        for part in csp.split(";"):
            words = part.split()
            if words:
                directives[words[0].lower()] = words[1:]
        script = directives.get("script-src", directives.get("default-src"))
        self.assertIsNotNone(script, "no script-src nor default-src in %r" % csp)
        for bad in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
            self.assertNotIn(bad, script, csp)
        self.assertIn("object-src", directives, csp)


if __name__ == "__main__":
    harness.main()
