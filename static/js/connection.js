// js/connection.js — the page's MQTT client (MQTT.js) over WebSocket to this origin's /mqtt,
// MQTT 5, clean start, reconnecting; reports its state as connecting|connected|reconnecting|offline.

import mqtt from "../vendor/mqtt/mqtt.esm.js";
import { workerTimer } from "./worker-timer.js";

/** ws(s)://<this host>/mqtt, the scheme matching the page's. */
export function brokerUrl(loc = location) {
	const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
	return `${scheme}//${loc.host}/mqtt`;
}

function randomId() {
	const b = new Uint8Array(6);
	crypto.getRandomValues(b);
	return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Connects and returns the MQTT.js client. @onState(state, detail) is called on every change;
 * @onConnect(connack) on every (re)connection, for the caller to (re)subscribe. @username and
 * @password (optional) go into CONNECT; when the bridge or the broker refuses them (CONNACK 0x86
 * or 0x87) the client stops and @onRefused(code) is called instead of reconnecting for ever.
 */
export function connect({ onState, onConnect, onMessage, onRefused, username, password }) {
	const client = mqtt.connect(brokerUrl(), {
		...(username ? { username } : {}),
		...(password ? { password } : {}),
		protocolVersion: 5,
		clean: true,
		clientId: `dashboard-${randomId()}`,
		keepalive: 30,
		reconnectPeriod: 2000,
		connectTimeout: 10000,
		resubscribe: false, // the subscription list re-subscribes itself on each connect
		properties: { sessionExpiryInterval: 0 },
		timerVariant: workerTimer(),
	});
	let state = "connecting";
	let lastError = "";
	const set = (next) => {
		if (next === state) return;
		state = next;
		onState(state, lastError);
	};
	onState(state, "");

	client.on("connect", (connack) => {
		lastError = "";
		set("connected");
		onConnect(connack);
	});
	client.on("reconnect", () => set("reconnecting"));
	client.on("close", () => {
		if (state === "connected" || state === "reconnecting" || state === "connecting") set("offline");
	});
	client.on("offline", () => set("offline"));
	client.on("error", (err) => {
		lastError = err && err.message ? err.message : String(err);
		// CONNACK 0x86 (bad user name or password) or 0x87 (not authorized): sign in again
		if (onRefused && err && (err.code === 0x86 || err.code === 0x87)) {
			client.end(true);
			onRefused(err.code);
		}
		onState(state, lastError);
	});
	client.on("message", onMessage);
	return client;
}
