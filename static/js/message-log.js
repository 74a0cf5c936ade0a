// js/message-log.js — the live message log, newest first, bounded to MAX rows. Messages are queued
// and written once per animation frame in one DocumentFragment, so a burst costs one reflow. Rows
// take the keyboard with a roving tabindex: arrows, Home and End move, Enter selects the topic.
// A click on a row picks that very message (the detail card shows it).

import { h } from "./dom.js";
import { decoded } from "./message.js";
import { pretty } from "./payload.js";
import { onSelection } from "./selection.js";
import { clock } from "./time.js";

const MAX = 500;
// Rows written per flush: under a burst (thousands of messages a second) the log shows the
// newest of each flush and says how many it passed over, instead of building rows nobody can read.
const MAX_PER_FLUSH = 40;
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
	return h("li.msg", { dataset: { topic: msg.topic, kind: d.kind }, tabindex: "-1" },
		h("div.msg-head", null,
			h("time.msg-time", { text: clock(msg.time) }),
			h("span.msg-topic", { title: "Select in the topic tree", text: msg.topic }),
			h("span.msg-badges", null, ...badges)),
		h("pre.payload", { text: d.kind === "empty" ? "(empty)" : pretty(msg.bytes, d) }),
		props ? h("div.msg-props", { title: "user properties", text: props }) : null);
}

/** The log in @list (#log); @onTopic(topic) when a row's topic is clicked, @onPick(msg) when
 *  elsewhere on a row. */
export function createMessageLog(list, { empty, pauseButton, clearButton, note, onTopic, onPick, requestFlush }) {
	const msgOf = new WeakMap(); // row -> its message; a dropped row frees it
	let pickedRow = null; // the row whose message is selected (aria-current)
	let pending = [];
	let rows = 0;
	let total = 0;
	let listed = 0; // total at the last flush
	let passedOver = 0; // messages the last flush did not list (MAX_PER_FLUSH)
	let paused = false;
	let skipped = 0;
	let focusRow = null; // the row in the tab order

	function setFocusRow(row) {
		if (focusRow === row) return;
		if (focusRow) focusRow.tabIndex = -1;
		focusRow = row;
		if (row) row.tabIndex = 0;
	}

	function updateNote() {
		note.textContent = paused && skipped
			? `paused · ${skipped} new`
			: passedOver ? `busy · ${passedOver.toLocaleString()} not listed`
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
		listed = total;
		passedOver = 0;
		skipped = 0;
		focusRow = null;
		pickedRow = null;
		empty.hidden = false;
		updateNote();
	});
	list.addEventListener("click", (e) => {
		const li = e.target.closest(".msg");
		if (li) setFocusRow(li);
		const topic = e.target.closest(".msg-topic");
		if (topic) return onTopic(topic.parentElement.parentElement.dataset.topic);
		if (li && onPick && msgOf.has(li)) {
			onPick(msgOf.get(li)); // (the selection listener below unmarks the row picked before)
			if (pickedRow !== li) {
				pickedRow = li;
				li.setAttribute("aria-current", "true");
			}
		}
		const pre = e.target.closest(".payload");
		if (pre && !getSelection().toString()) pre.parentElement.classList.toggle("expanded");
	});
	onSelection(({ msg }) => {
		if (pickedRow && msgOf.get(pickedRow) !== msg) {
			pickedRow.removeAttribute("aria-current");
			pickedRow = null;
		}
	});
	list.addEventListener("keydown", (e) => {
		const li = e.target.closest(".msg");
		if (!li || e.altKey || e.ctrlKey || e.metaKey) return;
		let target = null;
		if (e.key === "ArrowDown") target = li.nextElementSibling;
		else if (e.key === "ArrowUp") target = li.previousElementSibling;
		else if (e.key === "Home") target = list.firstElementChild;
		else if (e.key === "End") target = list.lastElementChild;
		else if (e.key === "Enter") onTopic(li.dataset.topic);
		else return;
		e.preventDefault();
		if (target) {
			setFocusRow(target);
			target.focus();
		}
	});

	return {
		/** Queues @msg; it shows at the next flush() unless paused. */
		add(msg) {
			total++;
			pending.push(msg);
			if (pending.length > 2 * MAX_PER_FLUSH) pending = pending.slice(-MAX_PER_FLUSH);
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
			const batch = pending.length > MAX_PER_FLUSH ? pending.slice(-MAX_PER_FLUSH) : pending;
			passedOver = total - listed - batch.length;
			listed = total;
			pending = [];
			const frag = document.createDocumentFragment();
			for (let i = batch.length - 1; i >= 0; i--) {
				const li = row(batch[i]);
				msgOf.set(li, batch[i]);
				frag.append(li);
			}
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
			if (!focusRow || !focusRow.isConnected) setFocusRow(list.firstElementChild);
			empty.hidden = true;
			updateNote();
		},
		get total() {
			return total;
		},
	};
}
