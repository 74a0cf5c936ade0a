// The dashboard in front of a bridge with auth.mode "tokens": it asks for the token, refuses an
// unknown one, signs in (the token's name in the top bar, its subscribe ACL as the default
// subscriptions), shows a device's message, says "Not allowed by your token" next to a refused
// subscription and a refused publish, keeps the sign-in across a reload of the tab, and signs
// out. cfg.mode "none": none of it shows. cfg.passthrough: the broker's own MQTT login is asked
// for too, and its refusal (CONNACK) brings the dialog back with the reason.

import {
  DESKTOP, PHONE, T, background, cfg, check, expectAttr, expectFailedFetch, expectNoSideScroll,
  expectPresent, expectText, goto, mark, newPage, q, setControl, shot, step, switchTheme, until,
  violations,
} from "../lib.mjs";

const dialogOpen = (page) => page.$eval("#signin", (d) => d.open);
const isHidden = (page, sel) => page.$eval(sel, (el) => el.hidden);

/** Waits for the dialog, fills the token (and @more fields), submits with Enter. */
async function signInWith(page, token, more = {}) {
  await expectPresent(page, "#signin[open]");
  await setControl(page, "#signin-token", token);
  for (const [sel, value] of Object.entries(more)) await setControl(page, sel, value);
  await page.press("#signin-token", "Enter");
}

/** auth.mode "none": the page behaves as without sign-in. */
async function noAuth(context) {
  const page = await newPage(context, "dashboard (no auth)");
  await page.setViewportSize(DESKTOP);
  await goto(page, cfg.base + "/");
  await expectAttr(page, "#conn-state", "data-state", "connected");
  await expectPresent(page, '#subs li[data-filter="#"]');
  const data = {
    dialog_open: await dialogOpen(page),
    auth_state_hidden: await isHidden(page, "#auth-state"),
    signin_button_hidden: await isHidden(page, "#auth-signin"),
  };
  await violations(page, "dashboard (no auth)");
  return data;
}

/** The dashboard in a new page (@label), its sign-in dialog open. */
async function openSignIn(context, label) {
  const page = await newPage(context, label);
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: "light" });
  await goto(page, cfg.base + "/");
  await expectPresent(page, "#signin[open]");
  return page;
}

/** mqtt_credentials "passthrough": token for REST, the broker's user name and password for MQTT. */
async function passthrough(context) {
  const page = await openSignIn(context, "dashboard (auth, passthrough)");
  const data = { mqtt_fields_hidden: await isHidden(page, "#signin-mqtt") };
  // a good token, a wrong MQTT password: the broker's CONNACK refusal brings the dialog back
  await signInWith(page, cfg.token, { "#signin-user": cfg.mqtt_user, "#signin-password": "wrong" });
  await until(page, "the refusal next to the sign-in", () => {
    const e = document.getElementById("signin-error");
    return document.getElementById("signin").open && !e.hidden && e.textContent.length > 0;
  });
  data.refusal = await page.$eval("#signin-error", (e) => e.textContent);
  data.state_after_refusal = await page.$eval("#conn-state", (el) => el.dataset.state);
  data.token_kept = await page.evaluate((t) => document.getElementById("signin-token").value === t, cfg.token);
  await shot(page, "passthrough-refused-light");
  await signInWith(page, cfg.token, { "#signin-user": cfg.mqtt_user, "#signin-password": cfg.mqtt_password });
  await expectText(page, "#auth-who", cfg.token_name);
  await expectAttr(page, "#conn-state", "data-state", "connected");
  // the MQTT login is kept for the tab like the token: a reload connects at once
  await page.reload({ waitUntil: "load", timeout: T });
  await expectAttr(page, "#conn-state", "data-state", "connected");
  data.open_after_reload = await dialogOpen(page);
  await violations(page, "dashboard (auth, passthrough)");
  return data;
}

/** mqtt_credentials "bridge": the token is the MQTT password. */
async function bridge(context) {
  const page = await openSignIn(context, "dashboard (auth)");
  const data = { mqtt_fields_hidden: await isHidden(page, "#signin-mqtt") };
  data.state_before_signin = await page.$eval("#conn-state", (el) => el.dataset.state);
  await shot(page, "signin-light");

  // Escape leaves the dialog (nothing traps the keyboard); "Sign in" in the top bar brings it back.
  await page.keyboard.press("Escape");
  await until(page, "the dialog closed by Escape", () => !document.getElementById("signin").open);
  await until(page, "the top bar's Sign in", () => !document.getElementById("auth-signin").hidden);
  await page.click("#auth-signin");
  await expectPresent(page, "#signin[open]");

  await signInWith(page, "not-a-token");
  await expectText(page, "#signin-error", "Unknown token");
  await expectAttr(page, "#signin-token", "aria-invalid", "true");
  await expectFailedFetch(401, "/api/v1/whoami");
  check(await dialogOpen(page), "the dialog closed after an unknown token");

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
  await expectText(page, "#sub-error", `Not allowed by your token: ${cfg.refused_filter}`);
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
  data.open_after_reload = await dialogOpen(page);
  await expectText(page, "#auth-who", cfg.token_name);
  await page.setViewportSize(PHONE);
  await expectNoSideScroll(page, "signed in at phone width");
  data.who_visible_on_phone = await page.$eval("#auth-who", (el) => el.getBoundingClientRect().width > 0);
  await shot(page, "signed-in-phone-dark", false);
  await page.setViewportSize(DESKTOP);
  data.stored_after_reload = await page.evaluate(() => [sessionStorage.getItem("mwb.token") !== null, localStorage.getItem("mwb.token") !== null]);

  // Sign out: forgotten, asked again, not connected.
  await page.click("#auth-signout");
  await expectPresent(page, "#signin[open]");
  data.state_after_signout = await page.$eval("#conn-state", (el) => el.dataset.state);
  data.stored_after_signout = await page.evaluate(() => [sessionStorage.getItem("mwb.token"), localStorage.getItem("mwb.token")]);
  data.auth_state_hidden_after_signout = await isHidden(page, "#auth-state");
  await shot(page, "signin-dark");
  await page.setViewportSize(PHONE);
  await expectNoSideScroll(page, "sign-in at phone width");
  await shot(page, "signin-phone-dark", false);
  await violations(page, "dashboard (auth)");
  return data;
}

export default async (context) => {
  if (cfg.mode === "none") return noAuth(context);
  return cfg.passthrough ? passthrough(context) : bridge(context);
};
