/*
 * bench/loadgen.c — the load generator of bench/bench.py: one scenario per run, one JSON line out.
 *
 * One thread, one epoll set, non-blocking sockets. It speaks MQTT 3.1.1 over WebSocket (one whole
 * MQTT packet per binary frame, masked, as browsers send them), MQTT over plain TCP, HTTP/1.1
 * keep-alive publishes (POST /api/v1/publish/{topic}) and Server-Sent Events (GET /api/v1/stream).
 * MQTT packets are built and read with the project's own codec. The WebSocket client is written
 * here rather than taken from lws: a frame costs a few dozen instructions and the write is ours, so
 * the generator stays far below the servers it measures and nothing batches or splits packets
 * behind our back.
 *
 * Every payload starts with "B" + publisher (4 hex) + sequence (8 hex) + CLOCK_MONOTONIC send time
 * in ns (16 hex), padded to --payload bytes, all ASCII so SSE carries it as a JSON string. The
 * receivers check loss, duplicates and order per publisher, and measure latency.
 *
 * Modes:
 *   pubsub  publishers and subscribers; closed loop (a publisher keeps at most --window messages
 *           not yet received by every subscriber, so queues stay bounded and nothing is dropped for
 *           being too fast) or a fixed --rate per publisher (for latency).
 *   idle    opens --conns WebSocket connections (CONNECT, one SUBSCRIBE each), reports the RSS
 *           growth of the --pid processes, and with --hold keeps them until stdin closes.
 *   churn   --conns slots that connect, subscribe, publish QoS 1 to themselves, receive it, and
 *           leave (clean DISCONNECT or a dropped socket), for --duration seconds (the soak).
 *
 * Sampling --pid processes (utime+stime from /proc/PID/stat, VmRSS from /proc/PID/status) happens
 * here, at the start and the end of the measured window, so connection set-up is not counted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

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

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double proc_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rnd(struct lg *g)
{
	/* xorshift32: WebSocket mask keys and churn timings need variety, not quality. */
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 17;
	g->rng ^= g->rng << 5;
	return g->rng;
}

/* ---- /proc sampling ---- */

struct sample {
	double cpu_s;
	long rss_kb;
};

static struct sample proc_sample(int pid)
{
	struct sample s = {-1, -1};
	char path[64], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f) {
		size_t n = fread(line, 1, sizeof(line) - 1, f);
		line[n] = 0;
		/* The command name may hold spaces: fields are counted after its closing ')'. */
		char *p = strrchr(line, ')');
		unsigned long ut = 0, st = 0;
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
				&st) == 2)
			s.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmRSS: %ld", &s.rss_kb) == 1)
				break;
		fclose(f);
	}
	return s;
}

static void samples_take(struct lg *g, struct sample *out)
{
	for (int i = 0; i < g->npids; i++)
		out[i] = proc_sample(g->pids[i]);
}

/* ---- endpoints ---- */

static int endpoint_parse(const char *url, struct endpoint *e)
{
	static const struct {
		const char *scheme;
		enum kind kind;
	} schemes[] = {{"ws://", K_WS}, {"tcp://", K_TCP}, {"http://", K_HTTP}, {"sse://", K_SSE}};
	const char *rest = NULL;

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].scheme);
		if (!strncmp(url, schemes[i].scheme, n)) {
			e->kind = schemes[i].kind;
			rest = url + n;
		}
	}
	if (!rest)
		return -EINVAL;
	const char *colon = strchr(rest, ':');
	char ip[40];
	if (!colon || (size_t)(colon - rest) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, rest, (size_t)(colon - rest));
	ip[colon - rest] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (port <= 0 || port > 65535)
		return -EINVAL;
	snprintf(e->path, sizeof(e->path), "%s", *end ? end : "/mqtt");
	snprintf(e->host, sizeof(e->host), "%s:%ld", ip, port);
	memset(&e->addr, 0, sizeof(e->addr));
	e->addr.sin_family = AF_INET;
	e->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &e->addr.sin_addr) != 1)
		return -EINVAL;
	return 0;
}

/* ---- output ---- */

static void mark_dirty(struct lg *g, struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		g->dirty[g->ndirty++] = c;
	}
}

