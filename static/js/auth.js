// js/auth.js — sign-in when the bridge wants a token (auth.mode "tokens", as GET /api/v1/info
// says). The token is asked for once and kept for the tab (sessionStorage), or on this device
// (localStorage) when "Remember" is ticked; it is checked with GET /api/v1/whoami, then used for
// REST calls (api.js) and, with mqtt_credentials "bridge", as the MQTT password. With
// "passthrough" the broker checks the browser's own MQTT user name and password, asked for too.

import { ApiError, apiFetch, setToken } from "./api.js";

const KEY = "mwb.token";
const REFUSED_KEY = "mwb.signin-refused"; // why the last connect was refused, shown after reload

function storedToken() {
	try {
		return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
	} catch {
		return "";
	}
}

function keep(token, remember) {
	try {
		sessionStorage.setItem(KEY, token);
		if (remember) localStorage.setItem(KEY, token);
	} catch {
		/* storage disabled: signed in until the page closes */
	}
}

function forget() {
	try {
		sessionStorage.removeItem(KEY);
		localStorage.removeItem(KEY);
	} catch {
		/* nothing kept */
	}
}

/** Why the last connect was refused (kept over the reload refused() did), once; "" if not. */
function takeRefusal() {
	try {
		const why = sessionStorage.getItem(REFUSED_KEY) || "";
		sessionStorage.removeItem(REFUSED_KEY);
		return why;
	} catch {
		return "";
	}
}

/** The token's name and ACL (whoami), or throws ApiError (401 for an unknown token). */
async function whoami(token) {
	setToken(token);
	return (await apiFetch("/whoami")).json();
}

/**
 * Signs in when the bridge needs it. Resolves with {username, password, who} for the MQTT
 * connection (all null without tokens), after the person gave a token the bridge knows.
 */
export async function signIn() {
	let info = { auth: { mode: "none" } };
	try {
		info = await (await apiFetch("/info")).json();
	} catch {
		/* an older bridge, or none: connect as before */
	}
	if (info.auth?.mode !== "tokens") return { username: null, password: null, who: null };

	const dialog = document.getElementById("signin");
	const form = document.getElementById("signin-form");
	const tokenInput = document.getElementById("signin-token");
	const remember = document.getElementById("signin-remember");
	const error = document.getElementById("signin-error");
	const mqttFields = document.getElementById("signin-mqtt");
	const passthrough = info.auth.mqtt_credentials === "passthrough";
	mqttFields.hidden = !passthrough;
	const showError = (text) => {
		error.textContent = text;
		error.hidden = !text;
	};
	showError(takeRefusal());

	let token = storedToken();
	let who = null;
	if (token && !error.textContent) {
		try {
			who = await whoami(token);
		} catch {
			forget();
		}
	}
	while (!who) {
		if (!dialog.open) dialog.showModal();
		tokenInput.focus();
		await new Promise((resolve) => form.addEventListener("submit", resolve, { once: true }));
		token = tokenInput.value.trim();
		try {
			who = await whoami(token);
			keep(token, remember.checked);
			showError("");
		} catch (e) {
			showError(e instanceof ApiError && e.status === 401 ? "Unknown token" : `Cannot check the token: ${e.message}`);
		}
	}
	dialog.close();
	showSignedIn(who.token);
	if (passthrough)
		return { username: document.getElementById("signin-user").value || null,
			password: document.getElementById("signin-password").value || null, who };
	return { username: who.token, password: token, who };
}

function showSignedIn(name) {
	const box = document.getElementById("auth-state");
	document.getElementById("auth-who").textContent = name;
	box.hidden = false;
	document.getElementById("auth-signout").addEventListener("click", () => {
		forget();
		setToken("");
		location.reload();
	});
}

/** The broker or the bridge refused the MQTT connection (CONNACK @code): sign in again. */
export function refused(code) {
	const why = code === 0x86 ? "Bad token or credentials" : code === 0x87 ? "Not authorized" : `Refused (${code})`;
	forget();
	try {
		sessionStorage.setItem(REFUSED_KEY, why);
	} catch {
		/* the dialog just opens without the reason */
	}
	location.reload();
}
