// js/topic-filter.js — MQTT topic and filter rules, as the broker will apply them.

/** An error message for a bad filter, or "" when @f is a valid MQTT topic filter. */
export function filterError(f) {
	if (f === "") return "A filter cannot be empty.";
	if (f.includes("\u0000")) return "A filter cannot contain NUL.";
	const levels = f.split("/");
	for (let i = 0; i < levels.length; i++) {
		const l = levels[i];
		if (l.includes("#") && (l !== "#" || i !== levels.length - 1))
			return "“#” must be a whole level, and the last one.";
		if (l.includes("+") && l !== "+") return "“+” must be a whole level.";
	}
	return "";
}

/** An error message for a bad topic name to publish to, or "" when @t is valid. */
export function topicError(t) {
	if (t === "") return "Enter a topic.";
	if (t.includes("+") || t.includes("#")) return "A topic to publish to cannot contain “+” or “#”.";
	if (t.includes("\u0000")) return "A topic cannot contain NUL.";
	return "";
}
