// js/share.js — share / embed: ready-to-copy snippets for the selected topic or a typed filter
// (<mqtt-live>, the /view iframe, curl publish and curl -N stream) with a live preview of /view,
// and the helpers other panels use to copy text and build curl lines (publish-form.js).
//
// Snippets carry this bridge's real address (location.origin) and, when signed in, the
// placeholder $TOKEN: never the token itself, as snippets are made to be pasted elsewhere.

import { apiUrl, currentToken, topicPath } from "./api.js";
import { decoded } from "./message.js";
import { load, save } from "./storage.js";
import { currentTheme, onThemeChange } from "./theme.js";
import { onSelection, selection } from "./selection.js";
import { filterError, topicError } from "./topic-filter.js";

const TOKEN = "$TOKEN";
const MAX_PAYLOAD_IN_SNIPPET = 200; // characters of a last payload worth pasting into a curl line
const PAYLOAD_PLACEHOLDER = "PAYLOAD";

// ------------------------------------------------------------------------------------------------
// building snippets (pure)

/** @s as one shell word in single quotes: a ' becomes '\'' (works in sh, bash, zsh). */
export function shellQuote(s) {
	return `'${String(s).replace(/'/g, "'\\''")}'`;
}

/** @s percent-encoded for a URL query or path, "/" kept: only [A-Za-z0-9-_.~/%] remain, which
 *  need no quoting in HTML attributes nor in double-quoted shell words ("!" would, in bash). */
export function urlPart(s) {
	return encodeURIComponent(s)
		.replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
		.replace(/%2F/g, "/");
}

