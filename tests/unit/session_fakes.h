/*
 * tests/unit/session_fakes.h — a fake upstream (upstream.h), a fake hub (hub.h) and a fake
 * retained reader (retained.h), linked into test_session instead of the Paho adapter and the hub.
 * They record what the sessions ask of them, and let the test hand events back as Paho's
 * threads and the hub would. Their state is one global each: link-time substitution leaves no
 * other place for it.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "retained.h"
#include "upstream.h"

enum fake_call_kind {
	FAKE_PUBLISH = 1,
	FAKE_SUBSCRIBE,
	FAKE_UNSUBSCRIBE,
	FAKE_DISCONNECT,
};

/* One request a session made on its upstream, or (publish) on the hub. */
struct fake_call {
	enum fake_call_kind kind;
	char topic[128];
	uint8_t payload[256];
	size_t payload_len;
	int qos;
	bool retain;
	uint8_t entries[256]; /* SUBSCRIBE / UNSUBSCRIBE, as encoded */
	size_t entries_len;
	size_t count;
	uint8_t reason; /* DISCONNECT */
	int token;      /* upstream: the token handed back; hub: the tag */
	/* hub_publish_tagged() */
	hub_ack_fn ack;
	void *user;
};

#define FAKE_MAX_CALLS 64

/* A retained read the fake reader has not answered yet. */
struct retained_req {
	retained_fn fn; /* NULL once cancelled */
	void *user;
};
#define FAKE_MAX_MEMBERS 32

struct fake_upstream_state {
	struct upstream *up; /* the latest upstream_new()'s until upstream_free() */
	struct upstream_connect connect;
	char client_id[128];
	int created, freed;
	struct fake_call calls[FAKE_MAX_CALLS];
	size_t ncalls;
	int last_token;
};

struct fake_hub_state {
	bool connected;
	int join_result; /* what hub_join() answers: a QoS, or HUB_JOIN_WAIT */
	struct hub_member *members[FAKE_MAX_MEMBERS];
	char filters[FAKE_MAX_MEMBERS][128];
	size_t nmembers; /* joined and not left, in the order they joined */
	struct fake_call publishes[FAKE_MAX_CALLS];
	size_t npublishes;
	bool reader_down;                            /* retained_get() fails */
	struct retained_req reads[FAKE_MAX_MEMBERS]; /* retained reads waiting */
	size_t nreads;
	int version; /* hub_version(): MQTT_V5 when 0 */
};

extern struct fake_upstream_state fake_upstream;
extern struct fake_hub_state fake_hub;

/** Clears what the fakes recorded; the hub is connected, hub_join() grants at once. */
void fake_reset(void);

/** The handles a sessions_config takes (never dereferenced by the sessions). */
struct hub *fake_hub_handle(void);
struct retained *fake_retained_handle(void);

/** An event of @kind from the latest upstream, as its Paho callbacks make it; calloc'ed. */
struct upstream_event *fake_upstream_event(enum upstream_event_kind kind);

/** Hands @ev to the latest upstream's owner, as upstream_dispatch() does. */
void fake_upstream_dispatch(struct upstream_event *ev);

/** Ends every retained read under way: nothing is retained. */
void fake_retained_answer(void);

/** Ends every retained read under way, each finding @msgs (the reader keeps them). */
void fake_retained_answer_with(struct msg *const *msgs, size_t n);

/** The member joined to @filter, or NULL. */
struct hub_member *fake_hub_member(const char *filter);
