// js/diff.js — what changed between two messages of a topic: JSON-aware (paths changed, added,
// removed), by lines for text, by bytes for binary. Pure functions on plain values, no DOM, so
// node runs the self-check: node -e 'import("./static/js/diff.js").then((m) => m.selfCheck())'

const MAX_CHANGES = 500;
const MAX_LCS_CELLS = 250_000; // line pairs the LCS table may hold; beyond it a coarser diff

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const join = (parent, key) => (parent ? `${parent}.${key}` : String(key));

/**
 * The differences from @a to @b (parsed JSON values): {changes, truncated}, each change
 * {path, kind: "changed"|"added"|"removed", old?, new?}; paths are dotted as json-path.js takes
 * them ("" is the whole value). Unchanged parts are not listed; at most @max changes.
 */
export function jsonDiff(a, b, max = MAX_CHANGES) {
	const changes = [];
	let truncated = false;
	const add = (c) => {
		if (changes.length >= max) truncated = true;
		else changes.push(c);
	};
	const walk = (x, y, path) => {
		if (truncated) return;
		if (isObject(x) && isObject(y)) {
			for (const k of Object.keys(x)) {
				if (Object.prototype.hasOwnProperty.call(y, k)) walk(x[k], y[k], join(path, k));
				else add({ path: join(path, k), kind: "removed", old: x[k] });
			}
			for (const k of Object.keys(y))
				if (!Object.prototype.hasOwnProperty.call(x, k)) add({ path: join(path, k), kind: "added", new: y[k] });
			return;
		}
		if (Array.isArray(x) && Array.isArray(y)) {
			const n = Math.min(x.length, y.length);
			for (let i = 0; i < n; i++) walk(x[i], y[i], join(path, i));
			for (let i = n; i < x.length; i++) add({ path: join(path, i), kind: "removed", old: x[i] });
			for (let i = n; i < y.length; i++) add({ path: join(path, i), kind: "added", new: y[i] });
			return;
		}
		if (!sameJson(x, y)) add({ path, kind: "changed", old: x, new: y });
	};
	walk(a, b, "");
	return { changes, truncated };
}

function sameJson(x, y) {
	if (x === y) return true;
	if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false;
	return JSON.stringify(x) === JSON.stringify(y); // (only reached for object vs array)
}

