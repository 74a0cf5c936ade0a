// js/json-path.js — picks a field out of a JSON value with a dotted path: "temp", "a.b.0".

/** The value at @path ("" = the whole value) in @value, or undefined when it is not there. */
export function pick(value, path) {
	if (!path) return value;
	let v = value;
	for (const key of path.split(".")) {
		if (v === null || typeof v !== "object") return undefined;
		if (Array.isArray(v)) {
			if (!/^\d+$/.test(key)) return undefined;
			v = v[Number(key)];
		} else {
			if (!Object.prototype.hasOwnProperty.call(v, key)) return undefined;
			v = v[key];
		}
	}
	return v;
}

/** How a picked value reads: strings as they are, other JSON as compact JSON. */
export function show(v) {
	if (v === undefined) return "—";
	return typeof v === "string" ? v : JSON.stringify(v);
}

/** The dotted paths (as pick() takes them) of the finite numbers in @value, depth first, at most
 *  @max; keys that contain a "." cannot be written as a path and are left out. */
export function numericPaths(value, max = 200) {
	const out = [];
	const walk = (v, path) => {
		if (out.length >= max) return;
		if (typeof v === "number") {
			if (Number.isFinite(v) && path) out.push(path);
			return;
		}
		if (v === null || typeof v !== "object") return;
		const keys = Array.isArray(v) ? v.keys() : Object.keys(v);
		for (const k of keys) {
			if (typeof k === "string" && (k.includes(".") || k === "")) continue;
			walk(v[k], path ? `${path}.${k}` : String(k));
			if (out.length >= max) return;
		}
	};
	walk(value, "");
	return out;
}
