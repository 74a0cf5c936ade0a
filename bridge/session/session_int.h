/*
 * bridge/session/session_int.h — what the files of the session module (session*.c: the browser
 * side and dedicated sessions; shared.c: shared sessions) share. Not for other modules. Service
 * thread only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hub.h"
#include "msg.h"
#include "session.h"

struct hmap;
struct leftovers;
struct store;
struct shared_sub;
struct shared_echoes;

/* Topic aliases the bridge accepts from a v5 browser; it resolves them itself. */
#define TOPIC_ALIAS_MAX 32
/* Requests waiting for the broker before the bridge stops reading from that browser. */
#define OPS_PAUSE_AT  256
#define OPS_RESUME_AT 128
/* How long a 3.1/3.1.1 session's emulated will may take to reach the broker. */
#define WILL_WAIT_MS 2000

/* msg->state for messages towards the browser. */
enum {
	MSG_QUEUED = 0,   /* waiting for room under the browser's receive maximum */
	MSG_SENT = 1,     /* PUBLISH sent, PUBACK / PUBREC awaited */
	MSG_RELEASED = 2, /* QoS 2: PUBREL sent, PUBCOMP awaited */
	MSG_STATE = 3,
	MSG_WAS_SENT = 4, /* sent on an earlier connection: DUP on the next send */
};

enum op_kind {
	OP_PUB0,
	OP_PUB1,
	OP_PUB2,
	OP_SUB,
	OP_UNSUB,
};

/* In struct sub_op's codes: this filter went to the broker, whose code fills it in. */
#define CODE_FORWARDED 0xff

/*
 * A SUBSCRIBE as the browser sent it: the filters the bridge refused itself (ACL, quota) have
 * their code already, the others went to the broker. The SUBACK merges both, in order.
 */
struct sub_op {
	uint32_t mark;      /* what this SUBSCRIBE stored in s->subs for the filters it added */
	size_t count;       /* filters in the browser's packet */
	struct buf entries; /* the entries that went to the broker */
	/* Shared: the filters the hub still has to answer for, and each filter's record (NULL
	 * for the refused ones, and for one unsubscribed before its SUBACK). */
	size_t waiting;
	struct shared_sub **ssubs;
	uint8_t codes[];
};

/*
 * A request to the broker waiting for its answer, or (local) an answer of the bridge's own that
 * waits for the requests before it: acks go out in the order the browser's packets came.
 */
struct op {
	int token; /* dedicated: Paho's token; shared: the tag of the hub publish */
	uint8_t kind;
	bool local;
	/* The broker's answer came before the answers to the requests before this one: it waits
	 * (local) with its code and, in @answer (owned), its properties and then its codes. */
	bool answered;
	uint8_t *answer;
	size_t answer_props, answer_codes;
	uint8_t code; /* local PUBLISH: the reason code of its PUBACK / PUBREC; the broker's */
	uint16_t packet_id;
	size_t count;
	struct sub_op *sub;  /* SUBSCRIBE (and a shared UNSUBSCRIBE): owned */
	struct hub_req *req; /* shared PUBLISH: the hub's, cancelled when the session goes first */
};

/* A QoS 2 PUBLISH from the browser, by packet id. */
struct qos2_in {
	uint16_t packet_id;
	bool received; /* false: at the broker's side still; true: PUBREC sent, PUBREL awaited */
};

/* Messages in order, and their bytes (for max_queue_bytes). The list owns them. */
struct msg_list {
	struct msg *head, *tail;
	size_t bytes;
};

enum up_state {
	UP_NONE,       /* no upstream (yet, or never) */
	UP_CONNECTING, /* waiting for the broker's CONNACK */
	UP_CONNECTED,
	UP_CLOSING, /* upstream_disconnect() sent, UPSTREAM_CLOSED awaited */
	UP_GONE,
};

enum end_kind {
	END_NONE,     /* still going, or the browser vanished */
	END_CLEAN,    /* the browser sent DISCONNECT */
	END_UPSTREAM, /* the broker ended it */
	END_ERROR,    /* the bridge ended it: protocol error, too slow, broker refused */
	END_SHUTDOWN,
};

enum session_mode {
	MODE_NONE,      /* no CONNECT handled yet */
	MODE_DEDICATED, /* its own upstream Paho client */
	MODE_SHARED,    /* served from the hub (shared.c) */
};

