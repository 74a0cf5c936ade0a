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
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loadgen.h"

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
