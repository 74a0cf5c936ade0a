"""The dashboard's topic tree in a real browser (tests/browser/scenarios/dashboard-tree.mjs, Debian's
headless Chromium) against a real broker and the real bridge:

- every level shows the message count of its whole subtree (the sums of what the device published)
  and a rate; the header counts exactly the messages received, as the log does, in one flush;
- the "retained" badge is on the topics whose last message came retained, only;
- the filter box: a substring (any case) or an MQTT filter (+, #) shows exactly the matching
  topics and their ancestors, with "N of M topics"; new topics are matched as they come; Escape
  clears it;
- the tree (role=tree) and the log work by keyboard;
- "Clear retained…" on a subtree asks with the exact count and the topics, then clears them: the
  broker has no retained message there afterwards (REST listing and a fresh MQTT subscription),
  while topics outside keep theirs; cancelled on a topic, it clears nothing; refused by the
  token (403), it says so; over limits.requests_per_minute it waits out each 429 and clears all;
- ingest() writes no DOM, flush() only shown rows; screenshots (desktop and phone, light and dark)
  go to tests/artifacts/dashboard-tree/.

The driver fails on any page error (uncaught exception, console.error, CSP violation).
"""

import glob
import hashlib
import os

import harness
from harness import HOST, V5, ApiCase, BrowserDriver

ARTIFACTS = os.path.join(harness.REPO_ROOT, "tests", "artifacts", "dashboard-tree")

# Published retained before the page opens: they come with its subscription, flagged retained.
RETAINED = [("store/a/1", "r1"), ("store/a/2", "r2"), ("store/b/c", "r3"), ("keep/x", "k1")]
# Published live, in this order, once the page is subscribed: 7 messages.
PLAN = [("devices/d1/temp", "21.0"), ("devices/d1/temp", "21.5"), ("devices/d1/hum", "40"),
        ("devices/d2/temp", "19.0"), ("devices/d1/temp", "22.0"), ("devices/d2/tempo", "allegro"),
        ("home/Temp", "18.5")]
FILTERS = [
    ("TEMP", ["devices/d1/temp", "devices/d2/temp", "devices/d2/tempo", "home/Temp"]),
    ("devices/+/temp", ["devices/d1/temp", "devices/d2/temp"]),
    ("store/#", ["store/a/1", "store/a/2", "store/b/c"]),
]
# Published while "devices/+/temp" filters the tree: [topic, payload, matches]
NEW_WHILE_FILTERED = ("devices/+/temp", [("devices/d9/hum", "55", False),
                                         ("devices/d9/temp", "17.0", True)])
SYNC = "test/sync"
BARRIER = "test/barrier"
CLEAR_PATH = "store"
KEEP = "keep/x"


def subtree_counts(messages):
    """{level path: messages in its subtree} for every level of @messages' topics."""
    counts = {}
    for topic, _ in messages:
        levels = topic.split("/")
        for i in range(len(levels)):
            path = "/".join(levels[:i + 1])
            counts[path] = counts.get(path, 0) + 1
    return counts


def setUpModule():
    for old in glob.glob(os.path.join(ARTIFACTS, "*.png")):
        os.remove(old)


