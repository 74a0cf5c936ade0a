// js/api.js — the page's calls to this bridge's REST API (/api/v1): one place that adds the
// signed-in token (Authorization: Bearer) and turns the bridge's JSON errors into exceptions.

let token = "";

/** The token REST calls carry from now on ("" for none). Set by the sign-in. */
export function setToken(t) {
	token = t || "";
}

/** The token REST calls carry now ("" when not signed in). */
export function currentToken() {
	return token;
}

/**
 * An error answer of the bridge: .status, .code ("forbidden", ...), the bridge's message, and
 * .retryAfter, the seconds its Retry-After header asks a client to wait (0 when it has none).
 */
export class ApiError extends Error {
	constructor(status, code, message, retryAfter = 0) {
		super(message || `HTTP ${status}`);
		this.status = status;
		this.code = code || "";
		this.retryAfter = retryAfter;
	}
}

/** /api/v1/<@path> on this origin (@path starts with "/"). */
export function apiUrl(path) {
	return new URL(`api/v1${path}`, document.baseURI).href;
}

/** One topic name as a URL path: each level percent-encoded, "/" kept. */
export function topicPath(topic) {
	return topic.split("/").map(encodeURIComponent).join("/");
}

/**
 * fetch() of /api/v1<@path> with the token; resolves with the Response when it is 2xx, else
 * rejects with an ApiError carrying the bridge's error code and message.
 */
export async function apiFetch(path, init = {}) {
	const headers = new Headers(init.headers || {});
	if (token && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
	const resp = await fetch(apiUrl(path), { ...init, headers, cache: "no-store" });
	if (resp.ok) return resp;
	let code = "";
	let message = "";
	try {
		const body = await resp.json();
		code = body?.error?.code || "";
		message = body?.error?.message || "";
	} catch {
		/* not the bridge's JSON error: the status says it */
	}
	const retryAfter = Number.parseInt(resp.headers.get("retry-after") || "", 10);
	throw new ApiError(resp.status, code, message, Number.isFinite(retryAfter) ? retryAfter : 0);
}
