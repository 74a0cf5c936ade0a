// js/topic-tree.js — the topic tree: one row per topic level with the message count and rate of its
// subtree, the last value, age and retain flag of every topic seen; levels collapse; a filter box
// narrows it to the topics that match; a row's "Clear retained…" clears the retained messages of
// that topic or subtree through the REST API.
//
// Cost model (a thousand topics at ten messages a second each): ingest() touches no DOM for a known
// topic, it only counts and marks rows dirty; flush() (a few times a second, from dashboard.js)
// writes the dirty rows that are shown (not inside a collapsed level, not filtered out) and in or
// near the scroll box (computed from one row's position: rows are of one height); any other row is
// written when it is shown or scrolls into view. Rows far from the scroll box are empty until
// they first come near it, and have their parts hidden after (.off, tree.css), so the browser
// styles, lays out and paints only those near it.
// tick() (once a second) computes every subtree's rate and writes rates and ages of the rows in
// view. The filter is evaluated for all
// topics only when its text changes, and for each new topic once.

import { h, setText } from "./dom.js";
import { decoded } from "./message.js";
import { num, plural } from "./numbers.js";
import { preview } from "./payload.js";
import { age } from "./time.js";
import { filterError } from "./topic-filter.js";
import { createRetainedClearer } from "./tree-clear.js";

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const RATE_SLOTS = 5; // the rate is over the last RATE_SLOTS ticks (seconds)
const FILTER_DEBOUNCE_MS = 150;
// New topics added to the DOM per flush: the first burst of a busy broker (a thousand new topics
// in a moment) is spread over a few flushes instead of one long task.
const NEW_PER_FLUSH = 50;
const NEW_BUDGET_MS = 8; // ...and no more than this long a flush is spent on adding them
const VIEW_MARGIN_PX = 200; // rows this far outside the scroll box are written too
// Rows this far outside the scroll box are rendered; the others have content-visibility: hidden
// (.off, tree.css), so the browser neither lays them out nor paints them. (content-visibility:
// auto did the same, but its observer of every row recomputed two thousand targets a frame.)
const RENDER_MARGIN_PX = 800;

function rateText(r) {
	if (!(r > 0.05)) return "0/s";
	if (r < 10) return `${r.toFixed(1)}/s`;
	if (r < 1000) return `${Math.round(r)}/s`;
	return `${(r / 1000).toFixed(1)}k/s`;
}

/** Whether the MQTT topic @topic matches the filter split into @levels (MQTT 5 §4.7). */
export function filterMatches(levels, topic) {
	const t = topic.split("/");
	if (t[0].startsWith("$") && (levels[0] === "+" || levels[0] === "#")) return false;
	for (let i = 0; i < levels.length; i++) {
		if (levels[i] === "#") return true; // also the parent level: "a/#" matches "a"
		if (i >= t.length) return false;
		if (levels[i] !== "+" && levels[i] !== t[i]) return false;
	}
	return levels.length === t.length;
}

/** A test for the filter box's text: {test(topic), error} or null for no filter. */
function compileFilter(text) {
	if (!text) return null;
	if (text.includes("+") || text.includes("#")) {
		const error = filterError(text);
		if (error) return { error, test: () => false };
		const levels = text.split("/");
		return { error: "", test: (t) => filterMatches(levels, t) };
	}
	const lower = text.toLowerCase();
	return { error: "", test: (t) => t.toLowerCase().includes(lower) };
}

class Node {
	constructor(parent, name) {
		this.parent = parent;
		this.name = name;
		this.path = parent && parent.parent ? `${parent.path}/${name}` : name;
		this.depth = parent ? parent.depth + 1 : -1;
		this.children = new Map();
		this.sorted = []; // children in display order
		this.msg = null;
		this.count = 0; // messages on this topic
		this.total = 0; // messages in this subtree, this topic included
		this.topics = 0; // topics seen in this subtree, this node included
		this.matches = 0; // topics of this subtree that match the filter
		this.hist = []; // this.total at the last ticks (a ring, see tick())
		this.rate = 0;
		this.expanded = true;
		this.filteredOut = false;
		this.ageText = "";
		this.tick = -1;
		this.dirty = false; // see createTopicTree()
		this.nameEl = null; // the row's parts, once built (buildParts())
		this.posinset = 0; // its place among its shown siblings (aria-posinset), and their number
		this.setsize = 0;
		this.posWritten = 0; // those written on its row
		this.sizeWritten = 0;
	}
}

