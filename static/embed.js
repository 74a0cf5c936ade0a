/*
 * embed.js — defines <mqtt-live topic="F">, a live view of an MQTT topic from mqtt-web-bridge's
 * /api/v1/stream (Server-Sent Events). One self-contained file: load it as a classic script or as a
 * module, from this bridge or from a page of another origin (the bridge answers with CORS).
 *
 *   <script src="https://bridge.example/embed.js" async></script>
 *   <mqtt-live topic="sensors/kitchen/temp" unit="°C" label="Kitchen"></mqtt-live>
 *
 * Attributes: topic (filter, wildcards allowed), bridge (default: where this script came from),
 * format = value | json | log, field (JSON path "a.b.0"), lines (log length, default 10), unit,
 * label, access-token, theme = light | dark | auto. The host gets state = connecting | open |
 * error, and fires a "message" CustomEvent (bubbles, composed) with the event's JSON as detail.
 * Styles live in a constructed stylesheet, so a strict style-src CSP on the page is fine.
 * Restyle with --mqtt-live-bg, -fg, -muted, -accent, -border, -radius, -font, -value-size, or ::part().
 */
(function () {
	"use strict";
	if (typeof window === "undefined" || !window.customElements || customElements.get("mqtt-live")) return;

	// Where this file was loaded from. Classic scripts have document.currentScript while they run;
	// modules do not (and `import.meta` would not parse in a classic script), so look for our tag.
	var SCRIPT_BASE = (function () {
		var src = document.currentScript && document.currentScript.src;
		if (!src) {
			var scripts = document.scripts;
			for (var i = scripts.length - 1; i >= 0; i--) {
				if (/\/embed\.js(?:[?#].*)?$/.test(scripts[i].src)) {
					src = scripts[i].src;
					break;
				}
			}
		}
		try {
			return new URL(".", src || location.href).href.replace(/^(?!https?:).*$/, location.origin + "/");
		} catch (e) {
			return location.origin + "/";
		}
	})();

	var CSS = [
		":host{--_bg:var(--mqtt-live-bg,#fff);--_fg:var(--mqtt-live-fg,#18202b);",
		"--_muted:var(--mqtt-live-muted,#5f6b7c);--_accent:var(--mqtt-live-accent,#2563eb);",
		"--_border:var(--mqtt-live-border,#e1e5ec);--_ok:#15803d;--_warn:#b45309;--_err:#c62828;",
		"display:inline-block;box-sizing:border-box;min-width:10em;max-width:100%;vertical-align:top;",
		"color:var(--_fg);font:14px/1.4 var(--mqtt-live-font,system-ui,-apple-system,'Segoe UI',Roboto,sans-serif)}",
		":host([hidden]){display:none}",
		":host([format=log]),:host([format=json]){display:block}",
		":host([theme=dark]){--_bg:var(--mqtt-live-bg,#151b23);--_fg:var(--mqtt-live-fg,#e6eaf0);",
		"--_muted:var(--mqtt-live-muted,#97a2b2);--_accent:var(--mqtt-live-accent,#5b8cf5);",
		"--_border:var(--mqtt-live-border,#2a313c);--_ok:#3fb950;--_warn:#e3a03a;--_err:#f26d6d}",
		"@media (prefers-color-scheme:dark){:host(:not([theme=light])){--_bg:var(--mqtt-live-bg,#151b23);",
		"--_fg:var(--mqtt-live-fg,#e6eaf0);--_muted:var(--mqtt-live-muted,#97a2b2);",
		"--_accent:var(--mqtt-live-accent,#5b8cf5);--_border:var(--mqtt-live-border,#2a313c);",
		"--_ok:#3fb950;--_warn:#e3a03a;--_err:#f26d6d}}",
		".card{box-sizing:border-box;height:100%;padding:12px 14px;border:1px solid var(--_border);",
		"border-radius:var(--mqtt-live-radius,10px);background:var(--_bg)}",
		".head{display:flex;align-items:center;gap:8px;min-width:0;color:var(--_muted);font-size:12px;font-weight:600}",
		".label{flex:1;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
		".dot{flex:none;width:8px;height:8px;border-radius:50%;background:var(--_warn)}",
		":host([state=open]) .dot{background:var(--_ok)}",
		":host([state=error]) .dot{background:var(--_err)}",
		".reading{margin-top:4px;overflow-wrap:anywhere}",
		".value{font-size:var(--mqtt-live-value-size,2.2em);font-weight:700;letter-spacing:-.02em;",
		"line-height:1.15;font-variant-numeric:tabular-nums}",
		".value.long{font-size:1.1em;font-weight:600;letter-spacing:0}",
		".value.waiting{color:var(--_muted);font-weight:400}",
		".unit{margin-left:.25em;color:var(--_muted);font-size:1em;font-weight:600}",
		".time{margin-top:2px;color:var(--_muted);font-size:11.5px}",
		".time:empty{display:none}",
		".json{margin:8px 0 0;max-height:var(--mqtt-live-max-height,24em);overflow:auto;",
		"font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere}",
		".log{margin:8px 0 0;padding:0;list-style:none;font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}",
		".log li{display:flex;gap:10px;padding:3px 0;border-top:1px solid var(--_border);min-width:0}",
		".log li:first-child{border-top:0}",
		".log .t{flex:none;color:var(--_muted)}",
		".log .k{flex:none;max-width:40%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;color:var(--_accent)}",
		".log .v{flex:1;min-width:0;overflow-wrap:anywhere}",
		":host([format=log]) .card{container-type:inline-size}",
		"@container (max-width:420px){.log li{flex-wrap:wrap;gap:0 10px}.log .k{flex:1;max-width:none}.log .v{flex-basis:100%}}",
		".empty{color:var(--_muted);font-size:12.5px}",
	].join("\n");

	var sheet = null;
	function adoptStyles(root) {
		if (root.adoptedStyleSheets !== undefined && typeof CSSStyleSheet === "function" &&
			"replaceSync" in CSSStyleSheet.prototype) {
			try {
				if (!sheet) {
					sheet = new CSSStyleSheet();
					sheet.replaceSync(CSS);
				}
				root.adoptedStyleSheets = [sheet];
				return;
			} catch (e) {
				/* fall through to a <style> element */
			}
		}
		var style = document.createElement("style");
		style.textContent = CSS;
		root.appendChild(style);
	}

	function el(tag, cls, text) {
		var e = document.createElement(tag);
		if (cls) e.className = cls;
		if (text !== undefined) e.textContent = text;
		return e;
	}

	function pad(n) {
		return (n < 10 ? "0" : "") + n;
	}
	function clock(ms) {
		var d = new Date(ms);
		return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
	}

	// "a.b.0" in a JSON value; undefined when absent.
	function pick(v, path) {
		if (!path) return v;
		var keys = path.split(".");
		for (var i = 0; i < keys.length; i++) {
			if (v === null || typeof v !== "object") return undefined;
			if (Array.isArray(v) && !/^\d+$/.test(keys[i])) return undefined;
			if (!Object.prototype.hasOwnProperty.call(v, keys[i])) return undefined;
			v = v[keys[i]];
		}
		return v;
	}

	var MIN_BACKOFF = 1000;
	var MAX_BACKOFF = 30000;

	class MqttLive extends HTMLElement {
		static get observedAttributes() {
			return ["topic", "bridge", "access-token", "format", "field", "unit", "label", "lines", "theme"];
		}

		constructor() {
			super();
			this._shadow = this.attachShadow({ mode: "open" });
			adoptStyles(this._shadow);
			this._card = el("div", "card");
			this._card.setAttribute("part", "card");
			this._shadow.appendChild(this._card);
			this._es = null;
			this._timer = 0;
			this._backoff = MIN_BACKOFF;
			this._lastId = "";
			this._retained = new Map(); // topic -> the retained payload already shown
			this._last = null; // last message
			this._frame = 0;
			this._log = []; // newest first
		}

		connectedCallback() {
			this._render();
			this._start();
		}

		disconnectedCallback() {
			this._stop();
		}

		attributeChangedCallback(name, oldValue, newValue) {
			if (oldValue === newValue || !this.isConnected || !this._built) return;
			if (name === "topic" || name === "bridge" || name === "access-token") {
				this._stop();
				this._last = null;
				this._log = [];
				this._lastId = "";
				this._retained = new Map();
				this._render();
				this._start();
			} else if (name !== "theme") {
				this._render();
			}
		}

		get format() {
			var f = this.getAttribute("format");
			return f === "json" || f === "log" ? f : "value";
		}

		get lines() {
			var n = parseInt(this.getAttribute("lines"), 10);
			return n > 0 ? Math.min(n, 1000) : 10;
		}

		_streamUrl() {
			var base = this.getAttribute("bridge") || SCRIPT_BASE;
			if (!/\/$/.test(base)) base += "/";
			var url = new URL("api/v1/stream", new URL(base, location.href));
			url.searchParams.set("topic", this.getAttribute("topic") || "");
			url.searchParams.set("retained", "true");
			var token = this.getAttribute("access-token");
			if (token) url.searchParams.set("access_token", token);
			if (this._lastId) url.searchParams.set("last_event_id", this._lastId);
			return url.href;
		}

		_setState(s, why) {
			if (this.getAttribute("state") !== s) this.setAttribute("state", s);
			if (this._dot) this._dot.title = why || s;
		}

		_start() {
			this._timer = 0;
			if (!this.getAttribute("topic")) {
				this._setState("error", "no topic attribute");
				return;
			}
			if (typeof EventSource !== "function") {
				this._setState("error", "this browser has no EventSource");
				return;
			}
			var self = this;
			var es;
			try {
				es = new EventSource(this._streamUrl());
			} catch (e) {
				this._setState("error", String(e && e.message));
				return;
			}
			this._es = es;
			this._setState("connecting", "connecting");
			es.onopen = function () {
				self._backoff = MIN_BACKOFF;
				self._setState("open", "live");
			};
			es.onmessage = function (e) {
				if (e.lastEventId) self._lastId = e.lastEventId;
				var msg;
				try {
					msg = JSON.parse(e.data);
				} catch (err) {
					return;
				}
				if (!msg || typeof msg.topic !== "string") return;
				self._onMessage(msg);
			};
			es.onerror = function () {
				if (self._es !== es) return;
				if (es.readyState !== EventSource.CLOSED) {
					self._setState("connecting", "reconnecting"); // EventSource retries by itself
					return;
				}
				// EventSource gave up (an HTTP error): a new one after a backoff, resuming.
				es.close();
				self._es = null;
				self._setState("error", "stream closed; retrying in " + Math.round(self._backoff / 1000) + " s");
				self._timer = setTimeout(function () {
					self._start();
				}, self._backoff);
				self._backoff = Math.min(self._backoff * 2, MAX_BACKOFF);
			};
		}

		_stop() {
			clearTimeout(this._timer);
			this._timer = 0;
			if (this._es) {
				this._es.close();
				this._es = null;
			}
		}

		_onMessage(msg) {
			// Each (re)connection starts with the retained values again: one already shown is
			// not news, so it is neither logged nor fired a second time.
			if (msg.retain && msg.ts === undefined) {
				var key = msg.payload_base64 !== undefined ? "b:" + msg.payload_base64 : "t:" + msg.payload;
				if (this._retained.get(msg.topic) === key) return;
				this._retained.set(msg.topic, key);
			}
			this._last = msg;
			this._log.unshift({ msg: msg, at: msg.ts || Date.now() });
			if (this._log.length > this.lines) this._log.length = this.lines;
			this._scheduleUpdate();
			this.dispatchEvent(new CustomEvent("message", { detail: msg, bubbles: true, composed: true }));
		}

		// The text of @msg for this element: the payload, or its JSON field; binary as a byte count.
		_text(msg, pretty) {
			if (msg.payload_base64 !== undefined) {
				return Math.floor((msg.payload_base64.length * 3) / 4) + " bytes (binary)";
			}
			var field = this.getAttribute("field");
			if (!field && !pretty) return msg.payload;
			var v;
			try {
				v = JSON.parse(msg.payload);
			} catch (e) {
				return field ? "—" : msg.payload;
			}
			v = pick(v, field);
			if (v === undefined) return "—";
			if (typeof v === "string" && !pretty) return v;
			return pretty ? JSON.stringify(v, null, 2) : JSON.stringify(v);
		}

		_render() {
			this._built = true;
			var card = this._card;
			card.textContent = "";
			var head = el("div", "head");
			head.setAttribute("part", "head");
			this._labelEl = el("span", "label");
			this._labelEl.setAttribute("part", "label");
			this._dot = el("span", "dot");
			this._dot.setAttribute("part", "state");
			this._dot.setAttribute("role", "status");
			head.appendChild(this._labelEl);
			head.appendChild(this._dot);
			card.appendChild(head);
			this._body = null;
			var f = this.format;
			if (f === "value") {
				var reading = el("div", "reading");
				this._valueEl = el("span", "value");
				this._valueEl.setAttribute("part", "value");
				reading.appendChild(this._valueEl);
				this._unitEl = el("span", "unit");
				this._unitEl.setAttribute("part", "unit");
				reading.appendChild(this._unitEl);
				this._timeEl = el("div", "time");
				card.appendChild(reading);
				card.appendChild(this._timeEl);
			} else if (f === "json") {
				this._body = el("pre", "json");
				this._body.setAttribute("part", "json");
				card.appendChild(this._body);
			} else {
				this._body = el("ol", "log");
				this._body.setAttribute("part", "log");
				card.appendChild(this._body);
			}
			if (this._log.length > this.lines) this._log.length = this.lines;
			this._setState(this.getAttribute("state") || "connecting");
			this._update();
		}

		// At most one DOM update per animation frame, however fast messages come.
		_scheduleUpdate() {
			if (this._frame) return;
			var self = this;
			var run = function () {
				self._frame = 0;
				self._update();
			};
			this._frame = document.hidden ? setTimeout(run, 250) : requestAnimationFrame(run);
		}

		_update() {
			var msg = this._last;
			var topic = this.getAttribute("topic") || "";
			var wild = /[+#]/.test(topic);
			this._labelEl.textContent = this.getAttribute("label") ||
				(msg && wild && this.format === "value" ? msg.topic : topic);
			var f = this.format;
			if (f === "value") {
				var text = msg ? this._text(msg, false) : "—";
				this._valueEl.textContent = text;
				this._valueEl.className = "value" + (msg ? "" : " waiting") + (text.length > 16 ? " long" : "");
				this._unitEl.textContent = msg ? this.getAttribute("unit") || "" : "";
				this._timeEl.textContent = msg ? (msg.ts ? "updated " + clock(msg.ts) : "retained value") : "waiting for a message";
			} else if (f === "json") {
				this._body.textContent = msg ? this._text(msg, true) : "";
				if (!msg) this._body.appendChild(el("span", "empty", "waiting for a message"));
			} else {
				var frag = document.createDocumentFragment();
				for (var i = 0; i < this._log.length; i++) {
					var m = this._log[i].msg;
					var li = el("li");
					li.appendChild(el("span", "t", clock(this._log[i].at)));
					li.appendChild(el("span", "k", m.topic));
					li.appendChild(el("span", "v", this._text(m, false) + (this.getAttribute("unit") ? " " + this.getAttribute("unit") : "")));
					frag.appendChild(li);
				}
				this._body.textContent = "";
				this._body.appendChild(frag);
			}
		}
	}

	customElements.define("mqtt-live", MqttLive);
})();
