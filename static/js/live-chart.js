// js/live-chart.js — the uPlot chart: several series on one time axis. A series is a topic's numeric
// payload or a number inside its JSON payloads picked by a field path ("sensors.temp"); the selected
// topic's numbers show without being added. Keeps the last POINTS numbers of every numeric topic, so
// a selected topic has its history at once, and up to MAX_POINTS (the longest window) per added series.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { numericPaths, pick } from "./json-path.js";
import { decoded, numberOf } from "./message.js";
import { onThemeChange } from "./theme.js";
import { shortClock } from "./time.js";

const POINTS = 300; // per numeric topic in the background
const MAX_TOPICS = 2000; // topics with background history; beyond it new topics start when selected
const MAX_POINTS = 10_000; // per added series
const MAX_SERIES = 8;
const LONGEST_WINDOW = 3600; // s: older points of added series are dropped
const PALETTE = ["--chart-1", "--chart-2", "--chart-3", "--chart-4", "--chart-5", "--chart-6", "--chart-7", "--chart-8"];

function css(name) {
	return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Times (ms, strictly increasing) and values; a bounded array pair that drops from the front. */
class Ring {
	constructor(max) {
		this.max = max;
		this.xs = [];
		this.ys = [];
		this.start = 0; // index of the oldest kept point: dropping is O(1), compaction amortized
	}

	get length() {
		return this.xs.length - this.start;
	}

	get lastY() {
		return this.length ? this.ys[this.ys.length - 1] : null;
	}

	/** Adds @y at @ms; a time not after the last one's is moved 1 ms past it, so x stays
	 *  strictly increasing (uPlot needs it) and no value is lost. */
	push(ms, y) {
		const n = this.xs.length;
		if (this.length && ms <= this.xs[n - 1]) ms = this.xs[n - 1] + 1;
		this.xs.push(ms);
		this.ys.push(y);
		if (this.length > this.max) this.start++;
		this.compact();
	}

	/** Drops the points before @ms. */
	dropBefore(ms) {
		while (this.start < this.xs.length && this.xs[this.start] < ms) this.start++;
		this.compact();
	}

	compact() {
		if (this.start >= Math.max(32, this.max >> 2)) {
			this.xs.splice(0, this.start);
			this.ys.splice(0, this.start);
			this.start = 0;
		}
	}

	/** The index of the first point at or after @ms. */
	from(ms) {
		let lo = this.start;
		let hi = this.xs.length;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			if (this.xs[mid] < ms) lo = mid + 1;
			else hi = mid;
		}
		return lo;
	}
}

/**
 * One table for uPlot from @rings, points at or after @lo (ms): [xs in seconds, ...one column per
 * ring], xs the sorted union of their times, null where a ring has no value at that time.
 */
export function align(rings, lo) {
	const xs = [];
	for (const r of rings) for (let i = r.from(lo); i < r.xs.length; i++) xs.push(r.xs[i]);
	xs.sort((a, b) => a - b);
	let n = 0;
	for (let i = 0; i < xs.length; i++) if (i === 0 || xs[i] !== xs[n - 1]) xs[n++] = xs[i];
	xs.length = n;
	const cols = rings.map((r) => {
		const col = new Array(n).fill(null);
		let j = 0;
		for (let i = r.from(lo); i < r.xs.length; i++) {
			while (xs[j] < r.xs[i]) j++;
			col[j] = r.ys[i];
		}
		return col;
	});
	return [xs.map((ms) => ms / 1000), ...cols];
}

/** The number at @path in @msg's JSON payload (or its payload's number when @path is ""), or null. */
function valueOf(msg, path) {
	if (!path) return numberOf(msg);
	const d = decoded(msg);
	if (d.kind !== "json") return null;
	const v = pick(d.value, path);
	return typeof v === "number" && Number.isFinite(v) ? v : null;
}

const label = (s) => (s.path ? `${s.topic} · ${s.path}` : s.topic);

/**
 * The chart card: the plot in @box (#chart), @emptyEl shown while there is nothing to draw; the
 * window selector, the "Add series" form and the series list are found in the card by class.
 * @lastOf(topic) gives a topic's last message (suggestions and a new series' first point).
 */