struct session {
	struct session *prev, *next; /* in sessions.all */
	struct sessions *ss;
	bool awaiting_hub; /* a shared CONNECT waits for the hub's first connect */
	enum session_mode mode;
	const struct session_io *io;
	void *conn; /* NULL once detached */
	char peer[64];

	/* From CONNECT. */
	uint8_t version; /* 0 until CONNECT */
	/* What a dedicated session's broker client speaks: the browser's version, or 3.1.x for an
	 * MQTT 5 browser when the broker has no MQTT 5 (the session translates). */
	uint8_t up_version;
	char *client_id;
	bool id_assigned;
	bool clean_start;
	uint16_t keepalive;
	uint32_t session_expiry; /* seconds; 3.1.1: UINT32_MAX for clean session 0 */
	uint16_t browser_receive_max;
	uint32_t browser_max_packet; /* 0: no limit */
	struct msg *will; /* up_version 3.1/3.1.1 only: published by the bridge on an abrupt end */

	enum up_state up_state;
	struct upstream *up;
	enum end_kind end;
	bool closing; /* the browser connection is being closed: ignore its input */
	bool held;    /* input waits for the broker's CONNACK */
	bool paused;

	struct buf in;    /* unhandled input: a partial packet, or packets held until CONNACK */
	struct buf out;   /* scratch for encoding */
	struct buf topic; /* scratch for a NUL-terminated topic */

	/* Towards the browser: QoS 1/2 messages in order, from the oldest. */
	struct msg_list out_msgs;
	size_t out_inflight;
	uint16_t last_packet_id;

	/* From the browser. */
	struct op *ops;
	size_t nops, cap_ops;
	struct qos2_in *q2;
	size_t nq2, cap_q2;
	uint16_t receive_max; /* what the CONNACK told the browser (the broker's) */
	char *aliases[TOPIC_ALIAS_MAX + 1];

	/* The filters subscribed on this connection (or on their way), for max_subscriptions:
	 * filter -> the mark of the SUBSCRIBE that added it (dedicated) or its struct shared_sub
	 * (shared, owned). NULL until the first SUBSCRIBE. */
	struct hmap *subs;
	uint32_t last_mark;

	/* Shared mode (shared.c). */
	struct hub_receiver rcv;
	size_t holding; /* subscriptions whose SUBACK or retained messages are still to come */
	struct msg_list held_msgs; /* live messages waiting for them, in order */
	size_t nolocal_subs;
	struct shared_echoes *echoes; /* own publishes a no-local subscription must not get */
	uint32_t last_tag;

	/* Bridge credentials: the CONNECT's token and a reference on its table. */
	struct auth *auth;
	const struct auth_token *token;
};

struct sessions {
	struct sessions_config cfg;
	size_t shared_count, dedicated_count;
	struct session *all;
	size_t count;
	struct hmap *live; /* client id -> connected, attached session */
	struct store *store;
	struct auth *auth; /* a reference; NULL: every token is unknown */
	struct sessions_stats stats;
};

static const struct mqtt_bytes no_props = {NULL, 0};
static const struct mqtt_bytes no_codes = {NULL, 0};

const char *session_cid(const struct session *s);
uint32_t session_prop_u32(struct mqtt_bytes props, uint8_t id, uint32_t dflt);
/** The CONNACK properties that are the bridge's in both modes: its topic alias maximum,
 * @max_packet, and the client id it assigned, if it did. */
int session_put_connack_limits(struct session *s, struct buf *out, uint32_t max_packet);

/* Writing to the browser. */
int session_send_packet(struct session *s, const struct mqtt_packet *p);
void session_send_ack(struct session *s, enum mqtt_type type, uint16_t packet_id, uint8_t reason,
		      struct mqtt_bytes props);
void session_send_disconnect(struct session *s, uint8_t reason, struct mqtt_bytes props);
void session_send_suback(struct session *s, uint16_t packet_id, struct sub_op *sub,
			 struct mqtt_bytes broker, struct mqtt_bytes props);
