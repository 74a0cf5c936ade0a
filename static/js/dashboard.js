// js/dashboard.js — the dashboard page: wires the MQTT connection to the subscriptions, topic tree,
// message log, chart and publish form, and runs the one animation-frame loop that writes the DOM.

import { initCall } from "./call.js";
import { connect } from "./connection.js";
import { createDetail } from "./detail.js";
import { createLiveChart } from "./live-chart.js";
import { fromPacket } from "./message.js";
import { createMessageLog } from "./message-log.js";
import { initPublishForm } from "./publish-form.js";
import { refused, signIn } from "./auth.js";
import { onSelection, select } from "./selection.js";
import { initShare } from "./share.js";
import { initSubscriptions } from "./subscriptions.js";
import { initTheme } from "./theme.js";
import { createTopicTree } from "./topic-tree.js";

const $ = (id) => document.getElementById(id);

/** The header figure #@id (a <b> followed by its word) says @n, with the word in its number. */
function setStat(id, n, one, many) {
	const b = $(id);
	const text = n.toLocaleString();
	if (b.textContent !== text) b.textContent = text;
	const word = b.nextSibling;
	const label = ` ${n === 1 ? one : many}`;
	if (word && word.nodeType === Node.TEXT_NODE && word.data !== label) word.data = label;
}
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
	lastOf: (topic) => tree.last(topic),
});
const detail = createDetail($("detail-card"));
const tree = createTopicTree($("tree"), $("tree-empty"), {
	onSelect: (topic) => select(topic),
	onCountChange: (n) => {
		setStat("stat-topics", n, "topic", "topics");
	},
	requestFlush: () => schedule(),
});
const log = createMessageLog($("log"), {
	empty: $("log-empty"),
	pauseButton: $("log-pause"),
	clearButton: $("log-clear"),
	note: $("log-note"),
	onTopic: (topic) => tree.select(topic),
	onPick: (msg) => select(msg.topic, msg),
	requestFlush: () => schedule(),
});
onSelection(({ topic }) => chart.show(topic));
onSelection(({ topic, msg }) => detail.show(topic, msg));
initShare({ lastOf: (topic) => tree.last(topic) });
initCall();
$("tree-expand").addEventListener("click", () => tree.expandAll(true));
$("tree-collapse").addEventListener("click", () => tree.expandAll(false));

// One DOM write per animation frame, and at most one per MIN_FRAME_MS under load (four a second):
// a burst of messages costs one style/layout/paint pass, and at ten thousand messages a second the
// page still answers at once (tests/integration/test_dashboard_load.py). The tree is written in
// one frame, the log and the panels in the next: two frames of half the work each, rather than one
// long task.
const MIN_FRAME_MS = 250;
let frame = 0;
let rest = 0; // the second frame of a render
let timer = 0;
let lastRender = 0;
function render() {
	frame = 0;
	lastRender = performance.now();
	tree.flush();
	if (rest) return;
	if (document.hidden) renderRest();
	else rest = requestAnimationFrame(renderRest);
}

function renderRest() {
	rest = 0;
	log.flush();
	setStat("stat-messages", log.total, "message", "messages"); // with the log it counts
	chart.flush();
	detail.flush();
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
	detail.record(msg);
	schedule();
}

// Once a second: ages in the tree, the message rate, the totals.
let lastTotal = 0;
setInterval(() => {
	tree.tick();
	const total = log.total;
	$("stat-rate").textContent = (total - lastTotal).toLocaleString();
	lastTotal = total;
	if ((frame || rest) && document.hidden) {
		// rAF sleeps in a background tab: keep the page current anyway
		cancelAnimationFrame(frame);
		cancelAnimationFrame(rest);
		rest = 0;
		render();
	}
}, 1000);

const connState = $("conn-state");
const creds = await signIn();
subscriptions.useDefaults(creds.who?.subscribe);
client = connect({
	username: creds.username,
	password: creds.password,
	onRefused: refused,
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