/**
 * Builds the tree in @container (#tree); finds the rest of its card (.tree-card: #tree-filter,
 * #tree-note, #tree-status, #tree-clear-dialog) by itself. @onSelect(topic) when the user selects a
 * topic; @onCountChange(topics) when the number of topics changed, at a flush.
 */
export function createTopicTree(container, emptyEl, { onSelect, onCountChange, requestFlush = () => {} }) {
	const card = container.closest(".tree-card") || document;
	const filterInput = card.querySelector("#tree-filter");
	const noteEl = card.querySelector("#tree-note");
	const askClear = createRetainedClearer(card.querySelector("#tree-status"),
		card.querySelector("#tree-clear-dialog"));

	const root = new Node(null, "");
	root.group = h("ul.tree-group", { role: "group" });
	container.append(root.group);
	const byTopic = new Map();
	const allNodes = [];
	// node.dirty: its figures changed since its row was last written (a flag, not a Set: ingest()
	// marks three rows a message)
	// Only rows in (or near) the scroll box are written; the others stay dirty until a scroll
	// brings them in (then a flush is asked for). Which rows those are is computed, not read
	// from each row's layout: every shown row is one row high (tree.css), so the rows in the box
	// are a slice of the shown rows in display order (order, rebuilt when a level opens or
	// closes, the filter changes or a row is added), found from the first row's position and
	// height (two reads a flush instead of one per row). (An IntersectionObserver on every row,
	// or content-visibility: auto on them, recomputed two thousand targets on every frame.)
	container.addEventListener("scroll", () => {
		renderWindow(); // now, before the frame is painted: no blank rows while scrolling
		requestFlush();
	}, { passive: true });
	// A taller box (a resized window, another layout): the rows that come into it, at the next flush.
	if (typeof ResizeObserver === "function") new ResizeObserver(() => requestFlush()).observe(container);
	let order = null; // the shown nodes in display order; null: to be rebuilt
	let ticks = 0; // tick() calls so far; node.tick: the count when its rate and age were written
	const rendered = new Set(); // nodes whose rows are rendered (not .off)
	const posDirty = new Set(); // parents whose children's aria-posinset/setsize need writing
	let topicsChanged = false;
	const arriving = new Map(); // topic -> {msg, count}: seen, not in the tree yet (NEW_PER_FLUSH)
	let noteDirty = false;
	let selected = null;
	let focusRow = null;
	let matcher = null;
	let filterTimer = 0;

	// ---- rows ---------------------------------------------------------------------------------

	// A row as built, cloned for each node (a burst of new topics builds hundreds of rows; a
	// clone costs less than building each element). The row starts empty and .off; its parts (name,
	// value, figures, clear button) are put in when renderWindow() first finds it near the scroll
	// box (buildParts()): a thousand topics out of view cost a thousand empty rows, not eleven
	// thousand elements to style.
	const rowTemplate = h("li.tree-node.leaf", { role: "none" },
		h("div.tree-row.off", {
			role: "treeitem", "aria-selected": "false", tabindex: "-1", "aria-keyshortcuts": "Delete",
		}),
		h("ul.tree-group", { role: "group" }));
	const partsTemplate = document.createDocumentFragment();
	partsTemplate.append(
		h("span.twisty", { "aria-hidden": "true" }),
		h("span.name"),
		h("span.value"),
		h("span.below"),
		h("span.badge.retain.tree-retained", { text: "retained", title: "The last message came with the retain flag", hidden: true }),
		h("span.count"),
		h("span.rate", { title: "messages per second, last few seconds" }),
		h("span.age", { title: "since the last message" }),
		h("button.tree-clear.ghost.icon", { type: "button", tabindex: "-1", title: "Clear retained…" },
			h("span.visually-hidden", { text: "Clear retained…" })));

	function buildRow(node) {
		node.li = rowTemplate.cloneNode(true);
		node.row = node.li.firstChild;
		node.group = node.li.lastChild;
		node.row.setAttribute("aria-level", String(node.depth + 1));
		node.row.dataset.path = node.path;
		node.row.style.setProperty("--depth", String(node.depth));
		node.row.node = node;
	}

	/** Puts the parts in @node's row (once); its figures are written at the next writeDirty(). */
	function buildParts(node) {
		if (node.nameEl) return;
		node.row.append(partsTemplate.cloneNode(true));
		[node.twisty, node.nameEl, node.valueEl, node.belowEl, node.retainEl, node.countEl, node.rateEl,
			node.ageEl, node.clearEl] = node.row.children;
		node.nameEl.textContent = node.name;
		if (node.name === "") node.nameEl.classList.add("empty-level"); // shown as "(empty)" by CSS
		if (focusRow === node.row) node.clearEl.tabIndex = 0;
		node.dirty = true;
	}

	/** Writes the dirty rows that are in view, and positions in sets that changed (after a flush,
	 *  an expand, a filter change). A row in view whose rate and age were not written at the last
	 *  tick (it was out of view then) gets them now. */
	function writeDirty() {
		for (const parent of posDirty) writePositions(parent);
		posDirty.clear();
		renderWindow();
		const now = Date.now();
		for (const node of inView(VIEW_MARGIN_PX)) { // the others: written when they are in view
			writePosition(node);
			if (node.dirty) {
				writeRow(node, now);
				node.dirty = false;
			} else if (node.tick !== ticks) {
				writeTicked(node, now);
			}
		}
	}

	/** The shown nodes in display order. */
	function shownOrder() {
		if (!order) {
			order = [];
			eachShown(root, (node) => order.push(node));
		}
		return order;
	}

	/** The shown nodes whose rows are in the scroll box or @margin px from it (reads the layout
	 *  of one row). */
	function inView(margin) {
		const list = shownOrder();
		if (!list.length) return list;
		const first = list[0].row.getBoundingClientRect();
		if (!(first.height > 0)) return []; // the tree is not rendered: written when it is
		const box = container.getBoundingClientRect();
		const rel = first.top - box.top; // the first row's top, from the box's (scrolled)
		const from = Math.max(0, Math.floor((-rel - margin) / first.height));
		const to = Math.ceil((box.height - rel + margin) / first.height);
		return list.slice(from, Math.max(from, to));
	}

	/** Rows near the scroll box rendered, the others not (.off). */
	function renderWindow() {
		const near = inView(RENDER_MARGIN_PX);
		if (!near.length && order && order.length) return; // not rendered itself: as it was
		const keep = new Set(near);
		for (const node of rendered) {
			if (!keep.has(node)) {
				node.row.classList.add("off");
				rendered.delete(node);
			}
		}
		for (const node of near) {
			if (!rendered.has(node)) {
				buildParts(node);
				node.row.classList.remove("off");
				rendered.add(node);
			}
		}
	}

	/** Calls @fn(node) for every shown row under @node. */
	function eachShown(node, fn) {
		for (const child of node.sorted) {
			if (child.filteredOut) continue;
			fn(child);
			if (child.expanded && child.sorted.length) eachShown(child, fn);
		}
	}

	function insert(parent, node) {
		// Binary search for the first sibling that sorts after the new one.
		let lo = 0;
		let hi = parent.sorted.length;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			if (collator.compare(parent.sorted[mid].name, node.name) <= 0) lo = mid + 1;
			else hi = mid;
		}
		const before = parent.sorted[lo];
		parent.sorted.splice(lo, 0, node);
		parent.children.set(node.name, node);
		parent.group.insertBefore(node.li, before ? before.li : null);
		posDirty.add(parent);
		order = null;
		if (parent.li && parent.sorted.length === 1) {
			parent.li.classList.remove("leaf");
			parent.row.setAttribute("aria-expanded", String(parent.expanded));
			parent.dirty = true;
		}
	}

	/** The row of a topic seen for the first time, and its missing ancestors. */
	function addTopic(topic) {
		const node = nodeFor(topic);
		byTopic.set(topic, node);
		node.row.dataset.topic = topic;
		node.li.classList.add("topic");
		const match = !!matcher && matcher.test(topic);
		for (let p = node; p !== root; p = p.parent) {
			p.topics++;
			if (match) p.matches++;
			p.dirty = true;
		}
		if (matcher) {
			for (let p = node; p !== root; p = p.parent) hideFiltered(p); // the new levels too
			noteDirty = true;
		}
		if (!focusRow) setFocusRow(node.row);
		return node;
	}

	/** Puts up to NEW_PER_FLUSH arriving topics in the tree (as many as NEW_BUDGET_MS allows), with
	 *  what they received meanwhile. */
	function addArriving() {
		const until = performance.now() + NEW_BUDGET_MS;
		let n = 0;
		for (const [topic, a] of arriving) {
			if (n++ === NEW_PER_FLUSH || (n > 1 && performance.now() > until)) break;
			arriving.delete(topic);
			const node = addTopic(topic);
			node.msg = a.msg;
			node.count += a.count;
			for (let p = node; p !== root; p = p.parent) p.total += a.count;
		}
		topicsChanged = true;
		if (arriving.size) requestFlush();
	}

	/** The node of @topic, made with its missing ancestors. */
	function nodeFor(topic) {
		let node = root;
		for (const name of topic.split("/")) {
			let child = node.children.get(name);
			if (!child) {
				child = new Node(node, name);
				buildRow(child);
				insert(node, child);
				allNodes.push(child);
			}
			node = child;
		}
		return node;
	}

	// (the writers below skip a row whose parts are not built: buildParts() marks it dirty)
	function writeRow(node, now) {
		if (!node.nameEl) return;
		node.tick = ticks;
		const msg = node.msg;
		if (msg) {
			const d = decoded(msg);
			setText(node.valueEl, preview(msg.bytes, d));
			node.valueEl.classList.toggle("binary", d.kind === "binary");
			if (node.retainEl.hidden === msg.retain) node.retainEl.hidden = !msg.retain;
			node.ageText = age(msg.time, now);
			setText(node.ageEl, node.ageText);
		}
		setText(node.countEl, num(node.total));
		const title = node.sorted.length
			? `${plural(node.total, "message")} in this subtree${node.msg ? `, ${num(node.count)} on this topic` : ""}`
			: plural(node.count, "message");
		if (node.countEl.title !== title) node.countEl.title = title;
		writeRate(node);
		writeBelow(node);
	}

	/** What a tick changes on @node's row: its rate and age. */
	function writeTicked(node, now) {
		if (!node.nameEl) return;
		node.tick = ticks;
		writeRate(node);
		if (node.msg) {
			const text = age(node.msg.time, now);
			if (text !== node.ageText) {
				node.ageText = text;
				node.ageEl.textContent = text;
			}
		}
	}

	function writeRate(node) {
		const text = rateText(node.rate);
		setText(node.rateEl, text);
		node.rateEl.classList.toggle("zero", text === "0/s");
	}

	function writeBelow(node) {
		if (!node.nameEl) return;
		const below = node.topics - (node.msg ? 1 : 0);
		setText(node.belowEl, below > 0 && (!node.msg || !node.expanded) ? plural(below, "topic") : "");
		const what = node.sorted.length ? `under ${node.path || "(empty)"}` : `of ${node.path || "(empty)"}`;
		const label = `Clear retained messages ${what}…`;
		if (node.clearEl.getAttribute("aria-label") !== label) node.clearEl.setAttribute("aria-label", label);
	}

	/** The places of @parent's shown children in their set; written on a row when it is in view
	 *  (writePosition()): a burst of new topics changes the set size of a thousand rows a flush. */
	function writePositions(parent) {
		const shown = parent.sorted.filter((c) => !c.filteredOut);
		shown.forEach((c, i) => {
			c.posinset = i + 1;
			c.setsize = shown.length;
		});
	}

	function writePosition(node) {
		if (node.posWritten === node.posinset && node.sizeWritten === node.setsize) return;
		node.posWritten = node.posinset;
		node.sizeWritten = node.setsize;
		node.row.setAttribute("aria-posinset", String(node.posinset));
		node.row.setAttribute("aria-setsize", String(node.setsize));
	}

	/** Opens or closes @node; @write false: the caller writes the rows now in view (writeDirty()). */
	function setExpanded(node, expanded, write = true) {
		if (node.expanded === expanded || !node.sorted.length) return;
		node.expanded = expanded;
		order = null;
		node.li.classList.toggle("collapsed", !expanded);
		node.row.setAttribute("aria-expanded", String(expanded));
		writeBelow(node);
		if (write) writeDirty(); // (rows that come into view: rendered and written)
	}

	function select(node) {
		if (!node.msg || node === selected) return;
		if (selected) selected.row.setAttribute("aria-selected", "false");
		selected = node;
		node.row.setAttribute("aria-selected", "true");
		setFocusRow(node.row);
		for (let p = node.parent; p && p.li; p = p.parent) setExpanded(p, true);
		onSelect(node.path);
	}

	// Roving tabindex: one row is in the tab order, and the clear button of that row after it.
	function setFocusRow(row) {
		if (focusRow === row) return;
		if (focusRow) {
			focusRow.tabIndex = -1;
			if (focusRow.node.clearEl) focusRow.node.clearEl.tabIndex = -1;
		}
		focusRow = row;
		row.tabIndex = 0;
		if (row.node.clearEl) row.node.clearEl.tabIndex = 0; // (else when its parts are built)
	}

	function visibleRows() {
		return Array.from(container.querySelectorAll(".tree-row")).filter((r) => r.offsetParent !== null);
	}

	// ---- the filter ---------------------------------------------------------------------------

	function hideFiltered(node) {
		const out = !!matcher && node.matches === 0;
		if (out === node.filteredOut) return;
		node.filteredOut = out;
		order = null;
		node.li.classList.toggle("filtered-out", out);
		posDirty.add(node.parent);
	}

	function applyFilter() {
		clearTimeout(filterTimer);
		filterTimer = 0;
		const text = filterInput ? filterInput.value.trim() : "";
		matcher = compileFilter(text);
		for (const node of allNodes) node.matches = 0;
		if (matcher) {
			for (const [topic, node] of byTopic) {
				if (!matcher.test(topic)) continue;
				for (let p = node; p !== root; p = p.parent) p.matches++;
			}
		}
		for (const node of allNodes) {
			hideFiltered(node);
			// Show the matches: open every level above one.
			if (matcher && node.matches > (node.msg && matcher.test(node.path) ? 1 : 0)) setExpanded(node, true, false);
		}
		writeNote();
		writeDirty();
	}

	function writeNote() {
		noteDirty = false;
		if (!noteEl) return;
		const shown = allNodes.reduce((n, node) => n + (node.parent === root ? node.matches : 0), 0);
		const text = !matcher ? "" : matcher.error || `${shown.toLocaleString()} of ${plural(byTopic.size, "topic")}`;
		setText(noteEl, text);
		noteEl.classList.toggle("error", !!(matcher && matcher.error));
	}

	function clearFilter() {
		if (!filterInput || !filterInput.value) return;
		filterInput.value = "";
		applyFilter();
	}

	if (filterInput) {
		filterInput.addEventListener("input", () => {
			clearTimeout(filterTimer);
			filterTimer = setTimeout(applyFilter, FILTER_DEBOUNCE_MS);
		});
		filterInput.addEventListener("keydown", (e) => {
			if (e.key === "Escape" && filterInput.value) {
				e.preventDefault();
				clearFilter();
			} else if (e.key === "Enter") {
				e.preventDefault();
				applyFilter();
			} else if (e.key === "ArrowDown") {
				const first = visibleRows()[0];
				if (first) {
					e.preventDefault();
					setFocusRow(first);
					first.focus();
				}
			}
		});
	}

	// ---- events -------------------------------------------------------------------------------

	container.addEventListener("click", (e) => {
		const row = e.target.closest(".tree-row");
		if (!row) return;
		const node = row.node;
		setFocusRow(row);
		if (e.target.closest(".tree-clear")) askClear(node);
		else if (e.target.closest(".twisty") || !node.msg) setExpanded(node, !node.expanded);
		else select(node);
	});

	container.addEventListener("keydown", (e) => {
		if (e.target.closest(".tree-clear")) return; // the button's own Enter / Space
		const row = e.target.closest(".tree-row");
		if (!row || e.altKey || e.ctrlKey || e.metaKey) return;
		const node = row.node;
		let target = null;
		if (e.key === "ArrowDown" || e.key === "ArrowUp") {
			const rows = visibleRows();
			const i = rows.indexOf(row) + (e.key === "ArrowDown" ? 1 : -1);
			target = rows[i];
		} else if (e.key === "Home" || e.key === "End") {
			const rows = visibleRows();
			target = e.key === "Home" ? rows[0] : rows[rows.length - 1];
		} else if (e.key === "ArrowRight") {
			if (node.sorted.length && !node.expanded) setExpanded(node, true);
			else if (node.sorted.length) target = node.sorted.find((c) => !c.filteredOut)?.row;
		} else if (e.key === "ArrowLeft") {
			if (node.sorted.length && node.expanded) setExpanded(node, false);
			else if (node.parent && node.parent.row) target = node.parent.row;
		} else if (e.key === "Enter" || e.key === " ") {
			if (node.msg) select(node);
			else setExpanded(node, !node.expanded);
		} else if (e.key === "Delete") {
			askClear(node);
		} else {
			return;
		}
		e.preventDefault();
		if (target) {
			setFocusRow(target);
			target.focus();
		}
	});

	// ---- the module's face --------------------------------------------------------------------

	const startTime = performance.now();
	const tickTimes = []; // a ring of RATE_SLOTS tick times; node.hist holds node.total at each
	let tickHead = 0;

	return {
		/** Records @msg; the DOM follows at the next flush(). */
		ingest(msg) {
			const node = byTopic.get(msg.topic);
			if (!node) {
				const a = arriving.get(msg.topic);
				if (a) {
					a.msg = msg;
					a.count++;
				} else {
					arriving.set(msg.topic, { msg, count: 1 });
					topicsChanged = true;
				}
				return;
			}
			node.msg = msg;
			node.count++;
			for (let p = node; p !== root; p = p.parent) {
				p.total++;
				p.dirty = true;
			}
		},
		/** Writes what changed since the last flush, on the rows that can be seen. */
		flush() {
			if (arriving.size) addArriving();
			if (topicsChanged) {
				topicsChanged = false;
				emptyEl.hidden = byTopic.size > 0;
				noteDirty = true;
				onCountChange(byTopic.size + arriving.size);
			}
			if (noteDirty && matcher) writeNote();
			writeDirty();
		},
		/** Once a second: every subtree's rate; rates and ages of the shown rows. */
		tick() {
			const now = performance.now();
			const oldest = ticks < RATE_SLOTS ? 0 : tickHead;
			const since = ticks ? tickTimes[oldest] : startTime;
			const secs = Math.max((now - since) / 1000, 0.001);
			for (const node of allNodes) {
				const before = ticks ? node.hist[oldest] || 0 : 0; // no sample yet: none before it
				node.rate = (node.total - before) / secs;
				node.hist[tickHead] = node.total;
			}
			tickTimes[tickHead] = now;
			tickHead = (tickHead + 1) % RATE_SLOTS;
			ticks++;
			// the rows in view; the others are written when they come into view (node.tick)
			const wall = Date.now();
			for (const node of inView(VIEW_MARGIN_PX)) writeTicked(node, wall);
		},
		/** Selects @topic when it has been seen (clearing a filter that hides it). */
		select(topic) {
			const node = byTopic.get(topic);
			if (node) {
				if (node.filteredOut) clearFilter();
				select(node);
				node.row.scrollIntoView({ block: "nearest" });
			}
		},
		expandAll(expanded) {
			for (const node of allNodes) setExpanded(node, expanded, false);
			writeDirty();
		},
		/** The last message of @topic, or undefined. */
		last(topic) {
			const node = byTopic.get(topic);
			return node ? node.msg : arriving.get(topic)?.msg;
		},
		/** The number of topics seen. */
		get size() {
			return byTopic.size + arriving.size;
		},
	};
}