static int ws_frame(struct lg *g, struct buf *out, uint8_t opcode, const uint8_t *p, size_t len)
{
	uint8_t hdr[14];
	size_t h = 0;
	uint32_t key = rnd(g);

	hdr[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		hdr[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(len >> 8);
		hdr[h++] = (uint8_t)len;
	} else {
		return -ERANGE;
	}
	memcpy(hdr + h, &key, 4);
	h += 4;
	if (buf_reserve(out, h + len))
		return -ENOMEM;
	memcpy(out->data + out->len, hdr, h);
	uint8_t *dst = out->data + out->len + h;
	const uint8_t *mask = hdr + h - 4;
	for (size_t i = 0; i < len; i++)
		dst[i] = p[i] ^ mask[i & 3];
	out->len += h + len;
	return 0;
}

/* Queues one MQTT packet on @c: in its own WebSocket frame, or as it is over TCP. */
static int send_packet(struct lg *g, struct conn *c, const struct mqtt_packet *pkt)
{
	struct buf *scratch = &g->scratch;
	int rc;

	if (c->kind == K_TCP) {
		rc = codec_encode(&c->out, MQTT_V311, pkt);
	} else {
		scratch->len = 0;
		rc = codec_encode(scratch, MQTT_V311, pkt);
		if (!rc)
			rc = ws_frame(g, &c->out, 0x2, scratch->data, scratch->len);
	}
	if (!rc)
		mark_dirty(g, c);
	return rc;
}

static void conn_close(struct lg *g, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	if (c->state != ST_READY && c->state != ST_LEAVING && c->state != ST_OFF)
		g->connecting--;
	if (c->state == ST_READY)
		g->ready--;
	c->state = ST_OFF;
	c->in.len = 0;
	c->out.len = 0;
	c->out_off = 0;
	c->mq.len = 0;
	c->http_busy = false;
}

static void conn_fail(struct lg *g, struct conn *c, const char *why)
{
	static const char *roles[] = {"publisher", "subscriber", "idle", "churn"};

	if (!g->errmsg)
		g->errmsg = why;
	if (g->errors++ < 10)
		fprintf(stderr, "loadgen: %s %d: %s\n", roles[c->role], c->idx, why);
	conn_close(g, c);
}

static void flush(struct lg *g, struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
		if (n < 0) {
			if (errno == EAGAIN || errno == ENOTCONN)
				return; /* EPOLLOUT (edge) comes back when there is room */
			if (errno == EINTR)
				continue;
			conn_fail(g, c, "write failed");
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out.len = 0;
	c->out_off = 0;
}

static void flush_dirty(struct lg *g)
{
	for (int i = 0; i < g->ndirty; i++) {
		struct conn *c = g->dirty[i];
		c->dirty = false;
		if (c->fd >= 0)
			flush(g, c);
	}
	g->ndirty = 0;
}

/* ---- MQTT ---- */

static void client_id(struct lg *g, struct conn *c, char *out, size_t cap)
{
	static const char *roles[] = {"p", "s", "i", "c"};
	snprintf(out, cap, "bench-%d-%s%d-%u", (int)getpid(), roles[c->role], c->idx, c->gen);
	(void)g;
}

static int mqtt_connect(struct lg *g, struct conn *c)
{
	char id[64];
	struct mqtt_packet p = {.type = MQTT_CONNECT};

	client_id(g, c, id, sizeof(id));
	p.u.connect.version = MQTT_V311;
	p.u.connect.clean_start = true;
	/* Long enough that no PINGREQ is due during a run; the servers still keep the timer. */
	p.u.connect.keepalive = 600;
	p.u.connect.client_id = (struct mqtt_bytes){(const uint8_t *)id, strlen(id)};
	c->state = ST_CONNACK;
	return send_packet(g, c, &p);
}

static void own_topic(struct lg *g, struct conn *c, char *out, size_t cap)
{
	snprintf(out, cap, "bench/%d/own/%c%d", (int)getpid(), c->role == R_IDLE ? 'i' : 'c',
		 c->idx);
	(void)g;
}

static int mqtt_subscribe(struct lg *g, struct conn *c, const char *topic, int qos)
{
	struct buf entries = BUF_INIT;
	struct mqtt_packet p = {.type = MQTT_SUBSCRIBE};
	int rc = codec_put_entry(&entries, MQTT_SUBSCRIBE, topic, strlen(topic), (uint8_t)qos);

	if (rc)
		return rc;
	p.u.sub.packet_id = 1;
	p.u.sub.entries = (struct mqtt_bytes){entries.data, entries.len};
	p.u.sub.count = 1;
	rc = send_packet(g, c, &p);
	buf_clear(&entries);
	c->state = ST_SUBACK;
	return rc;
}

/* ---- receiving ---- */

static void deliver(struct lg *g, struct conn *c, const uint8_t *payload, size_t len)
{
	unsigned pub;
	uint32_t seq;
	int64_t ts;

	if (!payload_parse(payload, len, &pub, &seq, &ts) || (int)pub >= g->npubs) {
		g->foreign++;
		return;
	}
	if (seq == 0) { /* warm-up probe */
		c->warm = true;
		return;
	}
	if (g->phase < PH_RUN)
		return;
	struct track *t = &c->tracks[pub];
	if (track_seen(t, seq)) {
		g->dups++;
		return;
	}
	int64_t now = now_ns();
	if (seq < t->last)
		g->reorders++;
	else
		t->last = seq;
	g->delivered++;
	g->t_last_progress = now;
	latencies_add(&g->lat, (uint64_t)(now - ts));
	uint16_t *cnt = g->cnt[pub];
	if (++cnt[seq % RING] == g->nsubs && seq == g->done[pub] + 1) {
		while (cnt[(g->done[pub] + 1) % RING] == g->nsubs) {
			cnt[(g->done[pub] + 1) % RING] = 0;
			g->done[pub]++;
		}
	}
}

static void became_ready(struct lg *g, struct conn *c)
{
	c->state = ST_READY;
	g->connecting--;
	g->ready++;
}

static void churn_leave(struct lg *g, struct conn *c);

static void on_mqtt(struct lg *g, struct conn *c, const struct mqtt_packet *p)
{
	char topic[160];

	switch (p->type) {
	case MQTT_CONNACK:
		if (c->state != ST_CONNACK || p->u.connack.code != 0) {
			conn_fail(g, c, "CONNACK refused");
			return;
		}
		if (c->role == R_SUB) {
			mqtt_subscribe(g, c, g->topic, g->qos);
		} else if (c->role == R_IDLE || c->role == R_CHURN) {
			own_topic(g, c, topic, sizeof(topic));
			mqtt_subscribe(g, c, topic, c->role == R_CHURN ? 1 : 0);
		} else {
			became_ready(g, c);
		}
		return;
	case MQTT_SUBACK:
		if (c->state != ST_SUBACK || p->u.suback.codes.len != 1 ||
		    p->u.suback.codes.data[0] >= 0x80) {
			conn_fail(g, c, "SUBACK refused");
			return;
		}
		became_ready(g, c);
		if (c->role == R_CHURN) {
			/* One round trip through the server per visit: publish to ourselves at QoS 1. */
			uint8_t pl[64];
			struct mqtt_packet pub = {.type = MQTT_PUBLISH};
			own_topic(g, c, topic, sizeof(topic));
			payload_make(pl, sizeof(pl), 0, 0, now_ns());
			pub.u.publish.qos = 1;
			pub.u.publish.packet_id = 1;
			pub.u.publish.topic =
			    (struct mqtt_bytes){(const uint8_t *)topic, strlen(topic)};
			pub.u.publish.payload = (struct mqtt_bytes){pl, sizeof(pl)};
			send_packet(g, c, &pub);
		}
		return;
	case MQTT_PUBLISH:
		if (p->u.publish.qos > 0) {
			struct mqtt_packet ack = {.type = MQTT_PUBACK};
			ack.u.ack.packet_id = p->u.publish.packet_id;
			send_packet(g, c, &ack);
		}
		if (c->role == R_CHURN) {
			c->got_own = true;
			g->churn_roundtrips++;
		} else if (c->role == R_SUB) {
			deliver(g, c, p->u.publish.payload.data, p->u.publish.payload.len);
		}
		return;
	case MQTT_PUBACK:
		if (c->acks_pending)
			c->acks_pending--;
		return;
	case MQTT_PINGRESP:
		return;
	default:
		conn_fail(g, c, "unexpected MQTT packet");
		return;
	}
}

/* Takes whole MQTT packets from the front of @b. */
static void mqtt_stream(struct lg *g, struct conn *c, struct buf *b)
{
	size_t off = 0;

	while (c->fd >= 0 && off < b->len) {
		size_t plen;
		int rc = codec_frame(b->data + off, b->len - off, &plen);
		if (rc == -EAGAIN || (!rc && plen > b->len - off))
			break;
		struct mqtt_packet p;
		if (rc || codec_decode(b->data + off, plen, MQTT_V311, &p, NULL)) {
			conn_fail(g, c, "malformed MQTT from the server");
			return;
		}
		on_mqtt(g, c, &p);
		off += plen;
	}
	if (c->fd < 0)
		return;
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
}

/* Length of the HTTP header block at the front of @b, or 0 while it is incomplete. */
static size_t http_head_len(const struct buf *b)
{
	for (size_t i = 3; i < b->len; i++)
		if (b->data[i] == '\n' && b->data[i - 1] == '\r' && b->data[i - 2] == '\n' &&
		    b->data[i - 3] == '\r')
			return i + 1;
	return 0;
}

static bool http_status_ok(const struct buf *b, const char *code)
{
	return b->len > 12 && !memcmp(b->data, "HTTP/1.1 ", 9) && !memcmp(b->data + 9, code, 3);
}

static void ws_input(struct lg *g, struct conn *c)
{
	struct buf *b = &c->in;
	size_t off = 0;

	if (c->state == ST_HANDSHAKE) {
		size_t h = http_head_len(b);
		if (!h)
			return;
		if (!http_status_ok(b, "101")) {
			conn_fail(g, c, "WebSocket upgrade refused");
			return;
		}
		off = h;
		if (mqtt_connect(g, c))
			return;
	}
	/* Frames from a server are not masked. */
	while (c->fd >= 0 && b->len - off >= 2) {
		const uint8_t *f = b->data + off;
		size_t avail = b->len - off, h = 2;
		uint64_t len = f[1] & 0x7f;
		if (len == 126) {
			if (avail < 4)
				break;
			len = (uint64_t)f[2] << 8 | f[3];
			h = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | f[2 + i];
			h = 10;
		}
		if (len > avail - h)
			break;
		uint8_t op = f[0] & 0x0f;
		if (op == 0x2 || op == 0x0) {
			if (buf_append(&c->mq, f + h, (size_t)len)) {
				conn_fail(g, c, "out of memory");
				return;
			}
		} else if (op == 0x9) {
			ws_frame(g, &c->out, 0xA, f + h, (size_t)len);
			mark_dirty(g, c);
		} else if (op == 0x8) {
			/* After our DISCONNECT a close is the expected answer; before it, a failure. */
			if (c->state == ST_LEAVING) {
				conn_close(g, c);
			} else {
				/* The status code says whose rule it was (1008 policy, 1011, ...). */
				fprintf(stderr, "loadgen: WebSocket close %u \"%.*s\"\n",
					len >= 2 ? (unsigned)(f[h] << 8 | f[h + 1]) : 0u,
					len > 2 ? (int)(len - 2) : 0, (const char *)f + h + 2);
				conn_fail(g, c, "WebSocket closed by the server");
			}
			return;
		}
		off += h + (size_t)len;
	}
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
	if (c->mq.len)
		mqtt_stream(g, c, &c->mq);
}

static void http_pub_input(struct lg *g, struct conn *c)
{
	for (;;) {
		size_t h = http_head_len(&c->in);
		if (!h)
			return;
		if (!http_status_ok(&c->in, "200")) {
			conn_fail(g, c, "HTTP publish refused");
			return;
		}
		size_t body = 0;
		const char *cl = memmem(c->in.data, h, "ontent-length:", 14);
		if (cl)
			body = strtoul(cl + 14, NULL, 10);
		if (c->in.len < h + body)
			return;
		memmove(c->in.data, c->in.data + h + body, c->in.len - h - body);
		c->in.len -= h + body;
		c->http_busy = false;
		if (c->acks_pending)
			c->acks_pending--;
	}
}

static void sse_input(struct lg *g, struct conn *c)
{
	struct buf *b = &c->in;
	size_t off = 0;

	if (c->state == ST_HANDSHAKE) {
		size_t h = http_head_len(b);
		if (!h)
			return;
		if (!http_status_ok(b, "200") || memmem(b->data, h, "chunked", 7)) {
			conn_fail(
			    g, c,
			    "SSE stream refused (or chunked, which this reader does not take)");
			return;
		}
		off = h;
		became_ready(g, c);
	}
	/* Lines; only "data:" lines matter, the payload is the JSON string after "payload":". */
	for (;;) {
		uint8_t *nl = memchr(b->data + off, '\n', b->len - off);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (b->data + off));
		const uint8_t *line = b->data + off;
		if (n > 5 && !memcmp(line, "data:", 5)) {
			const uint8_t *p = memmem(line, n, "\"payload\":\"", 11);
			if (p)
				deliver(g, c, p + 11, n - (size_t)(p + 11 - line));
		}
		off += n + 1;
	}
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
}

static void on_readable(struct lg *g, struct conn *c)
{
	uint8_t tmp[65536];

	for (;;) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n == 0) {
			if (c->role == R_CHURN && c->state == ST_LEAVING) {
				conn_close(g, c);
				return;
			}
			g->closed++;
			conn_fail(g, c, "closed by the server");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_fail(g, c, "read failed");
			return;
		}
		if (buf_append(&c->in, tmp, (size_t)n)) {
			conn_fail(g, c, "out of memory");
			return;
		}
		if ((size_t)n < sizeof(tmp))
			break;
	}
	switch (c->kind) {
	case K_WS:
		ws_input(g, c);
		break;
	case K_TCP:
		mqtt_stream(g, c, &c->in);
		break;
	case K_HTTP:
		http_pub_input(g, c);
		break;
	case K_SSE:
		sse_input(g, c);
		break;
	}
}

