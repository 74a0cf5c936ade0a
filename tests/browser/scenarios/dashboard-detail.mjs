// tests/browser/scenarios/dashboard-detail.mjs — the dashboard's message detail card and chart
// (tests/integration/test_dashboard_detail.py): payload views (pretty folding JSON, exact text,
// hex, Base64), flags and MQTT 5 properties, an older log line shows that very message, the diff
// against the previous message (JSON paths, lines, bytes), several chart series (a numeric topic
// and a JSON field path) read back from uPlot, equal timestamps, the time window, and how it looks
// (desktop light and dark, phone).

import {
  DESKTOP, PHONE, check, expectAttr, expectNoSideScroll, expectPresent, expectText, goto, mark,
  newPage, q, shot, step, switchTheme, until, violations, cfg,
} from "../lib.mjs";

const treeRow = (topic) => `#tree [data-topic=${q(topic)}]`;
const view = "#detail-view";

async function selectTopic(page, topic) {
  await page.click(`${treeRow(topic)} .value`);
  await expectAttr(page, treeRow(topic), "aria-selected", "true");
  await expectText(page, "#detail-topic", topic);
}

async function tab(page, name) {
  await page.click(`#detail-tab-${name}`);
  await expectAttr(page, `#detail-tab-${name}`, "aria-selected", "true");
  await expectAttr(page, view, "data-view", name);
}

// The meta rows: {prop: text of its dd}, and the user properties as [key, value] pairs.
const meta = (page) => page.evaluate(() => {
  const out = {};
  for (const row of document.querySelectorAll("#detail-meta .meta-row")) out[row.dataset.prop] = row.querySelector("dd").textContent;
  out.user_properties = [...document.querySelectorAll("#detail-meta .user-props li")].map((li) =>
    [li.querySelector(".up-key").textContent, li.querySelector(".up-value").textContent]);
  const corr = document.querySelector("#detail-meta .corr-text");
  out.correlation_text = corr ? corr.textContent : null;
  out.correlation_hex = document.querySelector("#detail-meta .corr-hex")?.textContent ?? null;
  return out;
});

const diffItems = (page) => page.$$eval("#detail-diff .diff-list li", (els) =>
  els.map((li) => [li.dataset.path, li.dataset.kind, li.querySelector(".diff-text").textContent]));

const chart = (page) => page.$eval("#chart", (el) => ({
  data: el.mwbChart.data(), labels: el.mwbChart.labels(), x: el.mwbChart.x(),
}));

// Until uPlot's column for @label holds every value of @values (in that order, nulls aside).
function chartHas(page, label, values) {
  return until(page, `the chart's series ${q(label)} holds ${q(values)}`,
    ({ label, values }) => {
      const c = document.querySelector("#chart").mwbChart;
      const i = c.labels().indexOf(label);
      const data = c.data();
      if (i < 0 || !data) return false;
      const got = data[i + 1].filter((v) => v !== null);
      return JSON.stringify(got.slice(-values.length)) === JSON.stringify(values);
    }, { label, values },
    (label) => {
      const c = document.querySelector("#chart").mwbChart;
      return { labels: c.labels(), data: c.data() };
    });
}

