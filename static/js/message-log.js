// js/message-log.js — the live message log, newest first, bounded to MAX rows. Messages are queued
// and written once per animation frame in one DocumentFragment, so a burst costs one reflow.

import { h } from "./dom.js";
import { decoded } from "./message.js";
import { pretty } from "./payload.js";
import { clock } from "./time.js";

const MAX = 500;
const KIND_LABEL = { json: "JSON", binary: "binary", empty: "empty" };

function row(msg) {
	const d = decoded(msg);
	const badges = [h("span.badge", { text: `QoS ${msg.qos}` })];
	if (msg.retain) badges.push(h("span.badge.retain", { text: "retained" }));
	if (KIND_LABEL[d.kind]) badges.push(h("span.badge.kind", { text: KIND_LABEL[d.kind] }));
	if (msg.contentType) badges.push(h("span.badge.ctype", { text: msg.contentType, title: "content type" }));
	const props = msg.userProperties
		? Object.entries(msg.userProperties).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(", ") : v}`).join("  ")
		: "";
	return h("li.msg", { dataset: { topic: msg.topic, kind: d.kind } },
		h("div.msg-head", null,
			h("time.msg-time", { text: clock(msg.time) }),
			h("span.msg-topic", { title: "Select in the topic tree", text: msg.topic }),
			h("span.msg-badges", null, ...badges)),
		h("pre.payload", { text: d.kind === "empty" ? "(empty)" : pretty(msg.bytes, d) }),
		props ? h("div.msg-props", { title: "user properties", text: props }) : null);
}

/** The log in @list (#log); @onTopic(topic) when a row's topic is clicked. */
export function createMessageLog(list, { empty, pauseButton, clearButton, note, onTopic, requestFlush }) {
	let pending = [];
	let rows = 0;
	let total = 0;
	let paused = false;
	let skipped = 0;

	function updateNote() {
		note.textContent = paused && skipped
			? `paused · ${skipped} new`
			: rows >= MAX ? `last ${MAX}` : "";
	}

	function setPaused(p) {
		paused = p;
		pauseButton.setAttribute("aria-pressed", String(p));
		pauseButton.classList.toggle("active", p);
		pauseButton.querySelector(".pause-label").textContent = p ? "Resume" : "Pause";
		if (!p) {
			skipped = 0;
			requestFlush();
		}
		updateNote();
	}

	pauseButton.addEventListener("click", () => setPaused(!paused));
	clearButton.addEventListener("click", () => {
		pending = [];
		list.replaceChildren();
		rows = 0;
		skipped = 0;
		empty.hidden = false;
		updateNote();
	});
	list.addEventListener("click", (e) => {
		const topic = e.target.closest(".msg-topic");
		if (topic) return onTopic(topic.parentElement.parentElement.dataset.topic);
		const pre = e.target.closest(".payload");
		if (pre && !getSelection().toString()) pre.parentElement.classList.toggle("expanded");
	});

	return {
		/** Queues @msg; it shows at the next flush() unless paused. */
		add(msg) {
			total++;
			pending.push(msg);
			if (pending.length > 2 * MAX) pending = pending.slice(-MAX);
			if (paused) {
				skipped++;
				if (skipped % 50 === 1) updateNote();
			}
		},
		/** Writes the queued messages: newest on top, then trims to MAX rows. */
		flush() {
			if (paused || pending.length === 0) {
				if (paused) updateNote();
				return;
			}
			const batch = pending.length > MAX ? pending.slice(-MAX) : pending;
			pending = [];
			const frag = document.createDocumentFragment();
			for (let i = batch.length - 1; i >= 0; i--) frag.append(row(batch[i]));
			list.prepend(frag);
			rows += batch.length;
			if (rows > MAX) {
				// Drop the oldest rows in one operation.
				const range = document.createRange();
				range.setStartBefore(list.children[MAX]);
				range.setEndAfter(list.lastElementChild);
				range.deleteContents();
				rows = MAX;
			}
			empty.hidden = true;
			updateNote();
		},
		get total() {
			return total;
		},
	};
}
