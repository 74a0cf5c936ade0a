// tests/browser/drive.mjs — runs one scenario of tests/integration/test_browser.py in Debian's
// headless Chromium (playwright-core, /usr/bin/chromium). The Python test owns the broker side
// (the broker, the bridge, device clients) and the checks that need it; this program owns the pages
// and the checks on their DOM.
//
//   node drive.mjs SCENARIO   (scenarios: `scenarios` below, or scenarios/SCENARIO.mjs, whose default
//                             export is an async function (context) => data; helpers: lib.mjs)
//
// stdin:  line 1 is the configuration, JSON: {"base": "http://127.0.0.1:PORT", "profile": DIR,
//         "artifacts": DIR, ...scenario's own keys}; every later line answers a step: {"step": NAME, ...}.
// stdout: one JSON object per line:
//         {"type": "step", "name": NAME, "wait": true|false, "data": {...}}
//             a point where the Python side acts; with "wait" the scenario goes on only after
//             the answer {"step": NAME} comes on stdin
//         {"type": "result", "ok": BOOL, "failure": TEXT|null, "page_errors": [...],
//          "screenshots": [...], "data": {...}}   the last line
// Every wait is bounded; page errors ('pageerror', console.error, CSP violations, crashes) on any
// page fail the run. Exit status 0 only when the scenario passed with no page error.

import { chromium } from "playwright-core";
import { existsSync } from "node:fs";
import {
  ARGS, CHROMIUM, DESKTOP, PHONE, T, background, cfg, check, expectAbsent, expectAttr,
  expectNoSideScroll, expectPresent, expectText, goto, mark, newPage, openDashboard, out,
  pageErrors, q, readLine, setConfig, setControl, shot, screenshots, step, switchTheme, until, violations,
} from "./lib.mjs";

// ------------------------------------------------------------------------------------------------
// scenarios: each gets the persistent browser context and returns data for the Python side

const scenarios = {};