/** @s for an HTML attribute value in double quotes. */
export function htmlAttr(s) {
	return String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function origin() {
	return new URL(apiUrl("/")).origin;
}

// A topic whose levels survive a URL path: lws collapses "//", "/./" and "/../" (README "Access
// tokens"), so empty, "." and ".." levels need the JSON endpoint.
function pathSafe(topic) {
	return topic.split("/").every((l) => l !== "" && l !== "." && l !== "..");
}

// MQTT.js's userProperties object ({k: v | [v, ...]}) as the ordered pairs it sends.
function propertyPairs(props) {
	const pairs = [];
	for (const [k, v] of Object.entries(props || {})) for (const x of [].concat(v)) pairs.push([k, String(x)]);
	return pairs;
}

/**
 * The curl line that publishes what @m describes: {topic, payload, qos, retain, contentType,
 * userProperties ({k: v | [v...]})}; @signedIn adds -H "Authorization: Bearer $TOKEN".
 * The raw-body endpoint when it can say it all, else the JSON one (user properties, topics a URL
 * path cannot carry, or a content type curl's own -d label would shadow).
 */
export function curlPublish(m, signedIn) {
	const auth = signedIn ? ` -H "Authorization: Bearer ${TOKEN}"` : "";
	const payload = m.payload ?? "";
	const pairs = propertyPairs(m.userProperties);
	const ct = m.contentType || "";
	const raw = !pairs.length && pathSafe(m.topic) && ct.toLowerCase() !== "application/x-www-form-urlencoded";
	if (raw) {
		const query = [];
		if (m.qos) query.push(`qos=${m.qos}`);
		if (m.retain) query.push("retain=true");
		const url = `${origin()}/api/v1/publish/${urlPart(m.topic)}${query.length ? "?" + query.join("&") : ""}`;
		// -d reads a file for "@name"; --data-raw never does.
		const data = payload.startsWith("@") ? "--data-raw" : "-d";
		const type = ct ? ` -H ${shellQuote("Content-Type: " + ct)}` : "";
		return `curl${auth} ${data} ${shellQuote(payload)}${type} ${shellQuote(url)}`;
	}
	const body = { topic: m.topic, payload, qos: m.qos || 0, retain: !!m.retain };
	const properties = {};
	if (ct) properties.content_type = ct;
	if (pairs.length) properties.user_properties = pairs;
	if (Object.keys(properties).length) body.properties = properties;
	return `curl${auth} -H 'Content-Type: application/json' -d ${shellQuote(JSON.stringify(body))} ` +
		shellQuote(`${origin()}/api/v1/publish`);
}

/** The curl -N line that streams @filter's messages as Server-Sent Events. */
export function curlStream(filter, signedIn) {
	const url = `${origin()}/api/v1/stream?topic=${urlPart(filter)}`;
	// $TOKEN must expand: double quotes, safe as urlPart() leaves no shell-special character.
	return signedIn ? `curl -N "${url}&access_token=${TOKEN}"` : `curl -N ${shellQuote(url)}`;
}

/** The /view URL of @filter (extra query parameters in @extra, already encoded). */
export function viewUrl(filter, extra = "") {
	return `${origin()}/view?topic=${urlPart(filter)}${extra}`;
}

/** <script src=".../embed.js"> and a <mqtt-live> element for @filter. */
export function embedSnippet(filter, signedIn) {
	const wild = /[+#]/.test(filter);
	const attrs = [`topic="${htmlAttr(filter)}"`];
	if (wild) attrs.push('format="log"', 'lines="10"');
	if (signedIn) attrs.push(`access-token="${TOKEN}"`);
	return `<script src="${origin()}/embed.js" async></script>\n<mqtt-live ${attrs.join(" ")}></mqtt-live>`;
}

/** An <iframe> of /view for @filter. */
export function iframeSnippet(filter, signedIn) {
	const src = viewUrl(filter, signedIn ? `&access_token=${TOKEN}` : "");
	return `<iframe src="${htmlAttr(src)}" width="320" height="200" title="${htmlAttr(filter)}"></iframe>`;
}

// ------------------------------------------------------------------------------------------------
// copying

/**
 * Copies @text (navigator.clipboard; where that is refused, selects @source's text and tries the
 * old execCommand). @button says "Copied" for a moment, or "Press Ctrl+C" with the text selected.
 */
export async function copyText(text, source, button) {
	let ok = false;
	try {
		await navigator.clipboard.writeText(text);
		ok = true;
	} catch {
		if (source) {
			const range = document.createRange();
			range.selectNodeContents(source);
			const sel = getSelection();
			sel.removeAllRanges();
			sel.addRange(range);
			try {
				ok = document.execCommand("copy");
			} catch {
				ok = false;
			}
		}
	}
	if (!button) return ok;
	if (!button.dataset.label) button.dataset.label = button.textContent;
	clearTimeout(Number(button.dataset.timer || 0));
	button.textContent = ok ? "Copied" : "Press Ctrl+C";
	button.dataset.copied = ok ? "ok" : "selected";
	button.dataset.timer = String(setTimeout(() => {
		button.textContent = button.dataset.label;
		delete button.dataset.copied;
	}, 1600));
	return ok;
}

// ------------------------------------------------------------------------------------------------
// the card

/** A message's payload, when it is short text worth pasting into a curl line. */
function pastable(msg) {
	if (!msg) return null;
	const d = decoded(msg);
	if ((d.kind !== "text" && d.kind !== "json") || d.text.length > MAX_PAYLOAD_IN_SNIPPET) return null;
	return d.text;
}

/**
 * Wires the share card (#share-*). @lastOf(topic) gives a topic's latest message (the tree's),
 * for the curl publish line's payload.
 */
export function initShare({ lastOf }) {
	const $ = (id) => document.getElementById(id);
	const card = $("share-card");
	const body = $("share-body");
	const toggle = $("share-toggle");
	const filterIn = $("share-filter");
	const subtree = $("share-subtree");
	const error = $("share-error");
	const note = $("share-pub-note");
	const preview = $("share-preview");
	const empty = $("share-empty");
	const codes = {
		embed: $("share-embed"),
		iframe: $("share-iframe"),
		pub: $("share-curl-pub"),
		stream: $("share-curl-stream"),
	};
	let base = ""; // the selected topic, or what was typed
	let rendered = "";
	let previewTimer = 0;

	const setOpen = (open) => {
		body.hidden = !open;
		toggle.setAttribute("aria-expanded", String(open));
		toggle.textContent = open ? "Hide" : "Show";
		card.dataset.open = String(open);
	};
	setOpen(load("share.open", false));
	toggle.addEventListener("click", () => {
		const open = body.hidden;
		setOpen(open);
		save("share.open", open);
		if (open) card.scrollIntoView({ block: "nearest" }); // its column may scroll (short windows)
	});

	/** The filter the snippets are for: the base, or base/# with "whole subtree". */
	const filter = () => {
		if (!base) return "";
		if (!subtree.checked || base === "#" || base.endsWith("/#")) return base;
		return `${base}/#`;
	};

	function render(force = false) {
		const f = filter();
		const signedIn = !!currentToken();
		const bad = f ? filterError(f) : "";
		// The publish line: to the topic itself (the base without its "/#"), with its last
		// payload when that is short text.
		const pubTopic = base.endsWith("/#") ? base.slice(0, -2) : base;
		const pubBad = topicError(pubTopic);
		const msg = selection().topic === pubTopic && selection().msg ? selection().msg : lastOf(pubTopic);
		const payload = pastable(msg) ?? PAYLOAD_PLACEHOLDER;
		const key = JSON.stringify([f, signedIn, payload, pubTopic]);
		if (key === rendered && !force) return;
		rendered = key;

		const ready = !!f && !bad;
		empty.hidden = !!f;
		error.hidden = !bad;
		error.textContent = bad;
		card.dataset.ready = String(ready);
		for (const el of Object.values(codes)) el.closest(".snippet").hidden = !ready;
		if (!ready) {
			for (const el of Object.values(codes)) el.textContent = "";
			setPreview("");
			return;
		}
		codes.embed.textContent = embedSnippet(f, signedIn);
		codes.iframe.textContent = iframeSnippet(f, signedIn);
		codes.stream.textContent = curlStream(f, signedIn);
		codes.pub.closest(".snippet").hidden = !!pubBad;
		note.hidden = !pubBad;
		note.textContent = pubBad ? `Publishing needs a topic: ${pubBad}` : "";
		codes.pub.textContent = pubBad ? "" : curlPublish({ topic: pubTopic, payload, qos: 0, retain: false }, signedIn);
		clearTimeout(previewTimer);
		previewTimer = setTimeout(() => setPreview(f), 300); // not on every keystroke
	}

	// The preview is this page's own /view; it carries the real token (it never leaves the page)
	// and follows the dashboard's theme.
	function setPreview(f) {
		const wrap = preview.closest(".share-preview");
		wrap.hidden = !f;
		if (!f) {
			if (preview.getAttribute("src")) preview.removeAttribute("src");
			return;
		}
		const token = currentToken();
		const src = viewUrl(f, `&theme=${currentTheme()}` + (token ? `&access_token=${encodeURIComponent(token)}` : ""));
		if (preview.getAttribute("src") !== src) {
			preview.src = src;
			preview.dataset.filter = f;
		}
	}

	onSelection(({ topic }) => {
		if (!topic) return;
		base = topic;
		filterIn.value = topic;
		render();
	});
	filterIn.addEventListener("input", () => {
		base = filterIn.value.trim();
		render();
	});
	subtree.addEventListener("change", () => render());
	onThemeChange(() => setPreview(card.dataset.ready === "true" ? filter() : ""));
	// Signing in or out changes the snippets; the card catches up before anyone copies from it.
	card.addEventListener("pointerenter", () => render());
	card.addEventListener("focusin", () => render());

	for (const [name, el] of Object.entries(codes)) {
		const button = card.querySelector(`[data-copy="${name}"]`);
		button.addEventListener("click", () => {
			render();
			copyText(el.textContent, el, button);
		});
	}
	render(true);
}
