// tests/browser/scenarios/dashboard-share.mjs — the dashboard's share / embed card, the call-a-
// device form and the publish form's "Copy as curl" and history, for
// tests/integration/test_dashboard_share.py. cfg.part picks one: "share", "call" or "publish".
// The Python side runs what the snippets say (curl, the iframe's URL, <mqtt-live> on a page of
// another origin) and checks it against the broker; this side reads the snippets and the DOM.

import {
  DESKTOP, PHONE, T, background, cfg, check, expectAttr, expectNoSideScroll, expectText, goto,
  expectFailedFetch, mark, newPage, openDashboard, q, setControl, shot, step, switchTheme, until,
  violations,
} from "../lib.mjs";

const SNIPPETS = { embed: "#share-embed", iframe: "#share-iframe", pub: "#share-curl-pub", stream: "#share-curl-stream" };

async function readSnippets(page) {
  const out = {};
  for (const [k, sel] of Object.entries(SNIPPETS)) out[k] = await page.$eval(sel, (el) => el.textContent);
  return out;
}

async function clipboard(page) {
  return page.evaluate(() => navigator.clipboard.readText());
}

// The dashboard, connected, with its "#" subscription live (a message published now shows).
async function dashboard(context) {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(cfg.base).origin });
  const page = await openDashboard(context, `dashboard (${cfg.part})`);
  // the card starts closed (it would crowd the log); a person opens it
  await expectAttr(page, "#share-toggle", "aria-expanded", "false");
  await page.click("#share-toggle");
  await expectAttr(page, "#share-toggle", "aria-expanded", "true");
  return page;
}

// Clicks @button (a Copy button) and checks the clipboard then holds @text and the button says so.
async function copyChecked(page, button, text, what) {
  await page.evaluate(() => navigator.clipboard.writeText("(nothing copied)"));
  await page.click(button);
  await expectText(page, button, "Copied");
  const got = await clipboard(page);
  check(got === text, `${what}: the clipboard holds ${q(got)}, the card shows ${q(text)}`);
}