class DashboardTreeTest(ApiCase):

    @property
    def base(self):
        return "http://%s:%d" % (HOST, self.api_port)

    def retained_topics(self, filter):
        resp = self.http("GET", "/api/v1/topics?filter=%s&limit=10000" % harness.quote_query(filter),
                         headers={"Accept": "application/json"})
        self.assertEqual(resp.status, 200, resp)
        body = resp.json()
        self.assertFalse(body["truncated"], body)
        return sorted(m["topic"] for m in body["messages"])

    def test_tree(self):
        dev = self.observer(V5, client_id=self.uid("device"))
        for topic, payload in RETAINED:
            dev.publish(topic, payload.encode(), qos=1, retain=True)
            self.addCleanup(dev.publish, topic, b"", 1, True)
        self.assertEqual(self.retained_topics("#"), sorted(t for t, _ in RETAINED))

        last = dict(RETAINED + PLAN)
        counts = subtree_counts(RETAINED + PLAN)
        store = sorted(t for t, _ in RETAINED if t.startswith(CLEAR_PATH + "/"))
        config = dict(
            base=self.base, artifacts=ARTIFACTS, sync_topic=SYNC, barrier_topic=BARRIER,
            retained=RETAINED, plan=PLAN, values=sorted(last.items()),
            expected_counts=counts, filters=FILTERS, new_while_filtered=NEW_WHILE_FILTERED,
            keyboard=dict(home="devices", right="devices/d1", right2="devices/d1/hum",
                          down="devices/d1/temp", end=SYNC, up=BARRIER),
            keep_topic=KEEP, clear_path=CLEAR_PATH,
            cleared_text="Cleared %d retained topics" % len(store))
        drv = BrowserDriver("dashboard-tree", config, timeout=120.0)
        self.addCleanup(drv.cleanup)

        # the page is subscribed to "#" once it shows what is published now; the barrier, published
        # after every sync message, tells it that no more are on their way
        drv.wait_step("sync")
        drv.until_step("synced", lambda: dev.publish(SYNC, b"sync", 1))
        dev.publish(BARRIER, b"barrier", qos=1)
        drv.reply("synced")

        drv.wait_step("publish")
        for topic, payload in PLAN:
            dev.publish(topic, payload.encode(), qos=1)
        drv.reply("publish")

        drv.wait_step("filter-new")
        for topic, payload, _ in NEW_WHILE_FILTERED[1]:
            dev.publish(topic, payload.encode(), qos=1)
        drv.reply("filter-new")

        # the confirmation names the exact count and the topics
        dialog = drv.wait_step("dialog", timeout=60.0)
        self.assertEqual(dialog["count"], str(len(store)), dialog)
        self.assertEqual(sorted(dialog["list"]), store, dialog)
        self.assertIn("%d topics" % len(store), dialog["text"], dialog)
        self.assertIn("“%s”" % CLEAR_PATH, dialog["text"], dialog)
        self.assertEqual(dialog["confirm"], "Clear %d topics" % len(store), dialog)
        self.assertEqual(dialog["labelled"], "Clear retained messages", dialog)
        self.assertEqual(dialog["focus"], "clear-cancel", "the safe choice has the focus: %r" % dialog)
        drv.reply("dialog")

        # cleared at the broker: no retained message under store/ (REST and a fresh subscription),
        # keep/x (outside it, and only cancelled) keeps its value
        drv.wait_step("cleared", timeout=30.0)
        self.assertEqual(self.retained_topics(CLEAR_PATH + "/#"), [])
        self.assertEqual(self.retained_topics("keep/#"), [KEEP])
        fresh = self.observer(V5, subscribe=CLEAR_PATH + "/#", qos=1)
        fresh.assert_no_message()
        kept = self.observer(V5, subscribe="keep/#", qos=1).get()
        self.assertEqual((kept.topic, kept.payload, bool(kept.retain)), (KEEP, b"k1", True))
        drv.reply("cleared")

        data = drv.assert_ok()

        # the header: exactly the messages published meanwhile, the same number as the log rows
        self.assertEqual(data["header_after"] - data["header_before"], len(PLAN), data)
        self.assertEqual(data["header_after"], data["log_after"], data)
        self.assertEqual(data["header_before"], data["log_before"], data)
        self.assertEqual(data["header_label"], "%d messages" % data["header_after"])
        topics = len(set(t for t, _ in RETAINED + PLAN)) + 2          # + sync and barrier
        self.assertEqual(data["topics_label"], "%d topics" % topics)

        # subtree counts are the sums of what was published
        self.assertEqual({p: int(c.replace(",", "")) for p, c in data["counts"].items()}, counts)
        self.assertRegex(data["rate_devices"], r"^\d+(\.\d)?k?/s$")

        # the retained badge on the retained topics only
        self.assertEqual(data["retained_badges"], sorted(t for t, _ in RETAINED))

        for text, expected in FILTERS:
            self.assertEqual(data["filters"][text], sorted(expected), text)
        self.assertEqual(data["new_while_filtered"],
                         {t: m for t, _, m in NEW_WHILE_FILTERED[1]})

        # keyboard: each key went where expected; one row in the tab order; ARIA of a treeitem
        self.assertEqual([k for k, _ in data["keys"][:6]],
                         ["Home", "ArrowRight", "ArrowRight", "ArrowDown", "End", "ArrowUp"])
        self.assertEqual(data["tabindex0"], ["devices/d1/temp"])
        self.assertEqual(data["aria"], {"role": "treeitem", "level": "3", "posinset": "2",
                                        "setsize": "2", "selected": "true", "tree": "tree"})
        self.assertEqual(data["log_keys"][1], "devices/d9/hum", data["log_keys"])
        self.assertEqual(data["cancel_list"], [KEEP])

        # ingest() touches no DOM; flush() writes only the rows in or near the scroll box (the
        # page checked they are exactly those): a few dozen of the 1,111
        self.assertEqual(data["perf"]["ingest_mutations"], 0, data["perf"])
        self.assertIn("perf", data["perf"]["written"])
        self.assertLess(len(data["perf"]["written"]), 60, data["perf"])

        shots = drv.finish()["screenshots"]
        for name in ("tree-desktop-light", "tree-desktop-dark", "tree-phone-light", "tree-phone-dark"):
            self.assertIn(os.path.join(ARTIFACTS, name + ".png"), shots)


