"""The dashboard's share / embed card, its call-a-device form and the publish form's extras, in a
real browser (tests/browser/scenarios/dashboard-share.mjs) against Mosquitto and the real bridge.
The snippets are not just read, they are run:

- share: the card's curl publish line (through a shell) delivers the message byte for byte; its
  curl -N line prints the SSE event of a message the device publishes; its iframe's src answers
  200 with /view; its <mqtt-live> snippet, pasted into a page of a second origin, shows the
  retained and then a live value in Chromium; signed in, the lines carry $TOKEN (expanded by the
  shell into the Authorization header / access_token, seen by a capturing server) and never the
  token; the live preview shows the value; Copy puts the snippet on the clipboard;
- call: a device answering MQTT 5 requests (Response Topic + Correlation Data) → the reply and
  its content type show; nobody answering → "No reply within N ms";
- publish: "Copy as curl", run by a shell, delivers the same message as the form's own publish
  (payload, QoS, retain, content type, user properties); the last publishes are listed and one
  click puts the older back into the form, also after a reload.

Screenshots (light, dark, phone) go to tests/artifacts/dashboard-share/, which git ignores.
"""

import glob
import html
import json
import os
import queue
import re
import socket
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit

import harness
from harness import HOST, TIMEOUT, V5, ApiCase, BrowserDriver, PacketTypes, StaticServer, mqtt

ARTIFACTS = os.path.join(harness.REPO_ROOT, "tests", "artifacts", "dashboard-share")
BASH = "/bin/bash"

# Quotes, a dollar, a backslash and non-ASCII: what a shell line gets wrong first.
SHARE_TOPIC = "share/lamp 1/state"
SHARE_PAYLOAD = "it's \"on\" $HOME \\ \u2713"
LIVE_PAYLOAD = "live \u2713 2"

FORMS = [
    dict(topic="share/pub/d1", payload='{\n  "target": 22.5,\n  "note": "it\'s h\u00e9llo $x"\n}',
         qos=1, retain=False, content_type="application/json",
         user_props=[("source", "dashboard"), ("unit", "\u00b0C"), ("source", "again")]),
    dict(topic="share/pub/d2", payload="eco mode 'on'", qos=2, retain=True,
         content_type="text/plain", user_props=[]),
]


def user_props_text(pairs):
    return "\n".join("%s=%s" % kv for kv in pairs)


def grouped(pairs):
    """The user properties as MQTT.js sends the form's {k: [v, ...]}: grouped by key, in the
    order each key first appears."""
    order, values = [], {}
    for k, v in pairs:
        if k not in values:
            order.append(k)
            values[k] = []
        values[k].append(v)
    return [(k, v) for k in order for v in values[k]]


def shell(line, timeout=TIMEOUT, env=None):
    """Runs @line with bash as a user would paste it: (exit code, stdout, stderr)."""
    harness.require_tool(harness.CURL)
    p = subprocess.run([BASH, "-c", line], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout + 5,
                       env=dict(os.environ, **(env or {})))
    return p.returncode, p.stdout, p.stderr


