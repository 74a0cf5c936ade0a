// js/auth.js — sign-in when the bridge wants a token (auth.mode "tokens", as GET /api/v1/info
// says). The token is asked for once and kept for the tab (sessionStorage), or on this device
// (localStorage) when "Remember" is ticked; it is checked with GET /api/v1/whoami, then used for
// REST calls (api.js) and, with mqtt_credentials "bridge", as the MQTT password. With
// "passthrough" the broker checks the browser's own MQTT user name and password, asked for too
// and kept like the token. With auth.mode "none" nothing here shows.

import { ApiError, apiFetch, setToken } from "./api.js";

const TOKEN_KEY = "mwb.token";
const LOGIN_KEY = "mwb.mqtt-login"; // passthrough: {username, password} for the broker, JSON
const REFUSED_KEY = "mwb.signin-refused"; // why the last connect was refused, shown after reload

const $ = (id) => document.getElementById(id);

let passthrough = false; // mqtt_credentials "passthrough": the MQTT login is the person's own

/** The value kept for the tab, else on the device; null when none (or storage is disabled). */
function stored(key) {
	try {
		return sessionStorage.getItem(key) ?? localStorage.getItem(key);
	} catch {
		return null;
	}
}

function keep(key, value, remember) {
	try {
		sessionStorage.setItem(key, value);
		if (remember) localStorage.setItem(key, value);
		else localStorage.removeItem(key);
	} catch {
		/* storage disabled: signed in until the page closes */
	}
}

function forget(...keys) {
	for (const key of keys) {
		try {
			sessionStorage.removeItem(key);
			localStorage.removeItem(key);
		} catch {
			/* nothing kept */
		}
	}
}

function storedLogin() {
	try {
		const login = JSON.parse(stored(LOGIN_KEY));
		return login && typeof login === "object" ? login : null;
	} catch {
		return null;
	}
}

/** Whether the token was kept on this device ("Remember" was ticked). */
function rememberedHere() {
	try {
		return localStorage.getItem(TOKEN_KEY) !== null;
	} catch {
		return false;
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

/** The next submit of @form; the dialog stays open (method="dialog" would close it). */
function nextSubmit(form) {
	return new Promise((resolve) =>
		form.addEventListener("submit", (e) => {
			e.preventDefault();
			resolve();
		}, { once: true }));
}

/**
 * Signs in when the bridge needs it. Resolves with {username, password, who} for the MQTT
 * connection (all null without tokens), after the person gave a token the bridge knows.
 */
export async function signIn() {
	let info = null;
	try {
		info = await (await apiFetch("/info")).json();
	} catch {
		/* an older bridge: connect as before */
	}
	if (info?.auth?.mode !== "tokens") return { username: null, password: null, who: null };

	const dialog = $("signin");
	const form = $("signin-form");
	const tokenInput = $("signin-token");
	const userInput = $("signin-user");
	const passwordInput = $("signin-password");
	const remember = $("signin-remember");
	const submit = $("signin-submit");
	const error = $("signin-error");
	const reopen = $("auth-signin");
	passthrough = info.auth.mqtt_credentials === "passthrough";
	$("signin-mqtt").hidden = !passthrough;
	const showError = (text, invalid = false) => {
		error.textContent = text;
		error.hidden = !text;
		tokenInput.setAttribute("aria-invalid", String(invalid));
	};
	showError(takeRefusal());

	let token = stored(TOKEN_KEY) || "";
	let login = passthrough ? storedLogin() : {};
	let who = null;
	// a refused connect asks again, even with a token kept (passthrough: its MQTT login failed)
	if (token && login && !error.textContent) {
		try {
			who = await whoami(token);
		} catch (e) {
			if (e instanceof ApiError && e.status === 401) forget(TOKEN_KEY, LOGIN_KEY);
		}
	}
	if (!who) {
		setConnState("offline", "Not signed in");
		tokenInput.value = stored(TOKEN_KEY) || "";
		userInput.value = login?.username ?? "";
		remember.checked = rememberedHere();
		// Escape closes the dialog (the page stays readable); the top bar's "Sign in" brings it back
		const open = () => {
			reopen.hidden = true;
			if (!dialog.open) dialog.showModal();
			(tokenInput.value && passthrough ? userInput : tokenInput).focus();
		};
		const closed = () => {
			if (!who) reopen.hidden = false;
		};
		reopen.addEventListener("click", open);
		dialog.addEventListener("close", closed);
		open();
		while (!who) {
			await nextSubmit(form);
			token = tokenInput.value.trim();
			submit.disabled = true;
			try {
				who = await whoami(token);
				showError("");
			} catch (e) {
				if (e instanceof ApiError && e.status === 401) {
					showError("Unknown token", true);
					tokenInput.focus();
					tokenInput.select();
				} else {
					showError(`Cannot check the token: ${e.message}`);
				}
			} finally {
				submit.disabled = false;
			}
		}
		reopen.removeEventListener("click", open);
		dialog.removeEventListener("close", closed);
		dialog.close();
		reopen.hidden = true;
		keep(TOKEN_KEY, token, remember.checked);
		if (passthrough) {
			login = { username: userInput.value || null, password: passwordInput.value || null };
			keep(LOGIN_KEY, JSON.stringify(login), remember.checked);
		}
		passwordInput.value = "";
		tokenInput.value = "";
		setConnState("connecting", "Connecting…");
	}
	showSignedIn(who.token);
	if (passthrough) return { username: login.username ?? null, password: login.password ?? null, who };
	return { username: who.token, password: token, who };
}

/** The connection badge while no connection is tried (connection.js takes it over after). */
function setConnState(state, label) {
	const el = $("conn-state");
	el.dataset.state = state;
	el.querySelector(".conn-label").textContent = label;
}

function showSignedIn(name) {
	$("auth-who").textContent = name;
	$("auth-state").hidden = false;
	$("auth-signout").addEventListener("click", signOut, { once: true });
}

/** Forgets the token (and the MQTT login) in both storages; the reload disconnects and asks again. */
function signOut() {
	forget(TOKEN_KEY, LOGIN_KEY);
	setToken("");
	location.reload();
}

/**
 * The broker or the bridge refused the MQTT connection (CONNACK @code): sign in again, with
 * the reason next to the form, instead of reconnecting for ever. With passthrough the token
 * was good (whoami said so) and only the MQTT login is forgotten.
 */
export function refused(code) {
	const why = code === 0x86 ? "Bad token or credentials" : code === 0x87 ? "Not authorized" : `Refused (${code})`;
	forget(LOGIN_KEY);
	if (!passthrough) forget(TOKEN_KEY);
	try {
		sessionStorage.setItem(REFUSED_KEY, why);
	} catch {
		/* the dialog just opens without the reason */
	}
	location.reload();
}