export function createLiveChart(box, emptyEl, { titleEl, lastEl, lastOf = () => undefined }) {
	const card = box.closest(".chart-card");
	const windowSel = card.querySelector(".chart-window");
	const form = card.querySelector(".chart-add");
	const pathInput = form.querySelector("input");
	const suggestions = card.querySelector("datalist");
	const errorEl = card.querySelector(".chart-error");
	const list = card.querySelector(".chart-series");

	const history = new Map(); // topic -> Ring of its payload's numbers (background, POINTS)
	const added = []; // [{topic, path, ring, color}]
	const byTopic = new Map(); // topic -> the added series of it
	let topic = null;
	let windowS = Number(windowSel.value) || 300;
	let plot = null;
	let plotKey = ""; // the series the plot was made for: a different set makes a new plot
	let dirty = false;
	let suggestsDirty = false; // the selected topic has a new message: new paths to suggest
	let suggestKey = null;
	let listKey = null;
	let nextColor = 0;

	function background(t, create) {
		let r = history.get(t);
		if (!r && create && history.size < MAX_TOPICS) {
			r = new Ring(POINTS);
			history.set(t, r);
		}
		return r;
	}

	// What is drawn: the added series, then the selected topic's numbers unless already added.
	function drawn() {
		const out = added.map((s) => ({ ...s, colorVar: s.color }));
		if (topic !== null && !added.some((s) => s.topic === topic && !s.path)) {
			const r = history.get(topic);
			if (r && r.length) out.push({ topic, path: "", ring: r, colorVar: "--accent", selected: true });
		}
		return out;
	}

	function options(series, width, height) {
		const axis = {
			stroke: css("--muted"),
			grid: { stroke: css("--border"), width: 1 },
			ticks: { stroke: css("--border"), width: 1 },
			font: `11px ${css("--font") || "sans-serif"}`,
		};
		return {
			width,
			height,
			legend: { show: false },
			cursor: { drag: { x: false, y: false }, points: { size: 7 } },
			scales: {
				// The chosen window, ending at the newest point or now, whichever is later.
				x: {
					time: true,
					range: (u) => {
						const xs = u.data[0];
						const hi = Math.max(Date.now() / 1000, xs.length ? xs[xs.length - 1] : 0);
						return [hi - windowS, hi];
					},
				},
			},
			series: [
				{},
				...series.map((s) => {
					const color = css(s.colorVar) || css("--accent");
					return {
						label: label(s),
						stroke: color,
						fill: series.length === 1 ? css("--accent-soft") : undefined,
						width: 2,
						dash: s.selected && series.length > 1 ? [6, 4] : undefined,
						spanGaps: true, // other series' times are nulls in this one's column
						points: { show: (u, si) => u.data[si].length < 120, size: 5, fill: color },
					};
				}),
			],
			// Times on one line ("14:03" or "14:03:20" under a minute apart): uPlot's own second
			// line with the date overlapped the next tick in a narrow chart.
			axes: [
				{ ...axis, space: 64, values: (u, splits, ai, space, incr) => splits.map((t) => shortClock(t * 1000, incr < 60)) },
				{ ...axis, size: 52 },
			],
		};
	}

	function size() {
		return { width: Math.max(100, box.clientWidth), height: Math.max(80, box.clientHeight) };
	}

	function draw() {
		const series = drawn();
		const newest = Math.max(0, ...series.map((s) => (s.ring.length ? s.ring.xs[s.ring.xs.length - 1] : 0)));
		const data = align(series.map((s) => s.ring), Math.max(Date.now(), newest) - windowS * 1000);
		const has = data[0].length > 0;
		emptyEl.hidden = has;
		box.classList.toggle("has-data", has);
		const sel = series.find((s) => s.topic === topic && !s.path);
		lastEl.textContent = sel && sel.ring.lastY !== null ? String(sel.ring.lastY) : "";
		renderList(series);
		if (!has) {
			if (plot) {
				plot.destroy();
				plot = null;
			}
			const [strong, span] = [emptyEl.querySelector("strong"), emptyEl.querySelector("span")];
			if (series.length) {
				strong.textContent = "No numbers in this window";
				span.textContent = "Pick a longer window, or wait for the next value.";
			} else if (topic) {
				strong.textContent = "No numbers yet";
				span.textContent = "This topic's payloads are not numbers (yet): add a field path below.";
			}
			return;
		}
		const key = series.map((s) => `${label(s)}|${s.colorVar}|${!!s.selected}`).join("\n");
		if (plot && key !== plotKey) {
			plot.destroy();
			plot = null;
		}
		if (!plot) {
			const { width, height } = size();
			plot = new uPlot(options(series, width, height), data, box);
			plotKey = key;
		} else {
			plot.setData(data);
		}
	}

	// Rebuilt only when the series change (a focused remove button keeps its focus); the last
	// values are updated in place.
	function renderList(series) {
		const key = series.map((s) => `${label(s)}|${s.colorVar}|${!!s.selected}`).join("\n");
		if (key === listKey) {
			series.forEach((s, i) => {
				const text = s.ring.lastY === null ? "—" : String(s.ring.lastY);
				const last = list.children[i]?.querySelector(".series-last");
				if (last && last.textContent !== text) last.textContent = text;
			});
			return;
		}
		listKey = key;
		const items = series.map((s) => {
			const li = document.createElement("li");
			li.className = s.selected ? "series selected" : "series";
			li.dataset.topic = s.topic;
			li.dataset.path = s.path;
			const swatch = document.createElement("span");
			swatch.className = "swatch";
			swatch.style.background = css(s.colorVar) || css("--accent"); // (CSSOM: allowed by the CSP)
			const name = document.createElement("span");
			name.className = "series-name";
			name.textContent = label(s);
			name.title = s.selected ? `${label(s)} (the selected topic)` : label(s);
			const last = document.createElement("span");
			last.className = "series-last";
			last.textContent = s.ring.lastY === null ? "—" : String(s.ring.lastY);
			li.append(swatch, name, last);
			if (!s.selected) {
				const rm = document.createElement("button");
				rm.type = "button";
				rm.className = "ghost icon series-remove";
				rm.textContent = "×";
				rm.setAttribute("aria-label", `Remove series ${label(s)}`);
				rm.title = "Remove this series";
				li.append(rm);
			}
			return li;
		});
		list.replaceChildren(...items);
		list.hidden = items.length === 0;
	}

	function suggest() {
		const msg = topic !== null ? lastOf(topic) : undefined;
		const d = msg && decoded(msg);
		const paths = d && d.kind === "json" ? numericPaths(d.value, 100) : [];
		const key = paths.join("\n");
		if (key === suggestKey) return;
		suggestKey = key;
		suggestions.replaceChildren(...paths.map((p) => {
			const o = document.createElement("option");
			o.value = p;
			return o;
		}));
		pathInput.placeholder = paths.length ? `field path, e.g. ${paths[0]}` : "field path (empty: the payload's number)";
	}

	function fail(text) {
		errorEl.textContent = text;
		errorEl.hidden = !text;
	}

	function add(t, path) {
		if (t === null) return fail("Select a topic first.");
		if (added.some((s) => s.topic === t && s.path === path)) return fail(`${label({ topic: t, path })} is already charted.`);
		if (added.length >= MAX_SERIES) return fail(`At most ${MAX_SERIES} series: remove one first.`);
		const last = lastOf(t);
		if (last && path && decoded(last).kind === "json" && valueOf(last, path) === null)
			return fail(`“${path}” is not a number in ${t}'s last message.`);
		if (last && !path && numberOf(last) === null)
			return fail(`${t}'s payload is not a number: give a field path.`);
		const ring = new Ring(MAX_POINTS);
		if (!path) {
			const bg = history.get(t);
			if (bg) for (let i = bg.start; i < bg.xs.length; i++) ring.push(bg.xs[i], bg.ys[i]);
		} else if (last) {
			const v = valueOf(last, path);
			if (v !== null) ring.push(last.time, v);
		}
		const used = new Set(added.map((s) => s.color));
		let color = PALETTE[nextColor++ % PALETTE.length];
		for (let i = 0; used.has(color) && i < PALETTE.length; i++) color = PALETTE[nextColor++ % PALETTE.length];
		const s = { topic: t, path, ring, color };
		added.push(s);
		if (!byTopic.has(t)) byTopic.set(t, []);
		byTopic.get(t).push(s);
		fail("");
		pathInput.value = "";
		draw();
	}

	function remove(t, path) {
		const i = added.findIndex((s) => s.topic === t && s.path === path);
		if (i < 0) return;
		const [s] = added.splice(i, 1);
		const same = byTopic.get(t).filter((x) => x !== s);
		if (same.length) byTopic.set(t, same);
		else byTopic.delete(t);
		draw();
	}

	form.addEventListener("submit", (e) => {
		e.preventDefault();
		add(topic, pathInput.value.trim());
	});
	list.addEventListener("click", (e) => {
		const btn = e.target.closest(".series-remove");
		if (!btn) return;
		const li = btn.closest("li");
		remove(li.dataset.topic, li.dataset.path);
	});
	windowSel.addEventListener("change", () => {
		windowS = Number(windowSel.value) || 300;
		draw();
	});

	new ResizeObserver(() => {
		if (plot) plot.setSize(size());
	}).observe(box);

	onThemeChange(() => {
		listKey = null; // the swatches take the theme's colours
		if (plot) {
			plot.destroy();
			plot = null;
		}
		draw();
	});

	// For tests and the console: what uPlot holds now (read only; a property, not a global).
	box.mwbChart = {
		data: () => (plot ? plot.data.map((col) => Array.from(col)) : null),
		labels: () => (plot ? plot.series.slice(1).map((s) => s.label) : []),
		x: () => (plot ? [plot.scales.x.min, plot.scales.x.max] : null),
	};

	return {
		/** Keeps the numbers of @msg: its payload's, and those of the series added for its topic. */
		record(msg) {
			if (msg.topic === topic) suggestsDirty = true;
			const v = numberOf(msg);
			if (v !== null) {
				const r = background(msg.topic, true);
				if (r) r.push(msg.time, v);
				if (msg.topic === topic) dirty = true;
			}
			const mine = byTopic.get(msg.topic);
			if (!mine) return;
			for (const s of mine) {
				const y = s.path ? valueOf(msg, s.path) : v;
				if (y === null) continue;
				s.ring.push(msg.time, y);
				s.ring.dropBefore(msg.time - LONGEST_WINDOW * 1000);
				dirty = true;
			}
		},
		/** Charts @t (the selected topic) from now on, beside the added series. */
		show(t) {
			topic = t;
			titleEl.textContent = t ?? "";
			titleEl.title = t ?? "";
			background(t, true);
			fail("");
			suggest();
			if (plot) {
				plot.destroy();
				plot = null;
			}
			draw();
		},
		flush() {
			if (suggestsDirty) {
				suggestsDirty = false;
				suggest();
			}
			if (!dirty) return;
			dirty = false;
			draw();
		},
	};
}
