/*
 * web/server.c — the lws context: one vhost on cfg->listen, static files at "/", the MQTT
 * WebSocket protocols, and a raw-file watcher for the signal fd. Runs on the service thread.
 */
#include "server.h"

#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "http.h"
#include "log.h"
#include "netaddr.h"
#include "ratelimit.h"
#include "sse.h"
#include "static.h"
#include "tls.h"
#include "web.h"
#include "ws.h"

/* A slow client may hold a connection open only so long before its request is in (lws's
 * timeout_secs, also what it allows other pending states). */
#define PENDING_TIMEOUT_S 10

struct web_server {
	struct web_ctx ctx;
	struct lws_protocols protocols[7];
	struct lws_http_mount mount_static, mount_api, mount_metrics;
	char *static_root;
	struct lws *signal_wsi;
	/* lws runs on libev's loop (epoll), not its own poll(): a wake costs the ready sockets,
	 * not every open one. The loop is ours ("foreign"), run once per web_server_service(). */
	struct ev_loop *loop;
	void *foreign_loops[1];
};

/* No lws validity timer per connection: MQTT keepalive (ws.c's deadline wheel), SSE beats and
 * timeout_secs cover liveness. lws keeps those timers in one sorted list, so each new
 * WebSocket's +300 s entry walked every other connection's: O(connections) per connect. */
static const lws_retry_bo_t no_validity_pings = {.secs_since_valid_ping = 0,
						 .secs_since_valid_hangup = 0};

/* protocols[0]: plain HTTP (static files), plus the server-wide events lws sends there. */
static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct web_ctx *ctx = web_ctx_of(wsi);

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (ctx && ctx->hooks.wake)
			ctx->hooks.wake(ctx->hooks.user);
		return 0;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* Shutting down: new connections are refused at once. */
		return ctx && ctx->shutting_down;
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		guard_accepted(ctx, wsi);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (ctx)
			guard_destroyed(ctx, wsi);
		return 0;
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
		/* Every request, before its mount's protocol sees it. */
		return guard_http(ctx, wsi);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return guard_upgrade(ctx, wsi, in);
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* The one moment lws shows the listener's SSL_CTX (as @user), which a SIGHUP
		 * loads new files into (web_server_reload_tls). */
		if (ctx)
			ctx->ssl_ctx = user;
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The signal fd, adopted as a raw file so that signals arrive through lws's own poll. */
static int callback_signal(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	struct web_ctx *ctx = web_ctx_of(wsi);

	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_RAW_RX_FILE && ctx->hooks.signal)
		ctx->hooks.signal(ctx->hooks.user);
	return 0;
}

static void tick(lws_sorted_usec_list_t *sul)
{
	struct web_ctx *ctx = lws_container_of(sul, struct web_ctx, sul_tick);

	if (ctx->hooks.tick)
		ctx->hooks.tick(ctx->hooks.user);
	sse_check_peers(ctx);
	lws_sul_schedule(ctx->context, 0, &ctx->sul_tick, tick, LWS_US_PER_SEC);
}

/* lws logs through ours, one line each, at a level that matches. */
static void lws_log_emit(int level, const char *line)
{
	enum log_level ours = LOG_DEBUG;
	size_t len = strlen(line);

	if (level & LLL_ERR)
		ours = LOG_ERROR;
	else if (level & LLL_WARN)
		ours = LOG_WARN;
	else if (level & (LLL_NOTICE | LLL_USER))
		ours = LOG_DEBUG;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	log_msg(ours, "lws", "message=\"%.*s\"", (int)len, line);
}

/* The protocols, and the mounts: lws 4.1 lets the LAST matching callback mount win (not the
 * longest), so "/" goes first. */
