// tests/browser/scenarios/dashboard-tree.mjs — the dashboard's topic tree (tests/integration/
// test_dashboard_tree.py): subtree counts and rates, the header's totals, the retained badge, the
// filter box (text and MQTT filters, new topics while filtering, Escape), keyboard use of the tree
// and the log, "Clear retained…" with its confirmation, that ingest() writes no DOM, and how it
// looks (desktop and phone, light and dark).

import {
  DESKTOP, PHONE, T, check, expectAttr, expectNoSideScroll, expectPresent, expectText, goto, mark,
  expectFailedFetch, newPage, pageErrors, q, shot, step, switchTheme, until, violations, cfg,
} from "../lib.mjs";

const row = (path) => `#tree .tree-row[data-path=${q(path)}]`;
const num = (text) => Number(String(text).replace(/[^\d]/g, ""));

// The topics (data-topic rows) and all levels (data-path rows) that are shown now.
const shownRows = (page) => page.evaluate(() => {
  const shown = (el) => el.offsetParent !== null;
  const rows = [...document.querySelectorAll("#tree .tree-row")].filter(shown);
  return {
    topics: rows.filter((r) => r.dataset.topic !== undefined).map((r) => r.dataset.topic).sort(),
    paths: rows.map((r) => r.dataset.path).sort(),
  };
});

const prefixes = (topics) => [...new Set(topics.flatMap((t) => {
  const l = t.split("/");
  return l.map((_, i) => l.slice(0, i + 1).join("/"));
}))].sort();

async function activePath(page) {
  return page.evaluate(() => document.activeElement?.closest?.(".tree-row")?.dataset.path ?? null);
}

async function press(page, key, expectPath, log) {
  await page.keyboard.press(key);
  await until(page, `after ${key} the focus is on the row ${expectPath}`,
    (p) => document.activeElement?.closest?.(".tree-row")?.dataset.path === p, expectPath,
    () => document.activeElement?.closest?.(".tree-row")?.dataset.path ?? document.activeElement?.outerHTML?.slice(0, 80));
  log.push([key, await activePath(page)]);
}

// Signed in with a token that may read but not publish: "Clear retained…" says so, clears nothing.
async function refused(context) {
  const page = await newPage(context, "dashboard (tree, refused)");
  await page.setViewportSize(DESKTOP);
  await goto(page, cfg.base + "/");
  await expectPresent(page, "#signin[open]");
  await page.fill("#signin-token", cfg.token);
  await page.click("#signin-submit");
  await expectAttr(page, "#conn-state", "data-state", "connected");
  await expectPresent(page, `#tree [data-topic=${q(cfg.topic)}]`);
  await page.click(`#tree .tree-row[data-topic=${q(cfg.topic)}] .tree-clear`);
  await expectAttr(page, "#tree-clear-dialog", "data-count", "1");
  await page.click("#tree-clear-dialog .clear-confirm");
  await expectAttr(page, "#tree-status", "data-state", "error");
  const status = await page.$eval("#tree-status .tree-status-text", (el) => el.textContent);
  await expectFailedFetch(403, `/api/v1/topics/${cfg.topic}`);
  await shot(page, "tree-clear-refused-light", false);
  await violations(page, "dashboard (tree, refused)");
  return { status };
}

// Over limits.requests_per_minute: the clear waits out each 429 (Retry-After) and clears them all.
async function rateLimited(context) {
  const page = await newPage(context, "dashboard (tree, rate limited)");
  await page.setViewportSize(DESKTOP);
  await goto(page, cfg.base + "/");
  await expectAttr(page, "#conn-state", "data-state", "connected");
  for (const topic of cfg.topics) await expectPresent(page, `#tree [data-topic=${q(topic)}]`);
  await page.click(`${row(cfg.clear_path)} .tree-clear`);
  await expectAttr(page, "#tree-clear-dialog", "data-count", String(cfg.topics.length));
  await page.click("#tree-clear-dialog .clear-confirm");
  await until(page, `the status says ${q(cfg.cleared_text)}`,
    (text) => document.querySelector("#tree-status .tree-status-text").textContent === text,
    cfg.cleared_text, () => document.querySelector("#tree-status .tree-status-text").textContent, 60000);
  await expectAttr(page, "#tree-status", "data-state", "ok");
  // The refused DELETEs are in the page's log (the browser logs every failed fetch): count them.
  const refusals = pageErrors.filter((e) => e.includes("status of 429"));
  for (const e of refusals) pageErrors.splice(pageErrors.indexOf(e), 1);
  await violations(page, "dashboard (tree, rate limited)");
  return { refusals: refusals.length };
}

