// js/time.js — short clock times and ages for the log, the topic tree and the chart.

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** "14:03:07.125" in local time. */
export function clock(ms) {
	const d = new Date(ms);
	return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "14:03", or "14:03:07" with @seconds, in local time. */
export function shortClock(ms, seconds) {
	const d = new Date(ms);
	const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
	return seconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

/** "now", "12s", "4m", "3h", "2d": how long ago @ms was, at @now. */
export function age(ms, now) {
	const s = Math.max(0, Math.floor((now - ms) / 1000));
	if (s < 1) return "now";
	if (s < 60) return `${s}s`;
	if (s < 3600) return `${Math.floor(s / 60)}m`;
	if (s < 86400) return `${Math.floor(s / 3600)}h`;
	return `${Math.floor(s / 86400)}d`;
}
