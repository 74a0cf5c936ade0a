// js/view.js — /view?topic=F: the latest value of every topic matching F, large and live, from
// /api/v1/stream (retained values first). Options: title, unit, theme=light|dark, field=a.b.0,
// access_token; topic may be given more than once.

import { h, setText } from "./dom.js";
import { openStream } from "./event-stream.js";
import { pick, show } from "./json-path.js";
import { age } from "./time.js";
import { filterError } from "./topic-filter.js";

const params = new URLSearchParams(location.search);
// In a query "+" reads as a space, so a level that is a single space was meant as "+".
const filters = params.getAll("topic").map((f) => f.split("/").map((l) => (l === " " ? "+" : l)).join("/"));
const title = params.get("title") || "";
const unit = params.get("unit") || "";
const field = params.get("field") || "";
const theme = params.get("theme");

const root = document.getElementById("view");
const items = document.getElementById("view-items");
const empty = document.getElementById("view-empty");
const state = document.getElementById("view-state");
const titleEl = document.getElementById("view-title");

if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
if (title) {
	titleEl.textContent = title;
	document.title = title;
	root.dataset.titled = "";
} else {
	titleEl.hidden = true;
	if (filters.length) document.title = filters.join(", ");
}
// One plain topic: one big value. Wildcards or several topics: a list.
const single = filters.length === 1 && !/[+#]/.test(filters[0]);
root.dataset.layout = single ? "single" : "list";

const rows = new Map(); // topic -> {el, valueEl, timeEl, ts}

function valueText(msg) {
	if (msg.payload_base64 !== undefined) {
		const n = Math.floor((msg.payload_base64.length * 3) / 4);
		return { text: `${n} bytes`, binary: true };
	}
	const p = msg.payload;
	if (!field) return { text: p === "" ? "—" : p };
	try {
		return { text: show(pick(JSON.parse(p), field)) };
	} catch {
		return { text: "—" };
	}
}

function rowFor(topic) {
	let r = rows.get(topic);
	if (r) return r;
	const valueEl = h("span.value");
	const timeEl = h("span.item-time");
	const el = h("article.item", { dataset: { topic } },
		h("div.item-topic", { title: topic, text: topic }),
		h("div.item-value", null, valueEl, unit ? h("span.unit", { text: unit }) : null),
		timeEl);
	r = { el, valueEl, timeEl, ts: 0 };
	rows.set(topic, r);
	const next = [...rows.keys()].sort().find((t) => t > topic);
	items.insertBefore(el, next ? rows.get(next).el : null);
	empty.hidden = true;
	return r;
}

function onEvent(msg) {
	const r = rowFor(msg.topic);
	const { text, binary } = valueText(msg);
	const changed = r.valueEl.textContent !== text;
	setText(r.valueEl, text);
	r.valueEl.classList.toggle("binary", !!binary);
	r.el.dataset.size = text.length > 40 ? "xl" : text.length > 12 ? "l" : "s";
	r.ts = msg.ts || 0;
	r.retained = !msg.ts;
	writeTime(r, Date.now());
	if (changed && r.seen && r.el.animate) {
		r.valueEl.animate([{ opacity: 0.35 }, { opacity: 1 }], { duration: 450, easing: "ease-out" });
	}
	r.seen = true;
}

function writeTime(r, now) {
	setText(r.timeEl, r.ts ? (now - r.ts < 1000 ? "just now" : `${age(r.ts, now)} ago`) : r.retained ? "retained" : "");
}

const STATE_LABEL = { connecting: "Connecting", open: "Live", error: "Offline" };
function onState(s, retryMs) {
	state.dataset.state = s;
	state.querySelector(".view-state-label").textContent = STATE_LABEL[s];
	state.title = s === "error" ? `Stream closed; retrying in ${Math.round(retryMs / 1000)} s` : STATE_LABEL[s];
}

function fail(message) {
	empty.replaceChildren(h("strong", { text: "Nothing to show" }), h("span", { text: message }));
	empty.hidden = false;
	onState("error", 0);
}

const bad = filters.map(filterError).find(Boolean);
if (!filters.length) {
	fail("Add ?topic=… to the address, e.g. /view?topic=sensors/%23&unit=°C");
} else if (bad) {
	fail(bad);
} else {
	empty.querySelector("code").textContent = filters.join(", ");
	const url = new URL("api/v1/stream", location.href);
	for (const f of filters) url.searchParams.append("topic", f);
	url.searchParams.set("retained", "true");
	const token = params.get("access_token");
	if (token) url.searchParams.set("access_token", token);
	openStream(url, { onEvent, onState });
	setInterval(() => {
		const now = Date.now();
		for (const r of rows.values()) writeTime(r, now);
	}, 1000);
}