export default async (context) => {
  const page = await newPage(context, "dashboard (detail)");
  const data = {};
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.emulateMedia({ colorScheme: "light" });
  await goto(page, cfg.base + "/");
  await expectAttr(page, "#conn-state", "data-state", "connected");
  await expectPresent(page, '#subs li[data-filter="#"]');
  await expectText(page, "#detail-empty strong", "No message selected");
  mark("sync");
  await expectPresent(page, treeRow(cfg.sync_topic));
  await step("synced");

  // 1. A JSON message with MQTT 5 properties: pretty JSON by default, folding, the exact text,
  // Base64, the flags and every property.
  const j = cfg.json;
  await step("json-1");
  await expectPresent(page, treeRow(j.topic));
  await selectTopic(page, j.topic);
  await expectAttr(page, "#detail-tab-json", "aria-selected", "true");
  await expectText(page, `${view} [data-path="t"] .j-value`, "21.5");
  data.json_lines = await page.$eval(`${view} .json-tree`, (el) => el.innerText.split("\n").map((l) => l.trim()).filter(Boolean));
  // fold "nest": its members are hidden and the summary counts them; unfold again
  const nest = `${view} details[data-path="nest"]`;
  await page.click(`${nest} > summary`);
  await until(page, "nest folds", (sel) => !document.querySelector(sel).open &&
    !document.querySelector(`${sel} [data-path="nest.s"]`).checkVisibility(), nest, (sel) => ({
    open: document.querySelector(sel).open,
    visible: document.querySelector(`${sel} [data-path="nest.s"]`).checkVisibility(),
  }));
  data.folded_summary = await page.$eval(`${nest} > summary`, (s) => s.innerText.trim());
  await page.click(`${nest} > summary`);
  await until(page, "nest unfolds", (sel) => document.querySelector(sel).open, nest);
  await tab(page, "text");
  data.text = await page.$eval(view, (el) => el.textContent);
  await tab(page, "base64");
  data.base64_json = await page.$eval(view, (el) => el.textContent);
  data.meta = await meta(page);
  data.first_diff = await page.$eval("#detail-diff-summary", (el) => el.textContent);
  await tab(page, "json");

  // 2. The next message: the card follows the latest; the diff lists exactly the changed paths.
  await step("json-2");
  await expectPresent(page, `${view} [data-path="x"]`);
  await expectText(page, `${view} [data-path="t"] .j-value`, "22");
  data.diff = await diffItems(page);
  data.diff_summary = await page.$eval("#detail-diff-summary", (el) => el.textContent);

  // 3. An older log line shows that very message, not the latest; "Show latest" goes back.
  const logRows = `#log li[data-topic=${q(j.topic)}]`;
  await until(page, "two log lines of the JSON topic", (sel) => document.querySelectorAll(sel).length === 2, logRows);
  await page.click(`${logRows} >> nth=1 >> .msg-time`);
  await expectText(page, `${view} [data-path="t"] .j-value`, "21.5");
  await expectText(page, "#detail-mode", "from the log");
  data.older = {
    x_absent: await page.$$eval(`${view} [data-path="x"]`, (els) => els.length === 0),
    current: await page.$$eval(logRows, (els) => els.map((e) => e.getAttribute("aria-current"))),
    latest_button: await page.$eval("#detail-latest", (b) => !b.hidden),
  };
  await page.click("#detail-latest");
  await expectText(page, `${view} [data-path="t"] .j-value`, "22");
  await expectText(page, "#detail-mode", "latest");

  // 4. Binary: hex by default with the exact bytes, Base64; the next one counts changed bytes.
  const b = cfg.binary;
  await step("binary-1");
  await expectPresent(page, treeRow(b.topic));
  await selectTopic(page, b.topic);
  await expectAttr(page, "#detail-tab-hex", "aria-selected", "true");
  data.json_tab_disabled_for_binary = await page.$eval("#detail-tab-json", (t) => t.disabled);
  data.hex = await page.$$eval(`${view} .hex-row`, (rows) => rows.map((r) => ({
    offset: r.querySelector(".hex-off").textContent, hex: r.querySelector(".hex-bytes").textContent,
    ascii: r.querySelector(".hex-ascii").textContent,
  })));
  await tab(page, "base64");
  data.base64_binary = await page.$eval(view, (el) => el.textContent);
  await step("binary-2");
  await expectText(page, "#detail-diff-summary", b.diff_summary);
  // (the tab chosen for the topic stays while it updates)
  await expectAttr(page, "#detail-tab-base64", "aria-selected", "true");

  // 5. Text: a line diff.
  const t = cfg.text;
  await step("text-1");
  await expectPresent(page, treeRow(t.topic));
  await selectTopic(page, t.topic);
  await expectAttr(page, "#detail-tab-text", "aria-selected", "true");
  await step("text-2");
  await expectText(page, view, t.second);
  data.text_diff = await page.$$eval("#detail-diff .diff-line:not([data-op=' '])", (els) => els.map((e) => e.textContent));

  // 6. Chart: the numeric topic (no path) and a JSON field path, picked from the suggestions.
  const c = cfg.chart;
  await step("chart-seed");
  await expectPresent(page, treeRow(c.num_topic));
  await expectPresent(page, treeRow(c.json_topic));
  await selectTopic(page, c.num_topic);
  await expectPresent(page, "#chart canvas");
  await page.click("#chart-add-series");
  await expectPresent(page, `#chart-series li[data-topic=${q(c.num_topic)}][data-path=""] .series-remove`);
  await selectTopic(page, c.json_topic);
  await until(page, "the field path suggestions are the JSON topic's numeric paths",
    (want) => JSON.stringify([...document.querySelectorAll("#chart-paths option")].map((o) => o.value)) === JSON.stringify(want),
    c.suggestions, () => [...document.querySelectorAll("#chart-paths option")].map((o) => o.value));
  await page.fill("#chart-path", "sensors.nope");
  await page.click("#chart-add-series");
  await expectPresent(page, "#chart-error:not([hidden])");
  data.path_error = await page.$eval("#chart-error", (el) => el.textContent);
  await page.fill("#chart-path", c.path);
  await page.press("#chart-path", "Enter");
  await expectPresent(page, `#chart-series li[data-topic=${q(c.json_topic)}][data-path=${q(c.path)}]`);
  await expectAttr(page, "#chart-error", "hidden", "");
  data.series = await page.$$eval("#chart-series li", (els) => els.map((li) => [li.dataset.topic, li.dataset.path]));
  await step("chart-points");
  await chartHas(page, c.num_label, c.num_values);
  await chartHas(page, c.path_label, c.path_values);
  data.chart = await chart(page);

  // The window: 5 min by default; 1 min and 1 h change the x range.
  data.windows = {};
  data.windows["300"] = (await chart(page)).x;
  for (const w of ["60", "3600"]) {
    await page.selectOption("#chart-window", w);
    await until(page, `the x range spans ${w} s`, (w) => {
      const x = document.querySelector("#chart").mwbChart.x();
      return x && Math.abs(x[1] - x[0] - Number(w)) < 1;
    }, w, () => document.querySelector("#chart").mwbChart.x());
    data.windows[w] = (await chart(page)).x;
  }
  await page.selectOption("#chart-window", "300");

  // Equal timestamps: with the page's Date.now() fixed, the device's values all arrive at one
  // time. (Only Date.now(): Playwright's page.clock fakes the page's timers and frames too, which
  // this check does not need; one run under load saw the page stop rendering after it.)
  await page.evaluate((t) => {
    window.mwbRealNow = Date.now;
    Date.now = () => t;
  }, Date.now() + 2000);
  await step("same-time");
  await chartHas(page, c.num_label, [...c.num_values, ...c.same_num]);
  await chartHas(page, c.path_label, [...c.path_values, ...c.same_path]);
  data.same_time = await chart(page);
  await page.evaluate(() => { Date.now = window.mwbRealNow; });
  await expectPresent(page, "#chart canvas");

  // How it looks: the JSON topic's detail with its diff, desktop light and dark, and a phone.
  await selectTopic(page, j.topic);
  await page.setViewportSize(DESKTOP);
  await page.waitForTimeout(300);   // the plot follows its box's new size (ResizeObserver)
  await shot(page, "detail-desktop-light");
  await switchTheme(page, "dark");
  await shot(page, "detail-desktop-dark");
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(300);
  await expectNoSideScroll(page, "dashboard at 390x844 (dark)");
  await page.$eval(".chart-card", (el) => el.scrollIntoView({ block: "start" }));
  await shot(page, "detail-phone-chart-dark", false);
  await page.$eval("#detail-card", (el) => el.scrollIntoView({ block: "start" }));
  await shot(page, "detail-phone-dark", false);
  await switchTheme(page, "light");
  await expectNoSideScroll(page, "dashboard at 390x844 (light)");
  await selectTopic(page, b.topic);   // the hex dump is wider than a phone: it scrolls in its box
  await expectNoSideScroll(page, "dashboard at 390x844 with a hex dump");
  await page.$eval("#detail-card", (el) => el.scrollIntoView({ block: "start" }));
  await shot(page, "detail-phone-light", false);

  // A series' remove button takes it off the list and the chart.
  await page.setViewportSize(DESKTOP);
  await page.click(`#chart-series li[data-topic=${q(c.num_topic)}] .series-remove`);
  await until(page, "the numeric series is removed", (topic) =>
    !document.querySelector(`#chart-series li[data-topic="${CSS.escape(topic)}"]`), c.num_topic);
  data.labels_after_remove = (await chart(page)).labels;
  await violations(page, "dashboard (detail)");
  return data;
};
