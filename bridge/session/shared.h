/*
 * bridge/session/shared.h — shared sessions: a browser's MQTT session served by the bridge itself
 * from the hub's broker connection (doc/design.md §2). The broker sees one subscription per filter
 * for all browsers; the bridge keeps each browser's subscriptions, options and acks, and writes each
 * message to every browser from the service thread.
 *
 * For session.c only (the browser side calls in here for a session in MODE_SHARED). Service
 * thread only.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "session_int.h"

/**
 * May the session be shared? Its CONNECT (@c) starts clean, keeps nothing after it ends, has no
 * will, and its identity is one the bridge vouches for: a token (bridge credentials), or no
 * credentials at all where auth is off. s->client_id, s->token and s->session_expiry are set.
 */
bool shared_eligible(const struct session *s, const struct mqtt_connect *c);

/** Answers the CONNECT at once, or refuses it while the broker is down. 0 or -EPROTO. */
int shared_connect(struct session *s);

/** A PUBLISH to the NUL-terminated @topic (its alias resolved), through the hub. */
int shared_publish(struct session *s, const char *topic, const struct mqtt_publish *p);

int shared_subscribe(struct session *s, const struct mqtt_subscribe *sub);
int shared_unsubscribe(struct session *s, const struct mqtt_subscribe *sub);

/** The SUBACK of @sub has gone to the browser: retained messages may follow now. */
void shared_suback_sent(struct session *s, struct sub_op *sub);

/** Retained reads that have taken too long end with what they have. */
void shared_tick(struct session *s, uint64_t now_ms);

/** The session ends: its subscriptions leave the hub, its reads and publishes are forgotten. */
void shared_end(struct session *s);
