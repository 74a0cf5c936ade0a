// js/publish-form.js — the publish form: topic, payload, QoS, retain, MQTT 5 content type and user
// properties ("key=value" lines). #pub-status gets data-state "pending", "ok" or "error".
// "Copy as curl" gives the REST call that publishes the same; the last publishes are kept
// (localStorage) and one click puts one back into the form.

import { currentToken } from "./api.js";
import { h } from "./dom.js";
import { copyText, curlPublish } from "./share.js";
import { load, save } from "./storage.js";
import { clock } from "./time.js";
import { topicError } from "./topic-filter.js";

const HISTORY_KEY = "pub.history";
const HISTORY_MAX = 10;
const HISTORY_MAX_PAYLOAD = 16384; // characters kept of a payload; a longer one is not kept

/** "a=1\nb=2\na=3" -> {a: ["1", "3"], b: "2"} (MQTT.js's userProperties), or an error string. */
export function parseUserProperties(text) {
	const props = {};
	const lines = text.split(/\r?\n/);
	for (let i = 0; i < lines.length; i++) {
		const line = lines[i].trim();
		if (!line) continue;
		const eq = line.indexOf("=");
		if (eq <= 0) return `User properties, line ${i + 1}: write key=value.`;
		const k = line.slice(0, eq).trim();
		const v = line.slice(eq + 1).trim();
		if (k in props) props[k] = [].concat(props[k], v);
		else props[k] = v;
	}
	return props;
}

/** Wires #pub-form to publish through @getClient(). */
export function initPublishForm(getClient) {
	const $ = (id) => document.getElementById(id);
	const form = $("pub-form");
	const topic = $("pub-topic");
	const payload = $("pub-payload");
	const qos = $("pub-qos");
	const retain = $("pub-retain");
	const contentType = $("pub-content-type");
	const userProps = $("pub-user-props");
	const send = $("pub-send");
	const status = $("pub-status");
	const curlButton = $("pub-curl");
	const curlText = $("pub-curl-text");
	const historyList = $("pub-history");
	const historyBox = $("pub-history-box");
	let seq = 0;
	let history = load(HISTORY_KEY, []);
	if (!Array.isArray(history)) history = [];

	const show = (state, text) => {
		status.dataset.state = state;
		status.textContent = text;
	};

	/** What the form would publish now: {topic, payload, qos, retain, contentType, userProperties},
	 *  or an error string. */
	const read = () => {
		const t = topic.value;
		const bad = topicError(t);
		if (bad) return bad;
		const props = parseUserProperties(userProps.value);
		if (typeof props === "string") return props;
		return {
			topic: t,
			payload: payload.value,
			qos: Number(qos.value) || 0,
			retain: retain.checked,
			contentType: contentType.value.trim(),
			userProperties: props,
		};
	};

	form.addEventListener("submit", (e) => {
		e.preventDefault();
		const m = read();
		if (typeof m === "string") return show("error", m);
		const t = m.topic;
		const client = getClient();
		if (!client || !client.connected) return show("error", "Not connected: nothing was sent.");

		const properties = {};
		if (m.contentType) properties.contentType = m.contentType;
		if (Object.keys(m.userProperties).length) properties.userProperties = m.userProperties;
		const q = m.qos;
		const entry = { ...entryOf(m), userProps: userProps.value };
		const id = ++seq;
		show("pending", "Publishing…");
		send.disabled = true;
		const timer = setTimeout(() => {
			if (id !== seq) return;
			send.disabled = false;
			show("error", "No acknowledgement from the broker after 15 s.");
		}, 15000);
		client.publish(t, m.payload, { qos: q, retain: m.retain, properties }, (err) => {
			clearTimeout(timer);
			if (id !== seq) return;
			send.disabled = false;
			// (MQTT 5: a PUBACK / PUBREC of 0x87 is the bridge's token ACL, or the broker's)
			if (err) return show("error", err.code === 0x87 ? "Not allowed by your token" : err.message || String(err));
			show("ok", q === 0 ? `Sent to ${t}` : `Delivered to ${t} (QoS ${q} acknowledged)`);
			remember(entry);
		});
	});

	// "Copy as curl": the REST call that publishes what the form would (the line shows too, so
	// that it can be copied by hand where the clipboard is refused).
	curlButton.addEventListener("click", () => {
		const m = read();
		if (typeof m === "string") return show("error", m);
		curlText.textContent = curlPublish(m, !!currentToken());
		curlText.hidden = false;
		copyText(curlText.textContent, curlText, curlButton);
	});

	// History: newest first; publishing the same again moves it to the top.
	function entryOf(m) {
		return {
			topic: m.topic,
			payload: m.payload.length > HISTORY_MAX_PAYLOAD ? null : m.payload,
			size: m.payload.length,
			qos: m.qos,
			retain: m.retain,
			contentType: m.contentType,
			time: Date.now(),
		};
	}

	function same(a, b) {
		return a.topic === b.topic && a.payload === b.payload && a.qos === b.qos && a.retain === b.retain &&
			a.contentType === b.contentType && a.userProps === b.userProps;
	}

	function remember(entry) {
		history = [entry, ...history.filter((x) => !same(x, entry))].slice(0, HISTORY_MAX);
		save(HISTORY_KEY, history);
		renderHistory();
	}

	function refill(x) {
		topic.value = x.topic;
		if (x.payload !== null) payload.value = x.payload;
		qos.value = String(x.qos);
		retain.checked = !!x.retain;
		contentType.value = x.contentType || "";
		userProps.value = x.userProps || "";
		show("", x.payload === null ? "The payload was too long to keep: enter it again." : `Back in the form: ${x.topic}`);
		topic.focus();
	}

	function renderHistory() {
		historyBox.hidden = !history.length;
		historyList.replaceChildren(...history.map((x, i) => {
			const preview = x.payload === null ? `(${x.size.toLocaleString()} characters, not kept)`
				: x.payload === "" ? "(empty)" : x.payload.replace(/\s+/g, " ").slice(0, 80);
			return h("li", null, h("button.pub-hist", {
				type: "button",
				dataset: { index: String(i), topic: x.topic },
				title: "Put back into the form",
				"aria-label": `Put back into the form: ${x.topic}, QoS ${x.qos}${x.retain ? ", retained" : ""}, at ${clock(x.time).slice(0, 8)}`,
				onclick: () => refill(x),
			},
			h("span.pub-hist-topic", { text: x.topic }),
			h("span.pub-hist-payload", { text: preview }),
			h("span.pub-hist-meta", null,
				h("span.badge", { text: `QoS ${x.qos}` }),
				x.retain ? h("span.badge.retain", { text: "R" }) : null,
				h("time", { datetime: new Date(x.time).toISOString(), text: clock(x.time).slice(0, 8) }))));
		}));
	}
	renderHistory();

	// Ctrl/Cmd+Enter in the payload publishes.
	payload.addEventListener("keydown", (e) => {
		if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
	});
}
