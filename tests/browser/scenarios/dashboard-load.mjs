// The dashboard under a busy broker: the Python side publishes cfg.topics topics cfg.rate times a
// second each for cfg.seconds. The page must stay responsive (long tasks, the time a click takes
// to be handled) and its heap bounded; afterwards it shows every topic with its last value.

import { writeFileSync } from "node:fs";
import {
  T, cfg, check, expectText, openDashboard, q, shot, step, violations,
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
    const box = await page.locator("#log-pause").boundingBox();
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
  await violations(page, "dashboard (load)");
  check(clicks.every((p) => p === "false"), `the pause button did not toggle back: ${q(clicks)}`);
  const input = await page.evaluate(() => window.__mwbInput); // (only clicks of 16 ms or more)
  return { long_tasks: await page.evaluate(() => window.__mwbLong), heap: samples, input, shown };
};
