// js/message-log.js — the live message log, newest first, bounded to MAX messages. Messages are
// queued and written once per animation frame in one DocumentFragment, so a burst costs one reflow.
// Only the newest WINDOW messages have rows in the DOM; scrolling near the end of the list adds the
// next MORE of the MAX kept, and back at the top the list shrinks to WINDOW again: under a busy
// broker each flush lays out a few dozen rows, not hundreds. Rows take the keyboard with a roving
// tabindex: arrows, Home and End move, Enter selects the topic. A click on a row picks that very
// message (the detail card shows it).

import { h } from "./dom.js";
import { decoded } from "./message.js";
import { pretty } from "./payload.js";
import { onSelection } from "./selection.js";
import { clock } from "./time.js";

const MAX = 500;
const WINDOW = 30; // rows in the DOM while the list is scrolled to its top (a tall screen shows about 10)
const MORE = 50; // rows added when a scroll comes near the end of those in the DOM
const MORE_MARGIN_PX = 600; // "near": this far from the end
// Rows written per flush: under a burst (thousands of messages a second) the log shows the
// newest of each flush and says how many it passed over, instead of building rows nobody can read.
const MAX_PER_FLUSH = 20;
const KIND_LABEL = { json: "JSON", binary: "binary", empty: "empty" };

// Whether content type @ctype tells more than the kind badge (JSON, or none for text) does: the
// row's room goes to the topic otherwise. The message card shows it in every case.
function saysMore(ctype, kind) {
	const type = ctype.split(";")[0].trim().toLowerCase();
	return type !== "" && !(kind === "json" && type === "application/json") && !(kind === "text" && type === "text/plain");
}

function row(msg, picked) {
	const d = decoded(msg);
	const badges = [h("span.badge", { text: `QoS ${msg.qos}` })];
	if (msg.retain) badges.push(h("span.badge.retain", { text: "retained" }));
	if (KIND_LABEL[d.kind]) badges.push(h("span.badge.kind", { text: KIND_LABEL[d.kind] }));
	if (saysMore(msg.contentType, d.kind)) badges.push(h("span.badge.ctype", { text: msg.contentType, title: "content type" }));
	const props = msg.userProperties
		? Object.entries(msg.userProperties).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(", ") : v}`).join("  ")
		: "";
	return h("li.msg", { dataset: { topic: msg.topic, kind: d.kind }, tabindex: "-1", "aria-current": picked === msg ? "true" : null },
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
	let picked = null; // that message (its row may be out of the DOM)
	let pending = [];
	let kept = []; // the last MAX messages listed, newest first
	let rows = 0; // rows in the DOM: those of kept[0 .. rows - 1]
	let want = WINDOW; // rows to keep in the DOM
	let atTop = true; // the list is scrolled to its top (kept by the scroll listener: no layout read)
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
				: kept.length >= MAX ? `last ${MAX}` : "";
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
		kept = [];
		rows = 0;
		want = WINDOW;
		atTop = true;
		picked = null;
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
			picked = msgOf.get(li);
			if (pickedRow !== li) {
				pickedRow = li;
				li.setAttribute("aria-current", "true");
			}
		}
		const pre = e.target.closest(".payload");
		if (pre && !getSelection().toString()) pre.parentElement.classList.toggle("expanded");
	});
	onSelection(({ msg }) => {
		if (picked !== msg) picked = null;
		if (pickedRow && msgOf.get(pickedRow) !== msg) {
			pickedRow.removeAttribute("aria-current");
			pickedRow = null;
		}
	});

	/** Rows for kept[rows .. rows + @n - 1], at the end of the list. */
	function appendRows(n) {
		const end = Math.min(kept.length, rows + n);
		if (end <= rows) return;
		const frag = document.createDocumentFragment();
		for (let i = rows; i < end; i++) frag.append(rowFor(kept[i]));
		list.append(frag);
		rows = end;
	}

	function rowFor(msg) {
		const li = row(msg, picked);
		msgOf.set(li, msg);
		if (msg === picked) pickedRow = li;
		return li;
	}

	// Near the end of the rows in the DOM: the next MORE of those kept.
	list.addEventListener("scroll", () => {
		atTop = list.scrollTop === 0;
		if (rows >= kept.length) return;
		if (list.scrollTop + list.clientHeight < list.scrollHeight - MORE_MARGIN_PX) return;
		want = rows + MORE;
		appendRows(MORE);
	}, { passive: true });
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
			const fresh = [];
			for (let i = batch.length - 1; i >= 0; i--) {
				fresh.push(batch[i]);
				frag.append(rowFor(batch[i]));
			}
			list.prepend(frag);
			rows += batch.length;
			kept = fresh.concat(kept);
			if (kept.length > MAX) kept.length = MAX;
			if (atTop) want = WINDOW; // back at the top: the window shrinks again
			const keep = Math.min(Math.max(want, batch.length), kept.length);
			if (rows > keep) {
				// Drop the oldest rows in one operation.
				const range = document.createRange();
				range.setStartBefore(list.children[keep]);
				range.setEndAfter(list.lastElementChild);
				range.deleteContents();
				rows = keep;
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
