// js/timer-worker.js — intervals run in a worker, which background tabs do not throttle, so the MQTT
// keepalive keeps its beat. Messages: {op: "set", id, ms} | {op: "clear", id}; posts back the id.

const timers = new Map();

self.onmessage = (e) => {
	const { op, id, ms } = e.data;
	if (op === "set") {
		timers.set(id, setInterval(() => self.postMessage(id), ms));
	} else if (op === "clear") {
		clearInterval(timers.get(id));
		timers.delete(id);
	}
};