class HeadCatcher:
    """A one-shot HTTP server on 127.0.0.1 that records the request heads it gets and answers
    204: where a snippet's line goes to show what the shell expanded it to."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(4)
        self.sock.settimeout(TIMEOUT)
        self.origin = "http://%s:%d" % (HOST, self.sock.getsockname()[1])
        self.heads = queue.Queue()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                self.heads.put(buf.split(b"\r\n\r\n")[0].decode("utf-8", "replace"))
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    def close(self):
        self.sock.close()


class Responder:
    """An MQTT 5 device that answers every request on @topic on its Response Topic with its
    Correlation Data, @payload and @content_type (README "Request/response")."""

    def __init__(self, case, topic, payload, content_type):
        self.errors = []
        self.requests = []
        self.c = case.observer(V5, subscribe=topic, qos=1)
        self.stop = threading.Event()
        self.payload, self.content_type = payload, content_type
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        case.addCleanup(self.close)

    def run(self):
        while not self.stop.is_set():
            try:
                m = self.c.messages.get(timeout=0.05)
            except queue.Empty:
                continue
            self.requests.append(m)
            try:
                reply = harness.props(PacketTypes.PUBLISH,
                                      CorrelationData=m.properties.CorrelationData,
                                      ContentType=self.content_type)
                self.c.c.publish(m.properties.ResponseTopic, self.payload, 1, properties=reply)
            except Exception as e:  # reported by the test, not lost on this thread
                self.errors.append(repr(e))

    def close(self):
        self.stop.set()
        self.thread.join(5)


class DashboardShareTest(ApiCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for old in glob.glob(os.path.join(ARTIFACTS, "*.png")):
            os.remove(old)

    @property
    def base(self):
        return "http://%s:%d" % (HOST, self.api_port)

    def browser(self, part, **config):
        drv = BrowserDriver("dashboard-share", dict(config, base=self.base, part=part,
                                                    sync_topic="test/sync", artifacts=ARTIFACTS),
                            timeout=120.0)
        self.addCleanup(drv.cleanup)
        return drv

    def synced(self, drv, dev):
        drv.wait_step("sync")
        drv.until_step("synced", lambda: dev.publish("test/sync", b"sync", 0))
        drv.reply("synced")

    def device(self, subscribe):
        """The device on the broker: everything under @subscribe from now on (no retained
        messages), with the retain flag as published."""
        dev = self.observer(V5)
        dev.subscribe(subscribe, options=mqtt.SubscribeOptions(qos=2, retainAsPublished=True,
                                                               retainHandling=2))
        return dev

    # share / embed ----------------------------------------------------------------------

    def test_share_snippets(self):
        dev = self.device("share/#")
        dev.publish(SHARE_TOPIC, SHARE_PAYLOAD.encode(), qos=1, retain=True)
        self.addCleanup(dev.publish, SHARE_TOPIC, b"", 1, True)
        self.assertEqual(dev.get().payload, SHARE_PAYLOAD.encode())
        drv = self.browser("share", topic=SHARE_TOPIC, payload=SHARE_PAYLOAD,
                           live_payload=LIVE_PAYLOAD)
        self.synced(drv, dev)
        snippets = drv.wait_step("snippets", timeout=60)
        plain, subtree, signed = snippets["plain"], snippets["subtree"], snippets["signed_in"]

        # curl publish: the device gets the last payload, byte for byte
        self.assertTrue(plain["pub"].startswith("curl "), plain["pub"])
        rc, out, err = shell(plain["pub"])
        self.assertEqual(rc, 0, err)
        answer = json.loads(out)
        self.assertEqual((answer["ok"], answer["topic"], answer["qos"]), (True, SHARE_TOPIC, 0))
        msg = dev.get()
        self.assertEqual((msg.topic, msg.payload, bool(msg.retain)),
                         (SHARE_TOPIC, SHARE_PAYLOAD.encode(), False))
        dev.assert_no_message()

        # curl -N: the SSE event of what the device publishes, for the topic and its subtree
        for label, line in (("plain", plain["stream"]), ("subtree", subtree["stream"])):
            with self.subTest(stream=label):
                self.assert_streams(line, dev, SHARE_TOPIC)
        self.assertIn("/%23", subtree["stream"])

        # the iframe: its src is /view, and names the topic (or the subtree)
        for label, snippet, want in (("plain", plain["iframe"], SHARE_TOPIC),
                                     ("subtree", subtree["iframe"], SHARE_TOPIC + "/#")):
            with self.subTest(iframe=label):
                src = html.unescape(re.search(r'<iframe src="([^"]*)"', snippet).group(1))
                self.assertTrue(src.startswith(self.base + "/view?"), src)
                self.assertEqual(parse_qs(urlsplit(src).query)["topic"], [want])
                with open(os.path.join(harness.REPO_ROOT, "static", "view.html"), "rb") as f:
                    view = f.read()
                resp = self.http("GET", src[len(self.base):])
                self.assertEqual((resp.status, resp.body), (200, view), resp)

        # signed in: the shell expands $TOKEN where the bridge reads a token
        catcher = HeadCatcher()
        self.addCleanup(catcher.close)
        token = "tok-%d" % os.getpid()
        for key, want in (("pub", "authorization: bearer " + token),
                          ("stream", "access_token=" + token)):
            with self.subTest(signed_in=key):
                line = signed[key].replace(self.base, catcher.origin)
                self.assertNotEqual(line, signed[key], "no bridge address in %r" % signed[key])
                rc, _, err = shell(line.replace("curl ", "curl --max-time 5 ", 1),
                                   env={"TOKEN": token})
                self.assertEqual(rc, 0, err)
                self.assertIn(want, catcher.heads.get(timeout=TIMEOUT).lower())
        for key in ("embed", "iframe"):
            self.assertIn("$TOKEN", signed[key])
        self.assertIn('access-token="$TOKEN"', signed["embed"])
        self.assertIn("access_token=$TOKEN", html.unescape(signed["iframe"]))

        # <mqtt-live>, pasted into a page of another origin
        site = StaticServer()
        self.addCleanup(site.cleanup)
        page = site.write("embed.html", """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pasted snippets</title>
