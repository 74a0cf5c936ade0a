// The dashboard under a busy broker: the Python side publishes cfg.topics topics cfg.rate times a
// second each for cfg.seconds. The page must stay responsive (long tasks, the time a click takes
// to be handled) and its heap bounded; afterwards it shows every topic with its last value.

import { writeFileSync } from "node:fs";
import {
  DESKTOP, T, cfg, check, expectText, openDashboard, q, shot, step, until, violations,
} from "../lib.mjs";

export default async (context) => {
  const page = await openDashboard(context, "dashboard (load)");

  // Long tasks (main-thread work over 50 ms) as Chromium reports them.
  await page.evaluate(() => {
    window.__mwbLong = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__mwbLong.push(Math.round(e.duration));
    }).observe({ type: "longtask" });
    // Event Timing: from the input to the next paint after its handlers ran.
    window.__mwbInput = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        if (e.name === "click") window.__mwbInput.push(Math.round(e.duration));
    }).observe({ type: "event", durationThreshold: 16 });
  });
  const cdp = await context.newCDPSession(page);
  const heap = async () => (await cdp.send("Runtime.getHeapUsage")).usedSize;

  // cfg.cpu_profile: a file for the page's CPU profile over the load (for looking into it; the
  // test does not set it)
  if (cfg.cpu_profile) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.start");
  }
  // cfg.trace: a file for a Chromium trace (timeline events: which task did what) over the load
  const traceEvents = [];
  let traceDone = null;
  if (cfg.trace) {
    cdp.on("Tracing.dataCollected", (e) => traceEvents.push(...e.value));
    traceDone = new Promise((resolve) => cdp.once("Tracing.tracingComplete", resolve));
    await cdp.send("Tracing.start", {
      transferMode: "ReportEvents",
      traceConfig: { includedCategories: ["devtools.timeline", "toplevel", "blink.user_timing"] },
    });
  }
  await step("load");                     // publishing starts now, for cfg.seconds
  const started = Date.now();
  const samples = [];
  const clicks = [];
  while (Date.now() - started < cfg.seconds * 1000) {
    await page.waitForTimeout(2000);
    samples.push({ t: Date.now() - started, heap: await heap() });
    // A person clicks the pause button (twice: pause, resume); Event Timing measures each.
    // (Its box read by a plain evaluate: a locator runs Playwright's selector engine in the page,
    // which walks every element of the document, a task of its own of 20-30 ms under this load that
    // the long tasks counted as the page's.)
    const box = await page.evaluate(() => {
      const r = document.querySelector("#log-pause").getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    });
    for (let i = 0; i < 2; i++) await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    clicks.push(await page.evaluate(() => document.querySelector("#log-pause").getAttribute("aria-pressed")));
  }
  const done = await step("load-done", {}, 60_000);   // {last: [topic, payload]}
  if (cfg.cpu_profile)
    writeFileSync(cfg.cpu_profile, JSON.stringify((await cdp.send("Profiler.stop")).profile));
  if (cfg.trace) {
    await cdp.send("Tracing.end");
    await traceDone;
    writeFileSync(cfg.trace, JSON.stringify({ traceEvents }));
  }
  await cdp.send("HeapProfiler.collectGarbage");
  samples.push({ t: Date.now() - started, heap: await heap(), after_gc: true });

  // Every topic is in the tree, with the last value published.
  const [topic, payload] = done.last;
  // (rows out of the tree's scroll box are written when they scroll into view)
  await page.locator(`#tree [data-topic=${q(topic)}]`).scrollIntoViewIfNeeded({ timeout: T });
  await expectText(page, `#tree [data-topic=${q(topic)}] .value`, payload, { timeout: 15_000 });
  const shown = await page.$$eval("#tree [data-topic]", (els) => els.length);
  check(shown >= cfg.topics, `the tree shows ${shown} topics, ${cfg.topics} were published`);
  await shot(page, "dashboard-load");
  // (what the checks below cost, a taller window and the log's 500 rows, is not the load's)
  const longTasks = await page.evaluate(() => window.__mwbLong.slice());
  const input = await page.evaluate(() => window.__mwbInput.slice()); // (only clicks of 16 ms or more)

  // Rows scrolled into the middle of the tree are rendered and written (rows far from the scroll
  // box have no boxes inside, and rows out of view are written when they come into view).
  const rowsShown = () => {
    const box = document.querySelector("#tree").getBoundingClientRect();
    const rows = [...document.querySelectorAll("#tree .tree-row[data-topic]")].filter((r) => {
      const b = r.getBoundingClientRect();
      return b.top >= box.top && b.bottom <= box.bottom;
    });
    // (a row's parts are built when it first comes near the box: until then it has no .value)
    return rows.length >= 3 && rows.every((r) => r.querySelector(".value")?.offsetWidth > 0 &&
      r.querySelector(".value").textContent.startsWith('{"n": '));
  };
  const rowsSeen = () => [...document.querySelectorAll("#tree .tree-row[data-topic]")]
    .filter((r) => r.querySelector(".value")?.offsetWidth > 0).slice(0, 20)
    .map((r) => [r.dataset.topic, r.querySelector(".value").textContent]);
  await page.$eval("#tree", (el) => { el.scrollTop = el.scrollHeight / 2; });
  await until(page, "the rows in the middle of the tree show their values", rowsShown, null, rowsSeen);
  // ...and so are the rows a taller window brings into the box
  await page.setViewportSize({ width: DESKTOP.width, height: 2400 });
  await until(page, "the rows a taller window shows have their values", rowsShown, null, rowsSeen);
  await page.setViewportSize(DESKTOP);
  // The log has rows for its newest messages; scrolling to their end adds older ones, up to 500.
  const logRows = () => page.$$eval("#log li", (els) => els.length);
  const newest = await logRows();
  for (let i = 0; i < 20 && (await logRows()) < 500; i++) {
    await page.$eval("#log", (el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForTimeout(50);
  }
  const oldest = await logRows();
  check(newest < oldest && oldest === 500, `the log had ${newest} rows, ${oldest} after scrolling to its end (expected 500)`);
  await violations(page, "dashboard (load)");
  check(clicks.every((p) => p === "false"), `the pause button did not toggle back: ${q(clicks)}`);
  return { long_tasks: longTasks, heap: samples, input, shown };
};
