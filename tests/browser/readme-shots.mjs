// tests/browser/readme-shots.mjs — the README's pictures of the dashboard (doc/dashboard*.png),
// taken in headless Chromium from a running bridge that nobody else is using, with demo traffic
// it publishes itself through the REST API. Not a test: run it after scripts/run.sh started the
// bridge, from the repository root:
//
//   node tests/browser/readme-shots.mjs http://127.0.0.1:8080 doc

import { chromium } from "playwright-core";

const [base = "http://127.0.0.1:8080", out = "doc"] = process.argv.slice(2);
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

async function publish(topic, body, retain = false) {
  const path = topic.split("/").map(encodeURIComponent).join("/");
  const resp = await fetch(`${base}/api/v1/publish/${path}${retain ? "?retain=true" : ""}`, {
    method: "POST",
    headers: { "Content-Type": typeof body === "string" ? "text/plain" : "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  if (!resp.ok) throw new Error(`publish ${topic}: ${resp.status} ${await resp.text()}`);
}

const sleep = (ms) => new Promise((f) => setTimeout(f, ms));

// A few devices for about ten seconds: numbers, JSON telemetry, retained states.
async function traffic(rounds) {
  for (let i = 0; i < rounds; i++) {
    const wave = Math.sin(i / 3);
    await publish("home/kitchen/temp", (21 + wave).toFixed(1), true);
    await publish("home/kitchen/humidity", String(44 + (i % 3)), true);
    await publish("devices/d1/telemetry", { sensors: { temp: +(22 + wave * 1.5).toFixed(2), hum: 41 + (i % 4) }, battery: 87 - Math.floor(i / 4), ok: true });
    await publish("devices/d2/telemetry", { sensors: { temp: +(19.5 - wave).toFixed(2), hum: 55 }, battery: 64, ok: i % 5 !== 4 });
    if (i % 4 === 0) await publish("home/livingroom/lamp/state", { on: i % 8 === 0, brightness: 80 }, true);
    await sleep(400);
  }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  await publish("home/livingroom/lamp/state", { on: true, brightness: 80 }, true);
  const page = await browser.newPage({ viewport: DESKTOP, colorScheme: "light" });
  await page.goto(`${base}/`);
  await page.waitForSelector('#conn-state[data-state="connected"]');
  const running = traffic(25);
  await page.waitForSelector('#tree [data-topic="devices/d2/telemetry"]');
  // two series of one JSON field, from two devices
  await page.click('#tree [data-topic="devices/d2/telemetry"] .value');
  await page.fill("#chart-path", "sensors.temp");
  await page.click("#chart-add-series");
  await page.click('#tree [data-topic="devices/d1/telemetry"] .value');
  await page.fill("#chart-path", "sensors.temp");
  await page.click("#chart-add-series");
  await page.selectOption("#chart-window", "60");
  await running;
  await page.click('#tree [data-topic="devices/d1/telemetry"] .value');
  await page.click("#detail-tab-json");
  await sleep(600);
  await page.screenshot({ path: `${out}/dashboard.png` });
  await page.click("#theme-toggle");
  await sleep(300);
  await page.screenshot({ path: `${out}/dashboard-dark.png` });

  // Share / embed of a subtree, with its live preview
  await page.click("#theme-toggle");
  await page.click('#tree [data-topic="home/kitchen/temp"] .value');
  await page.click("#share-toggle");
  await page.fill("#share-filter", "home/kitchen");
  await page.check("#share-subtree");
  await page.waitForSelector("#share-preview:not([hidden])");
  await sleep(1500);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.$eval("#share-preview", (el) => el.scrollIntoView({ block: "end" }));
  await sleep(300);
  await page.screenshot({ path: `${out}/dashboard-share.png` });
  await page.click("#share-toggle");

  await page.setViewportSize(PHONE);
  await page.click("#theme-toggle");
  await sleep(300);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${out}/dashboard-phone.png` });
} finally {
  await browser.close();
}