export default async (context) => {
  if (cfg.mode === "refused") return refused(context);
  if (cfg.mode === "rate") return rateLimited(context);
  const page = await newPage(context, "dashboard (tree)");
  const data = {};
  await page.setViewportSize({ width: 1280, height: 1300 });
  await page.emulateMedia({ colorScheme: "light" });
  await goto(page, cfg.base + "/");
  await expectAttr(page, "#conn-state", "data-state", "connected");
  await expectPresent(page, '#subs li[data-filter="#"]');

  // The retained values come with the subscription, flagged retained.
  for (const [topic] of cfg.retained) await expectPresent(page, `#tree [data-topic=${q(topic)}]`);
  mark("sync");
  await expectPresent(page, `#tree [data-topic=${q(cfg.sync_topic)}]`);
  await step("synced");
  // Every sync message was published before the barrier: once it shows, nothing else is on its way.
  await expectPresent(page, `#tree [data-topic=${q(cfg.barrier_topic)}]`);
  const logRows = () => page.$$eval("#log li", (els) => els.length);
  const header = () => page.$eval("#stat-messages", (b) => b.textContent);
  await until(page, "the header counts what the log holds",
    () => Number(document.querySelector("#stat-messages").textContent.replace(/\D/g, "")) === document.querySelectorAll("#log li").length,
    null, () => [document.querySelector("#stat-messages").textContent, document.querySelectorAll("#log li").length]);
  data.header_before = num(await header());
  data.log_before = await logRows();

  // A device publishes cfg.plan: the header counts exactly those, with the log, in one flush.
  await step("publish", { header_before: data.header_before });
  const after = data.header_before + cfg.plan.length;
  // The header is written in the same flush as the log: read both the moment the log has them all.
  data.at_log_flush = await (await page.waitForFunction((n) => {
    const rows = document.querySelectorAll("#log li").length;
    return rows === n && { rows, header: document.querySelector("#stat-messages").textContent };
  }, data.log_before + cfg.plan.length, { timeout: T, polling: "raf" })).jsonValue();
  check(data.at_log_flush.header === after.toLocaleString("en-US"),
    `when the log showed ${data.at_log_flush.rows} messages the header said ${q(data.at_log_flush.header)}, expected ${after}`);
  await expectText(page, "#stat-messages", after.toLocaleString("en-US"));
  data.header_after = num(await header());
  data.log_after = await logRows();
  data.header_label = await page.$eval("#stat-messages", (b) => b.parentElement.textContent.replace(/\s+/g, " ").trim());

  // Every level shows the count of its whole subtree.
  for (const [path, n] of Object.entries(cfg.expected_counts)) {
    await page.$eval(row(path), (el) => el.scrollIntoView({ block: "nearest" }));
    await expectText(page, `${row(path)} .count`, n.toLocaleString("en-US"));
  }
  data.counts = await page.evaluate((paths) => Object.fromEntries(paths.map((p) =>
    [p, document.querySelector(`#tree .tree-row[data-path="${CSS.escape(p)}"] .count`)?.textContent ?? null])),
  Object.keys(cfg.expected_counts));
  // ... and its rate, from the last few seconds (computed once a second).
  await until(page, "the devices subtree shows a rate above 0/s",
    () => /^[\d.]+k?\/s$/.test(document.querySelector('#tree .tree-row[data-path="devices"] .rate')?.textContent ?? "") &&
      document.querySelector('#tree .tree-row[data-path="devices"] .rate').textContent !== "0/s",
    null, () => document.querySelector('#tree .tree-row[data-path="devices"] .rate')?.textContent);
  data.rate_devices = await page.$eval(`${row("devices")} .rate`, (el) => el.textContent);

  // The retained badge: on topics whose last message came retained, only.
  for (const [topic, payload] of cfg.values)             // each topic's last payload
    await expectText(page, `#tree [data-topic=${q(topic)}] .value`, payload);
  data.retained_badges = await page.$$eval("#tree .tree-row[data-topic]", (rows) =>
    rows.filter((r) => !r.querySelector(".tree-retained").hidden).map((r) => r.dataset.topic).sort());
  // The topics count is written with the tree, which is written a frame apart from the log: read
  // it once every topic shows its last value.
  data.topics_label = await page.$eval("#stat-topics", (b) => b.parentElement.textContent.replace(/\s+/g, " ").trim());

  // How it looks with data: desktop and phone, light and dark.
  await page.setViewportSize(DESKTOP);
  await page.waitForTimeout(1100);          // once-a-second figures (ages, rates) catch up
  await shot(page, "tree-desktop-light");
  await switchTheme(page, "dark");
  await shot(page, "tree-desktop-dark");
  await page.setViewportSize(PHONE);
  await expectNoSideScroll(page, "dashboard at 390x844 (dark)");
  await page.$eval(".tree-card", (el) => el.scrollIntoView({ block: "start" }));
  await shot(page, "tree-phone-dark", false);
  await switchTheme(page, "light");
  await expectNoSideScroll(page, "dashboard at 390x844 (light)");
  await shot(page, "tree-phone-light", false);
  await page.setViewportSize({ width: 1280, height: 1300 });

  // The filter: text is a case-insensitive substring, + and # make it an MQTT filter. The matches
  // and their ancestors are shown, nothing else; the note says how many.
  data.filters = {};
  const total = await page.$$eval("#tree [data-topic]", (els) => els.length);
  for (const [text, expected] of cfg.filters) {
    await page.fill("#tree-filter", text);
    await until(page, `filter ${q(text)} shows exactly ${q(expected)}`,
      (exp) => {
        const got = [...document.querySelectorAll("#tree .tree-row[data-topic]")]
          .filter((r) => r.offsetParent !== null).map((r) => r.dataset.topic).sort();
        return JSON.stringify(got) === JSON.stringify(exp);
      }, [...expected].sort(),
      () => [...document.querySelectorAll("#tree .tree-row[data-topic]")].filter((r) => r.offsetParent !== null).map((r) => r.dataset.topic));
    const got = await shownRows(page);
    check(q(got.paths) === q(prefixes(expected)),
      `filter ${q(text)}: the levels shown are ${q(got.paths)}, expected the matches and their ancestors ${q(prefixes(expected))}`);
    await expectText(page, "#tree-note", `${expected.length} of ${total} topics`);
    data.filters[text] = got.topics;
  }

  // While filtering, new topics are matched as they come: one that matches shows, one that does not
  // stays hidden.
  const [newFilter, newTopics] = cfg.new_while_filtered;   // [filter, [[topic, payload, matches]]]
  await page.fill("#tree-filter", newFilter);
  await expectText(page, "#tree-note", `${cfg.filters.find(([f]) => f === newFilter)[1].length} of ${total} topics`);
  await step("filter-new");
  // (published in order: once the last shows, all are in the tree; a hidden row is not written)
  for (const [topic, payload, matches] of newTopics) {
    if (matches) await expectText(page, `#tree [data-topic=${q(topic)}] .value`, payload);
    else await expectPresent(page, `#tree [data-topic=${q(topic)}]`);
  }
  data.new_while_filtered = await page.evaluate((topics) => Object.fromEntries(topics.map(([t]) =>
    [t, document.querySelector(`#tree [data-topic="${CSS.escape(t)}"]`).offsetParent !== null])), newTopics);
  const matching = cfg.filters.find(([f]) => f === newFilter)[1].length + newTopics.filter(([, , m]) => m).length;
  await expectText(page, "#tree-note", `${matching} of ${total + newTopics.length} topics`);
  await shot(page, "tree-filtered-light");

  // Escape in the box clears the filter: everything is back.
  await page.focus("#tree-filter");
  await page.keyboard.press("Escape");
  await until(page, "after Escape the filter box is empty and every topic shows",
    (n) => document.querySelector("#tree-filter").value === "" &&
      [...document.querySelectorAll("#tree .tree-row[data-topic]")].filter((r) => r.offsetParent !== null).length === n,
    total + newTopics.length, () => document.querySelector("#tree-filter").value);
  await expectText(page, "#tree-note", "");

  // The tree by keyboard: roving tabindex, Home, Left/Right collapse/expand/descend, Down, Enter.
  const keys = [];
  await page.focus('#tree .tree-row[tabindex="0"]');
  await press(page, "Home", cfg.keyboard.home, keys);
  await page.keyboard.press("ArrowLeft");
  await expectAttr(page, row(cfg.keyboard.home), "aria-expanded", "false");
  await page.keyboard.press("ArrowRight");
  await expectAttr(page, row(cfg.keyboard.home), "aria-expanded", "true");
  await press(page, "ArrowRight", cfg.keyboard.right, keys);
  await press(page, "ArrowRight", cfg.keyboard.right2, keys);
  await press(page, "ArrowDown", cfg.keyboard.down, keys);
  await page.keyboard.press("Enter");
  await expectAttr(page, row(cfg.keyboard.down), "aria-selected", "true");
  data.tabindex0 = await page.$$eval("#tree .tree-row[tabindex='0']", (els) => els.map((e) => e.dataset.path));
  await press(page, "End", cfg.keyboard.end, keys);
  await press(page, "ArrowUp", cfg.keyboard.up, keys);
  data.aria = await page.$eval(row(cfg.keyboard.down), (r) => ({
    role: r.getAttribute("role"), level: r.getAttribute("aria-level"), posinset: r.getAttribute("aria-posinset"),
    setsize: r.getAttribute("aria-setsize"), selected: r.getAttribute("aria-selected"),
    tree: r.closest("[role=tree]")?.id,
  }));
  data.keys = keys;

  // The log by keyboard: Down moves to the next (older) row, Enter selects its topic in the tree.
  await page.focus('#log li[tabindex="0"]');
  await page.keyboard.press("Home");
  const firstLog = await page.evaluate(() => document.activeElement.dataset.topic);
  check(firstLog === (await page.$$eval("#log li", (els) => els[0].dataset.topic)), `Home in the log focused ${q(firstLog)}`);
  await page.keyboard.press("ArrowDown");
  const secondLog = await page.evaluate(() => document.activeElement.closest("#log li")?.dataset.topic ?? null);
  check(secondLog && secondLog === (await page.$$eval("#log li", (els) => els[1].dataset.topic)),
    `ArrowDown in the log focused ${q(secondLog)}, not the second row`);
  await page.keyboard.press("Enter");
  await expectAttr(page, `#tree [data-topic=${q(secondLog)}]`, "aria-selected", "true");
  data.log_keys = [firstLog, secondLog];

  // "Clear retained…" on a single topic, cancelled: the dialog names it, nothing is cleared.
  await page.click(`${row(cfg.keep_topic)} .tree-clear`);
  await expectAttr(page, "#tree-clear-dialog", "data-count", "1");
  await expectPresent(page, "#tree-clear-dialog[open]");
  data.cancel_list = await page.$$eval("#tree-clear-dialog .clear-list li", (els) => els.map((e) => e.textContent));
  await page.click("#tree-clear-dialog .clear-cancel");
  await until(page, "the dialog closes on Cancel", () => !document.querySelector("#tree-clear-dialog").open);

  // ... and on a subtree, reached by keyboard (Tab from the row to its button, Enter): it asks
  // with the exact count and the topics, then clears them.
  await page.focus('#tree .tree-row[tabindex="0"]');
  await press(page, "Home", cfg.keyboard.home, keys);
  for (let i = 0; i < 40 && await activePath(page) !== cfg.clear_path; i++) await page.keyboard.press("ArrowDown");
  check(await activePath(page) === cfg.clear_path, `ArrowDown never reached ${cfg.clear_path}`);
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.classList.contains("tree-clear") &&
    document.activeElement.closest(".tree-row").dataset.path), "Tab from the row did not reach its clear button");
  await page.keyboard.press("Enter");
  await expectPresent(page, "#tree-clear-dialog[open]");
  data.dialog = await page.$eval("#tree-clear-dialog", (d) => ({
    count: d.dataset.count,
    text: d.querySelector(".clear-text").textContent,
    list: [...d.querySelectorAll(".clear-list li")].map((e) => e.textContent),
    confirm: d.querySelector(".clear-confirm").textContent,
    labelled: document.getElementById(d.getAttribute("aria-labelledby"))?.textContent ?? null,
    focus: document.activeElement.className,
  }));
  await shot(page, "tree-clear-dialog-light", false);
  await step("dialog", data.dialog);
  await page.click("#tree-clear-dialog .clear-confirm");
  await expectText(page, "#tree-status .tree-status-text", cfg.cleared_text);
  await expectAttr(page, "#tree-status", "data-state", "ok");
  // The broker sends the empty retained messages live (retain flag 0): no badge any more.
  await until(page, `no retained badge under ${cfg.clear_path}`,
    (p) => [...document.querySelectorAll("#tree .tree-row[data-topic]")]
      .filter((r) => r.dataset.topic.startsWith(p + "/") && !r.querySelector(".tree-retained").hidden).length === 0,
    cfg.clear_path);
  await step("cleared");

  // Cost: in a tree of its own with 1000 topics, ingest() writes nothing to the DOM; flush()
  // writes only rows that are shown, in or near the scroll box.
  data.perf = await page.evaluate(async () => {
    const { createTopicTree } = await import(new URL("js/topic-tree.js", document.baseURI).href);
    const { fromPacket } = await import(new URL("js/message.js", document.baseURI).href);
    const card = document.createElement("section");
    card.className = "card tree-card";
    Object.assign(card.style, { position: "fixed", left: "0", top: "0", width: "400px", height: "300px", zIndex: "-1" });
    const box = document.createElement("div");
    box.className = "tree";
    const empty = document.createElement("div");
    card.append(box, empty);
    document.body.append(card);
    const tree = createTopicTree(box, empty, { onSelect() {}, onCountChange() {} });
    const topic = (i) => `perf/g${i % 10}/t${i}`;
    for (let i = 0; i < 1000; i++) tree.ingest(fromPacket(topic(i), new TextEncoder().encode("0"), { qos: 0 }));
    // new topics join the tree a few dozen a flush (a burst of new topics is no long task)
    for (let i = 0; i < 1000 && box.querySelectorAll("[data-topic]").length < 1000; i++) tree.flush();
    tree.expandAll(false);
    tree.expandAll(true); // long enough to scroll: rows out of the box are not written
    tree.flush();
    const mo = new MutationObserver(() => {});
    mo.observe(box, { subtree: true, childList: true, characterData: true, attributes: true });
    const t0 = performance.now();
    for (let round = 0; round < 10; round++)
      for (let i = 0; i < 1000; i++) tree.ingest(fromPacket(topic(i), new TextEncoder().encode(String(round)), { qos: 0 }));
    const ingestMs = performance.now() - t0;
    const ingestMutations = mo.takeRecords().length;
    tree.flush();
    const written = new Set(mo.takeRecords().map((r) => (r.target.nodeType === 3 ? r.target.parentNode : r.target).closest(".tree-row")?.dataset.path));
    // shown: displayed and in (or within 200 px of) the scroll box
    const view = box.getBoundingClientRect();
    const shown = [...box.querySelectorAll(".tree-row")].filter((r) => {
      const b = r.getBoundingClientRect();
      return r.offsetParent !== null && b.bottom >= view.top - 200 && b.top <= view.bottom + 200;
    }).map((r) => r.dataset.path);
    mo.disconnect();
    card.remove();
    return { ingest_ms: ingestMs, ingest_mutations: ingestMutations, written: [...written].sort(), shown: shown.sort() };
  });
  check(data.perf.ingest_mutations === 0, `ingest() of 10000 messages made ${data.perf.ingest_mutations} DOM mutations`);
  check(data.perf.written.every((p) => data.perf.shown.includes(p)),
    `flush() wrote rows that are not shown: ${q(data.perf.written.filter((p) => !data.perf.shown.includes(p)).slice(0, 5))}`);
  check(q(data.perf.written) === q(data.perf.shown), `flush() wrote ${q(data.perf.written)}, the rows shown are ${q(data.perf.shown)}`);

  await violations(page, "dashboard (tree)");
  return data;
};
