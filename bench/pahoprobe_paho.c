/*
 * bench/pahoprobe_paho.c — pahoprobe's side of Paho: the TCP_NODELAY interposition on connect(),
 * which Paho was loaded, the callbacks Paho's threads run (messages, publish answers, lost
 * connections), and setting up and tearing down the clients.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pahoprobe.h"

/*
 * The bridge sets TCP_NODELAY on Paho's sockets (bridge/paho/nodelay.c: Paho leaves Nagle on, which
 * held small PUBLISHes back for the broker's delayed ACK). Without it this probe would measure
 * Nagle, not Paho: the same interposition, here for every TCP socket of the probe. Only Paho's
 * send thread connects, so the lazy lookup does not race.
 */
int connect(int fd, __CONST_SOCKADDR_ARG arg, socklen_t len)
{
	static int (*real_connect)(int, __CONST_SOCKADDR_ARG, socklen_t);
	const struct sockaddr *addr = arg.__sockaddr__;
	int type = 0, one = 1;
	socklen_t tlen = sizeof(type);

	if (!real_connect) {
		/* memcpy: POSIX's way round C's ban on object-to-function pointer conversion. */
		void *sym = dlsym(RTLD_NEXT, "connect");
		if (!sym) {
			errno = ENOSYS;
			return -1;
		}
		memcpy(&real_connect, &sym, sizeof(sym));
	}
	if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
	    !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) && type == SOCK_STREAM)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return real_connect(fd, arg, len);
}

/*
 * Which Paho this run loaded (bench.py --paho-hp swaps the library with LD_LIBRARY_PATH): the file
 * MQTTAsync_create came from and the version it reports, as JSON members.
 */
void print_paho(void)
{
	Dl_info info;
	void *sym;
	const char *file = "?", *version = "?";
	MQTTAsync_nameValue *nv = MQTTAsync_getVersionInfo();

	/* memcpy: POSIX's way round C's ban on function-to-object pointer conversion. */
	void (*fn)(void) = (void (*)(void))MQTTAsync_create;
	memcpy(&sym, &fn, sizeof(sym));
	if (dladdr(sym, &info) && info.dli_fname)
		file = info.dli_fname;
	for (; nv && nv->name; nv++)
		if (!strcmp(nv->name, "Version"))
			version = nv->value;
	printf(",\"paho_lib\":\"%s\",\"paho_version\":\"%s\"", file, version);
}

/* ---- receiving (Paho's receive thread) ---- */

