// js/storage.js — localStorage that never throws (private windows, disabled storage, bad JSON).

const PREFIX = "mwb.";

/** The JSON value stored under @key, or @fallback when there is none or it cannot be read. */
export function load(key, fallback) {
	try {
		const text = localStorage.getItem(PREFIX + key);
		return text === null ? fallback : JSON.parse(text);
	} catch {
		return fallback;
	}
}

/** Stores @value as JSON under @key; silently does nothing when storage is unavailable. */
export function save(key, value) {
	try {
		localStorage.setItem(PREFIX + key, JSON.stringify(value));
	} catch {
		/* storage full or disabled: the page keeps working, it just forgets */
	}
}
