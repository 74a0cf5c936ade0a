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
