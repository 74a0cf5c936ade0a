/* web/web.h — what the web/ modules share: one per server, the lws context's user pointer. */
#pragma once
#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "server.h"
#include "session.h"

struct web_ctx {
	const struct config *cfg;
	struct sessions *sessions;
	struct web_hooks hooks;
	struct lws_context *context;
	struct lws_vhost *vhost;
	lws_sorted_usec_list_t sul_tick;
	size_t connections; /* WebSocket connections open */
	bool shutting_down;
};

/** Service thread. The web context of @wsi's server. */
static inline struct web_ctx *web_ctx_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}
