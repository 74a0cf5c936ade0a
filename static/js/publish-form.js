// js/publish-form.js — the publish form: topic, payload, QoS, retain, MQTT 5 content type and user
// properties ("key=value" lines). #pub-status gets data-state "pending", "ok" or "error".

import { topicError } from "./topic-filter.js";

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
	let seq = 0;

	const show = (state, text) => {
		status.dataset.state = state;
		status.textContent = text;
	};

	form.addEventListener("submit", (e) => {
		e.preventDefault();
		const t = topic.value;
		const bad = topicError(t);
		if (bad) return show("error", bad);
		const props = parseUserProperties(userProps.value);
		if (typeof props === "string") return show("error", props);
		const client = getClient();
		if (!client || !client.connected) return show("error", "Not connected: nothing was sent.");

		const properties = {};
		if (contentType.value.trim()) properties.contentType = contentType.value.trim();
		if (Object.keys(props).length) properties.userProperties = props;
		const q = Number(qos.value) || 0;
		const id = ++seq;
		show("pending", "Publishing…");
		send.disabled = true;
		const timer = setTimeout(() => {
			if (id !== seq) return;
			send.disabled = false;
			show("error", "No acknowledgement from the broker after 15 s.");
		}, 15000);
		client.publish(t, payload.value, { qos: q, retain: retain.checked, properties }, (err) => {
			clearTimeout(timer);
			if (id !== seq) return;
			send.disabled = false;
			if (err) show("error", err.message || String(err));
			else show("ok", q === 0 ? `Sent to ${t}` : `Delivered to ${t} (QoS ${q} acknowledged)`);
		});
	});

	// Ctrl/Cmd+Enter in the payload publishes.
	payload.addEventListener("keydown", (e) => {
		if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
	});
}