// The dashboard at /: connection, the default "#" subscription, a device's message in the tree
// and the log, the tree's levels, a selected topic's chart, the publish form, subscriptions kept
// across a reload, and how it looks (desktop and phone, light and dark).
scenarios.dashboard = async (context) => {
  // The "#" subscription is live once a message published now shows up.
  const page = await openDashboard(context, "dashboard");
  const data = {};

  // A device publishes one message: the tree and the log show it, once.
  await step("device-publish");
  const temp = '#tree [data-topic="devices/d1/temp"]';
  await expectText(page, `${temp} .value`, "21.5");
  await expectText(page, `${temp} .count`, "1");
  await expectText(page, '#log [data-topic="devices/d1/temp"] .payload', "21.5");

  // Several topics: each is a path of treeitems, one per level, and topics that share a prefix
  // share its treeitems (a tree, not a list); the log is newest first.
  const more = (await step("more-topics")).published;        // [[topic, payload], ...] in order
  for (const [topic, payload] of more)
    await expectText(page, `#tree [data-topic=${q(topic)}] .value`, payload);
  const topics = ["devices/d1/temp", ...more.map(([t]) => t)];
  data.tree = await page.evaluate((topics) => {
    const tree = document.querySelector("#tree");
    const rowIds = new Map();
    const idOf = (row) => { if (!rowIds.has(row)) rowIds.set(row, rowIds.size); return rowIds.get(row); };
    const name = (row) => (row.querySelector(".name") ?? row).textContent.trim();
    const paths = {};
    for (const t of topics) {
      const rows = [];
      for (let el = tree.querySelector(`[data-topic="${CSS.escape(t)}"]`); el && el !== tree; el = el.parentElement) {
        const row = el.matches("[role=treeitem]") ? el : el.querySelector(":scope > [role=treeitem]");
        if (row && rows[rows.length - 1] !== row) rows.push(row);
      }
      paths[t] = rows.reverse().map((row) => ({ name: name(row), id: idOf(row) }));
    }
    return { paths, log: [...document.querySelectorAll("#log [data-topic]")].slice(0, 10).map((el) => el.dataset.topic) };
  }, topics);
  const levelRow = {};
  for (const t of topics) {
    const path = data.tree.paths[t];
    check(q(path.map((p) => p.name)) === q(t.split("/")),
      `the tree's levels for ${t} are ${q(path.map((p) => p.name))} (treeitems from the root to the topic)`);
    path.forEach((p, i) => {
      const prefix = t.split("/").slice(0, i + 1).join("/");
      check(levelRow[prefix] === undefined || levelRow[prefix] === p.id,
        `two treeitems for the level ${q(prefix)}: the tree does not merge shared prefixes`);
      levelRow[prefix] = p.id;
    });
  }
  const newest = [...more].reverse().map(([t]) => t);
  check(q(data.tree.log.slice(0, newest.length)) === q(newest),
    `the log is not newest first: ${q(data.tree.log)}, expected to start with ${q(newest)}`);
  await expectText(page, `${temp} .count`, "1");   // nothing counted twice

  // Selecting a topic charts its numbers.
  await page.click(`${temp} .value`);
  await expectAttr(page, temp, "aria-selected", "true");
  await step("chart-values");                          // 22.0, 22.5, 23.0 on devices/d1/temp
  await expectText(page, `${temp} .value`, "23.0");
  await expectText(page, `${temp} .count`, "4");
  await expectPresent(page, "#chart canvas, #chart svg");
  data.chart = await page.$eval("#chart", (el) => {
    const r = el.getBoundingClientRect();
    return { width: r.width, height: r.height };
  });
  check(data.chart.width > 100 && data.chart.height > 50, `#chart is ${q(data.chart)}`);

  // Screenshots while the page holds data: desktop and phone, light and dark.
  await expectAttr(page, "html", "data-theme", "light");
  await page.waitForTimeout(1100);          // once-a-second figures (ages, totals) catch up
  await shot(page, "dashboard-desktop-light");
  data.bg_light = await background(page);
  await switchTheme(page, "dark");
  await shot(page, "dashboard-desktop-dark");
  data.bg_dark = await background(page);
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(200);
  await expectNoSideScroll(page, "dashboard at 390x844");
  await shot(page, "dashboard-phone-dark");
  await switchTheme(page, "light");
  await shot(page, "dashboard-phone-light");
  await page.setViewportSize(DESKTOP);

  // The publish form: the device side checks what arrived (byte for byte, QoS, retain, props).
  for (const [i, form] of cfg.forms.entries()) {
    await page.evaluate(() => document.querySelector("#pub-status").removeAttribute("data-state"));
    await setControl(page, "#pub-topic", form.topic);
    await setControl(page, "#pub-payload", form.payload);
    await setControl(page, "#pub-qos", form.qos);
    await setControl(page, "#pub-retain", form.retain);
    await setControl(page, "#pub-content-type", form.content_type);
    await setControl(page, "#pub-user-props", form.user_props_text);
    await page.click("#pub-send");
    await expectAttr(page, "#pub-status", "data-state", "ok");
    await step("form-sent", { index: i });
  }

  // Subscriptions are remembered across a reload (localStorage), removals too.
  await setControl(page, "#sub-filter", "devices/+/temp");
  await setControl(page, "#sub-qos", 1);
  await page.click("#sub-add");
  await expectPresent(page, '#subs li[data-filter="devices/+/temp"]');
  const filters = () => page.$$eval("#subs li[data-filter]", (els) => els.map((e) => e.dataset.filter).sort());
  await page.reload({ waitUntil: "load", timeout: T });
  await expectAttr(page, "#conn-state", "data-state", "connected");
  await expectPresent(page, '#subs li[data-filter="devices/+/temp"]');
  data.filters_after_reload = await filters();
  await page.click('#subs li[data-filter="devices/+/temp"] .sub-remove');
  await expectAbsent(page, '#subs li[data-filter="devices/+/temp"]');
  await page.reload({ waitUntil: "load", timeout: T });
  await expectAttr(page, "#conn-state", "data-state", "connected");
  await expectPresent(page, '#subs li[data-filter="#"]');
  data.filters_after_remove = await filters();
  await violations(page, "dashboard");
  return data;
};

// The retained values cfg.retained ([[topic, payload], ...]) show in the /view on @target (a page
// or a frame). A broker that sends no retained messages for a wildcard filter (RabbitMQ 3.10:
// cfg.retained_at_load false) shows them only live: from the step "await-values:NAME" the Python
// side publishes them until they show.
async function viewValues(target, name) {
  const live = cfg.retained_at_load === false;
  if (live) mark(`await-values:${name}`);
  for (const [topic, payload] of cfg.retained)
    await expectText(target, `#view [data-topic=${q(topic)}] .value`, payload);
  if (live) await step(`values-seen:${name}`);
}