async function share(context) {
  const data = {};
  const page = await dashboard(context);
  const origin = new URL(cfg.base).origin;

  // Nothing selected: no snippets yet.
  await expectAttr(page, "#share-card", "data-ready", "false");
  const row = `#tree [data-topic=${q(cfg.topic)}]`;
  await expectText(page, `${row} .value`, cfg.payload);   // the device's retained value
  await page.click(`${row} .value`);
  await expectAttr(page, row, "aria-selected", "true");
  await expectAttr(page, "#share-card", "data-ready", "true");
  check(await page.inputValue("#share-filter") === cfg.topic, "the card's filter is not the selected topic");
  data.plain = await readSnippets(page);
  for (const [k, text] of Object.entries(data.plain)) {
    check(text.includes(origin), `${k} snippet without the bridge's address ${origin}: ${q(text)}`);
    check(!text.includes("TOKEN"), `${k} snippet names a token while signed out: ${q(text)}`);
  }
  for (const k of Object.keys(SNIPPETS))
    await copyChecked(page, `#share-card [data-copy="${k}"]`, data.plain[k], k);

  // The live preview is /view of the topic, showing its value.
  await expectAttr(page, "#share-preview", "data-filter", cfg.topic);
  const frame = await (await page.$("#share-preview")).contentFrame();
  check(frame, "the preview iframe has no frame");
  await expectText(frame, `#view [data-topic=${q(cfg.topic)}] .value`, cfg.payload);
  data.preview_src = await page.$eval("#share-preview", (el) => el.src);

  // "Whole subtree": the filter becomes topic/#, and the preview follows.
  await page.check("#share-subtree");
  const sub = `${cfg.topic}/#`;
  await expectAttr(page, "#share-preview", "data-filter", sub);
  await expectText(frame, `#view [data-topic=${q(cfg.topic)}] .value`, cfg.payload);
  data.subtree = await readSnippets(page);
  check(data.subtree.stream !== data.plain.stream, "the subtree toggle did not change the stream line");

  await expectAttr(page, "html", "data-theme", "light");
  await shot(page, "share-desktop-light");
  data.bg_light = await background(page);
  await switchTheme(page, "dark");
  await until(page, "the preview follows the dark theme", () => /[?&]theme=dark\b/.test(document.querySelector("#share-preview").src),
    null, () => document.querySelector("#share-preview").src);
  await shot(page, "share-desktop-dark");
  data.bg_dark = await background(page);
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(200);
  await expectNoSideScroll(page, "dashboard with the share card at 390x844");
  await page.$eval("#share-card", (el) => el.scrollIntoView());
  await shot(page, "share-phone-dark", false);
  await switchTheme(page, "light");
  await shot(page, "share-phone-light", false);
  await page.setViewportSize(DESKTOP);

  // Signed in: the snippets name $TOKEN, never the token itself.
  await page.uncheck("#share-subtree");
  await page.evaluate(async () => (await import("/js/api.js")).setToken("s3cret-of-the-page"));
  await page.focus("#share-filter");                  // the card catches up when used
  await until(page, "the snippets name $TOKEN once signed in",
    () => document.querySelector("#share-curl-pub").textContent.includes("$TOKEN"), null,
    () => document.querySelector("#share-curl-pub").textContent);
  data.signed_in = await readSnippets(page);
  for (const [k, text] of Object.entries(data.signed_in)) {
    check(text.includes("$TOKEN"), `${k} snippet signed in without $TOKEN: ${q(text)}`);
    check(!text.includes("s3cret"), `${k} snippet carries the real token: ${q(text)}`);
  }
  await page.evaluate(async () => (await import("/js/api.js")).setToken(""));

  // The Python side runs the snippets, then serves the <mqtt-live> ones on another origin.
  const { embed_page: embedPage } = await step("snippets", { plain: data.plain, subtree: data.subtree, signed_in: data.signed_in }, 60_000);
  const other = await newPage(context, "mqtt-live snippet on another origin");
  await other.setViewportSize({ width: 800, height: 600 });
  await goto(other, embedPage);
  await expectAttr(other, "#plain mqtt-live", "state", "open");
  await expectAttr(other, "#subtree mqtt-live", "state", "open");
  await expectText(other, ".value", cfg.payload, { host: "#plain mqtt-live" });
  mark("embed-open");
  await expectText(other, ".value", cfg.live_payload, { host: "#plain mqtt-live" });
  await until(other, "the subtree element's log lists the live value",
    (v) => [...(document.querySelector("#subtree mqtt-live")?.shadowRoot?.querySelectorAll(".log li .v") ?? [])].some((li) => li.textContent.trim() === v),
    cfg.live_payload,
    () => [...(document.querySelector("#subtree mqtt-live")?.shadowRoot?.querySelectorAll(".log li") ?? [])].map((li) => li.textContent));
  await step("embed-live");
  await shot(other, "share-embed-other-origin");
  await violations(page, "dashboard (share)");
  await violations(other, "mqtt-live snippet");
  return data;
}

// 1280x800 with the share and call cards open beside the log and the message card: each card
// keeps the room it needs (the log some rows, the message card its whole text), and the column
// scrolls instead of squeezing one of them to a sliver.
async function roomForEveryCard(page) {
  const got = await page.evaluate(() => {
    const height = (sel) => document.querySelector(sel).getBoundingClientRect().height;
    const clipped = (sel) => document.querySelector(sel).scrollHeight > document.querySelector(sel).clientHeight + 1;
    return {
      log: height("#log"), share: height("#share-card"), call: height("#call-card"),
      detailClipped: clipped("#detail-card"), columnScrolls: clipped(".col-main"),
    };
  });
  check(got.log >= 150, `the log has ${got.log} px with the share and call cards open: ${JSON.stringify(got)}`);
  check(got.share >= 200 && got.call >= 200, `the share or call card is squeezed: ${JSON.stringify(got)}`);
  check(!got.detailClipped, `the message card is cut off: ${JSON.stringify(got)}`);
  check(got.columnScrolls, `the cards do not fit at 1280x800, yet the column does not scroll: ${JSON.stringify(got)}`);
  await shot(page, "share-call-open-1280x800-light");
}

