// js/dashboard.js — the dashboard page: wires the MQTT connection to the subscriptions, topic tree,
// message log, chart and publish form, and runs the one animation-frame loop that writes the DOM.

import { connect } from "./connection.js";
import { createLiveChart } from "./live-chart.js";
import { fromPacket } from "./message.js";
import { createMessageLog } from "./message-log.js";
import { initPublishForm } from "./publish-form.js";
import { onSelection, select } from "./selection.js";
import { initSubscriptions } from "./subscriptions.js";
import { initTheme } from "./theme.js";
import { createTopicTree } from "./topic-tree.js";

const $ = (id) => document.getElementById(id);
const STATE_LABEL = {
	connecting: "Connecting…",
	connected: "Connected",
	reconnecting: "Reconnecting…",
	offline: "Offline",
};

initTheme($("theme-toggle"));

let client = null;
const getClient = () => client;
const subscriptions = initSubscriptions(getClient);
initPublishForm(getClient);

const chart = createLiveChart($("chart"), $("chart-empty"), {
	titleEl: $("chart-topic"),
	lastEl: $("chart-last"),
});
const tree = createTopicTree($("tree"), $("tree-empty"), {
	onSelect: (topic) => select(topic),
	onCountChange: (n) => {
		$("stat-topics").textContent = n.toLocaleString();
	},
});
const log = createMessageLog($("log"), {
	empty: $("log-empty"),
	pauseButton: $("log-pause"),
	clearButton: $("log-clear"),
	note: $("log-note"),
	onTopic: (topic) => tree.select(topic),
	requestFlush: () => schedule(),
});
onSelection(({ topic }) => chart.show(topic));
$("tree-expand").addEventListener("click", () => tree.expandAll(true));
$("tree-collapse").addEventListener("click", () => tree.expandAll(false));

// One DOM write per animation frame, and at most one per MIN_FRAME_MS under load: a burst of
// messages costs one style/layout/paint pass, and at a thousand messages a second the page still
// answers at once.
const MIN_FRAME_MS = 100;
let frame = 0;
let timer = 0;
let lastRender = 0;
function render() {
	frame = 0;
	lastRender = performance.now();
	tree.flush();
	log.flush();
	chart.flush();
}

function schedule() {
	if (frame || timer) return;
	const wait = lastRender + MIN_FRAME_MS - performance.now();
	if (wait <= 0) {
		frame = requestAnimationFrame(render);
		return;
	}
	timer = setTimeout(() => {
		timer = 0;
		frame = requestAnimationFrame(render);
	}, wait);
}

function onMessage(topic, payload, packet) {
	const msg = fromPacket(topic, payload, packet);
	tree.ingest(msg);
	log.add(msg);
	chart.record(msg);
	// (panels that keep messages of their own record them here)
	schedule();
}

// Once a second: ages in the tree, the message rate, the totals.
let lastTotal = 0;
setInterval(() => {
	tree.tick();
	const total = log.total;
	$("stat-rate").textContent = (total - lastTotal).toLocaleString();
	$("stat-messages").textContent = total.toLocaleString();
	lastTotal = total;
	if (frame && document.hidden) {
		cancelAnimationFrame(frame); // rAF sleeps in a background tab: keep the page current anyway
		render();
	}
}, 1000);

const connState = $("conn-state");
client = connect({
	onState(state, error) {
		connState.dataset.state = state;
		connState.querySelector(".conn-label").textContent = STATE_LABEL[state];
		connState.title = error ? `MQTT over WebSocket: ${error}` : `MQTT over WebSocket · ${state}`;
		if (state !== "connected") subscriptions.markPending();
	},
	onConnect(connack) {
		if (!connack.sessionPresent) subscriptions.subscribeAll();
	},
	onMessage,
});
