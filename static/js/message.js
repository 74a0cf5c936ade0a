// js/message.js — one received message as the dashboard keeps it, decoded lazily and once.

import { decode, numeric } from "./payload.js";

/** From MQTT.js's (topic, payload, packet). */
export function fromPacket(topic, payload, packet) {
	const props = packet.properties || {};
	return {
		topic,
		bytes: payload instanceof Uint8Array ? payload : new TextEncoder().encode(String(payload)),
		qos: packet.qos || 0,
		retain: !!packet.retain,
		time: Date.now(),
		contentType: props.contentType || "",
		userProperties: props.userProperties || null,
		responseTopic: props.responseTopic || "",
		// (MQTT.js gives a Buffer; a plain Uint8Array copy does not keep its pool alive)
		correlationData: props.correlationData ? new Uint8Array(props.correlationData) : null,
		messageExpiryInterval: props.messageExpiryInterval ?? null,
		payloadFormatIndicator: props.payloadFormatIndicator ?? null,
		d: null,
	};
}

/** The decoded payload ({kind, text, size[, value]}), computed on first use. */
export function decoded(msg) {
	if (!msg.d) msg.d = decode(msg.bytes);
	return msg.d;
}

// Bytes that may start a number: space, tab, +, -, ., 0-9.
const NUMBER_START = new Set([0x20, 0x09, 0x2b, 0x2d, 0x2e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39]);

/** The payload's number, or null; cheap for payloads that clearly are not one. */
export function numberOf(msg) {
	const b = msg.bytes;
	if (b.length === 0 || b.length > 40 || !NUMBER_START.has(b[0])) return null;
	return numeric(decoded(msg));
}