async function call(context) {
  const data = {};
  const page = await dashboard(context);
  await expectAttr(page, "#call-toggle", "aria-expanded", "false");
  await page.focus("#call-toggle");
  await page.keyboard.press("Enter");                 // keyboard opens the card
  await expectAttr(page, "#call-toggle", "aria-expanded", "true");
  await roomForEveryCard(page);

  // A device that answers.
  await setControl(page, "#call-topic", cfg.answered_topic);
  await setControl(page, "#call-body", cfg.request_body);
  await setControl(page, "#call-timeout", 3000);
  await page.click("#call-send");
  await expectAttr(page, "#call-status", "data-state", "ok");
  await expectText(page, "#call-payload", cfg.reply_payload);
  await expectText(page, "#call-ctype", cfg.reply_content_type);
  await page.$eval("#call-reply", (el) => el.scrollIntoView({ block: "nearest" }));
  await shot(page, "call-reply-light");
  await switchTheme(page, "dark");
  await shot(page, "call-reply-dark");
  await switchTheme(page, "light");

  // Nobody answers: the timeout, in the user's words.
  await setControl(page, "#call-topic", cfg.silent_topic);
  await setControl(page, "#call-timeout", 400);
  await page.click("#call-send");
  await expectAttr(page, "#call-status", "data-state", "error");
  await expectText(page, "#call-status", "No reply within 400 ms");
  check(await page.$eval("#call-reply", (el) => el.hidden), "the old reply still shows after the timeout");
  await expectFailedFetch(504, `/api/v1/request/${cfg.silent_topic}?timeout_ms=400`);

  // A bad timeout is refused before anything is sent.
  await setControl(page, "#call-timeout", "0");
  await page.click("#call-send");
  await expectAttr(page, "#call-status", "data-state", "error");
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(200);
  await expectNoSideScroll(page, "dashboard with the call card at 390x844");
  await page.$eval("#call-card", (el) => el.scrollIntoView());
  await shot(page, "call-phone-light", false);
  await violations(page, "dashboard (call)");
  return data;
}

async function fillForm(page, form) {
  await setControl(page, "#pub-topic", form.topic);
  await setControl(page, "#pub-payload", form.payload);
  await setControl(page, "#pub-qos", form.qos);
  await setControl(page, "#pub-retain", form.retain);
  await setControl(page, "#pub-content-type", form.content_type);
  await setControl(page, "#pub-user-props", form.user_props_text);
}

async function publish(context) {
  const data = { curl: [] };
  const page = await dashboard(context);
  await expectAttr(page, "#pub-history-box", "hidden", "");
  for (const [i, form] of cfg.forms.entries()) {
    await fillForm(page, form);
    await page.evaluate(() => navigator.clipboard.writeText("(nothing copied)"));
    await page.click("#pub-curl");
    await expectText(page, "#pub-curl", "Copied");
    const line = await clipboard(page);
    check(line === await page.$eval("#pub-curl-text", (el) => el.textContent),
      `the clipboard ${q(line)} is not the line shown`);
    data.curl.push(line);
    await page.evaluate(() => document.querySelector("#pub-status").removeAttribute("data-state"));
    await page.click("#pub-send");
    await expectAttr(page, "#pub-status", "data-state", "ok");
    await step("form-sent", { index: i, curl: line }, 30_000);   // the Python side runs the line
  }

  // History: newest first; a click on the older puts it back into the form.
  const entries = () => page.$$eval("#pub-history .pub-hist", (els) => els.map((e) => e.dataset.topic));
  await until(page, "two history entries", (n) => document.querySelectorAll("#pub-history .pub-hist").length === n,
    cfg.forms.length, () => document.querySelector("#pub-history")?.textContent);
  data.history = await entries();
  await page.reload({ waitUntil: "load", timeout: T });
  await expectAttr(page, "#conn-state", "data-state", "connected");
  data.history_after_reload = await entries();
  await page.$eval("#pub-history", (el) => el.scrollIntoView({ block: "nearest" }));
  await shot(page, "publish-history-light");
  await page.click('#pub-history li:last-child .pub-hist');
  const older = cfg.forms[0];
  data.refilled = await page.evaluate(() => ({
    topic: document.querySelector("#pub-topic").value,
    payload: document.querySelector("#pub-payload").value,
    qos: Number(document.querySelector("#pub-qos").value),
    retain: document.querySelector("#pub-retain").checked,
    content_type: document.querySelector("#pub-content-type").value,
    user_props_text: document.querySelector("#pub-user-props").value,
  }));
  for (const k of Object.keys(data.refilled))
    check(q(data.refilled[k]) === q(older[k]), `refilled ${k} is ${q(data.refilled[k])}, published ${q(older[k])}`);
  await switchTheme(page, "dark");
  await shot(page, "publish-history-dark");
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(200);
  await expectNoSideScroll(page, "dashboard with the publish history at 390x844");
  await page.$eval("#pub-history", (el) => el.scrollIntoView());
  await shot(page, "publish-history-phone-dark", false);
  await violations(page, "dashboard (publish)");
  return data;
}

export default async (context) => {
  const parts = { share, call, publish };
  check(parts[cfg.part], `cfg.part ${q(cfg.part)} is not one of ${Object.keys(parts)}`);
  return parts[cfg.part](context);
};
