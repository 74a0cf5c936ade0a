// js/event-stream.js — a Server-Sent Events stream of /api/v1/stream that keeps itself open.
// EventSource retries network errors by itself (sending Last-Event-ID); when it gives up (an HTTP
// error, readyState CLOSED) this makes a new one after a backoff, resuming with ?last_event_id=.

const MIN_BACKOFF = 1000;
const MAX_BACKOFF = 30000;

/**
 * Opens @url (a URL). @onEvent(msg) gets each event's parsed JSON; @onState(state, retryMs) gets
 * "connecting" | "open" | "error". Returns {close()}.
 */
export function openStream(url, { onEvent, onState }) {
	let es = null;
	let lastId = "";
	let backoff = MIN_BACKOFF;
	let timer = 0;
	let closed = false;

	function start() {
		timer = 0;
		const u = new URL(url);
		if (lastId) u.searchParams.set("last_event_id", lastId);
		es = new EventSource(u);
		onState("connecting");
		es.onopen = () => {
			backoff = MIN_BACKOFF;
			onState("open");
		};
		es.onmessage = (e) => {
			if (e.lastEventId) lastId = e.lastEventId;
			let msg;
			try {
				msg = JSON.parse(e.data);
			} catch {
				return;
			}
			if (msg && typeof msg.topic === "string") onEvent(msg);
		};
		es.onerror = () => {
			if (closed) return;
			if (es.readyState !== EventSource.CLOSED) {
				onState("connecting"); // EventSource retries by itself
				return;
			}
			es.close();
			onState("error", backoff);
			timer = setTimeout(start, backoff);
			backoff = Math.min(backoff * 2, MAX_BACKOFF);
		};
	}

	start();
	return {
		close() {
			closed = true;
			clearTimeout(timer);
			if (es) es.close();
		},
	};
}
