// js/worker-timer.js — the {set, clear} interval timer MQTT.js takes as `timerVariant`, backed by
// js/timer-worker.js (a same-origin file, allowed by script-src 'self', unlike MQTT.js's own blob
// worker). Falls back to the page's setInterval when the worker cannot start.

export function workerTimer() {
	const timers = new Map(); // id -> {fn, ms, native}
	let next = 1;
	let worker = null;
	const native = (t) => {
		t.native = setInterval(t.fn, t.ms);
	};
	try {
		worker = new Worker(new URL("./timer-worker.js", import.meta.url));
		worker.onmessage = (e) => {
			const t = timers.get(e.data);
			if (t) t.fn();
		};
		worker.onerror = () => {
			worker = null;
			for (const t of timers.values()) native(t);
		};
	} catch {
		worker = null;
	}
	return {
		set(fn, ms) {
			const id = next++;
			const t = { fn, ms, native: 0 };
			timers.set(id, t);
			if (worker) worker.postMessage({ op: "set", id, ms });
			else native(t);
			return id;
		},
		clear(id) {
			const t = timers.get(id);
			if (!t) return;
			timers.delete(id);
			if (t.native) clearInterval(t.native);
			else if (worker) worker.postMessage({ op: "clear", id });
		},
	};
}
