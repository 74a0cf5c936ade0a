// tests/browser/lib.mjs — what every browser scenario uses: the step protocol with the Python
// side (see drive.mjs), pages whose errors fail the run, screenshots, and bounded waits and checks
// on a page's DOM. Scenarios live in drive.mjs and in scenarios/NAME.mjs.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const CHROMIUM = "/usr/bin/chromium";
export const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--no-first-run", "--disable-component-update", "--disable-sync"];
export const T = 10_000;             // bound for anything a page should do "now" (ms)
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

// ------------------------------------------------------------------------------------------------
// talking to the Python side

export const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const lines = [];
let lineWaiter = null;
let stdinClosed = false;
const rl = createInterface({ input: process.stdin });
rl.on("line", (l) => { lines.push(l); if (lineWaiter) lineWaiter(); });
rl.on("close", () => { stdinClosed = true; if (lineWaiter) lineWaiter(); });

export async function readLine(timeout, what) {
  const deadline = Date.now() + timeout;
  while (!lines.length) {
    if (stdinClosed) throw new Error(`stdin closed while waiting for ${what}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no ${what} on stdin within ${timeout} ms`);
    await new Promise((resolve) => {
      const t = setTimeout(resolve, left);
      lineWaiter = () => { clearTimeout(t); resolve(); };
    });
    lineWaiter = null;
  }
  return lines.shift();
}

/** A point where the Python side acts; resolves with its answer. */
export async function step(name, data = {}, timeout = 20_000) {
  out({ type: "step", name, wait: true, data });
  const answer = JSON.parse(await readLine(timeout, `answer to step '${name}'`));
  if (answer.step !== name) throw new Error(`answer to step '${answer.step}', expected '${name}'`);
  return answer;
}

/** Tells the Python side where the scenario is, without waiting for it. */
export const mark = (name, data = {}) => out({ type: "step", name, wait: false, data });

// ------------------------------------------------------------------------------------------------
// pages, page errors, checks

export const pageErrors = [];
export const screenshots = [];
/** The scenario's configuration (stdin's first line); set by drive.mjs. */
export let cfg;
export function setConfig(c) { cfg = c; }

// Runs in every page before its own scripts: records <mqtt-live> message events and CSP
// violations where the scenario can read them.
export function initScript() {
  window.__mwb = { events: [], violations: [] };
  document.addEventListener("message", (e) => {
    const el = e.composedPath()[0];
    if (el && el.localName === "mqtt-live")
      window.__mwb.events.push({ id: el.id, detail: e.detail, bubbles: e.bubbles, composed: e.composed });
  }, true);
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__mwb.violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} ` +
      `(${e.sourceFile}:${e.lineNumber})`);
  }, true);
}

/** A page whose errors are collected under @label. */
export async function newPage(context, label) {
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(`${label}: uncaught ${err.name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      const loc = msg.location();
      pageErrors.push(`${label}: console.error: ${msg.text()} (${loc.url || "?"}:${loc.lineNumber ?? "?"})`);
    }
  });
  page.on("crash", () => pageErrors.push(`${label}: the page crashed`));
  await page.addInitScript(initScript);
  page.setDefaultTimeout(T);
  return page;
}

export async function goto(page, url) {
  const resp = await page.goto(url, { waitUntil: "load", timeout: T });
  if (!resp || resp.status() !== 200) throw new Error(`GET ${url}: ${resp ? resp.status() : "no answer"}`);
  return resp;
}

export async function violations(page, label) {
  for (const v of await page.evaluate(() => window.__mwb.violations))
    pageErrors.push(`${label}: CSP violation: ${v}`);
}

export async function shot(page, name, fullPage = true) {
  mkdirSync(cfg.artifacts, { recursive: true });
  const path = join(cfg.artifacts, `${name}.png`);
  // A full-page capture paints only what a scroll would show; content-visibility:auto rows below
  // the viewport would come out blank, so they are made visible for the capture (CSSOM, which a
  // page's CSP allows), and put back after.
  const unhidden = fullPage ? await page.evaluate(() => {
    let n = 0;
    for (const el of document.querySelectorAll("body *")) {
      if (getComputedStyle(el).contentVisibility === "auto") {
        el.style.contentVisibility = "visible";
        el.dataset.mwbShot = "";
        n++;
      }
    }
    return n;
  }) : 0;
  await page.screenshot({ path, fullPage, timeout: T, animations: "disabled" });
  if (unhidden) {
    await page.evaluate(() => {
      for (const el of document.querySelectorAll("[data-mwb-shot]")) {
        el.style.contentVisibility = "";
        delete el.dataset.mwbShot;
      }
    });
  }
  screenshots.push(path);
}

export const q = JSON.stringify;

/** Waits until @fn(arg) is truthy in the page; on timeout the error says @what and, when given,
 *  what @actual(arg) read at that moment. */
export async function until(page, what, fn, arg, actual, timeout = T) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    if (!/Timeout/i.test(e.message)) throw e;
    const got = actual ? await page.evaluate(actual, arg).catch((x) => `(unreadable: ${x.message})`) : undefined;
    throw new Error(`${what}: not within ${timeout} ms` + (actual ? `; found ${q(got)}` : ""));
  }
}

