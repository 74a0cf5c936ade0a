// js/theme.js — light/dark: follows prefers-color-scheme until the user picks one with the toggle.

import { load, save } from "./storage.js";

const media = matchMedia("(prefers-color-scheme: dark)");
const listeners = new Set();

function effective() {
	const chosen = load("theme", null);
	if (chosen === "light" || chosen === "dark") return chosen;
	return media.matches ? "dark" : "light";
}

function apply() {
	const theme = effective();
	document.documentElement.dataset.theme = theme;
	for (const fn of listeners) fn(theme);
	return theme;
}

/** The theme in force now: "light" or "dark". */
export function currentTheme() {
	return document.documentElement.dataset.theme || effective();
}

/** Calls @fn(theme) whenever the theme changes. */
export function onThemeChange(fn) {
	listeners.add(fn);
}

/** Sets <html data-theme> now and wires @button (may be null) to flip and remember the theme. */
export function initTheme(button) {
	apply();
	media.addEventListener("change", apply);
	if (!button) return;
	const label = () => {
		const next = currentTheme() === "dark" ? "light" : "dark";
		button.setAttribute("aria-label", `Switch to ${next} theme`);
		button.title = `Switch to ${next} theme`;
	};
	label();
	listeners.add(label);
	button.addEventListener("click", () => {
		save("theme", currentTheme() === "dark" ? "light" : "dark");
		apply();
	});
}