<link rel="icon" href="data:,"></head>
<body><h1>Pasted from the dashboard</h1>
<div id="plain">%s</div>
<div id="subtree">%s</div>
</body></html>
""" % (plain["embed"], subtree["embed"]))
        drv.reply("snippets", embed_page=page)
        drv.wait_step("embed-open")
        drv.until_step("embed-live",
                       lambda: dev.publish(SHARE_TOPIC, LIVE_PAYLOAD.encode(), qos=1))
        drv.reply("embed-live")
        data = drv.assert_ok()
        self.assertLess(data["bg_dark"]["luminance"] + 0.3, data["bg_light"]["luminance"],
                        "dark theme is not darker: %r" % data)

    def assert_streams(self, line, dev, topic):
        """Runs the curl -N @line (bounded) and publishes until its output has the event."""
        self.assertTrue(line.startswith("curl -N "), line)
        proc = subprocess.Popen([BASH, "-c", line.replace("curl ", "curl --max-time 8 ", 1)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        def stop():
            harness.stop_process(proc)
            proc.stdout.close()
            proc.stderr.close()
        self.addCleanup(stop)
        events = queue.Queue()

        def read():
            for raw in proc.stdout:
                if raw.startswith(b"data: "):
                    events.put(json.loads(raw[6:]))
        threading.Thread(target=read, daemon=True).start()
        mark = "stream-%d" % time.monotonic_ns()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            dev.publish(topic, mark.encode(), qos=1)
            try:
                while True:
                    ev = events.get(timeout=0.3)
                    if ev.get("payload") == mark:
                        self.assertEqual(ev["topic"], topic)
                        self.assertIs(ev["retain"], False)
                        return
            except queue.Empty:
                continue
        self.fail("%r printed no event for %r (exit %r, stderr %r)"
                  % (line, mark, proc.poll(), proc.stderr.read1() if proc.poll() is not None else b""))

    # call a device ----------------------------------------------------------------------

    def test_call_device(self):
        dev = self.observer(V5)
        answered = "share/lamp/2/get"
        silent = "share/lamp/3/get"
        reply = '{"on": true, "name": "l\u00e4mp"}'
        r = Responder(self, answered, reply.encode(), "application/json")
        drv = self.browser("call", answered_topic=answered, silent_topic=silent,
                           request_body="status?", reply_payload='{\n  "on": true,\n  "name": "l\u00e4mp"\n}',
                           reply_content_type="application/json")
        self.synced(drv, dev)
        drv.assert_ok()
        self.assertEqual(r.errors, [])
        self.assertEqual([(m.topic, m.payload) for m in r.requests], [(answered, b"status?")])
        # the body went as bytes: no content type of the browser's on the request
        self.assertIsNone(getattr(r.requests[0].properties, "ContentType", None))

    # publish form: Copy as curl, history ------------------------------------------------

    def test_publish_curl_and_history(self):
        dev = self.device("share/pub/#")
        for f in FORMS:
            if f["retain"]:
                self.addCleanup(dev.publish, f["topic"], b"", 1, True)
        forms = [dict(f, user_props_text=user_props_text(f["user_props"])) for f in FORMS]
        drv = self.browser("publish", forms=forms)
        self.synced(drv, dev)
        for i, form in enumerate(FORMS):
            step = drv.wait_step("form-sent", timeout=30)
            self.assertEqual(step["index"], i)
            by_form = dev.get()
            rc, out, err = shell(step["curl"])
            self.assertEqual(rc, 0, err)
            self.assertTrue(json.loads(out)["ok"], out)
            by_curl = dev.get()
            for msg, how in ((by_form, "form"), (by_curl, "curl")):
                with self.subTest(form=i, by=how):
                    p = msg.properties
                    self.assertEqual(
                        (msg.topic, msg.payload, msg.qos, bool(msg.retain),
                         getattr(p, "ContentType", ""), getattr(p, "UserProperty", [])),
                        (form["topic"], form["payload"].encode(), form["qos"], form["retain"],
                         form["content_type"], grouped(form["user_props"])))
            drv.reply("form-sent")
        dev.assert_no_message()
        data = drv.assert_ok()
        newest_first = [f["topic"] for f in reversed(FORMS)]
        self.assertEqual(data["history"], newest_first)
        self.assertEqual(data["history_after_reload"], newest_first)
        self.assertIn("/api/v1/publish' ", data["curl"][0] + " ")   # user properties: JSON body
        self.assertIn("/api/v1/publish/share/pub/d2?qos=2&retain=true", data["curl"][1])


if __name__ == "__main__":
    harness.main()
