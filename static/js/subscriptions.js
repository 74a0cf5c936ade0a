// js/subscriptions.js — the subscribe box and the list of subscriptions, remembered in localStorage
// ("#" out of the box); subscribes them on every (re)connection.

import { h } from "./dom.js";
import { load, save } from "./storage.js";
import { filterError } from "./topic-filter.js";

const DEFAULT = [{ filter: "#", qos: 0 }];

function stored() {
	const list = load("subscriptions", DEFAULT);
	if (!Array.isArray(list)) return DEFAULT.slice();
	return list.filter((s) => s && typeof s.filter === "string" && !filterError(s.filter))
		.map((s) => ({ filter: s.filter, qos: [0, 1, 2].includes(s.qos) ? s.qos : 0 }));
}

/**
 * Wires the subscribe form (#sub-form, #sub-filter, #sub-qos, #sub-error) and the list (#subs).
 * @getClient() returns the MQTT.js client. Returns {subscribeAll()} to call on each connect.
 */
export function initSubscriptions(getClient) {
	const form = document.getElementById("sub-form");
	const input = document.getElementById("sub-filter");
	const qosSelect = document.getElementById("sub-qos");
	const error = document.getElementById("sub-error");
	const list = document.getElementById("subs");
	const empty = document.getElementById("subs-empty");
	const subs = stored(); // [{filter, qos}] in the order added
	const status = new Map(); // filter -> "pending" | "granted" | "refused"

	const showError = (msg) => {
		error.textContent = msg;
		error.hidden = !msg;
	};

	function render() {
		const items = subs.map(({ filter, qos }) => {
			const st = status.get(filter) || "pending";
			const title = st === "refused" ? "The broker refused this subscription"
				: st === "granted" ? "Subscribed" : "Waiting for the broker";
			return h("li.sub", { dataset: { filter, status: st } },
				h("span.sub-dot", { title, "aria-label": title }),
				h("code.sub-filter", { title: filter, text: filter }),
				h("span.badge", { text: `QoS ${qos}` }),
				h("button.sub-remove.ghost.icon", {
					type: "button", "aria-label": `Unsubscribe from ${filter}`, title: "Unsubscribe",
					onclick: () => remove(filter),
				}, "×"));
		});
		list.replaceChildren(...items);
		empty.hidden = subs.length > 0;
	}

	function subscribe(filter, qos) {
		const client = getClient();
		status.set(filter, "pending");
		if (!client || !client.connected) return;
		client.subscribe(filter, { qos }, (err, granted) => {
			if (!subs.some((s) => s.filter === filter)) return; // removed meanwhile
			const refused = err || !granted || !granted.length || granted[0].qos >= 128;
			status.set(filter, refused ? "refused" : "granted");
			// (MQTT.js rejects a refused SUBACK with an error that carries the packet, not the code)
			const code = err ? err.packet?.granted?.[0] ?? err.code : granted?.[0]?.qos;
			if (code === 0x87) showError(`Not allowed by your token: ${filter}`);
			else if (err) showError(`Subscribe ${filter}: ${err.message}`);
			render();
		});
	}

	function remove(filter) {
		const i = subs.findIndex((s) => s.filter === filter);
		if (i < 0) return;
		subs.splice(i, 1);
		status.delete(filter);
		save("subscriptions", subs);
		const client = getClient();
		if (client && client.connected) client.unsubscribe(filter);
		render();
	}

	form.addEventListener("submit", (e) => {
		e.preventDefault();
		const filter = input.value.trim();
		const qos = Number(qosSelect.value) || 0;
		const msg = filterError(filter);
		showError(msg);
		if (msg) return;
		const existing = subs.find((s) => s.filter === filter);
		if (existing) existing.qos = qos;
		else subs.push({ filter, qos });
		save("subscriptions", subs);
		subscribe(filter, qos);
		render();
		input.value = "";
	});
	input.addEventListener("input", () => showError(""));

	render();
	return {
		/** After a (re)connect with a clean session: subscribe everything in the list again. */
		subscribeAll() {
			for (const { filter, qos } of subs) subscribe(filter, qos);
			render();
		},
		/** Signed in with a token: when the person never changed the list, its filters are the
		 *  token's subscribe ACL instead of "#" (which the token may not read). */
		useDefaults(filters) {
			if (load("subscriptions", null) !== null || !filters || !filters.length) return;
			subs.splice(0, subs.length, ...filters.map((filter) => ({ filter, qos: 0 })));
			render();
		},
		/** The connection is down: every subscription waits for the next connect. */
		markPending() {
			for (const { filter } of subs) status.set(filter, "pending");
			render();
		},
	};
}