// /view?topic=devices/%23&title=Temps&unit=°C: retained values at load, live updates, themes,
// and the page framed by a page of another origin.
scenarios.view = async (context) => {
  const page = await newPage(context, "view");
  const data = {};
  await page.setViewportSize({ width: 800, height: 450 });
  await page.emulateMedia({ colorScheme: "light" });
  await goto(page, cfg.view_url);
  await expectAttr(page, "#view-state", "data-state", "open");
  await viewValues(page, "view");
  data.text = await page.$eval("body", (b) => b.innerText);
  data.title = await page.title();

  // Live: the Python side publishes until the new value shows, then one new topic.
  mark("await-live");
  await expectText(page, '#view [data-topic="devices/d1/temp"] .value', cfg.live_value);
  await step("live-seen");
  await expectText(page, '#view [data-topic="devices/d3/temp"] .value', "18.25");
  await shot(page, "view-light");
  data.bg_light = await background(page);

  const dark = await newPage(context, "view (dark)");
  await dark.setViewportSize({ width: 800, height: 450 });
  await goto(dark, cfg.view_url + "&theme=dark");
  await expectAttr(dark, "#view-state", "data-state", "open");
  await viewValues(dark, "dark");
  await shot(dark, "view-dark");
  data.bg_dark = await background(dark);
  await page.setViewportSize(PHONE);
  await expectNoSideScroll(page, "view at 390x844");

  // In an <iframe> of a page of another origin.
  const host = await newPage(context, "view in an iframe");
  await host.setViewportSize({ width: 900, height: 600 });
  await goto(host, cfg.iframe_page);
  const frame = await (await host.waitForSelector("iframe", { timeout: T })).contentFrame();
  check(frame, "the iframe has no frame");
  await frame.waitForSelector('#view-state[data-state="open"]', { timeout: T });
  await viewValues(frame, "iframe");
  await shot(host, "view-iframe");
  for (const [p, label] of [[page, "view"], [dark, "view (dark)"], [host, "view in an iframe"]])
    await violations(p, label);
  return data;
};

// <mqtt-live> on pages of a second origin: loaded by <script src>, by <script type="module" src>,
// and under a strict CSP (no inline styles). The Python side checks the events' details against
// what it published.
scenarios.embed = async (context) => {
  const data = {};
  for (const [label, url] of Object.entries(cfg.pages)) {
    const page = await newPage(context, `embed (${label})`);
    await page.setViewportSize({ width: 900, height: 700 });
    await page.emulateMedia({ colorScheme: "light" });
    await goto(page, url);
    const ids = await page.$$eval("mqtt-live", (els) => els.map((e) => e.id));
    check(ids.length >= 3, `${label}: ${ids.length} <mqtt-live> elements`);
    for (const id of ids) {
      await expectAttr(page, `#${id}`, "state", "open");
      check(await page.$eval(`#${id}`, (el) => !!el.shadowRoot), `${label}: #${id} has no open shadow root`);
    }
    // The stream is live once a message published now reaches every element.
    mark(`sync:${label}`);
    await until(page, `${label}: every element fired a message event for ${cfg.sync_topic}`,
      ({ ids, topic }) => ids.every((id) => window.__mwb.events.some((e) => e.id === id && e.detail?.topic === topic)),
      { ids, topic: cfg.sync_topic },
      () => window.__mwb.events.map((e) => [e.id, e.detail?.topic]));
    await step(`synced:${label}`);
    const before = await page.evaluate(() => window.__mwb.events.length);
    await step(`publish:${label}`);        // the device's JSON state, then a binary payload

    await expectText(page, ".value", "21.5", { host: "#temp" });
    await until(page, `${label}: #json shows the message`,
      () => /"temp"\s*:\s*21\.5/.test(document.querySelector("#json")?.shadowRoot?.querySelector(".json")?.textContent ?? ""),
      null, () => document.querySelector("#json")?.shadowRoot?.querySelector(".json")?.textContent ?? "(none)");
    await until(page, `${label}: #log lists the binary message`,
      () => [...(document.querySelector("#log")?.shadowRoot?.querySelectorAll(".log li") ?? [])].some((li) => li.textContent.includes("devices/bin/raw")),
      null, () => [...(document.querySelector("#log")?.shadowRoot?.querySelectorAll(".log li") ?? [])].map((li) => li.textContent));
    await until(page, `${label}: message events for the binary payload on every element listening to devices/#`,
      (before) => window.__mwb.events.slice(before).filter((e) => e.detail?.topic === "devices/bin/raw").length >= 2,
      before, () => window.__mwb.events.map((e) => [e.id, e.detail?.topic]));
    await page.waitForTimeout(300);        // anything extra (a duplicate) would arrive by now
    const logItems = await page.$eval("#log", (el) => el.shadowRoot.querySelectorAll(".log li").length);
    const lines = Number(await page.$eval("#log", (el) => el.getAttribute("lines")));
    check(logItems <= lines, `${label}: #log shows ${logItems} lines, lines="${lines}"`);

    const style = (id) => page.$eval(`#${id}`, (host) => {
      const pick = (el) => {
        const s = getComputedStyle(el);
        return { color: s.color, background: s.backgroundColor, fontSize: s.fontSize,
          fontWeight: s.fontWeight, fontFamily: s.fontFamily, display: s.display,
          padding: s.padding, border: s.borderTopWidth + " " + s.borderTopStyle };
      };
      return { host: pick(host), value: pick(host.shadowRoot.querySelector(".value")) };
    });
    data[label] = {
      ids,
      events: (await page.evaluate(() => window.__mwb.events)).slice(before),
      states: await page.$$eval("mqtt-live", (els) => els.map((e) => [e.id, e.getAttribute("state")])),
      value_text: await page.$eval("#temp", (el) => el.shadowRoot.querySelector(".value").textContent.trim()),
      host_text: await page.$eval("#temp", (el) => el.shadowRoot.textContent.replace(/\s+/g, " ").trim()),
      style: await style("temp"),
      log_items: logItems,
    };
    await shot(page, `embed-${label}-light`);
    data[label].bg_light = await background(page);
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForTimeout(100);
    data[label].style_dark = await style("temp");
    await shot(page, `embed-${label}-dark`);
    await violations(page, `embed (${label})`);
    await page.close();
  }
  return data;
};