// The element @sel (in the document, or in the open shadow root of @host) is in the page.
const find = ({ host, sel }) => {
  const root = host ? document.querySelector(host)?.shadowRoot : document;
  return root ? root.querySelector(sel) : null;
};

export function expectPresent(page, sel, host = null, timeout = T) {
  return until(page, `${host ? host + " >> " : ""}${sel} present`,
    ({ host, sel }) => {
      const root = host ? document.querySelector(host)?.shadowRoot : document;
      return !!(root && root.querySelector(sel));
    }, { host, sel }, null, timeout);
}

export function expectAbsent(page, sel, timeout = T) {
  return until(page, `${sel} gone`, (sel) => !document.querySelector(sel), sel, null, timeout);
}

/** The text of @sel (whitespace at the ends trimmed) becomes exactly @text. */
export function expectText(page, sel, text, { host = null, timeout = T } = {}) {
  return until(page, `${host ? host + " >> " : ""}${sel} text == ${q(text)}`,
    ({ host, sel, text }) => {
      const root = host ? document.querySelector(host)?.shadowRoot : document;
      const el = root && root.querySelector(sel);
      return !!el && el.textContent.trim() === text;
    }, { host, sel, text },
    ({ host, sel }) => {
      const root = host ? document.querySelector(host)?.shadowRoot : document;
      const el = root && root.querySelector(sel);
      return el ? el.textContent.trim() : "(no such element)";
    }, timeout);
}

/** Attribute @attr of @sel becomes @value. */
export function expectAttr(page, sel, attr, value, timeout = T) {
  return until(page, `${sel} [${attr}=${q(value)}]`,
    ({ sel, attr, value }) => document.querySelector(sel)?.getAttribute(attr) === value,
    { sel, attr, value },
    ({ sel, attr }) => {
      const el = document.querySelector(sel);
      return el ? el.getAttribute(attr) : "(no such element)";
    }, timeout);
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

/** Fills a form control, whatever its kind (select, checkbox, text). */
export async function setControl(page, sel, value) {
  const kind = await page.$eval(sel, (el) => el.localName === "select" ? "select" :
    el.type === "checkbox" ? "checkbox" : "text");
  if (kind === "select") await page.selectOption(sel, String(value));
  else if (kind === "checkbox") await page.setChecked(sel, !!value);
  else await page.fill(sel, String(value));
}

/** The background colour that shows behind the page: rgb numbers and relative luminance. */
export function background(page) {
  return page.evaluate(() => {
    const parse = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    for (const el of [document.body, document.documentElement]) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) {
        const lin = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return { rgb: c.slice(0, 3), luminance: 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] };
      }
    }
    return { rgb: [255, 255, 255], luminance: 1 };   // transparent all the way: the canvas is white
  });
}

/** Clicks @toggle until <html data-theme> is @theme (at most 3 clicks: light/dark/auto cycles). */
export async function switchTheme(page, theme) {
  for (let i = 0; i < 4; i++) {
    if (await page.evaluate(() => document.documentElement.dataset.theme) === theme) return;
    if (i === 3) break;
    await page.click("#theme-toggle");
    await page.waitForTimeout(50);
  }
  throw new Error(`#theme-toggle never made <html data-theme="${theme}">; it is ` +
    q(await page.evaluate(() => document.documentElement.dataset.theme ?? null)));
}

/** The page fits its viewport's width (no sideways scrolling on a phone). */
export async function expectNoSideScroll(page, label) {
  const w = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  check(w.scroll <= w.client + 1, `${label}: the page is ${w.scroll}px wide in a ${w.client}px viewport (sideways scrolling)`);
}

/**
 * The dashboard at / in a new page (@label for its errors, @viewport), connected and its "#"
 * subscription live: from the step "sync" the Python side publishes to cfg.sync_topic until the
 * tree shows it, then answers "synced". The page opens in the light theme.
 */
export async function openDashboard(context, label, viewport = DESKTOP) {
  const page = await newPage(context, label);
  await page.setViewportSize(viewport);
  await page.emulateMedia({ colorScheme: "light" });
  await goto(page, cfg.base + "/");
  await expectAttr(page, "#conn-state", "data-state", "connected");
  await expectPresent(page, '#subs li[data-filter="#"]');
  mark("sync");
  await expectPresent(page, `#tree [data-topic=${q(cfg.sync_topic)}]`);
  await step("synced");
  return page;
}

/**
 * Chromium logs every fetch answered with an error status as a console error, which fails the
 * run. When a scenario causes one on purpose, this waits for the entry (@status, and @url in
 * it) and takes exactly that one out of the page errors.
 */
export async function expectFailedFetch(status, url) {
  const is = (e) => e.includes(`status of ${status}`) && e.includes(url);
  for (const deadline = Date.now() + T; !pageErrors.some(is) && Date.now() < deadline;)
    await new Promise((resolve) => setTimeout(resolve, 50)); // the console event comes on its own
  const i = pageErrors.findIndex(is);
  check(i >= 0, `no ${status} of ${url} in the page's log: ${q(pageErrors)}`);
  pageErrors.splice(i, 1);
}

