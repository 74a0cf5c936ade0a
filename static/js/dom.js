// js/dom.js — tiny element builder, so modules build DOM without innerHTML.

/**
 * h("li.msg", {dataset: {topic: t}}, child, ...) — tag with optional .classes, then attributes
 * (className, dataset, on<event> handlers, anything else via setAttribute), then children
 * (nodes or strings; null/false are skipped).
 */
export function h(spec, attrs, ...children) {
	const [tag, ...classes] = spec.split(".");
	const el = document.createElement(tag || "div");
	if (classes.length) el.className = classes.join(" ");
	if (attrs) {
		for (const [k, v] of Object.entries(attrs)) {
			if (v === undefined || v === null || v === false) continue;
			if (k === "dataset") Object.assign(el.dataset, v);
			else if (k === "text") el.textContent = v;
			else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
			else el.setAttribute(k, v === true ? "" : v);
		}
	}
	for (const c of children) {
		if (c === null || c === undefined || c === false) continue;
		el.append(c);
	}
	return el;
}

/** Sets @el's text only when it changed (no needless style recalc). */
export function setText(el, text) {
	if (el.textContent !== text) el.textContent = text;
}
