// js/call.js — call a device: POST /api/v1/request/{topic}?timeout_ms=N (MQTT 5 request/response
// through the bridge) and show the reply (payload and content type) or why there is none.
// #call-status gets data-state "pending", "ok" or "error".

import { ApiError, apiFetch, topicPath } from "./api.js";
import { decode, pretty } from "./payload.js";
import { load, save } from "./storage.js";
import { onSelection } from "./selection.js";
import { topicError } from "./topic-filter.js";

const MAX_TIMEOUT_MS = 600000; // the bridge's bound for timeout_ms (README "Request/response")

/** The sentence for a failed request of @timeoutMs. */
export function callError(e, timeoutMs) {
	if (!(e instanceof ApiError)) return `Could not reach the bridge: ${e.message || e}`;
	if (e.status === 504 && e.code === "no_reply") return `No reply within ${timeoutMs} ms`;
	if (e.status === 501) return "The broker does not support MQTT 5 request/response";
	if (e.status === 403 && e.code === "broker_not_authorized") return "The broker did not allow the request";
	if (e.status === 403) return "Not allowed by your token";
	if (e.status === 401) return "Sign in: this bridge needs an access token";
	return e.message || `HTTP ${e.status}`;
}

/** Wires #call-form. */
export function initCall() {
	const $ = (id) => document.getElementById(id);
	const card = $("call-card");
	const toggle = $("call-toggle");
	const form = $("call-form");
	const topic = $("call-topic");
	const body = $("call-body");
	const timeout = $("call-timeout");
	const send = $("call-send");
	const status = $("call-status");
	const reply = $("call-reply");
	const ctype = $("call-ctype");
	const size = $("call-size");
	const payload = $("call-payload");
	let seq = 0;

	const setOpen = (open) => {
		form.hidden = !open;
		toggle.setAttribute("aria-expanded", String(open));
		toggle.textContent = open ? "Hide" : "Show";
		card.dataset.open = String(open);
	};
	setOpen(load("call.open", false));
	toggle.addEventListener("click", () => {
		const open = form.hidden;
		setOpen(open);
		save("call.open", open);
		if (open) topic.focus();
	});

	const show = (state, text) => {
		status.dataset.state = state;
		status.textContent = text;
	};

	// The selected topic is a good first guess for whom to call, until one is typed.
	onSelection(({ topic: t }) => {
		if (t && !topic.value && !/[+#]/.test(t)) topic.value = t;
	});

	form.addEventListener("submit", async (e) => {
		e.preventDefault();
		const t = topic.value;
		const bad = topicError(t);
		if (bad) return show("error", bad);
		const ms = Number(timeout.value.trim() || 5000);
		if (!Number.isInteger(ms) || ms < 1 || ms > MAX_TIMEOUT_MS)
			return show("error", `Timeout: a whole number of ms, 1 to ${MAX_TIMEOUT_MS}.`);
		const id = ++seq;
		reply.hidden = true;
		send.disabled = true;
		show("pending", `Waiting up to ${ms} ms for a reply…`);
		const started = performance.now();
		try {
			// Bytes, not a string: a string body would be labelled text/plain, and the label
			// would become the request's MQTT 5 content type.
			const resp = await apiFetch(`/request/${topicPath(t)}?timeout_ms=${ms}`, {
				method: "POST",
				body: new TextEncoder().encode(body.value),
			});
			const bytes = new Uint8Array(await resp.arrayBuffer());
			if (id !== seq) return;
			const d = decode(bytes);
			payload.textContent = d.kind === "empty" ? "" : pretty(bytes, d);
			payload.dataset.kind = d.kind;
			ctype.textContent = resp.headers.get("content-type") || "";
			ctype.hidden = !ctype.textContent;
			size.textContent = `${bytes.length.toLocaleString()} B`;
			reply.hidden = false;
			show("ok", `Reply in ${Math.round(performance.now() - started)} ms`);
		} catch (err) {
			if (id !== seq) return;
			show("error", callError(err, ms));
		} finally {
			if (id === seq) send.disabled = false;
		}
	});

	// Ctrl/Cmd+Enter in the body sends.
	body.addEventListener("keydown", (e) => {
		if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
	});
}
