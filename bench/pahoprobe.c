/*
 * bench/pahoprobe.c — what Eclipse Paho's MQTTAsync costs by itself, with none of the bridge.
 *
 * The bridge holds one MQTTAsync client per browser, all in one process. This probe does the same
 * with nothing else in the process: MQTTAsync clients over plain TCP to a broker, a closed-loop
 * publisher on the main thread, and messageArrived callbacks (on Paho's receive thread) that only
 * check, count and free. Its CPU per delivered message and its latency are therefore Paho's share
 * (plus this probe's bookkeeping, well under a microsecond a message) of what bench/bench.py
 * measures for the bridge.
 *
 *   fanout  --idle idle clients (each subscribed to its own topic, then left alone), --subs
 *           subscribers of one topic at --qos, one publisher;
 *   fanin   --pubs publishers, one subscriber, QoS 0.
 *
 * Payloads are loadgen's: "B" + publisher (4 hex) + sequence (8 hex) + CLOCK_MONOTONIC send time in
 * ns (16 hex), padded to --payload bytes. A publisher keeps at most --window messages not yet
 * received by every subscriber. CPU is getrusage(RUSAGE_SELF) over the measured window only
 * (set-up and teardown excluded), divided by messages delivered (each subscriber's copy counts).
 * One JSON line on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "pahoprobe.h"

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cpu_s(double *user, double *sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Waits on @cond until @deadline (CLOCK_MONOTONIC, see main()); @lock held. */
bool wait_until(struct probe *p, const struct timespec *deadline)
{
	return pthread_cond_timedwait(&p->cond, &p->lock, deadline) != ETIMEDOUT;
}

struct timespec deadline_in(int64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns += ts.tv_nsec;
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	return ts;
}

/* ---- publishing (main thread) ---- */

/* Never with @lock held: Paho may call back into on_published under its own locks meanwhile. */
static int publish(struct probe *p, int pub, uint32_t seq)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	char payload[4096];

	payload_make(payload, (size_t)p->payload, (unsigned)pub, seq, now_ns());
	m.payload = payload;
	m.payloadlen = p->payload;
	m.qos = p->qos;
	/* As bridge/paho/upstream.c: an answer for every publish. */
	ro.onSuccess = on_published;
	ro.onFailure = on_publish_failed;
	ro.context = p;
	pthread_mutex_lock(&p->lock);
	p->acks_pending++;
	pthread_mutex_unlock(&p->lock);
	if (MQTTAsync_sendMessage(p->pubs[pub].h, p->topic, &m, &ro) == MQTTASYNC_SUCCESS)
		return 0;
	pthread_mutex_lock(&p->lock);
	p->acks_pending--;
	probe_error(p, "MQTTAsync_sendMessage refused");
	pthread_mutex_unlock(&p->lock);
	return -1;
}

/* Fills every publisher's window. */
static void publish_windows(struct probe *p)
{
	for (int i = 0; i < p->npubs; i++) {
		pthread_mutex_lock(&p->lock);
		uint32_t room = (uint32_t)p->window - (p->sent[i] - p->done[i]);
		pthread_mutex_unlock(&p->lock);
		for (uint32_t k = 0; k < room && !publish(p, i, p->sent[i] + 1); k++)
			p->sent[i]++;
	}
}

static bool all_drained(struct probe *p)
{
	for (int i = 0; i < p->npubs; i++)
		if (p->done[i] != p->sent[i])
			return false;
	return p->acks_pending == 0;
}

static void fail_json(struct probe *p, const char *why, double setup_s)
{
	why = why ? why : "set-up failed";
	printf("{\"ok\":false,\"error\":\"%s\",\"setup_s\":%.3f,\"errors\":%" PRIu64 "}\n", why,
	       setup_s, p->errors);
}

