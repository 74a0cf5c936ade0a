/*
 * bench/loadgen_measure.c — what loadgen measures: clocks, /proc sampling of the --pid processes,
 * and what subscribers receive (loss, duplicates, order and latency per publisher).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

double proc_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint32_t rnd(struct lg *g)
{
	/* xorshift32: WebSocket mask keys and churn timings need variety, not quality. */
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 17;
	g->rng ^= g->rng << 5;
	return g->rng;
}

/* ---- /proc sampling ---- */

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

void samples_take(struct lg *g, struct sample *out)
{
	for (int i = 0; i < g->npids; i++)
		out[i] = proc_sample(g->pids[i]);
}

void deliver(struct lg *g, struct conn *c, const uint8_t *payload, size_t len)
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

/* ---- phases ---- */

bool all_warm(struct lg *g)
{
	for (int i = 0; i < g->nsubs; i++)
		if (!g->subs[i].warm)
			return false;
	return true;
}

bool all_drained(struct lg *g)
{
	for (int i = 0; i < g->npubs; i++)
		if (g->done[i] != g->pubs[i].sent || g->pubs[i].acks_pending)
			return false;
	return true;
}

/* @setup (may be NULL): before any connection was opened, for the memory the connections cost. */
void print_samples(struct lg *g, const struct sample *setup, const struct sample *a,
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
