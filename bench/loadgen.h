/*
 * bench/loadgen.h — what the parts of the load generator share: its state, its connections and the
 * functions one part calls in another. loadgen.c holds the scenarios and main(), loadgen_net.c the
 * connections (WebSocket, TCP, HTTP, SSE), loadgen_mqtt.c MQTT and publishing, loadgen_measure.c
 * clocks, /proc sampling and delivery accounting.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "sample.h"

#define MAX_PIDS      4
#define MAX_PUBS      64
#define RING          65536u /* per-publisher delivery counters; the window must stay below */
#define CONNECT_BURST 128    /* handshakes in flight at once: listen backlogs do not overflow */
#define LAT_CAP       (1u << 21)
#define STALL_NS      (3 * 1000000000LL)
#define DRAIN_NS      (5 * 1000000000LL)
#define SETUP_NS      (120 * 1000000000LL)
#define WS_KEY        "dGhlIHNhbXBsZSBub25jZQ=="

enum kind { K_WS, K_TCP, K_HTTP, K_SSE };
enum role { R_PUB, R_SUB, R_IDLE, R_CHURN };
enum state { ST_OFF, ST_HANDSHAKE, ST_CONNACK, ST_SUBACK, ST_READY, ST_LEAVING };
enum phase { PH_SETUP, PH_WARMUP, PH_RUN, PH_DRAIN, PH_DONE };

struct endpoint {
	enum kind kind;
	struct sockaddr_in addr;
	char host[64];
	char path[128];
};

/* What one subscriber saw of one publisher. */
struct conn {
	int fd;
	enum kind kind;
	enum role role;
	enum state state;
	int idx;
	unsigned gen; /* churn: how many times this slot connected */
	struct buf in;
	struct buf out;
	size_t out_off;
	struct buf mq; /* WebSocket: the MQTT byte stream taken out of the frames */
	bool dirty;
	bool warm;
	/* publisher */
	uint32_t sent;
	uint32_t acks_pending;
	bool http_busy;
	/* subscriber */
	struct track *tracks; /* one per publisher */
	/* churn */
	int64_t leave_at;
	bool got_own;
};

struct lg {
	int ep;
	int tfd;
	struct endpoint pub_ep, sub_ep;
	char topic[128];
	int npubs, nsubs, qos, window, payload, duration_s, conns;
	double rate;
	bool hold;
	int pids[MAX_PIDS];
	int npids;
	struct conn *pubs, *subs;
	struct conn *idle;
	int nidle;
	int connecting; /* handshakes in flight */
	int next_open;  /* next connection to open during set-up */
	int ready;
	enum phase phase;
	/* delivery accounting */
	uint16_t *cnt[MAX_PUBS];
	uint32_t done[MAX_PUBS];
	uint64_t delivered, dups, reorders, foreign, errors, closed;
	int64_t t_start, t_end, t_last_progress, t_phase;
	struct latencies lat;
	struct conn **dirty;
	int ndirty;
	struct buf scratch; /* one encoded packet on its way into a frame; reused */
	uint32_t rng;
	/* churn counters */
	uint64_t churn_connects, churn_clean, churn_abrupt, churn_roundtrips;
	const char *errmsg;
};

/* ---- /proc sampling ---- */

struct sample {
	double cpu_s;
	long rss_kb;
};

/* loadgen_measure.c */
int64_t now_ns(void);
double proc_cpu_s(void);
uint32_t rnd(struct lg *g);
void samples_take(struct lg *g, struct sample *out);
void deliver(struct lg *g, struct conn *c, const uint8_t *payload, size_t len);
bool all_warm(struct lg *g);
bool all_drained(struct lg *g);
void print_samples(struct lg *g, const struct sample *setup, const struct sample *a,
		   const struct sample *b);

/* loadgen_net.c */
int endpoint_parse(const char *url, struct endpoint *e);
void mark_dirty(struct lg *g, struct conn *c);
int send_packet(struct lg *g, struct conn *c, const struct mqtt_packet *pkt);
void conn_close(struct lg *g, struct conn *c);
void conn_fail(struct lg *g, struct conn *c, const char *why);
void flush(struct lg *g, struct conn *c);
void flush_dirty(struct lg *g);
void on_readable(struct lg *g, struct conn *c);
int conn_open(struct lg *g, struct conn *c, const struct endpoint *e);
void open_more(struct lg *g);

/* loadgen_mqtt.c */
int mqtt_connect(struct lg *g, struct conn *c);
void became_ready(struct lg *g, struct conn *c);
void mqtt_stream(struct lg *g, struct conn *c, struct buf *b);
void pump(struct lg *g);
void on_timer(struct lg *g);
void timer_set(struct lg *g, int64_t interval_ns);
