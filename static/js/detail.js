// js/detail.js — the message detail card: the selected message (a log line) or the selected topic's
// latest, whole, as Text, folding JSON, a hex dump or Base64; its flags and MQTT 5 properties; and
// what changed since the topic's previous message. Keeps the last two messages of each topic only.

import { h } from "./dom.js";
import { byteDiff, describeChange, hunks, jsonDiff, lineDiff } from "./diff.js";
import { decoded } from "./message.js";
import { base64, hex, hexRows, lenientText } from "./payload.js";
import { clock } from "./time.js";

const MAX_TOPICS = 5000; // topics whose last two messages are kept; the least recent go first
const MAX_HEX = 64 * 1024; // bytes of a hex dump (4,096 rows); the rest is counted, not shown
const MAX_JSON_NODES = 5000; // lines of the JSON view; beyond it "…"
const OPEN_DEPTH = 4; // JSON objects and arrays deeper than this start folded...
const OPEN_SIZE = 100; // ...and so do those with more members
const MAX_DIFF_LINES = 400;

const VIEWS = ["text", "json", "hex", "base64"];

/** The card's elements are found by id in @root (the #detail-card section). */
export function createDetail(root) {
	const $ = (id) => root.querySelector(`#${id}`);
	const els = {
		topic: $("detail-topic"),
		mode: $("detail-mode"),
		latest: $("detail-latest"),
		body: $("detail-body"),
		empty: $("detail-empty"),
		meta: $("detail-meta"),
		view: $("detail-view"),
		diffSummary: $("detail-diff-summary"),
		diff: $("detail-diff"),
	};
	const tabs = new Map(VIEWS.map((v) => [v, root.querySelector(`[role=tab][data-view="${v}"]`)]));

	const kept = new Map(); // topic -> {prev, last}, least recently written first
	let topic = null;
	let pinned = null; // the message picked in the log, or null to follow the topic's latest
	let shown = null; // the message on screen
	let view = null; // the tab the user chose for this selection, or null for the default
	let dirty = false;
	const folds = new Map(); // JSON path -> open, as the user toggled it for this topic

	function current() {
		if (pinned) return pinned;
		const k = topic !== null && kept.get(topic);
		return k ? k.last : null;
	}

	// The message before @msg of its topic, when it is still kept; undefined when it is not known.
	function previous(msg) {
		const k = kept.get(msg.topic);
		if (!k) return undefined;
		if (k.last === msg) return k.prev;
		return undefined;
	}

	function defaultView(d) {
		if (d.kind === "json") return "json";
		if (d.kind === "binary") return "hex";
		return "text";
	}

	function available(d, v) {
		if (v === "json") return d.kind === "json";
		if (v === "text") return d.kind !== "binary";
		return true;
	}

	function render() {
		const msg = current();
		els.body.hidden = !msg;
		els.empty.hidden = !!msg;
		root.dataset.state = msg ? "shown" : "empty";
		els.topic.textContent = topic ?? "";
		els.topic.title = topic ?? "";
		els.mode.hidden = !msg;
		els.latest.hidden = !pinned || pinned === (kept.get(topic) || {}).last;
		if (!msg) {
			shown = null;
			els.empty.querySelector("strong").textContent = topic ? "No message kept" : "No message selected";
			return;
		}
		els.mode.textContent = pinned ? "from the log" : "latest";
		els.mode.title = pinned ? "The message picked in the log" : "The topic's latest message, updated live";
		const d = decoded(msg);
		const active = view && available(d, view) ? view : defaultView(d);
		for (const [v, tab] of tabs) {
			tab.disabled = !available(d, v);
			tab.setAttribute("aria-selected", String(v === active));
			tab.tabIndex = v === active ? 0 : -1;
		}
		els.view.setAttribute("aria-labelledby", tabs.get(active).id);
		els.view.dataset.view = active;
		shown = msg;
		els.meta.replaceChildren(...metaRows(msg, d));
		els.view.replaceChildren(viewOf(msg, d, active));
		renderDiff(msg, d);
	}

	function metaRows(msg, d) {
		const rows = [];
		const row = (key, label, ...value) => rows.push(h("div.meta-row", { dataset: { prop: key } },
			h("dt", { text: label }), h("dd", null, ...value)));
		row("time", "Time", h("time", { datetime: new Date(msg.time).toISOString(), title: new Date(msg.time).toString(), text: clock(msg.time) }));
		row("qos", "QoS", String(msg.qos));
		row("retain", "Retain", msg.retain ? "yes" : "no");
		row("size", "Size", `${d.size.toLocaleString()} ${d.size === 1 ? "byte" : "bytes"}`);
		if (msg.contentType) row("content-type", "Content type", msg.contentType);
		if (msg.payloadFormatIndicator !== null && msg.payloadFormatIndicator !== undefined) {
			const n = Number(msg.payloadFormatIndicator);
			row("payload-format", "Payload format", `${n} · ${n === 1 ? "UTF-8 text" : "bytes"}`);
		}
		if (msg.messageExpiryInterval !== null && msg.messageExpiryInterval !== undefined)
			row("expiry", "Message expiry", `${msg.messageExpiryInterval} s`);
		if (msg.responseTopic) row("response-topic", "Response topic", msg.responseTopic);
		if (msg.correlationData) {
			const cd = msg.correlationData;
			row("correlation", "Correlation data",
				h("span.corr-text", { title: "as UTF-8 text", text: lenientText(cd) }),
				h("span.corr-hex", { title: "as hex", text: hex(cd, cd.length) }));
		}
		const up = msg.userProperties;
		if (up && Object.keys(up).length) {
			const items = [];
			for (const [k, v] of Object.entries(up))
				for (const one of Array.isArray(v) ? v : [v])
					items.push(h("li", { dataset: { key: k } }, h("span.up-key", { text: k }), "=", h("span.up-value", { text: String(one) })));
			row("user-properties", "User properties", h("ul.user-props", null, ...items));
		}
		return rows;
	}

	function viewOf(msg, d, v) {
		if (v === "json") return jsonTree(d.value);
		if (v === "hex") {
			const rows = hexRows(msg.bytes, MAX_HEX).map((r) => h("div.hex-row", null,
				h("span.hex-off", { text: r.offset }), h("span.hex-bytes", { text: r.hex }), h("span.hex-ascii", { text: r.ascii })));
			if (msg.bytes.length > MAX_HEX) rows.push(h("div.hex-more", { text: `… ${(msg.bytes.length - MAX_HEX).toLocaleString()} more bytes` }));
			if (!rows.length) rows.push(h("div.hex-more", { text: "(empty)" }));
			return h("div.hex-dump", null, ...rows);
		}
		if (v === "base64") return h("pre.detail-b64", { text: base64(msg.bytes) });
		return h("pre.detail-text", { text: d.text });
	}

	// JSON as indented lines; objects and arrays fold (<details>), their path in data-path.
	function jsonTree(value) {
		let budget = MAX_JSON_NODES;
		const comma = (last) => (last ? null : h("span.j-punct", { text: "," }));
		const keyOf = (key, inArray) => (key === null || inArray ? null : h("span.j-key", { text: `${JSON.stringify(key)}: ` }));
		const node = (key, v, path, depth, last, inArray) => {
			if (--budget < 0) return budget === -1 ? h("div.j-line.j-more", { text: "…" }) : null;
			const container = v !== null && typeof v === "object";
			const entries = container ? (Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v)) : null;
			if (!container || entries.length === 0) {
				const type = v === null ? "null" : Array.isArray(v) ? "punct" : typeof v;
				const text = container ? (Array.isArray(v) ? "[]" : "{}") : JSON.stringify(v);
				return h("div.j-line", { dataset: { path } }, keyOf(key, inArray), h(`span.j-${type}.j-value`, { text }), comma(last));
			}
			const arr = Array.isArray(v);
			const n = entries.length;
			const user = folds.get(path);
			const open = user ?? (depth < OPEN_DEPTH && n <= OPEN_SIZE);
			const children = [];
			entries.forEach(([k, x], i) => {
				const child = node(k, x, path === "" ? String(k) : `${path}.${k}`, depth + 1, i === n - 1, arr);
				if (child) children.push(child);
			});
			const count = arr ? `${n} ${n === 1 ? "item" : "items"}` : `${n} ${n === 1 ? "key" : "keys"}`;
			return h("details.j-node", { open: open || null, dataset: { path } },
				h("summary.j-line", { title: path || "(whole value)" }, keyOf(key, inArray), h("span.j-punct", { text: arr ? "[" : "{" }),
					h("span.j-fold", null, h("span.j-count", { text: ` ${count} ` }), h("span.j-punct", { text: arr ? "]" : "}" }), comma(last))),
				h("div.j-children", null, ...children),
				h("div.j-line.j-close", null, h("span.j-punct", { text: arr ? "]" : "}" }), comma(last)));
		};
		return h("div.json-tree", null, node(null, value, "", 0, true, false));
	}

	function renderDiff(msg, d) {
		const prev = previous(msg);
		els.diff.replaceChildren();
		delete els.diff.dataset.kind;
		if (prev === undefined || prev === null) {
			els.diffSummary.textContent = prev === null || kept.get(msg.topic)?.last === msg
				? "The first message of this topic seen here."
				: "The message before this one is no longer kept.";
			return;
		}
		const pd = decoded(prev);
		if (d.kind === "json" && pd.kind === "json") {
			const { changes, truncated } = jsonDiff(pd.value, d.value);
			els.diff.dataset.kind = "json";
			const counts = { changed: 0, added: 0, removed: 0 };
			for (const c of changes) counts[c.kind]++;
			const parts = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`);
			els.diffSummary.textContent = parts.length
				? `${parts.join(", ")}${truncated ? " (first " + changes.length + " shown)" : ""} since ${clock(prev.time)}`
				: `Same JSON value as at ${clock(prev.time)}`;
			els.diff.append(h("ul.diff-list", null, ...changes.map((c) => h(`li.diff-${c.kind}`,
				{ dataset: { path: c.path, kind: c.kind } },
				h("span.diff-mark", { "aria-hidden": "true", text: c.kind === "added" ? "+" : c.kind === "removed" ? "−" : "~" }),
				h("span.visually-hidden", { text: `${c.kind}: ` }),
				h("span.diff-text", { text: describeChange(c) })))));
			return;
		}
		if (d.kind !== "binary" && pd.kind !== "binary") {
			const ops = lineDiff(pd.text, d.text);
			const changed = ops.filter((o) => o.op !== " ").length;
			els.diff.dataset.kind = "text";
			if (!changed) {
				els.diffSummary.textContent = `Same text as at ${clock(prev.time)}`;
				return;
			}
			const removed = ops.filter((o) => o.op === "-").length;
			els.diffSummary.textContent = `${removed} ${removed === 1 ? "line" : "lines"} removed, ${changed - removed} added since ${clock(prev.time)}`;
			const lines = hunks(ops).slice(0, MAX_DIFF_LINES).map((o) => o === null
				? h("div.diff-gap", { text: "⋯" })
				: h(`div.diff-line${o.op === "-" ? ".diff-removed" : o.op === "+" ? ".diff-added" : ""}`,
					{ dataset: { op: o.op } }, `${o.op} ${o.text}`));
			els.diff.append(h("div.diff-lines", null, ...lines));
			return;
		}
		const b = byteDiff(prev.bytes, msg.bytes);
		els.diff.dataset.kind = "binary";
		els.diffSummary.textContent = b.changed
			? `binary: ${b.changed.toLocaleString()} ${b.changed === 1 ? "byte" : "bytes"} changed` +
				(b.oldSize !== b.newSize ? ` (size ${b.oldSize} → ${b.newSize} bytes)` : "")
			: `binary: the same ${b.newSize} bytes as at ${clock(prev.time)}`;
	}

	// Tabs: click, or arrows / Home / End between the enabled ones (the ARIA tabs pattern).
	const tablist = root.querySelector("[role=tablist]");
	tablist.addEventListener("click", (e) => {
		const tab = e.target.closest("[role=tab]");
		if (!tab || tab.disabled) return;
		view = tab.dataset.view;
		render();
	});
	tablist.addEventListener("keydown", (e) => {
		const enabled = [...tabs.values()].filter((t) => !t.disabled);
		const i = enabled.indexOf(e.target);
		if (i < 0) return;
		let next = null;
		if (e.key === "ArrowRight") next = enabled[(i + 1) % enabled.length];
		else if (e.key === "ArrowLeft") next = enabled[(i - 1 + enabled.length) % enabled.length];
		else if (e.key === "Home") next = enabled[0];
		else if (e.key === "End") next = enabled[enabled.length - 1];
		else return;
		e.preventDefault();
		view = next.dataset.view;
		render();
		next.focus();
	});
	// (toggle does not bubble: caught on the way down)
	els.view.addEventListener("toggle", (e) => {
		const el = e.target;
		if (el.matches?.("details.j-node")) folds.set(el.dataset.path, el.open);
	}, true);
	els.latest.addEventListener("click", () => {
		pinned = null;
		render();
	});

	return {
		/** Keeps @msg as its topic's last message (the last one becomes the previous). */
		record(msg) {
			const k = kept.get(msg.topic);
			if (k) {
				kept.delete(msg.topic); // re-inserted: the Map's order is the order of last writes
				k.prev = k.last;
				k.last = msg;
				kept.set(msg.topic, k);
			} else {
				kept.set(msg.topic, { prev: null, last: msg });
				if (kept.size > MAX_TOPICS) kept.delete(kept.keys().next().value);
			}
			if (msg.topic === topic) dirty = true;
		},
		/** Shows @msg (picked in the log), or the latest message of @t when @msg is null. */
		show(t, msg = null) {
			if (t !== topic) {
				folds.clear();
				view = null;
			}
			topic = t;
			pinned = msg;
			dirty = false;
			render();
			els.body.scrollTop = 0; // a new selection starts at its top; live updates keep the place
		},
		/** Writes what changed since the last flush (the dashboard's one DOM pass). */
		flush() {
			if (!dirty) return;
			dirty = false;
			if (!pinned || current() !== shown) render();
			else els.latest.hidden = pinned === (kept.get(topic) || {}).last;
		},
	};
}