// <mqtt-live> through a proxy the Python side cuts: the element reconnects by itself and, with
// Last-Event-ID, gets what was published while it was away, once.
scenarios["embed-resume"] = async (context) => {
  const page = await newPage(context, "embed (resume)");
  await page.setViewportSize({ width: 900, height: 600 });
  await goto(page, cfg.page);
  await expectAttr(page, "#resume", "state", "open");
  mark("sync");
  await until(page, `a message event for ${cfg.sync_topic}`,
    (topic) => window.__mwb.events.some((e) => e.detail?.topic === topic), cfg.sync_topic);
  await step("synced");

  const count = (n) => until(page, `${n} message events on resume/m/#`,
    (n) => window.__mwb.events.filter((e) => e.detail?.topic?.startsWith("resume/m/")).length >= n, n,
    () => window.__mwb.events.map((e) => [e.detail?.topic, e.detail?.payload]));
  await step("before-cut");                 // resume/m/0..4
  await count(cfg.per_phase);
  const states = [];
  await page.exposeFunction("__mwbState", (s) => states.push(s));
  await page.evaluate(() => new MutationObserver(() => window.__mwbState(document.querySelector("#resume").getAttribute("state")))
    .observe(document.querySelector("#resume"), { attributes: true, attributeFilter: ["state"] }));
  await step("cut");                        // the proxy cuts every connection, holds new ones
  await until(page, "#resume leaves state=open after the cut",
    () => document.querySelector("#resume").getAttribute("state") !== "open", null,
    () => document.querySelector("#resume").getAttribute("state"));
  await step("disconnected");               // resume/m/5..9 published, then the proxy lets go
  await expectAttr(page, "#resume", "state", "open", 15_000);
  await count(2 * cfg.per_phase);
  await page.waitForTimeout(700);           // a duplicate would arrive by now
  await shot(page, "embed-resume");
  await violations(page, "embed (resume)");
  return {
    events: await page.evaluate(() => window.__mwb.events.map((e) => ({ id: e.id, detail: e.detail }))),
    states,
    log: await page.$eval("#resume", (el) => [...el.shadowRoot.querySelectorAll(".log li")].map((li) => li.textContent.trim())),
  };
};

// ------------------------------------------------------------------------------------------------

async function main() {
  const name = process.argv[2];
  const file = new URL(`./scenarios/${name}.mjs`, import.meta.url);
  if (name && !scenarios[name] && /^[a-z0-9-]+$/.test(name) && existsSync(file))
    scenarios[name] = (await import(file.href)).default;
  if (!scenarios[name]) {
    process.stderr.write(`usage: node drive.mjs SCENARIO < config.json  (${Object.keys(scenarios).join(", ")})\n`);
    process.exit(2);
  }
  setConfig(JSON.parse(await readLine(10_000, "configuration")));
  const watchdog = setTimeout(() => {
    out({ type: "result", ok: false, failure: `scenario ${name} still running after ${cfg.timeout_ms} ms`,
      page_errors: pageErrors, screenshots, data: {} });
    process.exit(1);
  }, cfg.timeout_ms ?? 60_000);

  let context, failure = null, data = {};
  try {
    context = await chromium.launchPersistentContext(cfg.profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000,
      viewport: DESKTOP, colorScheme: "light", locale: "en-US", timezoneId: "UTC",
    });
    for (const blank of context.pages()) await blank.close();   // the profile's first tab
    data = await scenarios[name](context);
  } catch (e) {
    failure = e.stack || String(e);
    for (const page of context ? context.pages() : []) {
      try { await shot(page, `FAILED-${name}-${context.pages().indexOf(page)}`); } catch { /* best effort */ }
    }
  }
  if (context) await context.close().catch(() => {});
  clearTimeout(watchdog);
  const ok = !failure && pageErrors.length === 0;
  out({ type: "result", ok, failure, page_errors: pageErrors, screenshots, data });
  process.exit(ok ? 0 : 1);
}

main();