static int run(struct probe *p)
{
	int64_t t0 = now_ns(), t_start, t_end;
	double u0, s0, u1, s1, main0, setup_s;

	if (clients_start(p)) {
		fail_json(p, p->errmsg, (double)(now_ns() - t0) / 1e9);
		return 1;
	}
	setup_s = (double)(now_ns() - t0) / 1e9;

	/* Warm-up: a probe (sequence 0) from each publisher, once a second, until every subscriber
	 * has one, so that the measured window starts with every path through Paho open. Then the
	 * probes still on their way are let through: beside 5,000 idle clients Paho takes seconds
	 * per window, and their work would be billed to the measured messages. */
	int64_t warm_end = now_ns() + WARMUP_NS;
	pthread_mutex_lock(&p->lock);
	while (p->nwarm < p->nsubs && now_ns() < warm_end && !p->errors) {
		pthread_mutex_unlock(&p->lock);
		for (int i = 0; i < p->npubs; i++)
			publish(p, i, 0);
		pthread_mutex_lock(&p->lock);
		struct timespec dl = deadline_in(1000000000LL);
		while (p->nwarm < p->nsubs && wait_until(p, &dl))
			;
	}
	while (p->acks_pending && now_ns() < warm_end && !p->errors) {
		struct timespec dl = deadline_in(50000000LL);
		wait_until(p, &dl);
	}
	bool warm = p->nwarm == p->nsubs && !p->acks_pending && !p->errors;
	pthread_mutex_unlock(&p->lock);
	struct timespec pause = {0, 100000000L}; /* the broker's copies of the last probes */
	nanosleep(&pause, NULL);
	if (!warm) {
		fail_json(p, p->errmsg ? p->errmsg : "warm-up probes missed a subscriber", setup_s);
		return 1;
	}

	/* The measured window: publish for --duration s, then drain. */
	cpu_s(&u0, &s0);
	main0 = thread_cpu_s();
	t_start = now_ns();
	pthread_mutex_lock(&p->lock);
	p->running = true;
	p->t_last = t_start;
	pthread_mutex_unlock(&p->lock);
	int64_t stop_at = t_start + (int64_t)p->duration_s * 1000000000LL;
	for (;;) {
		publish_windows(p);
		int64_t now = now_ns();
		pthread_mutex_lock(&p->lock);
		bool stop = now >= stop_at || now - p->t_last > STALL_NS || p->errors;
		if (!stop) {
			/* Sleep until deliveries open a window (or 100 ms: the clock). */
			struct timespec dl = deadline_in(100000000LL);
			p->waiting = true;
			bool full = true;
			for (int i = 0; i < p->npubs && full; i++)
				full = p->sent[i] - p->done[i] >= (uint32_t)p->window;
			if (full)
				wait_until(p, &dl);
			p->waiting = false;
		}
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
	}
	int64_t drain_end = now_ns() + DRAIN_NS;
	pthread_mutex_lock(&p->lock);
	p->waiting = true;
	while (!all_drained(p) && now_ns() < drain_end) {
		struct timespec dl = deadline_in(50000000LL);
		wait_until(p, &dl);
	}
	p->waiting = false;
	bool drained = all_drained(p);
	t_end = drained ? p->t_last : now_ns();
	pthread_mutex_unlock(&p->lock);
	cpu_s(&u1, &s1);
	double main_cpu = thread_cpu_s() - main0;

	/* Paho's threads may still call back (late duplicates): read the figures under the lock. */
	pthread_mutex_lock(&p->lock);
	uint64_t sent = 0;
	for (int i = 0; i < p->npubs; i++)
		sent += p->sent[i];
	uint64_t expected = sent * (uint64_t)p->nsubs;
	uint64_t lost = expected > p->delivered ? expected - p->delivered : 0;
	double wall = (double)(t_end - t_start) / 1e9;
	double cpu = (u1 - u0) + (s1 - s0);
	double p50, p99, pmax;
	latencies_summary(&p->lat, &p50, &p99, &pmax);
	bool ok = drained && !lost && !p->dups && !p->reorders && !p->errors;
	printf("{\"ok\":%s,\"pubs\":%d,\"subs\":%d,\"idle\":%d,\"qos\":%d,\"sent\":%" PRIu64
	       ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64
	       ",\"dups\":%" PRIu64 ",\"reorders\":%" PRIu64 ",\"foreign\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"wall_s\":%.3f,\"msgs_per_s\":%.1f,\"cpu_s\":%.3f,"
	       "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"main_cpu_s\":%.3f,\"cpu_us_per_msg\":%.3f,"
	       "\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_max_us\":%.1f,\"setup_s\":%.3f",
	       ok ? "true" : "false", p->npubs, p->nsubs, p->nidle, p->qos, sent, expected,
	       p->delivered, lost, p->dups, p->reorders, p->foreign, p->errors, wall,
	       wall > 0 ? (double)p->delivered / wall : 0, cpu, u1 - u0, s1 - s0, main_cpu,
	       p->delivered ? cpu * 1e6 / (double)p->delivered : -1, p50, p99, pmax, setup_s);
	if (!ok && !p->errmsg)
		p->errmsg = drained ? "loss, duplicates or reordering" : "not drained";
	if (!ok)
		printf(",\"error\":\"%s\"", p->errmsg);
	print_paho();
	printf("}\n");
	pthread_mutex_unlock(&p->lock);
	return ok ? 0 : 1;
}

/* ---- main ---- */

static void usage(void)
{
	fputs("usage: pahoprobe fanout --broker tcp://IP:PORT [--subs 50] [--idle 0] [--qos 0|1]\n"
	      "                        [--window 64] [--duration 5] [--payload 64]\n"
	      "       pahoprobe fanin --broker tcp://IP:PORT [--pubs 10] [--window 16]\n"
	      "                       [--duration 5] [--payload 64]\n",
	      stderr);
}