/* ---- opening ---- */

static int conn_open(struct lg *g, struct conn *c, const struct endpoint *e)
{
	char req[512];
	int n = 0;

	c->kind = e->kind;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&e->addr, sizeof(e->addr)) &&
	    errno != EINPROGRESS) {
		int rc = -errno;
		close(c->fd);
		c->fd = -1;
		return rc;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP,
				 .data.ptr = c};
	epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev);
	g->connecting++;
	c->state = ST_HANDSHAKE;
	c->warm = false;
	c->gen++;
	switch (e->kind) {
	case K_WS:
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
			     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
			     e->path, e->host);
		break;
	case K_SSE:
		n = snprintf(req, sizeof(req),
			     "GET /api/v1/stream?topic=%s HTTP/1.1\r\nHost: %s\r\n"
			     "Accept: text/event-stream\r\n\r\n",
			     g->topic, e->host);
		break;
	case K_TCP:
		return mqtt_connect(g, c);
	case K_HTTP:
		became_ready(g, c);
		return 0;
	}
	if (n < 0 || (size_t)n >= sizeof(req))
		return -ERANGE;
	buf_append(&c->out, req, (size_t)n);
	mark_dirty(g, c);
	return 0;
}

static struct conn *nth_conn(struct lg *g, int i)
{
	/* Subscribers first, so that they are listening before anyone publishes. */
	if (i < g->nsubs)
		return &g->subs[i];
	i -= g->nsubs;
	if (i < g->npubs)
		return &g->pubs[i];
	return &g->idle[i - g->npubs];
}

