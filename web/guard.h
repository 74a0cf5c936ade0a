/*
 * web/guard.h — who gets in (doc/design.md §4): the connection limit over every kind of
 * connection, the browser Origin allow-list, and the answers given before a request reaches a protocol
 * (a WebSocket upgrade refused with an HTTP status instead of a silent close).
 * All of these run in protocols[0]'s callback (server.c), which lws calls for every connection
 * before it is bound to a mount or upgraded. Service thread.
 */
#pragma once
#include <libwebsockets.h>
#include <stdbool.h>

#include "web.h"

/* Room for a client address as guard_client_addr() writes it. */
#define GUARD_ADDR_MAX 64

/**
 * Service thread, while @wsi's request headers are there. The client's address in @out (@cap
 * bytes) for logs and per-address limits: the peer's, or, when the peer is one of
 * trusted_proxies, the one its X-Forwarded-For / Forwarded headers name (netaddr_client()).
 */
void guard_client_addr(struct web_ctx *ctx, struct lws *wsi, char *out, size_t cap);

/** Pure. Is @origin (a browser's Origin header) in cfg->allowed_origins ("*": any)? */
bool guard_origin_allowed(const struct config *cfg, const char *origin);

/**
 * LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED (once per accepted socket): counts it in
 * ctx->sockets, or, over limits.max_connections, marks it to be refused at its first request.
 */
void guard_accepted(struct web_ctx *ctx, struct lws *wsi);

/** LWS_CALLBACK_WSI_DESTROY (every wsi): uncounts an accepted socket. */
void guard_destroyed(struct web_ctx *ctx, struct lws *wsi);

/**
 * LWS_CALLBACK_FILTER_HTTP_CONNECTION (every HTTP request): 0 lets it through; nonzero when it
 * was answered 503 here (a connection over the limit) and the connection is to be closed.
 */
int guard_http(struct web_ctx *ctx, struct lws *wsi);

/**
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE (@upgrade: what is asked for, e.g. "websocket"): 0 lets the
 * upgrade go on; -1 when it was answered here (404 not /mqtt, 403 origin, 503 over the limit or
 * shutting down) and the connection is to be closed — as lws's return convention wants.
 */
int guard_upgrade(struct web_ctx *ctx, struct lws *wsi, const char *upgrade);