/* Idle clients first, as in bench.py's "beside" scenario: the busy ones come last in Paho's list
 * of clients, which it walks to find the owner of every packet. */
static int clients_new(struct probe *p)
{
	p->nall = p->nidle + p->nsubs + p->npubs;
	p->all = calloc((size_t)p->nall, sizeof(struct client));
	if (!p->all)
		return -ENOMEM;
	p->idle = p->all;
	p->subs = p->idle + p->nidle;
	p->pubs = p->subs + p->nsubs;
	for (int i = 0; i < p->nall; i++) {
		struct client *c = &p->all[i];
		c->p = p;
		c->role = i < p->nidle ? R_IDLE : i < p->nidle + p->nsubs ? R_SUB : R_PUB;
		c->idx = c->role == R_IDLE  ? i
			 : c->role == R_SUB ? i - p->nidle
					    : i - p->nidle - p->nsubs;
		if (c->role == R_IDLE)
			snprintf(c->topic, sizeof(c->topic), "pahoprobe/%d/i%d", (int)getpid(), i);
		else
			snprintf(c->topic, sizeof(c->topic), "%s", p->topic);
		if (c->role == R_SUB && !(c->tracks = calloc((size_t)p->npubs, sizeof(*c->tracks))))
			return -ENOMEM;
	}
	return 0;
}

static void clients_free(struct probe *p)
{
	for (int i = 0; p->all && i < p->nall; i++) {
		if (p->all[i].tracks)
			for (int k = 0; k < p->npubs; k++)
				free(p->all[i].tracks[k].seen);
		free(p->all[i].tracks);
	}
	free(p->all);
}

int main(int argc, char **argv)
{
	static const struct option opts[] =
	    {{"broker", required_argument, 0, 'b'},   {"subs", required_argument, 0, 's'},
	     {"pubs", required_argument, 0, 'p'},     {"idle", required_argument, 0, 'i'},
	     {"qos", required_argument, 0, 'q'},      {"window", required_argument, 0, 'w'},
	     {"duration", required_argument, 0, 'd'}, {"payload", required_argument, 0, 'l'},
	     {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
	struct probe p = {.duration_s = 5, .payload = 64};
	bool fanin;
	int o, rc = 2;

	if (argc < 2 || (strcmp(argv[1], "fanout") && strcmp(argv[1], "fanin"))) {
		usage();
		return 2;
	}
	fanin = !strcmp(argv[1], "fanin");
	p.npubs = fanin ? 10 : 1;
	p.nsubs = fanin ? 1 : 50;
	p.window = fanin ? 16 : 64;
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'b':
			p.url = optarg;
			break;
		case 's':
			p.nsubs = atoi(optarg);
			break;
		case 'p':
			p.npubs = atoi(optarg);
			break;
		case 'i':
			p.nidle = atoi(optarg);
			break;
		case 'q':
			p.qos = atoi(optarg);
			break;
		case 'w':
			p.window = atoi(optarg);
			break;
		case 'd':
			p.duration_s = atoi(optarg);
			break;
		case 'l':
			p.payload = atoi(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	/* fan-out has one publisher, fan-in one subscriber at QoS 0 (loadgen's scenarios). */
	if (fanin ? p.nsubs != 1 || p.qos != 0 : p.npubs != 1) {
		usage();
		return 2;
	}
	if (!p.url || p.npubs < 1 || p.npubs > MAX_PUBS || p.nsubs < 1 || p.nsubs > 65535 ||
	    p.nidle < 0 || p.qos < 0 || p.qos > 1 || p.window < 1 || p.window > MAX_WINDOW ||
	    p.payload < PAYLOAD_HEAD || p.payload > 4096 || p.duration_s < 1) {
		fputs("pahoprobe: --broker is missing or an option is out of range\n", stderr);
		return 2;
	}

	/* One descriptor per client: 5,000 idle ones need more than the usual soft limit. */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Waking the publisher for every delivery would bill a futex round trip per message to
	 * Paho; a quarter window at a time keeps the pipe full at a fraction of that. */
	p.refill = p.window / 4 > 1 ? p.window / 4 : 1;
	/* As the bridge at start (upstream_init()): Paho's trace formatting costs half its CPU. */
	MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(p.topic, sizeof(p.topic), "pahoprobe/%d/t", (int)getpid());
	bool oom = latencies_init(&p.lat, LAT_CAP) || clients_new(&p);
	for (int i = 0; i < p.npubs && !oom; i++)
		oom = !(p.cnt[i] = calloc(RING, sizeof(uint16_t)));
	if (oom) {
		fail_json(&p, "out of memory", 0);
		rc = 1;
	} else {
		rc = run(&p);
	}
	fflush(stdout);
	clients_stop(&p);
	clients_free(&p);
	for (int i = 0; i < MAX_PUBS; i++)
		free(p.cnt[i]);
	latencies_free(&p.lat);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