static void open_more(struct lg *g)
{
	int total = g->nsubs + g->npubs + g->nidle;
	while (g->next_open < total && g->connecting < CONNECT_BURST) {
		struct conn *c = nth_conn(g, g->next_open);
		const struct endpoint *e = c->role == R_PUB ? &g->pub_ep : &g->sub_ep;
		int rc = conn_open(g, c, e);
		if (rc) {
			fprintf(stderr, "loadgen: connect %s: %s\n", e->host, strerror(-rc));
			g->errors++;
			g->errmsg = "connect failed";
		}
		g->next_open++;
	}
}

/* ---- publishing ---- */

static int publish_one(struct lg *g, struct conn *c, uint32_t seq)
{
	uint8_t pl[4096];
	int64_t ts = now_ns();

	payload_make(pl, (size_t)g->payload, (unsigned)c->idx, seq, ts);
	if (c->kind == K_HTTP) {
		char head[512];
		int n = snprintf(head, sizeof(head),
				 "POST /api/v1/publish/%s?qos=%d HTTP/1.1\r\nHost: %s\r\n"
				 "Content-Length: %d\r\n\r\n",
				 g->topic, g->qos, g->pub_ep.host, g->payload);
		if (n < 0 || (size_t)n >= sizeof(head) || buf_append(&c->out, head, (size_t)n) ||
		    buf_append(&c->out, pl, (size_t)g->payload))
			return -ENOMEM;
		c->http_busy = true;
		c->acks_pending++;
		mark_dirty(g, c);
		return 0;
	}
	struct mqtt_packet p = {.type = MQTT_PUBLISH};
	p.u.publish.qos = (uint8_t)g->qos;
	if (g->qos) {
		p.u.publish.packet_id = (uint16_t)(seq % 65535u + 1u);
		c->acks_pending++;
	}
	p.u.publish.topic = (struct mqtt_bytes){(const uint8_t *)g->topic, strlen(g->topic)};
	p.u.publish.payload = (struct mqtt_bytes){pl, (size_t)g->payload};
	return send_packet(g, c, &p);
}