/** A JSON value in a line of the diff: compact, at most @max characters. */
export function showValue(v, max = 80) {
	const s = v === undefined ? "undefined" : JSON.stringify(v);
	return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** One change as a line: "sensors.temp: 21.5 → 22", "x: 1" (added), "y: true" (removed). */
export function describeChange(c) {
	const path = c.path || "(whole value)";
	if (c.kind === "changed") return `${path}: ${showValue(c.old)} → ${showValue(c.new)}`;
	return `${path}: ${showValue(c.kind === "added" ? c.new : c.old)}`;
}

/**
 * The line diff from text @a to text @b: [{op: " "|"-"|"+", text}], old lines "-", new "+". An
 * LCS on what differs after the common head and tail; when that is too big for the table
 * (MAX_LCS_CELLS), the differing middle is all "-" then all "+".
 */
export function lineDiff(a, b) {
	const x = a.split("\n");
	const y = b.split("\n");
	let head = 0;
	while (head < x.length && head < y.length && x[head] === y[head]) head++;
	let tail = 0;
	while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
	const out = x.slice(0, head).map((text) => ({ op: " ", text }));
	const xm = x.slice(head, x.length - tail);
	const ym = y.slice(head, y.length - tail);
	if (xm.length * ym.length > MAX_LCS_CELLS) {
		for (const text of xm) out.push({ op: "-", text });
		for (const text of ym) out.push({ op: "+", text });
	} else {
		out.push(...lcsOps(xm, ym));
	}
	for (const text of x.slice(x.length - tail)) out.push({ op: " ", text });
	return out;
}

function lcsOps(x, y) {
	const m = x.length;
	const n = y.length;
	const w = n + 1;
	const t = new Uint32Array((m + 1) * w); // t[i*w+j]: LCS length of x[i..], y[j..]
	for (let i = m - 1; i >= 0; i--)
		for (let j = n - 1; j >= 0; j--)
			t[i * w + j] = x[i] === y[j] ? t[(i + 1) * w + j + 1] + 1 : Math.max(t[(i + 1) * w + j], t[i * w + j + 1]);
	const ops = [];
	let i = 0;
	let j = 0;
	while (i < m && j < n) {
		if (x[i] === y[j]) {
			ops.push({ op: " ", text: x[i] });
			i++;
			j++;
		} else if (t[(i + 1) * w + j] >= t[i * w + j + 1]) {
			ops.push({ op: "-", text: x[i++] });
		} else {
			ops.push({ op: "+", text: y[j++] });
		}
	}
	while (i < m) ops.push({ op: "-", text: x[i++] });
	while (j < n) ops.push({ op: "+", text: y[j++] });
	return ops;
}

/** The changed lines of @ops with @context unchanged lines around them; null marks a gap. */
export function hunks(ops, context = 2) {
	const keep = new Uint8Array(ops.length);
	ops.forEach((o, i) => {
		if (o.op === " ") return;
		for (let k = Math.max(0, i - context); k <= Math.min(ops.length - 1, i + context); k++) keep[k] = 1;
	});
	const out = [];
	let gap = false;
	ops.forEach((o, i) => {
		if (keep[i]) {
			if (gap && out.length) out.push(null);
			gap = false;
			out.push(o);
		} else {
			gap = true;
		}
	});
	return out;
}

/** Bytes that differ between @a and @b (Uint8Array): positions both have that differ, plus the
 *  difference in length. */
export function byteDiff(a, b) {
	const n = Math.min(a.length, b.length);
	let changed = Math.abs(a.length - b.length);
	for (let i = 0; i < n; i++) if (a[i] !== b[i]) changed++;
	return { changed, oldSize: a.length, newSize: b.length };
}

/** Throws when one of the functions above does not do what its comment says. */
export function selfCheck() {
	const eq = (got, want, what) => {
		if (JSON.stringify(got) !== JSON.stringify(want))
			throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
	};
	eq(jsonDiff({ t: 21.5, h: 40 }, { t: 22, h: 40, x: 1 }).changes.map(describeChange),
		["t: 21.5 → 22", "x: 1"], "jsonDiff flat");
	eq(jsonDiff({ s: { temp: 1, a: [1, 2] } }, { s: { temp: 2, a: [1] } }).changes,
		[{ path: "s.temp", kind: "changed", old: 1, new: 2 }, { path: "s.a.1", kind: "removed", old: 2 }], "jsonDiff nested");
	eq(jsonDiff({ a: { b: 1 } }, { a: [1] }).changes, [{ path: "a", kind: "changed", old: { b: 1 }, new: [1] }], "jsonDiff type");
	eq(jsonDiff(1, 2).changes.map(describeChange), ["(whole value): 1 → 2"], "jsonDiff root");
	eq(jsonDiff({ a: 1 }, { a: 1 }).changes, [], "jsonDiff same");
	eq(jsonDiff({}, { a: 1, b: 2, c: 3 }, 2).truncated, true, "jsonDiff max");
	eq(lineDiff("a\nb\nc", "a\nB\nc\nd").map((o) => o.op + o.text), [" a", "-b", "+B", " c", "+d"], "lineDiff");
	eq(lineDiff("same", "same").filter((o) => o.op !== " "), [], "lineDiff same");
	eq(hunks(lineDiff("1\n2\n3\n4\n5\n6\n7\n8", "1\n2\n3\n4\n5\n6\n7\nX"), 1).map((o) => o && o.op + o.text),
		[" 7", "-8", "+X"], "hunks");
	eq(byteDiff(new Uint8Array([1, 2, 3]), new Uint8Array([1, 9, 3, 4])), { changed: 2, oldSize: 3, newSize: 4 }, "byteDiff");
	return true;
}
