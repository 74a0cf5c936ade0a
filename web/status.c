/*
 * web/status.c — what the bridge tells about itself: /health for load balancers and monitors,
 * /info for a page (open to all: it says whether the page must sign in), /whoami for the
 * token a request carries. Service thread.
 */
#include "status.h"

#include <jansson.h>

#include "clock.h"
#include "codec.h"
#include "version.h"

/* ---- health ---- */

void status_health(struct http_conn *c)
{
	struct web_ctx *ctx = c->ctx;
	struct sessions_stats ss;
	struct hub_stats hs;
	bool up;

	hub_get_stats(ctx->deps.hub, &hs);
	sessions_get_stats(ctx->deps.sessions, &ss);
	up = hs.connected;
	if (!up)
		http_header(c, "retry-after:", "5");
	http_json(c, up ? 200 : 503,
		  json_pack("{s:s,s:s,s:{s:b,s:s,s:s?,s:I},s:{s:b},s:I,s:{s:I,s:I,s:I},s:I}",
			    "status", up ? "ok" : "unavailable", "version", MWB_VERSION, "broker",
			    "connected", up, "url", ctx->cfg->broker.url, "mqtt_version",
			    up ? codec_version_name(hs.mqtt_version) : NULL, "reconnects",
			    (json_int_t)hs.reconnects, "retained_reader", "connected",
			    retained_connected(ctx->deps.retained), "uptime_s",
			    (json_int_t)((clock_mono_ms() - ctx->deps.started_ms) / 1000),
			    "connections", "mqtt", (json_int_t)ctx->connections, "sse",
			    (json_int_t)ctx->sse_streams, "http",
			    (json_int_t)(ctx->http_open - ctx->sse_streams), "sessions",
			    (json_int_t)ss.sessions_active));
}

/* ---- what a page needs to know: /info (open to all), /whoami ---- */

void status_info(struct http_conn *c)
{
	struct web_ctx *ctx = c->ctx;
	struct hub_stats hs;

	hub_get_stats(ctx->deps.hub, &hs);
	http_json(c, 200,
		  json_pack("{s:s,s:{s:s,s:s},s:{s:b,s:s?},s:{s:b}}", "version", MWB_VERSION,
			    "auth", "mode", ctx->auth->enabled ? "tokens" : "none",
			    "mqtt_credentials",
			    ctx->cfg->mqtt_credentials == CREDENTIALS_BRIDGE ? "bridge"
									     : "passthrough",
			    "broker", "connected", hs.connected, "mqtt_version",
			    hs.connected ? codec_version_name(hs.mqtt_version) : NULL, "features",
			    "request_response", hs.connected && hub_can_request(ctx->deps.hub)));
}

static json_t *filter_list(char *const *filters, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < n; i++)
		json_array_append_new(list, json_string(filters[i]));
	return list;
}

/* The token the request carries and its ACL; all null without tokens. */
void status_whoami(struct http_conn *c)
{
	const struct auth_token *t = c->token;

	http_json(c, 200,
		  json_pack("{s:s?,s:o?,s:o?}", "token", t ? t->name : NULL, "publish",
			    t ? filter_list(t->publish, t->npublish) : NULL, "subscribe",
			    t ? filter_list(t->subscribe, t->nsubscribe) : NULL));
}
