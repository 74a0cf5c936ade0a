// js/payload.js — how a payload reads: UTF-8 text, JSON, or binary (hex); and its number, if any.

const utf8 = new TextDecoder("utf-8", { fatal: true });
const MAX_TEXT = 8192; // bytes shown in the log before "…"
// C0 controls other than tab, LF, CR, and DEL: text with them reads as binary.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * Decodes @bytes (Uint8Array) once. Returns {kind: "empty"|"text"|"json"|"binary", text, size},
 * text being the UTF-8 text for text and JSON, undefined for binary.
 */
export function decode(bytes) {
	const size = bytes.length;
	if (size === 0) return { kind: "empty", text: "", size };
	let text;
	try {
		text = utf8.decode(bytes);
	} catch {
		return { kind: "binary", text: undefined, size };
	}
	if (CONTROL.test(text)) return { kind: "binary", text: undefined, size };
	const c = text.trimStart()[0];
	if (c === "{" || c === "[") {
		try {
			return { kind: "json", text, size, value: JSON.parse(text) };
		} catch {
			/* looks like JSON but is not: plain text */
		}
	}
	return { kind: "text", text, size };
}

/** "0a 1b ff …" for the first @max bytes of @bytes. */
export function hex(bytes, max) {
	const n = Math.min(bytes.length, max);
	const parts = new Array(n);
	for (let i = 0; i < n; i++) parts[i] = bytes[i].toString(16).padStart(2, "0");
	return parts.join(" ") + (bytes.length > n ? " …" : "");
}

/** One line for the topic tree: the text itself, or a hex preview for binary. */
export function preview(bytes, d) {
	if (d.kind === "binary") return `${hex(bytes, 16)} (${d.size} B)`;
	return d.text.length > 300 ? d.text.slice(0, 300) + "…" : d.text;
}

/** The log's body: JSON pretty-printed, text as it is, binary as a hex dump (16 bytes a line). */
export function pretty(bytes, d) {
	if (d.kind === "json") return clip(JSON.stringify(d.value, null, 2));
	if (d.kind === "binary") {
		const lines = [];
		const n = Math.min(bytes.length, 512);
		for (let i = 0; i < n; i += 16) lines.push(hex(bytes.subarray(i, Math.min(i + 16, n)), 16));
		if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`);
		return lines.join("\n");
	}
	return clip(d.text);
}

function clip(text) {
	return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}\n… (${text.length} characters)` : text;
}

/** The payload's number: "21.5", " 42 ", or a JSON number; null for anything else. */
export function numeric(d) {
	if (d.kind !== "text") return null; // JSON objects and arrays, binary, empty: not a number
	const t = d.text.trim();
	if (t === "" || t.length > 40) return null;
	const v = Number(t);
	return Number.isFinite(v) ? v : null;
}

/** Rows of a hex dump of the first @max bytes of @bytes, 16 a row: {offset, hex, ascii}, offset
 *  as 8 hex digits, ascii with "." for bytes outside printable ASCII. */
export function hexRows(bytes, max) {
	const n = Math.min(bytes.length, max);
	const rows = [];
	for (let at = 0; at < n; at += 16) {
		const end = Math.min(at + 16, n);
		let ascii = "";
		for (let i = at; i < end; i++) ascii += bytes[i] >= 0x20 && bytes[i] < 0x7f ? String.fromCharCode(bytes[i]) : ".";
		rows.push({ offset: at.toString(16).padStart(8, "0"), hex: hex(bytes.subarray(at, end), 16), ascii });
	}
	return rows;
}

/** @bytes (Uint8Array) as standard base64 with padding. */
export function base64(bytes) {
	let bin = "";
	const CHUNK = 0x8000; // String.fromCharCode's argument list stays well below engine limits
	for (let i = 0; i < bytes.length; i += CHUNK) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK));
	return btoa(bin);
}

const lenient = new TextDecoder("utf-8");

/** @bytes as UTF-8 text, U+FFFD where a sequence is not UTF-8 (for correlation data and the like). */
export function lenientText(bytes) {
	return lenient.decode(bytes);
}
