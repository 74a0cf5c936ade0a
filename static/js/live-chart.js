// js/live-chart.js — a small uPlot chart of the numeric payloads of the selected topic. Keeps the
// last POINTS numbers of every numeric topic so a selected topic has its history at once.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { numberOf } from "./message.js";
import { onThemeChange } from "./theme.js";

const POINTS = 300;
const MAX_SERIES = 2000; // topics with kept history; beyond it new topics start when selected

function css(name) {
	return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function options(width, height) {
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
			// At least a minute wide, so one point or a burst does not stretch the axis to years or ms.
			x: {
				time: true,
				range: (u) => {
					const xs = u.data[0];
					if (!xs.length) return [0, 60];
					const lo = xs[0];
					const hi = xs[xs.length - 1];
					return hi - lo < 60 ? [hi - 60, hi + 1] : [lo, hi];
				},
			},
		},
		series: [
			{},
			{
				stroke: css("--accent"),
				fill: css("--accent-soft"),
				width: 2,
				points: { show: (u) => u.data[0].length < 60, size: 5, fill: css("--accent") },
			},
		],
		axes: [axis, { ...axis, size: 52 }],
	};
}

/** The chart in @box (#chart), @emptyEl shown while there is nothing to draw. */
export function createLiveChart(box, emptyEl, { titleEl, lastEl }) {
	const history = new Map(); // topic -> {xs: seconds[], ys: number[]}
	let topic = null;
	let plot = null;
	let dirty = false;

	function series(t, create) {
		let s = history.get(t);
		if (!s && create && history.size < MAX_SERIES) {
			s = { xs: [], ys: [] };
			history.set(t, s);
		}
		return s;
	}

	function size() {
		return { width: Math.max(100, box.clientWidth), height: Math.max(80, box.clientHeight) };
	}

	function draw() {
		const s = topic && history.get(topic);
		const has = !!(s && s.xs.length);
		emptyEl.hidden = has;
		box.classList.toggle("has-data", has);
		if (!has) {
			lastEl.textContent = "";
			if (topic) {
				emptyEl.querySelector("strong").textContent = "No numbers yet";
				emptyEl.querySelector("span").textContent = "This topic's payloads are not numbers (yet).";
			}
			return;
		}
		lastEl.textContent = String(s.ys[s.ys.length - 1]);
		if (!plot) {
			const { width, height } = size();
			plot = new uPlot(options(width, height), [s.xs, s.ys], box);
		} else {
			plot.setData([s.xs, s.ys]);
		}
	}

	new ResizeObserver(() => {
		if (plot) plot.setSize(size());
	}).observe(box);

	onThemeChange(() => {
		if (!plot) return;
		plot.destroy();
		plot = null;
		draw();
	});

	return {
		/** Keeps the number of @msg, if it has one. */
		record(msg) {
			const v = numberOf(msg);
			if (v === null) return;
			const s = series(msg.topic, true);
			if (!s) return;
			s.xs.push(msg.time / 1000);
			s.ys.push(v);
			if (s.xs.length > POINTS) {
				s.xs.splice(0, s.xs.length - POINTS);
				s.ys.splice(0, s.ys.length - POINTS);
			}
			if (msg.topic === topic) dirty = true;
		},
		/** Charts @t from now on. */
		show(t) {
			topic = t;
			titleEl.textContent = t;
			titleEl.title = t;
			series(t, true);
			if (plot) {
				plot.destroy();
				plot = null;
			}
			draw();
		},
		flush() {
			if (!dirty) return;
			dirty = false;
			draw();
		},
	};
}
