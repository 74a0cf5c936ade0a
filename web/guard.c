/*
 * web/guard.c — the connection limit, the Origin check for upgrades, and early refusals.
 *
 * lws 4.1 tells protocols[0] once about each accepted socket (SERVER_NEW_CLIENT_INSTANTIATED)
 * and once about each wsi going away (WSI_DESTROY, which also comes for the listener and the
 * signal fd). So an accepted socket is tagged through its opaque user pointer, and only tagged
 * ones are uncounted. HTTP_BIND/DROP_PROTOCOL would not do: they come per request on a
 * keep-alive connection, and not at all for a WebSocket.
 *
 * A connection over the limit is still accepted, so that its first request can be answered
 * 503 with a reason rather than reset; it is not counted, and it is closed after that answer.
 */
#include "guard.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "netaddr.h"

/* How long a client refused for load is asked to wait. */
#define RETRY_AFTER_S "5"

bool guard_origin_allowed(const struct config *cfg, const char *origin)
{
	for (size_t i = 0; i < cfg->nallowed_origins; i++) {
		const char *allowed = cfg->allowed_origins[i];
		if (!strcmp(allowed, "*") || !strcmp(allowed, origin))
			return true;
	}
	return false;
}

void guard_client_addr(struct web_ctx *ctx, struct lws *wsi, char *out, size_t cap)
{
	/* As much as lws keeps of a request's headers: a longer chain was cut by lws anyway. */
	char peer[GUARD_ADDR_MAX], xff[4096], fwd[4096];

	lws_get_peer_simple(wsi, peer, sizeof(peer));
	if (!ctx->ntrusted) {
		snprintf(out, cap, "%s", peer);
		return;
	}
	/* A header too long to copy is left out: then the proxy is taken for the client. */
	if (lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) < 0)
		xff[0] = '\0';
	if (lws_hdr_custom_copy(wsi, fwd, sizeof(fwd), "forwarded:", WEB_LITLEN("forwarded:")) < 0)
		fwd[0] = '\0';
	netaddr_client(ctx->trusted, ctx->ntrusted, peer, xff, fwd, out, cap);
}

/* The tags: addresses inside @ctx, so that no other wsi's opaque pointer can equal them. */
static void *tag_counted(struct web_ctx *ctx)
{
	return &ctx->sockets;
}

static void *tag_over(struct web_ctx *ctx)
{
	return &ctx->stats.refused_max_connections;
}

void guard_accepted(struct web_ctx *ctx, struct lws *wsi)
{
	char peer[64];

	if (ctx->sockets >= (size_t)ctx->cfg->limits.max_connections) {
		ctx->stats.refused_max_connections++;
		lws_set_opaque_user_data(wsi, tag_over(ctx));
		lws_get_peer_simple(wsi, peer, sizeof(peer));
		log_msg(LOG_WARN, "web",
			"connection-refused reason=max_connections limit=%ld peer=%s",
			ctx->cfg->limits.max_connections, peer);
		return;
	}
	ctx->sockets++;
	lws_set_opaque_user_data(wsi, tag_counted(ctx));
}

void guard_destroyed(struct web_ctx *ctx, struct lws *wsi)
{
	if (lws_get_opaque_user_data(wsi) != tag_counted(ctx))
		return;
	lws_set_opaque_user_data(wsi, NULL);
	ctx->sockets--;
}

/*
 * Writes a whole JSON error answer now, before any protocol owns the connection (lws's own
 * lws_return_http_status() writes the same way at this stage), and asks for the connection to
 * close: the request may have a body nobody will read. Nonzero when it could not be written.
 */
static int refuse(struct lws *wsi, unsigned status, const char *code, const char *message,
		  const char *retry_after)
{
	uint8_t buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf);
	char body[384], length[16];
	int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
			 code, message);
	int m;

	if (n < 0 || (size_t)n >= sizeof(body))
		return -1;
	m = snprintf(length, sizeof(length), "%d", n);
	if (lws_add_http_header_status(wsi, status, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)"application/json", 16, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (const unsigned char *)length, m, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					 5, &p, end) ||
	    (retry_after && lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
							(const unsigned char *)retry_after,
							(int)strlen(retry_after), &p, end)) ||
	    lws_finalize_http_header(wsi, &p, end))
		return -1;
	if (n > end - p)
		return -1;
	memcpy(p, body, (size_t)n);
	p += n;
	m = (int)(p - start);
	/* A short write leaves the rest buffered: lws sends it before it closes. */
	return lws_write(wsi, start, (size_t)m, LWS_WRITE_HTTP) < 0 ? -1 : 0;
}

static bool over_limit(struct web_ctx *ctx, struct lws *wsi)
{
	return lws_get_opaque_user_data(lws_get_network_wsi(wsi)) == tag_over(ctx);
}

int guard_http(struct web_ctx *ctx, struct lws *wsi)
{
	if (!over_limit(ctx, wsi))
		return 0;
	refuse(wsi, 503, "too_many_connections",
	       "the bridge has as many connections as it takes; try again later", RETRY_AFTER_S);
	return 1;
}

int guard_upgrade(struct web_ctx *ctx, struct lws *wsi, const char *upgrade)
{
	char uri[64], origin[256], peer[GUARD_ADDR_MAX], quoted[300];
	int n;

	if (over_limit(ctx, wsi) || ctx->shutting_down) {
		refuse(wsi, 503, ctx->shutting_down ? "shutting_down" : "too_many_connections",
		       "the bridge takes no more connections now; try again later", RETRY_AFTER_S);
		return -1;
	}
	/* Only a WebSocket leads to /mqtt; requests over h2c are judged one by one, as over h1. */
	if (strcmp(upgrade, "websocket"))
		return 0;
	n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
	if (n < 0 || strcmp(uri, "/mqtt")) {
		log_msg(LOG_INFO, "ws", "upgrade-refused reason=path");
		refuse(wsi, 404, "not_found", "WebSocket connections are served at /mqtt", NULL);
		return -1;
	}
	/* Cross-site WebSocket hijacking: a page of another site must not use the browser's
	 * connection here. A client that is not a browser sends no Origin, and is let in. */
	n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	if (n != 0 && (n < 0 || !guard_origin_allowed(ctx->cfg, origin))) {
		ctx->stats.refused_upgrade_origin++;
		guard_client_addr(ctx, wsi, peer, sizeof(peer));
		log_msg(LOG_INFO, "ws", "upgrade-refused reason=origin origin=%s peer=%s",
			log_quote(quoted, sizeof(quoted), origin, n > 0 ? (size_t)n : 0), peer);
		refuse(wsi, 403, "origin_not_allowed",
		       "WebSocket connections from this origin are not allowed", NULL);
		return -1;
	}
	return 0;
}
