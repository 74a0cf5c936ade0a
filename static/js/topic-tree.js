// js/topic-tree.js — the topic tree: one row per topic level, the last value, message count and age
// of every topic seen; levels collapse; a click selects a topic. DOM work is batched: ingest() only
// marks rows dirty, flush() (once per animation frame) writes them, tick() (once a second) ages them.

import { h, setText } from "./dom.js";
import { decoded } from "./message.js";
import { preview } from "./payload.js";
import { age } from "./time.js";

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

class Node {
	constructor(parent, name) {
		this.parent = parent;
		this.name = name;
		this.path = parent && parent.parent ? `${parent.path}/${name}` : name;
		this.depth = parent ? parent.depth + 1 : -1;
		this.children = new Map();
		this.sorted = []; // children in display order
		this.msg = null;
		this.count = 0;
		this.topics = 0; // topics seen in this subtree, this node included
		this.expanded = true;
		this.ageText = "";
	}
}

/**
 * Builds the tree in @container (#tree). @onSelect(topic) when the user selects a topic;
 * @onCountChange(topics) when the number of topics changes.
 */
export function createTopicTree(container, emptyEl, { onSelect, onCountChange }) {
	const root = new Node(null, "");
	root.group = h("ul.tree-group", { role: "group" });
	container.append(root.group);
	const byTopic = new Map();
	const dirty = new Set();
	let selected = null;
	let focusRow = null;

	function buildRow(node) {
		node.twisty = h("span.twisty", { "aria-hidden": "true" });
		node.nameEl = h("span.name", { text: node.name });
		if (node.name === "") node.nameEl.classList.add("empty-level"); // shown as "(empty)" by CSS
		node.valueEl = h("span.value");
		node.belowEl = h("span.below");
		node.countEl = h("span.count", { title: "messages" });
		node.ageEl = h("span.age", { title: "since the last message" });
		node.row = h("div.tree-row", { role: "treeitem", "aria-selected": "false", tabindex: "-1" },
			node.twisty, node.nameEl, node.valueEl, node.belowEl, node.countEl, node.ageEl);
		node.row.style.setProperty("--depth", String(node.depth));
		node.row.node = node;
		node.group = h("ul.tree-group", { role: "group" });
		node.li = h("li.tree-node.leaf", { role: "none" }, node.row, node.group);
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
		if (parent.li && parent.sorted.length === 1) {
			parent.li.classList.remove("leaf");
			parent.row.setAttribute("aria-expanded", String(parent.expanded));
		}
	}

	function nodeFor(topic) {
		let node = root;
		for (const name of topic.split("/")) {
			let child = node.children.get(name);
			if (!child) {
				child = new Node(node, name);
				buildRow(child);
				insert(node, child);
			}
			node = child;
		}
		return node;
	}

	function writeRow(node) {
		const msg = node.msg;
		if (msg) {
			setText(node.valueEl, preview(msg.bytes, decoded(msg)));
			node.valueEl.classList.toggle("binary", decoded(msg).kind === "binary");
			setText(node.countEl, String(node.count));
			node.ageText = age(msg.time, Date.now());
			setText(node.ageEl, node.ageText);
		}
		writeBelow(node);
	}

	function writeBelow(node) {
		const below = node.topics - (node.msg ? 1 : 0);
		setText(node.belowEl, below > 0 && (!node.msg || !node.expanded) ? `${below} topic${below === 1 ? "" : "s"}` : "");
	}

	function setExpanded(node, expanded) {
		if (node.expanded === expanded || !node.sorted.length) return;
		node.expanded = expanded;
		node.li.classList.toggle("collapsed", !expanded);
		node.row.setAttribute("aria-expanded", String(expanded));
		writeBelow(node);
		if (expanded) ageVisible(node, Date.now());
	}

	function select(node) {
		if (!node.msg || node === selected) return;
		if (selected) {
			selected.row.setAttribute("aria-selected", "false");
		}
		selected = node;
		node.row.setAttribute("aria-selected", "true");
		setFocusRow(node.row);
		for (let p = node.parent; p && p.li; p = p.parent) setExpanded(p, true);
		onSelect(node.path);
	}

	function setFocusRow(row) {
		if (focusRow === row) return;
		if (focusRow) focusRow.tabIndex = -1;
		focusRow = row;
		row.tabIndex = 0;
	}

	function ageVisible(node, now) {
		for (const child of node.sorted) {
			if (child.msg) {
				const text = age(child.msg.time, now);
				if (text !== child.ageText) {
					child.ageText = text;
					child.ageEl.textContent = text;
				}
			}
			if (child.expanded && child.sorted.length) ageVisible(child, now);
		}
	}

	function visibleRows() {
		return Array.from(container.querySelectorAll(".tree-row")).filter((r) => r.offsetParent !== null);
	}

	container.addEventListener("click", (e) => {
		const row = e.target.closest(".tree-row");
		if (!row) return;
		const node = row.node;
		setFocusRow(row);
		if (e.target.closest(".twisty") || !node.msg) setExpanded(node, !node.expanded);
		else select(node);
	});

	container.addEventListener("keydown", (e) => {
		const row = e.target.closest(".tree-row");
		if (!row) return;
		const node = row.node;
		let target = null;
		if (e.key === "ArrowDown" || e.key === "ArrowUp") {
			const rows = visibleRows();
			const i = rows.indexOf(row) + (e.key === "ArrowDown" ? 1 : -1);
			target = rows[i];
		} else if (e.key === "ArrowRight") {
			if (node.sorted.length && !node.expanded) setExpanded(node, true);
			else if (node.sorted.length) target = node.sorted[0].row;
		} else if (e.key === "ArrowLeft") {
			if (node.sorted.length && node.expanded) setExpanded(node, false);
			else if (node.parent && node.parent.row) target = node.parent.row;
		} else if (e.key === "Enter" || e.key === " ") {
			if (node.msg) select(node);
			else setExpanded(node, !node.expanded);
		} else {
			return;
		}
		e.preventDefault();
		if (target) {
			setFocusRow(target);
			target.focus();
		}
	});

	return {
		/** Records @msg; the DOM follows at the next flush(). */
		ingest(msg) {
			let node = byTopic.get(msg.topic);
			if (!node) {
				node = nodeFor(msg.topic);
				byTopic.set(msg.topic, node);
				node.row.dataset.topic = msg.topic;
				node.li.classList.add("topic");
				for (let p = node; p; p = p.parent) {
					p.topics++;
					if (p.li) dirty.add(p);
				}
				if (!focusRow) setFocusRow(node.row);
				emptyEl.hidden = true;
				onCountChange(byTopic.size);
			}
			node.msg = msg;
			node.count++;
			dirty.add(node);
		},
		/** Writes what changed since the last flush. */
		flush() {
			for (const node of dirty) writeRow(node);
			dirty.clear();
		},
		/** Refreshes the ages of the rows that can be seen. */
		tick() {
			ageVisible(root, Date.now());
		},
		/** Selects @topic when it has been seen. */
		select(topic) {
			const node = byTopic.get(topic);
			if (node) {
				select(node);
				node.row.scrollIntoView({ block: "nearest" });
			}
		},
		expandAll(expanded) {
			const walk = (n) => {
				for (const c of n.sorted) {
					setExpanded(c, expanded);
					walk(c);
				}
			};
			walk(root);
		},
		/** The last message of @topic, or undefined. */
		last(topic) {
			const node = byTopic.get(topic);
			return node ? node.msg : undefined;
		},
	};
}
