// js/tree-clear.js — "Clear retained…" of the topic tree: which retained topics a row covers (the
// REST listing), a confirmation that names how many, then an empty retained publish per topic
// (DELETE /api/v1/topics/..., a few at a time), with progress and the outcome in the tree's status
// line.

import { ApiError, apiFetch, topicPath } from "./api.js";
import { h } from "./dom.js";
import { plural } from "./numbers.js";

const CLEAR_LIST_MAX = 10; // topics named in the confirmation
const CLEAR_PARALLEL = 4; // DELETE requests in flight at once
const LIST_LIMIT = 10000; // the REST listing's maximum
// A topic answered 429 (limits.requests_per_minute) is tried again after Retry-After (at most
// RATE_WAIT_MAX_S), for up to RATE_RETRY_FOR_S: the few workers share the bridge's refill, so
// one of them may be refused several times before its turn.
const RATE_WAIT_MAX_S = 10;
const RATE_RETRY_FOR_S = 120;

// Levels a URL path cannot carry (lws collapses "//", "/./", "/../" and reads " " as "+").
const unwritableInPath = (topic) => topic.split("/").some((l) => l === "" || l === "." || l === ".." || l === " ");

function apiErrorText(err) {
	if (err instanceof ApiError) {
		if (err.status === 403) return "Not allowed by your token";
		if (err.status === 401) return "Sign in to change retained messages";
		if (err.status === 429) return "Too many requests: try again in a moment";
		return err.message;
	}
	return `The bridge did not answer (${err.message})`;
}

/** The retained topics that clearing @node would clear: {topics, truncated}. */
async function retainedUnder(node) {
	const filter = node.sorted.length ? `${node.path}/#` : node.path;
	const resp = await apiFetch(`/topics?filter=${encodeURIComponent(filter)}&limit=${LIST_LIMIT}`,
		{ headers: { accept: "application/json" } });
	const body = await resp.json();
	const topics = Array.isArray(body.messages) ? body.messages.map((m) => m.topic) : [];
	return { topics, truncated: !!body.truncated, subtree: node.sorted.length > 0 };
}

function confirmClear(dialog, node, { topics, truncated, subtree }) {
	const count = topics.length;
	const where = subtree ? `under “${node.path}”` : `of “${node.path}”`;
	dialog.querySelector(".clear-text").textContent =
		`Clear the retained ${count === 1 ? "message" : "messages"} of ${truncated ? "at least " : ""}` +
		`${plural(count, "topic")} ${where}? Devices that subscribe later will no longer get them.`;
	const list = dialog.querySelector(".clear-list");
	list.replaceChildren(...topics.slice(0, CLEAR_LIST_MAX).map((t) => h("li", null, h("code", { text: t }))));
	if (count > CLEAR_LIST_MAX) list.append(h("li.more", { text: `… and ${(count - CLEAR_LIST_MAX).toLocaleString()} more` }));
	dialog.querySelector(".clear-confirm").textContent = `Clear ${plural(count, "topic")}`;
	dialog.dataset.count = String(count);
	dialog.returnValue = "";
	return new Promise((resolve) => {
		dialog.addEventListener("close", () => resolve(dialog.returnValue === "clear"), { once: true });
		dialog.showModal();
		dialog.querySelector(".clear-cancel").focus();
	});
}

async function clearRequest(topic) {
	if (unwritableInPath(topic)) {
		// Not expressible as a URL path: an empty retained publish through the JSON endpoint.
		await apiFetch("/publish", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ topic, payload: "", qos: 1, retain: true }),
		});
		return;
	}
	await apiFetch(`/topics/${topicPath(topic)}`, { method: "DELETE" });
}

/** Clears @topic's retained message; a 429 is waited out (Retry-After) and tried again. */
async function clearOne(topic) {
	const giveUp = Date.now() + RATE_RETRY_FOR_S * 1000;
	for (;;) {
		try {
			await clearRequest(topic);
			return;
		} catch (err) {
			if (!(err instanceof ApiError) || err.status !== 429 || Date.now() >= giveUp) throw err;
			const waitS = Math.min(Math.max(err.retryAfter, 1), RATE_WAIT_MAX_S);
			await new Promise((resolve) => setTimeout(resolve, waitS * 1000));
		}
	}
}

/**
 * The tree's clear action: askClear(node) for a node with .path, .sorted (its children) and .row.
 * @statusEl: #tree-status; @dialog: #tree-clear-dialog (without it the action does nothing).
 */
export function createRetainedClearer(statusEl, dialog) {
	let busy = false; // a clear is under way

	function showStatus(text, state = "") {
		if (!statusEl) return;
		statusEl.querySelector(".tree-status-text").textContent = text;
		statusEl.dataset.state = state;
		statusEl.hidden = !text;
	}

	async function askClear(node) {
		if (busy || !dialog) return;
		busy = true;
		const returnFocus = node.row;
		try {
			showStatus(`Looking up retained messages ${node.sorted.length ? "under" : "of"} ${node.path}…`, "busy");
			let found;
			try {
				found = await retainedUnder(node);
			} catch (err) {
				showStatus(apiErrorText(err), "error");
				return;
			}
			if (!found.topics.length) {
				showStatus(`No retained messages ${found.subtree ? "under" : "on"} ${node.path}`, "");
				return;
			}
			showStatus("", "");
			const ok = await confirmClear(dialog, node, found);
			returnFocus.focus();
			if (!ok) return;
			let done = 0;
			let failure = null;
			const queue = found.topics.slice();
			const total = queue.length;
			showStatus(`Clearing ${plural(total, "retained topic")}…`, "busy");
			const worker = async () => {
				while (queue.length && !failure) {
					const topic = queue.shift();
					try {
						await clearOne(topic);
						done++;
					} catch (err) {
						failure = failure || err;
					}
				}
			};
			await Promise.all(Array.from({ length: Math.min(CLEAR_PARALLEL, total) }, worker));
			if (failure) {
				showStatus(`${done ? `Cleared ${done.toLocaleString()} of ${plural(total, "retained topic")}; then: ` : ""}${apiErrorText(failure)}`, "error");
			} else {
				showStatus(`Cleared ${plural(done, "retained topic")}`, "ok");
			}
		} finally {
			busy = false;
		}
	}

	if (statusEl) {
		const close = statusEl.querySelector(".tree-status-close");
		if (close) close.addEventListener("click", () => showStatus("", ""));
	}
	return askClear;
}
