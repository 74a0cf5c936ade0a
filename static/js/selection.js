// js/selection.js — what the dashboard has selected: a topic (from the tree or a log line) and,
// when a log line was picked, that very message. Panels (detail, chart, share) listen here
// instead of to each other.

const listeners = new Set();
let current = { topic: null, msg: null };

/** Selects @topic; @msg is the message picked (a log line), or null for "the topic's latest". */
export function select(topic, msg = null) {
	current = { topic, msg };
	for (const fn of listeners) fn(current);
}

/** The selection now: {topic, msg}; topic is null when nothing is selected. */
export function selection() {
	return current;
}

/** Calls @fn({topic, msg}) on every selection; returns a function that stops it. */
export function onSelection(fn) {
	listeners.add(fn);
	return () => listeners.delete(fn);
}