/* @lock held. */
static void deliver(struct probe *p, struct client *c, unsigned pub, uint32_t seq, int64_t ts,
		    int64_t now)
{
	struct track *t = &c->tracks[pub];
	if (track_seen(t, seq)) {
		p->dups++;
		return;
	}
	if (seq < t->last)
		p->reorders++;
	else
		t->last = seq;
	p->delivered++;
	p->t_last = now;
	latencies_add(&p->lat, (uint64_t)(now - ts));
	uint16_t *cnt = p->cnt[pub];
	if (++cnt[seq % RING] == p->nsubs && seq == p->done[pub] + 1) {
		while (cnt[(p->done[pub] + 1) % RING] == p->nsubs) {
			cnt[(p->done[pub] + 1) % RING] = 0;
			p->done[pub]++;
		}
		/* @sent is the main thread's, but stable while it waits (@waiting). */
		if (p->waiting && p->sent[pub] - p->done[pub] <= (uint32_t)(p->window - p->refill))
			pthread_cond_signal(&p->cond);
	}
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct client *c = ctx;
	struct probe *p = c->p;
	int64_t now = now_ns();
	unsigned pub;
	uint32_t seq;
	int64_t ts;
	bool ours = c->role == R_SUB && payload_parse(m->payload, m->payloadlen, &pub, &seq, &ts) &&
		    (int)pub < p->npubs;

	(void)topic_len;
	pthread_mutex_lock(&p->lock);
	if (!ours) {
		p->foreign++;
	} else if (seq == 0) { /* warm-up probe */
		if (!c->warm) {
			c->warm = true;
			p->nwarm++;
			pthread_cond_signal(&p->cond);
		}
	} else if (p->running) {
		deliver(p, c, pub, seq, ts, now);
	}
	pthread_mutex_unlock(&p->lock);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* @lock held. Counts an error; the first one's words are the ones reported. */
void probe_error(struct probe *p, const char *why)
{
	p->errors++;
	if (!p->errmsg)
		p->errmsg = why;
	pthread_cond_signal(&p->cond);
}

static void on_connection_lost(void *ctx, char *cause)
{
	struct client *c = ctx;
	struct probe *p = c->p;

	(void)cause;
	pthread_mutex_lock(&p->lock);
	probe_error(p, "a connection was lost");
	pthread_mutex_unlock(&p->lock);
}

void on_published(void *ctx, MQTTAsync_successData *d)
{
	struct probe *p = ctx;

	(void)d;
	pthread_mutex_lock(&p->lock);
	if (--p->acks_pending == 0) /* only the warm-up and the drain wait for it */
		pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void on_publish_failed(void *ctx, MQTTAsync_failureData *d)
{
	struct probe *p = ctx;

	(void)d;
	pthread_mutex_lock(&p->lock);
	p->acks_pending--;
	probe_error(p, "a publish failed");
	pthread_mutex_unlock(&p->lock);
}

/* ---- set-up and teardown (answers counted in answered/failed) ---- */

static void answer(struct client *c, const char *failure)
{
	struct probe *p = c->p;

	pthread_mutex_lock(&p->lock);
	p->answered++;
	if (failure) {
		p->failed++;
		p->errmsg = p->errmsg ? p->errmsg : failure;
	}
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Paho reports a refused subscription (SUBACK 0x80) through onFailure. */
static void on_subscribed(void *ctx, MQTTAsync_successData *d)
{
	(void)d;
	answer(ctx, NULL);
}

static void on_setup_failed(void *ctx, MQTTAsync_failureData *d)
{
	(void)d;
	answer(ctx, "connect or subscribe failed");
}

static void on_connected(void *ctx, MQTTAsync_successData *d)
{
	struct client *c = ctx;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	(void)d;
	pthread_mutex_lock(&c->p->lock);
	c->connected = true;
	pthread_mutex_unlock(&c->p->lock);
	if (c->role == R_PUB) {
		answer(c, NULL);
		return;
	}
	ro.onSuccess = on_subscribed;
	ro.onFailure = on_setup_failed;
	ro.context = c;
	if (MQTTAsync_subscribe(c->h, c->topic, c->role == R_SUB ? c->p->qos : 0, &ro) !=
	    MQTTASYNC_SUCCESS)
		answer(c, "subscribe refused");
}

static int client_start(struct probe *p, struct client *c)
{
	MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
	static const char roles[] = {'p', 's', 'i'};
	char id[64];

	snprintf(id, sizeof(id), "pahoprobe-%d-%c%d", (int)getpid(), roles[c->role], c->idx);
	/* As bridge/paho/upstream.c makes its clients: default create options, 3.1.1, no persistence. */
	if (MQTTAsync_createWithOptions(&c->h, p->url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
					&create) != MQTTASYNC_SUCCESS)
		return -1;
	c->made = true;
	if (MQTTAsync_setCallbacks(c->h, c, on_connection_lost, on_message, NULL) !=
	    MQTTASYNC_SUCCESS)
		return -1;
	opts.MQTTVersion = MQTTVERSION_3_1_1;
	opts.cleansession = 1;
	opts.keepAliveInterval = KEEPALIVE_S;
	opts.connectTimeout = BATCH_TIMEOUT_S / 2;
	opts.automaticReconnect = 0;
	opts.onSuccess = on_connected;
	opts.onFailure = on_setup_failed;
	opts.context = c;
	return MQTTAsync_connect(c->h, &opts) == MQTTASYNC_SUCCESS ? 0 : -1;
}

/* Connects (and subscribes) every client, BATCH at a time, each batch waited for. */
int clients_start(struct probe *p)
{
	struct client *cs = p->all;
	int n = p->nall;

	for (int first = 0; first < n; first += BATCH) {
		int end = first + BATCH < n ? first + BATCH : n, target;
		pthread_mutex_lock(&p->lock);
		target = p->answered + (end - first);
		pthread_mutex_unlock(&p->lock);
		for (int i = first; i < end; i++)
			if (client_start(p, &cs[i]))
				answer(&cs[i], "create or connect refused");
		struct timespec dl = deadline_in(BATCH_TIMEOUT_S * 1000000000LL);
		pthread_mutex_lock(&p->lock);
		while (p->answered < target && wait_until(p, &dl))
			;
		int rc = p->answered < target ? -ETIMEDOUT : p->failed ? -EIO : 0;
		if (rc == -ETIMEDOUT && !p->errmsg)
			p->errmsg = "set-up timed out";
		pthread_mutex_unlock(&p->lock);
		if (rc)
			return rc;
	}
	return 0;
}

static void on_disconnected(void *ctx, MQTTAsync_successData *d)
{
	(void)d;
	answer(ctx, NULL);
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData *d)
{
	(void)d;
	answer(ctx, "disconnect failed");
}

/* DISCONNECT for every connected client (answers waited for, bounded), then destroy them all. */
void clients_stop(struct probe *p)
{
	int target = 0;

	pthread_mutex_lock(&p->lock);
	p->answered = p->failed = 0;
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nall; i++) {
		struct client *c = &p->all[i];
		MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
		pthread_mutex_lock(&p->lock);
		bool connected = c->connected;
		pthread_mutex_unlock(&p->lock);
		if (!c->made || !connected)
			continue;
		o.timeout = 0; /* nothing is in flight any more */
		o.onSuccess = on_disconnected;
		o.onFailure = on_disconnect_failed;
		o.context = c;
		if (MQTTAsync_disconnect(c->h, &o) == MQTTASYNC_SUCCESS)
			target++;
	}
	struct timespec dl = deadline_in(TEARDOWN_S * 1000000000LL);
	pthread_mutex_lock(&p->lock);
	while (p->answered < target && wait_until(p, &dl))
		;
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nall; i++)
		if (p->all[i].made)
			MQTTAsync_destroy(&p->all[i].h);
}