/** false when the browser's Maximum Packet Size forbids @m. */
bool session_send_publish(struct session *s, const struct msg *m, uint16_t packet_id, bool dup);
void session_close(struct session *s, enum end_kind why);
int session_protocol_error(struct session *s, uint8_t reason, const char *why);
int session_refuse_connect(struct session *s, uint8_t code_v3, uint8_t code_v5, const char *why);
void session_slow(struct session *s);
/** The browser has its CONNACK: it may be sent a DISCONNECT. */
bool session_established(const struct session *s);
void session_send_connack(struct session *s, bool session_present, uint8_t code,
			  struct mqtt_bytes props);

/* Acks in the browser's order. */
void session_update_pause(struct session *s);
int session_push_op(struct session *s, const struct op *op);
/**
 * The broker answered the request @token (@ev: failed, code, codes, props; borrowed): its ack
 * goes out now, or once the requests before it are answered.
 */
void session_op_done(struct session *s, int token, struct upstream_event *ev);
int session_add_local(struct session *s, enum op_kind kind, uint16_t packet_id, uint8_t code,
		      struct sub_op *sub);
void session_answer_local(struct session *s);
void session_answer_op(struct session *s, struct op op, struct upstream_event *ev);
void session_sub_op_free(struct sub_op *sub);
/** A (UN)SUBSCRIBE that could not be made: frees @so (may be NULL), logs "@what-failed" and
 * closes the browser. Returns @rc. */
int session_request_failed(struct session *s, struct sub_op *so, const char *what, int rc);
int session_add_q2(struct session *s, uint16_t packet_id, bool received);
int session_add_op(struct session *s, int token, enum op_kind kind, uint16_t packet_id,
		   size_t count);
struct qos2_in *session_find_q2(struct session *s, uint16_t packet_id);
void session_remove_q2(struct session *s, struct qos2_in *q);

/* QoS 1/2 messages towards the browser. */
/** Appends @m to @l, which owns it from now on. */
void session_list_append(struct msg_list *l, struct msg *m);
/** Frees the messages of @l and empties it. */
void session_list_clear(struct msg_list *l);
void session_queue_out(struct session *s, struct msg *m);
void session_pump(struct session *s);
uint16_t session_next_packet_id(struct session *s);
void session_unlink_out(struct session *s, struct msg *prev, struct msg *m);
bool session_may_read(const struct session *s, const struct msg *m);
/** Sends (QoS 0) or queues (QoS 1/2) @m, which the session owns from now on. */
void session_deliver(struct session *s, struct msg *m);
bool session_packet_id_in_use(const struct session *s, uint16_t id);
/** The browser's PUBACK, PUBREC, PUBREL or PUBCOMP. */
void session_on_browser_ack(struct session *s, enum mqtt_type type, const struct mqtt_ack *a);

/* Packets from the browser. */
int session_on_connect(struct session *s, const struct mqtt_connect *c);
/** Handles what input was held (until CONNACK) and can be now. */
int session_drain_input(struct session *s);

/* The dedicated mode: its own upstream client, onto which the browser's packets are translated. */
/** After the CONNECT's client id is settled: creates the upstream. 0 or -EPROTO (refused). */
int session_dedicated_connect(struct session *s, const struct mqtt_connect *c);
/** A PUBLISH to the NUL-terminated @topic (its alias resolved). */
int session_dedicated_publish(struct session *s, const char *topic, const struct mqtt_publish *p);
int session_dedicated_subscribe(struct session *s, const struct mqtt_subscribe *sub);
int session_dedicated_unsubscribe(struct session *s, const struct mqtt_subscribe *sub);
/** The broker gets the browser's DISCONNECT; the caller closes the browser's connection. */
void session_dedicated_disconnect(struct session *s, const struct mqtt_disconnect *d);
void session_upstream_gone(struct session *s);
/** The browser went without DISCONNECT: the upstream ends so that the broker sends the will. */
void session_end_upstream_abruptly(struct session *s);

/* Persistent sessions and the end of a session. */
bool session_persistent(const struct session *s);
/** NULL when there is nothing to keep, or out of memory. The caller owns the result. */
struct leftovers *session_take_leftovers(struct session *s);
/** @to takes @lo (freed here). */
void session_handoff(struct session *to, struct leftovers *lo);
void session_finalize(struct session *s);
/** Frees @s once both its browser connection and its upstream are gone. */
void session_maybe_finalize(struct session *s);

/** Ends a connected session of the same client id where the broker would not (shared). */
void session_take_over(struct session *s, bool shared);
