/*
 * bench/pahoprobe.h — what the two parts of pahoprobe share: the probe and its clients, and the
 * functions one part calls in the other. pahoprobe.c holds the clocks, publishing, the run and
 * main(); pahoprobe_paho.c what Paho's threads call back and the clients' set-up and teardown.
 */
#pragma once

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "sample.h"

#define MAX_PUBS    64
#define MAX_WINDOW  100   /* Paho's default maxBufferedMessages: more queued sends fail */
#define RING        1024u /* per-publisher delivery counters; well above MAX_WINDOW */
#define LAT_CAP     (1u << 20)
#define KEEPALIVE_S 600 /* no PINGREQ is due during a run */
/* Connects in flight at once. Paho's receive thread notices new sockets only when its poll (up to
 * 1 s) ends, so each batch costs two such rounds, ~2 s, whatever its size; but one batch's
 * connects are handled a packet at a time, each walking Paho's lists, and a large batch costs
 * more than its share. 5,000 idle clients took ~35 s to set up in one batch, 10-16 s in batches
 * of 1,000 to 2,000, ~45 s in batches of 250 (2 cores). */
#define BATCH           2000
#define BATCH_TIMEOUT_S 60
#define WARMUP_NS       (10 * 1000000000LL)
#define STALL_NS        (3 * 1000000000LL)
#define DRAIN_NS        (5 * 1000000000LL)
#define TEARDOWN_S      60

enum role { R_PUB, R_SUB, R_IDLE };

/* What one subscriber saw of one publisher. */
struct client {
	MQTTAsync h;
	struct probe *p;
	enum role role;
	int idx;
	bool made;
	bool connected; /* under the probe's lock: CONNACK seen, teardown sends a DISCONNECT */
	bool warm;      /* under the probe's lock: a warm-up probe arrived (subscribers) */
	char topic[96]; /* what it subscribes to */
	struct track *tracks; /* subscriber: one per publisher */
};

/*
 * Everything below the lock is shared by the main thread and Paho's threads (messageArrived on
 * the receive thread, connect/subscribe/publish answers on either): all of it under @lock. Paho
 * calls back with its own global mutex held, so Paho is never called with @lock held.
 */
struct probe {
	const char *url;
	int npubs, nsubs, nidle, qos, window, duration_s, payload;
	int refill; /* the main thread is woken when a window has this much room */
	char topic[64];
	/* One array in creation order (Paho keeps its clients in a list in that order): the idle
	 * ones, then the subscribers, then the publishers. */
	struct client *all, *idle, *subs, *pubs;
	int nall;
	/* Written by the main thread only, read under @lock by deliver() while @waiting. */
	uint32_t sent[MAX_PUBS];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	int answered, failed; /* set-up and teardown: clients done, clients that failed */
	const char *errmsg;
	bool running; /* the measured window has started */
	bool waiting; /* the main thread sleeps on @cond until a window opens */
	int nwarm;
	uint16_t *cnt[MAX_PUBS]; /* subscribers holding each sequence, by seq % RING */
	uint32_t done[MAX_PUBS]; /* every sequence up to this one reached every subscriber */
	uint64_t delivered, dups, reorders, foreign, errors;
	int64_t acks_pending; /* publishes Paho has not yet confirmed (written, or PUBACKed) */
	int64_t t_last;       /* last delivery */
	struct latencies lat;
};

/* pahoprobe.c */
int64_t now_ns(void);
bool wait_until(struct probe *p, const struct timespec *deadline);
struct timespec deadline_in(int64_t ns);

/* pahoprobe_paho.c */
void print_paho(void);
void probe_error(struct probe *p, const char *why);
void on_published(void *ctx, MQTTAsync_successData *d);
void on_publish_failed(void *ctx, MQTTAsync_failureData *d);
int clients_start(struct probe *p);
void clients_stop(struct probe *p);