static void set_routes(struct web_server *w)
{
	w->protocols[0] = (struct lws_protocols){"http", callback_http, 0, 0, 0, NULL, 0};
	w->protocols[1] = web_ws_protocol("mqtt");
	w->protocols[2] = web_ws_protocol("mqttv3.1");
	w->protocols[3] = web_http_protocol();
	w->protocols[4] = web_static_protocol();
	w->protocols[5] = (struct lws_protocols){"mwb-signal", callback_signal, 0, 0, 0, NULL, 0};
	w->mount_static.mountpoint = "/";
	w->mount_static.mountpoint_len = (unsigned char)strlen(w->mount_static.mountpoint);
	w->mount_static.origin = "mwb-static";
	w->mount_static.protocol = "mwb-static";
	w->mount_static.origin_protocol = LWSMPRO_CALLBACK;
	w->mount_static.mount_next = &w->mount_api;
	w->mount_api.mountpoint = "/api/v1";
	w->mount_api.mountpoint_len = (unsigned char)strlen(w->mount_api.mountpoint);
	w->mount_api.origin = "mwb-api";
	w->mount_api.protocol = "mwb-api";
	w->mount_api.origin_protocol = LWSMPRO_CALLBACK;
	w->mount_metrics = w->mount_api;
	w->mount_api.mount_next = &w->mount_metrics;
	w->mount_metrics.mount_next = NULL;
	w->mount_metrics.mountpoint = "/metrics";
	w->mount_metrics.mountpoint_len = (unsigned char)strlen(w->mount_metrics.mountpoint);
}

/* trusted_proxies parsed, and the request rate limiter. 0, or -ENOMEM (logged). */
static int set_access(struct web_server *w, const struct config *cfg)
{
	if (cfg->ntrusted_proxies) {
		w->ctx.trusted = calloc(cfg->ntrusted_proxies, sizeof(*w->ctx.trusted));
		if (!w->ctx.trusted) {
			log_msg(LOG_ERROR, "web", "out-of-memory for=trusted_proxies");
			return -ENOMEM;
		}
		/* config.c has parsed each one already. */
		for (size_t i = 0; i < cfg->ntrusted_proxies; i++) {
			if (netaddr_parse_range(cfg->trusted_proxies[i], &w->ctx.trusted[i]))
				return -EINVAL;
		}
		w->ctx.ntrusted = cfg->ntrusted_proxies;
	}
	if (cfg->limits.requests_per_minute > 0) {
		w->ctx.ratelimit =
		    ratelimit_new(cfg->limits.requests_per_minute, WEB_RATELIMIT_KEYS);
		if (!w->ctx.ratelimit) {
			log_msg(LOG_ERROR, "web", "out-of-memory for=ratelimit");
			return -ENOMEM;
		}
	}
	return 0;
}

/* What lws is to make: the listener, its event loop and TLS. 0, or nonzero (logged). */
static int set_info(struct web_server *w, const struct config *cfg,
		    struct lws_context_creation_info *info)
{
	memset(info, 0, sizeof(*info));
	info->port = cfg->listen_port;
	info->iface = cfg->listen_host;
	info->protocols = w->protocols;
	info->mounts = &w->mount_static;
	info->user = &w->ctx;
	info->options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_LIBEV;
	w->loop = ev_loop_new(EVFLAG_AUTO);
	if (!w->loop) {
		log_msg(LOG_ERROR, "web", "event-loop-failed");
		return -1;
	}
	w->foreign_loops[0] = w->loop;
	info->foreign_loops = w->foreign_loops;
	if (!strchr(cfg->listen_host, ':'))
		info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info->vhost_name = "mqtt-web-bridge";
	info->server_string = "mqtt-web-bridge";
	info->timeout_secs = PENDING_TIMEOUT_S;
	info->ka_time = 0;
	info->retry_and_idle_policy = &no_validity_pings;
	if (!*cfg->tls.cert_file)
		return 0;
	/* A TLS vhost refuses plain HTTP on its port: HTTPS and WSS only. */
	if (web_tls_check(cfg->tls.cert_file, cfg->tls.key_file))
		return -1;
	info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info->ssl_cert_filepath = cfg->tls.cert_file;
	info->ssl_private_key_filepath = cfg->tls.key_file;
	/* lws offers h2 by default; WebSocket, SSE and REST here are written for HTTP/1.1. */
	info->alpn = "http/1.1";
	return 0;
}