READER = "reader-secret-%s" % os.urandom(8).hex()


class DashboardTreeRefusedTest(ApiCase):
    """A token that may read retained values but not publish: the clear is refused by the bridge
    (403), the page says so, and the value stays."""

    bridge_config = {"auth": {"mode": "tokens", "tokens": [
        {"name": "reader", "sha256": hashlib.sha256(READER.encode()).hexdigest(),
         "publish": [], "subscribe": ["#"]}]}}

    def test_clear_refused(self):
        dev = self.observer(V5, client_id=self.uid("device"))
        topic = "locked/a"
        dev.publish(topic, b"v", qos=1, retain=True)
        self.addCleanup(dev.publish, topic, b"", 1, True)
        drv = BrowserDriver("dashboard-tree", dict(
            base="http://%s:%d" % (HOST, self.api_port), artifacts=ARTIFACTS, mode="refused",
            token=READER, topic=topic))
        self.addCleanup(drv.cleanup)
        data = drv.assert_ok()
        self.assertEqual(data["status"], "Not allowed by your token")
        kept = self.observer(V5, subscribe=topic, qos=1).get()
        self.assertEqual((kept.topic, kept.payload, bool(kept.retain)), (topic, b"v", True))


class DashboardTreeRateLimitTest(ApiCase):
    """More topics to clear than limits.requests_per_minute allows at once: the page waits out
    each 429 (its Retry-After) and tries again, so every topic is cleared and the status says so."""

    PER_MINUTE = 120   # a bucket of 120 requests, 2 more a second
    TOPICS = 130       # so the last few DELETEs are refused once or more

    bridge_config = {"limits": {"requests_per_minute": PER_MINUTE}}

    def test_clear_waits_out_429(self):
        dev = self.observer(V5, client_id=self.uid("device"))
        topics = ["many/%03d" % i for i in range(self.TOPICS)]
        for topic in topics:
            dev.publish(topic, b"v", qos=1, retain=True)
        drv = BrowserDriver("dashboard-tree", dict(
            base="http://%s:%d" % (HOST, self.api_port), artifacts=ARTIFACTS, mode="rate",
            topics=topics, clear_path="many",
            cleared_text="Cleared %d retained topics" % len(topics)), timeout=120.0)
        self.addCleanup(drv.cleanup)
        data = drv.assert_ok()
        self.assertGreater(data["refusals"], 0, "the test never hit the rate limit: %r" % data)
        self.observer(V5, subscribe="many/#", qos=1).assert_no_message()


if __name__ == "__main__":
    harness.main()