static void pump(struct lg *g)
{
	if (g->phase != PH_RUN || g->rate > 0)
		return;
	for (int i = 0; i < g->npubs; i++) {
		struct conn *c = &g->pubs[i];
		if (c->fd < 0)
			continue;
		while (!c->http_busy && c->sent - g->done[i] < (uint32_t)g->window) {
			if (publish_one(g, c, c->sent + 1))
				break;
			c->sent++;
		}
	}
}

static void on_timer(struct lg *g)
{
	uint64_t ticks = 0;
	if (read(g->tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (g->phase == PH_WARMUP) {
		/* Probes until every subscriber has one: SSE streams have no SUBACK to wait for. */
		for (int i = 0; i < g->npubs; i++)
			if (g->pubs[i].fd >= 0 && !g->pubs[i].http_busy)
				publish_one(g, &g->pubs[i], 0);
		return;
	}
	if (g->phase != PH_RUN || g->rate <= 0)
		return;
	for (int i = 0; i < g->npubs; i++) {
		struct conn *c = &g->pubs[i];
		for (uint64_t k = 0; k < ticks && c->fd >= 0 && !c->http_busy; k++)
			if (!publish_one(g, c, c->sent + 1))
				c->sent++;
	}
}

static void timer_set(struct lg *g, int64_t interval_ns)
{
	struct itimerspec it = {0};
	it.it_interval.tv_sec = interval_ns / 1000000000LL;
	it.it_interval.tv_nsec = interval_ns % 1000000000LL;
	it.it_value = it.it_interval;
	timerfd_settime(g->tfd, 0, &it, NULL);
}

/* ---- phases ---- */

static bool all_warm(struct lg *g)
{
	for (int i = 0; i < g->nsubs; i++)
		if (!g->subs[i].warm)
			return false;
	return true;
}

static bool all_drained(struct lg *g)
{
	for (int i = 0; i < g->npubs; i++)
		if (g->done[i] != g->pubs[i].sent || g->pubs[i].acks_pending)
			return false;
	return true;
}

/* @setup (may be NULL): before any connection was opened, for the memory the connections cost. */
static void print_samples(struct lg *g, const struct sample *setup, const struct sample *a,
			  const struct sample *b)
{
	printf(",\"procs\":[");
	for (int i = 0; i < g->npids; i++) {
		printf("%s{\"pid\":%d,\"cpu_s\":%.3f,\"rss_kb_before\":%ld,\"rss_kb_after\":%ld",
		       i ? "," : "", g->pids[i], b[i].cpu_s - a[i].cpu_s, a[i].rss_kb, b[i].rss_kb);
		if (setup)
			printf(",\"rss_kb_setup\":%ld", setup[i].rss_kb);
		printf("}");
	}
	printf("]");
}

static int run_pubsub(struct lg *g)
{
	struct sample s_setup[MAX_PIDS], s0[MAX_PIDS], s1[MAX_PIDS];
	struct epoll_event evs[512];
	double lg_cpu0 = 0;
	int64_t t_setup = now_ns();

	samples_take(g, s_setup);
	g->phase = PH_SETUP;
	open_more(g);
	flush_dirty(g);
	while (g->phase != PH_DONE) {
		int64_t now = now_ns();
		int timeout = 50;
		int n = epoll_wait(g->ep, evs, 512, timeout);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				on_timer(g);
				continue;
			}
			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush(g, c);
			if (c->fd >= 0 &&
			    (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				on_readable(g, c);
		}
		pump(g);
		flush_dirty(g);
		now = now_ns();
		switch (g->phase) {
		case PH_SETUP:
			open_more(g);
			flush_dirty(g);
			if (g->ready == g->nsubs + g->npubs) {
				g->phase = PH_WARMUP;
				g->t_phase = now;
				timer_set(g, 20 * 1000000LL);
			} else if (now - t_setup > SETUP_NS || (g->errors && !g->connecting)) {
				g->errmsg = g->errmsg ? g->errmsg : "set-up timed out";
				g->phase = PH_DONE;
			}
			break;
		case PH_WARMUP:
			if (all_warm(g)) {
				samples_take(g, s0);
				lg_cpu0 = proc_cpu_s();
				g->phase = PH_RUN;
				g->t_start = g->t_last_progress = now_ns();
				if (g->rate > 0)
					timer_set(g, (int64_t)(1e9 / g->rate));
				else
					timer_set(g, 0);
				pump(g);
				flush_dirty(g);
			} else if (now - g->t_phase > 10 * 1000000000LL) {
				g->errmsg = "warm-up probes did not reach every subscriber";
				g->phase = PH_DONE;
			}
			break;
		case PH_RUN:
			if (now - g->t_start >= (int64_t)g->duration_s * 1000000000LL ||
			    now - g->t_last_progress > STALL_NS || g->ready < g->nsubs + g->npubs) {
				g->phase = PH_DRAIN;
				g->t_phase = now;
				timer_set(g, 0);
			}
			break;
		case PH_DRAIN:
			if (all_drained(g) || now - g->t_phase > DRAIN_NS) {
				g->t_end = all_drained(g) ? g->t_last_progress : now;
				g->phase = PH_DONE;
			}
			break;
		default:
			break;
		}
	}
	if (!g->t_start) {
		printf("{\"ok\":false,\"error\":\"%s\",\"ready\":%d,\"errors\":%" PRIu64 "}\n",
		       g->errmsg ? g->errmsg : "?", g->ready, g->errors);
		return 1;
	}
	samples_take(g, s1);
	double lg_cpu = proc_cpu_s() - lg_cpu0;
	uint64_t sent = 0, expected;
	for (int i = 0; i < g->npubs; i++)
		sent += g->pubs[i].sent;
	expected = sent * (uint64_t)g->nsubs;
	double wall = (double)(g->t_end - g->t_start) / 1e9;
	double p50, p99, pmax;
	latencies_summary(&g->lat, &p50, &p99, &pmax);
	uint64_t lost = expected > g->delivered ? expected - g->delivered : 0;
	bool ok = !lost && !g->dups && !g->reorders && !g->errors;
	printf("{\"ok\":%s,\"sent\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64
	       ",\"lost\":%" PRIu64 ",\"dups\":%" PRIu64 ",\"reorders\":%" PRIu64
	       ",\"foreign\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"wall_s\":%.3f,"
	       "\"msgs_per_s\":%.1f,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_max_us\":%.1f,"
	       "\"loadgen_cpu_s\":%.3f,\"subs\":%d",
	       ok ? "true" : "false", sent, expected, g->delivered, lost, g->dups, g->reorders,
	       g->foreign, g->errors, wall, wall > 0 ? (double)g->delivered / wall : 0, p50, p99,
	       pmax, lg_cpu, g->nsubs);
	if (g->errmsg)
		printf(",\"error\":\"%s\"", g->errmsg);
	print_samples(g, s_setup, s0, s1);
	printf("}\n");
	return ok ? 0 : 1;
}

static int run_idle(struct lg *g)
{
	struct sample s0[MAX_PIDS], s1[MAX_PIDS];
	struct epoll_event evs[512];
	int64_t t0 = now_ns();

	samples_take(g, s0);
	open_more(g);
	flush_dirty(g);
	while (g->ready < g->nidle && now_ns() - t0 < SETUP_NS && !(g->errors > 0)) {
		int n = epoll_wait(g->ep, evs, 512, 50);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c || c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush(g, c);
			if (c->fd >= 0 &&
			    (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				on_readable(g, c);
		}
		open_more(g);
		flush_dirty(g);
	}
	double connect_s = (double)(now_ns() - t0) / 1e9;
	/* Let the servers finish what the last connections started (Paho threads, lws buffers). */
	sleep(2);
	samples_take(g, s1);
	bool ok = g->ready == g->nidle && !g->errors;
	printf("{\"ok\":%s,\"conns\":%d,\"ready\":%d,\"errors\":%" PRIu64 ",\"connect_s\":%.3f",
	       ok ? "true" : "false", g->nidle, g->ready, g->errors, connect_s);
	if (g->errmsg)
		printf(",\"error\":\"%s\"", g->errmsg);
	print_samples(g, NULL, s0, s1);
	printf("}\n");
	fflush(stdout);
	if (g->hold && ok) {
		/* Hold the connections, answering nothing (nothing is due: keepalive 600 s), until the
		 * driver closes our stdin. The servers may still write (e.g. a close): keep reading. */
		struct pollfd pfd = {.fd = 0, .events = POLLIN};
		for (;;) {
			int n = epoll_wait(g->ep, evs, 512, 0);
			for (int i = 0; i < n; i++) {
				struct conn *c = evs[i].data.ptr;
				if (c && c->fd >= 0 && (evs[i].events & EPOLLIN))
					on_readable(g, c);
			}
			if (poll(&pfd, 1, 200) > 0) {
				char ch;
				if (read(0, &ch, 1) <= 0)
					break;
			}
		}
		if (g->closed)
			fprintf(stderr, "loadgen: %" PRIu64 " idle connections were closed\n",
				g->closed);
	}
	return ok ? 0 : 1;
}

static void churn_leave(struct lg *g, struct conn *c)
{
	if (rnd(g) % 4 == 0) {
		/* A vanished browser: no DISCONNECT, the server publishes nothing and cleans up. */
		g->churn_abrupt++;
		struct linger lin = {1, 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
		conn_close(g, c);
		return;
	}
	struct mqtt_packet p = {.type = MQTT_DISCONNECT};
	send_packet(g, c, &p);
	flush(g, c);
	g->churn_clean++;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_WR);
	c->state = ST_LEAVING;
	g->ready--;
	c->leave_at = now_ns() + 2000000000LL; /* the server closes; if not, we do */
}

static int run_churn(struct lg *g)
{
	struct epoll_event evs[512];
	int64_t t0 = now_ns(), end = t0 + (int64_t)g->duration_s * 1000000000LL;
	int64_t next_report = t0 + 10 * 1000000000LL;

	while (now_ns() < end) {
		int n = epoll_wait(g->ep, evs, 512, 20);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c || c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush(g, c);
			if (c->fd >= 0 &&
			    (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				on_readable(g, c);
		}
		int64_t now = now_ns();
		for (int i = 0; i < g->nidle; i++) {
			struct conn *c = &g->idle[i];
			if (c->state == ST_OFF && g->connecting < CONNECT_BURST) {
				if (conn_open(g, c, &g->sub_ep) == 0) {
					g->churn_connects++;
					c->got_own = false;
					c->leave_at =
					    now + 100000000LL + (int64_t)(rnd(g) % 900) * 1000000LL;
				} else {
					g->errors++;
				}
			} else if (c->state == ST_READY && c->got_own && now >= c->leave_at) {
				churn_leave(g, c);
			} else if (c->state == ST_LEAVING && now >= c->leave_at) {
				conn_close(g, c);
			} else if (c->state != ST_OFF && c->state != ST_LEAVING &&
				   now >= c->leave_at + 10000000000LL) {
				conn_fail(g, c, "churn client got no answer in 10 s");
			}
		}
		flush_dirty(g);
		if (now >= next_report) {
			fprintf(stderr, "loadgen: churn %" PRIu64 " connects, %" PRIu64 " errors\n",
				g->churn_connects, g->errors);
			next_report += 10 * 1000000000LL;
		}
	}
	printf("{\"ok\":%s,\"connects\":%" PRIu64 ",\"clean\":%" PRIu64 ",\"abrupt\":%" PRIu64
	       ",\"roundtrips\":%" PRIu64 ",\"errors\":%" PRIu64,
	       g->errors ? "false" : "true", g->churn_connects, g->churn_clean, g->churn_abrupt,
	       g->churn_roundtrips, g->errors);
	if (g->errmsg)
		printf(",\"error\":\"%s\"", g->errmsg);
	printf("}\n");
	return g->errors ? 1 : 0;
}

/* ---- main ---- */

static void usage(void)
{
	fputs("usage: loadgen pubsub --pub URL --sub URL [--pubs N] [--subs N] [--qos 0|1]\n"
	      "                      [--window N] [--rate MSG/S] [--duration S] [--payload BYTES]\n"
	      "                      [--topic T] [--pid PID]...\n"
	      "       loadgen idle --sub ws://HOST:PORT/mqtt --conns N [--hold] [--pid PID]...\n"
	      "       loadgen churn --sub ws://HOST:PORT/mqtt --conns N --duration S\n"
	      "URLs: ws://IP:PORT/PATH, tcp://IP:PORT (MQTT), http://IP:PORT (REST publish),\n"
	      "      sse://IP:PORT (GET /api/v1/stream)\n",
	      stderr);
}

static void conns_free(struct conn *c, int n, int npubs)
{
	if (!c)
		return;
	for (int i = 0; i < n; i++) {
		if (c[i].fd >= 0)
			close(c[i].fd);
		buf_clear(&c[i].in);
		buf_clear(&c[i].out);
		buf_clear(&c[i].mq);
		if (c[i].tracks)
			for (int k = 0; k < npubs; k++)
				free(c[i].tracks[k].seen);
		free(c[i].tracks);
	}
	free(c);
}

static struct conn *conns_new(int n, enum role role)
{
	struct conn *c = calloc((size_t)(n ? n : 1), sizeof(*c));
	if (!c)
		return NULL;
	for (int i = 0; i < n; i++) {
		c[i].fd = -1;
		c[i].role = role;
		c[i].idx = i;
	}
	return c;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"pub", required_argument, 0, 'P'},
					     {"sub", required_argument, 0, 'S'},
					     {"pubs", required_argument, 0, 'p'},
					     {"subs", required_argument, 0, 's'},
					     {"qos", required_argument, 0, 'q'},
					     {"window", required_argument, 0, 'w'},
					     {"rate", required_argument, 0, 'r'},
					     {"duration", required_argument, 0, 'd'},
					     {"payload", required_argument, 0, 'l'},
					     {"topic", required_argument, 0, 't'},
					     {"pid", required_argument, 0, 'i'},
					     {"conns", required_argument, 0, 'n'},
					     {"hold", no_argument, 0, 'H'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	struct lg g = {.npubs = 1, .nsubs = 1, .window = 64, .payload = 64, .duration_s = 5};
	const char *pub_url = NULL, *sub_url = NULL, *mode;
	int rc = 2, o;

	if (argc < 2 || argv[1][0] == '-') {
		usage();
		return 2;
	}
	mode = argv[1];
	snprintf(g.topic, sizeof(g.topic), "bench/%d/t", (int)getpid());
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'P':
			pub_url = optarg;
			break;
		case 'S':
			sub_url = optarg;
			break;
		case 'p':
			g.npubs = atoi(optarg);
			break;
		case 's':
			g.nsubs = atoi(optarg);
			break;
		case 'q':
			g.qos = atoi(optarg);
			break;
		case 'w':
			g.window = atoi(optarg);
			break;
		case 'r':
			g.rate = atof(optarg);
			break;
		case 'd':
			g.duration_s = atoi(optarg);
			break;
		case 'l':
			g.payload = atoi(optarg);
			break;
		case 't':
			snprintf(g.topic, sizeof(g.topic), "%s", optarg);
			break;
		case 'n':
			g.conns = atoi(optarg);
			break;
		case 'H':
			g.hold = true;
			break;
		case 'i':
			if (g.npids < MAX_PIDS)
				g.pids[g.npids++] = atoi(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (g.npubs < 1 || g.npubs > MAX_PUBS || g.nsubs < 1 || g.nsubs > 65535 || g.qos < 0 ||
	    g.qos > 1 || g.window < 1 || g.window > (int)RING / 2 || g.payload < PAYLOAD_HEAD ||
	    g.payload > 4096 || g.duration_s < 1 || g.conns < 0) {
		fputs("loadgen: an option is out of range\n", stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	g.rng = (uint32_t)now_ns() | 1u;
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &tev);

	if (!strcmp(mode, "pubsub")) {
		if (!pub_url || !sub_url || endpoint_parse(pub_url, &g.pub_ep) ||
		    endpoint_parse(sub_url, &g.sub_ep) || g.sub_ep.kind == K_HTTP ||
		    g.pub_ep.kind == K_SSE) {
			fputs("loadgen: pubsub needs --pub ws|tcp|http URL and --sub ws|tcp|sse "
			      "URL\n",
			      stderr);
			goto out;
		}
		g.pubs = conns_new(g.npubs, R_PUB);
		g.subs = conns_new(g.nsubs, R_SUB);
		int lat_failed = latencies_init(&g.lat, LAT_CAP);
		g.dirty = calloc((size_t)(g.npubs + g.nsubs), sizeof(*g.dirty));
		if (!g.pubs || !g.subs || lat_failed || !g.dirty)
			goto oom;
		for (int i = 0; i < g.npubs; i++)
			if (!(g.cnt[i] = calloc(RING, sizeof(uint16_t))))
				goto oom;
		for (int i = 0; i < g.nsubs; i++)
			if (!(g.subs[i].tracks = calloc((size_t)g.npubs, sizeof(struct track))))
				goto oom;
		rc = run_pubsub(&g);
	} else if (!strcmp(mode, "idle") || !strcmp(mode, "churn")) {
		bool churn = mode[0] == 'c';
		if (!sub_url || endpoint_parse(sub_url, &g.sub_ep) || g.sub_ep.kind != K_WS ||
		    g.conns < 1) {
			fputs("loadgen: idle and churn need --sub ws://... and --conns N\n",
			      stderr);
			goto out;
		}
		g.nsubs = g.npubs = 0;
		g.nidle = g.conns;
		g.idle = conns_new(g.conns, churn ? R_CHURN : R_IDLE);
		g.dirty = calloc((size_t)g.conns, sizeof(*g.dirty));
		if (!g.idle || !g.dirty)
			goto oom;
		rc = churn ? run_churn(&g) : run_idle(&g);
	} else {
		usage();
	}
	goto out;
oom:
	fputs("loadgen: out of memory\n", stderr);
	rc = 1;
out:
	fflush(stdout);
	conns_free(g.pubs, g.npubs, g.npubs);
	conns_free(g.subs, g.nsubs, g.npubs);
	conns_free(g.idle, g.nidle, 0);
	for (int i = 0; i < MAX_PUBS; i++)
		free(g.cnt[i]);
	latencies_free(&g.lat);
	free(g.dirty);
	buf_clear(&g.scratch);
	close(g.tfd);
	close(g.ep);
	return rc;
}
