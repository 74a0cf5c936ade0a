// The dashboard in front of a bridge with auth.mode "tokens": it asks for the token, refuses an
// unknown one, signs in (the token's name in the top bar, its subscribe ACL as the default
// subscriptions), shows a device's message, says "not allowed" next to a refused subscription and
// a refused publish, keeps the sign-in across a reload of the tab, and signs out.

import {
  DESKTOP, T, background, cfg, expectAttr, expectFailedFetch, expectPresent, expectText, goto, mark, newPage, q,
  setControl, shot, step, switchTheme, violations,
} from "../lib.mjs";

async function signInWith(page, token) {
  await expectPresent(page, "#signin[open]");
  await setControl(page, "#signin-token", token);
  await page.click("#signin-submit");
}

export default async (context) => {
  const page = await newPage(context, "dashboard (auth)");
  const data = {};
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: "light" });
  await goto(page, cfg.base + "/");
  await expectPresent(page, "#signin[open]");
  await shot(page, "signin-light");
  await signInWith(page, "not-a-token");
  await expectText(page, "#signin-error", "Unknown token");
  await expectFailedFetch(401, "/api/v1/whoami");

  await signInWith(page, cfg.token);
  await expectText(page, "#auth-who", cfg.token_name);
  await expectAttr(page, "#conn-state", "data-state", "connected");
  data.filters = await page.$$eval("#subs li[data-filter]", (els) => els.map((e) => e.dataset.filter));
  await expectPresent(page, `#subs li[data-filter=${q(cfg.allowed_filter)}][data-status="granted"]`);
  mark("sync");
  await expectPresent(page, `#tree [data-topic=${q(cfg.sync_topic)}]`);
  await step("synced");

  // A filter outside the token's subscribe ACL: refused, said next to the form.
  await setControl(page, "#sub-filter", cfg.refused_filter);
  await page.click("#sub-add");
  await expectText(page, "#sub-error", `${cfg.refused_filter}: not allowed by your token`);
  await expectPresent(page, `#subs li[data-filter=${q(cfg.refused_filter)}][data-status="refused"]`);

  // A publish outside its publish ACL (QoS 1: the bridge answers 0x87).
  await setControl(page, "#pub-topic", cfg.refused_topic);
  await setControl(page, "#pub-payload", "x");
  await setControl(page, "#pub-qos", 1);
  await page.click("#pub-send");
  await expectAttr(page, "#pub-status", "data-state", "error");
  await expectText(page, "#pub-status", "Not allowed by your token");
  await shot(page, "signed-in-light");
  await switchTheme(page, "dark");
  await shot(page, "signed-in-dark");
  data.bg_dark = await background(page);

  // The tab keeps the sign-in (sessionStorage): a reload connects at once.
  await page.reload({ waitUntil: "load", timeout: T });
  await expectAttr(page, "#conn-state", "data-state", "connected");
  data.open_after_reload = await page.$eval("#signin", (d) => d.open);
  await expectText(page, "#auth-who", cfg.token_name);

  // Sign out: forgotten, asked again, not connected.
  await page.click("#auth-signout");
  await expectPresent(page, "#signin[open]");
  data.state_after_signout = await page.$eval("#conn-state", (el) => el.dataset.state);
  data.stored_after_signout = await page.evaluate(() => [sessionStorage.getItem("mwb.token"), localStorage.getItem("mwb.token")]);
  await shot(page, "signin-dark");
  await violations(page, "dashboard (auth)");
  return data;
};
