/* web/web.h — what the web/ modules share: one per server, the lws context's user pointer. */
#pragma once
#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "hub.h"
#include "retained.h"
#include "server.h"
#include "session.h"
#include "wheel.h"

/* The length of a string literal (only a literal compiles: "" is pasted onto it). */
#define WEB_LITLEN(lit) (sizeof(lit "") - 1)

/* Rate-limit buckets kept at most (about 100 bytes each): addresses are the client's to pick. */
#define WEB_RATELIMIT_KEYS 65536

/* Upper bounds (seconds) of the REST publish latency histogram, for /metrics. */
#define WEB_LATENCY_BUCKETS 10
extern const double web_latency_bounds[WEB_LATENCY_BUCKETS];

struct web_stats {
	uint64_t http_requests;
	uint64_t http_responses[6]; /* by class: [2] is 2xx ... [5] is 5xx */
	uint64_t rest_published;    /* REST messages the broker acknowledged */
	uint64_t rest_refused;      /* refused by the bridge or the broker */
	uint64_t sse_events;        /* events written to streams */
	uint64_t sse_dropped;       /* events a slow stream lost */
	uint64_t sse_cut_off;       /* streams closed for being too slow */
	/* Refused before any work was done (doc/design.md §4). */
	uint64_t refused_max_connections; /* connections over limits.max_connections */
	uint64_t refused_upgrade_origin;  /* WebSocket upgrades from an origin not allowed */
	uint64_t refused_http_origin;     /* API requests from an origin not allowed */
	uint64_t refused_unauthorized;    /* 401: no token, or an unknown one */
	uint64_t refused_forbidden;       /* 403: outside the token's ACL */
	uint64_t refused_rate_limited;    /* 429 */
	uint64_t ws_connect_timeouts;     /* no CONNECT in time after the upgrade */
	uint64_t ws_keepalive_timeouts;   /* silent past 1.5 x the keepalive */
	uint64_t latency_count[WEB_LATENCY_BUCKETS + 1]; /* last: +Inf */
	double latency_sum;
};

struct sse_stream;
struct ratelimit;
struct netaddr_range;

struct web_ctx {
	const struct config *cfg;
	struct auth *auth; /* the current token table, main's (never NULL; replaced on SIGHUP) */
	const char *static_root; /* static_dir, absolute and resolved */
	struct web_deps deps;
	struct web_hooks hooks;
	struct lws_context *context;
	struct lws_vhost *vhost;
	lws_sorted_usec_list_t sul_tick;
	/* The WebSocket connections' deadlines (ws.c): one lws timer steps them all. */
	struct wheel deadlines;
	lws_sorted_usec_list_t sul_deadlines;
	bool deadlines_stepping;
	size_t connections; /* WebSocket connections open */
	size_t sse_streams;
	struct sse_stream *streams;    /* sse.c's list */
	size_t http_open;              /* API requests being handled */
	size_t sockets;                /* accepted connections of every kind open (guard.c) */
	struct ratelimit *ratelimit;   /* NULL: limits.requests_per_minute is 0 */
	struct netaddr_range *trusted; /* cfg->trusted_proxies, parsed */
	size_t ntrusted;
	SSL_CTX *ssl_ctx; /* the listener's, lws's (NULL without TLS): SIGHUP loads new files in */
	bool shutting_down;
	struct web_stats stats;
};

/** Service thread. The web context of @wsi's server. */
static inline struct web_ctx *web_ctx_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}