struct web_server *web_server_new(const struct config *cfg, const struct web_deps *deps,
				  const struct web_hooks *hooks, int signal_fd)
{
	struct lws_context_creation_info info;
	struct web_server *w = calloc(1, sizeof(*w));
	char *real;

	if (!w)
		return NULL;
	w->ctx.cfg = cfg;
	w->ctx.deps = *deps;
	w->ctx.auth = deps->auth;
	w->ctx.hooks = *hooks;

	/* Resolved once: every file served must resolve to a path inside it (static.c). */
	real = realpath(cfg->static_dir, NULL);
	if (!real) {
		log_msg(LOG_ERROR, "web", "static-dir-missing path=\"%s\" error=\"%s\"",
			cfg->static_dir, strerror(errno));
		free(w);
		return NULL;
	}
	w->static_root = real;
	w->ctx.static_root = real;
	if (set_access(w, cfg))
		goto fail;
	set_routes(w);
	lws_set_log_level(log_enabled(LOG_DEBUG) ? LLL_ERR | LLL_WARN | LLL_NOTICE
						 : LLL_ERR | LLL_WARN,
			  lws_log_emit);
	if (set_info(w, cfg, &info))
		goto fail;

	wheel_init(&w->ctx.deadlines, lws_now_usecs());
	w->ctx.context = lws_create_context(&info);
	if (!w->ctx.context) {
		log_msg(LOG_ERROR, "web", "lws-context-failed");
		goto fail;
	}
	w->ctx.vhost = lws_create_vhost(w->ctx.context, &info);
	if (!w->ctx.vhost) {
		log_msg(LOG_ERROR, "web", "listen-failed address=%s", cfg->listen);
		goto fail;
	}
	if (signal_fd >= 0) {
		lws_sock_file_fd_type fd;
		fd.filefd = signal_fd;
		w->signal_wsi = lws_adopt_descriptor_vhost(w->ctx.vhost, LWS_ADOPT_RAW_FILE_DESC,
							   fd, "mwb-signal", NULL);
		if (!w->signal_wsi) {
			log_msg(LOG_ERROR, "web", "signal-fd-adopt-failed");
			goto fail;
		}
	}
	lws_sul_schedule(w->ctx.context, 0, &w->ctx.sul_tick, tick, LWS_US_PER_SEC);
	return w;
fail:
	web_server_free(w);
	return NULL;
}

size_t web_write_headroom(void)
{
	return LWS_PRE;
}

void web_server_service(struct web_server *w)
{
	ev_run(w->loop, EVRUN_ONCE);
}

void web_server_begin_shutdown(struct web_server *w)
{
	w->ctx.shutting_down = true;
	sse_shutdown(&w->ctx);
}

bool web_server_busy(const struct web_server *w)
{
	return w->ctx.http_open > w->ctx.sse_streams;
}

size_t web_server_set_auth(struct web_server *w, struct auth *auth)
{
	w->ctx.auth = auth;
	/* REST requests under way keep the table they were admitted with until they end. */
	return sse_auth_changed(&w->ctx);
}

int web_server_reload_tls(struct web_server *w)
{
	const struct config *cfg = w->ctx.cfg;

	if (!*cfg->tls.cert_file)
		return -ENOTSUP;
	if (!w->ctx.ssl_ctx) {
		log_msg(LOG_ERROR, "web", "tls-reload-failed kept=old error=\"no TLS context\"");
		return -ENOTSUP;
	}
	return web_tls_reload(w->ctx.ssl_ctx, cfg->tls.cert_file, cfg->tls.key_file);
}

void web_server_wake(struct web_server *w)
{
	lws_cancel_service(w->ctx.context);
}

void web_server_free(struct web_server *w)
{
	if (!w)
		return;
	if (w->ctx.context) {
		lws_sul_cancel(&w->ctx.sul_tick);
		lws_sul_cancel(&w->ctx.sul_deadlines);
		lws_context_destroy(w->ctx.context);
	}
	if (w->loop)
		ev_loop_destroy(w->loop);
	ratelimit_free(w->ctx.ratelimit);
	free(w->ctx.trusted);
	free(w->static_root);
	free(w);
}
