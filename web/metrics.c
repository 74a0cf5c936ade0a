/*
 * web/metrics.c — GET /metrics in the Prometheus text format (version 0.0.4). One table lists
 * every family with its help, its type and its samples (labels and a getter), read from one
 * snapshot of the hub's, the sessions' and the web side's counters, so that a new metric is one
 * row and the families come out in the table's order. Service thread.
 */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>

#include "buf.h"
#include "hub.h"
#include "session.h"

/* Room for one "# HELP ... # TYPE ..." block and for one sample line. */
#define HEADER_LINE_MAX 512
#define SAMPLE_LINE_MAX 256
/* Samples of a family with a fixed list of them; a histogram writes its own. */
#define FAMILY_SAMPLES_MAX 5
/* mwb_http_responses_total: the status classes 2xx to 5xx. */
#define STATUS_CLASS_FIRST 2
#define STATUS_CLASS_LAST  5

const double web_latency_bounds[WEB_LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
							0.05,  0.1,    0.25,  0.5,  1.0};

void metrics_rest_published(struct http_conn *c)
{
	struct web_stats *st = &c->ctx->stats;
	double s = (double)(lws_now_usecs() - c->started) / LWS_US_PER_SEC;
	int i = 0;

	while (i < WEB_LATENCY_BUCKETS && s > web_latency_bounds[i])
		i++;
	st->latency_count[i]++;
	st->latency_sum += s;
	st->rest_published++;
}

struct snap {
	const struct web_ctx *ctx;
	const struct web_stats *ws;
	struct hub_stats hs;
	struct sessions_stats ss;
};

typedef double (*getter)(const struct snap *s);

struct sample {
	const char *labels; /* inside the braces; NULL: none */
	getter get;         /* NULL ends the family's list */
};

struct family {
	const char *name;
	const char *type;
	const char *help;
	struct sample samples[FAMILY_SAMPLES_MAX];
	/* Instead of samples[], for a family whose samples are not a fixed list. */
	int (*write)(struct buf *b, const struct family *f, const struct snap *s);
};

#define GETTER(fn, expr)                                                                           \
	static double fn(const struct snap *s)                                                     \
	{                                                                                          \
		return (double)(expr);                                                             \
	}

GETTER(broker_connected, s->hs.connected)
GETTER(broker_reconnects, s->hs.reconnects)
GETTER(broker_protocol_level, s->hs.mqtt_version)
GETTER(props_dropped, s->hs.props_dropped + s->ss.props_dropped)
GETTER(connections_mqtt, s->ctx->connections)
GETTER(connections_sse, s->ctx->sse_streams)
GETTER(connections_http, s->ctx->http_open - s->ctx->sse_streams)
GETTER(sessions_shared, s->ss.sessions_shared)
GETTER(sessions_dedicated, s->ss.sessions_dedicated)
GETTER(sessions_connecting,
       s->ss.sessions_active - s->ss.sessions_shared - s->ss.sessions_dedicated)
GETTER(hub_filters, s->hs.filters)
GETTER(hub_members, s->hs.members)
GETTER(hub_subscribers, s->hs.subscribers)
GETTER(shared_fanout, s->hs.mqtt_deliveries)
GETTER(shared_held, s->ss.shared_held)
GETTER(stored_sessions, s->ss.stored_sessions)
GETTER(to_browser, s->ss.messages_to_browser)
GETTER(from_browser, s->ss.messages_from_browser)
GETTER(to_hub, s->hs.messages_in)
GETTER(rest_published, s->ws->rest_published)
GETTER(sse_events, s->ws->sse_events)
GETTER(bytes_from_browser, s->ss.bytes_from_browser)
GETTER(bytes_to_browser, s->ss.bytes_to_browser)
GETTER(qos0_dropped, s->ss.qos0_dropped)
GETTER(qos0_upstream_dropped, s->ss.qos0_upstream_dropped)
GETTER(sse_dropped, s->ws->sse_dropped)
GETTER(qos12_lost, s->ss.qos12_lost)
GETTER(protocol_errors, s->ss.protocol_errors)
GETTER(slow_disconnects, s->ss.slow_disconnects)
GETTER(sse_cut_off, s->ws->sse_cut_off)
GETTER(ws_connect_timeouts, s->ws->ws_connect_timeouts)
GETTER(ws_keepalive_timeouts, s->ws->ws_keepalive_timeouts)
GETTER(denied_publish, s->ss.denied_publish)
GETTER(denied_subscribe, s->ss.denied_subscribe)
GETTER(quota_refused, s->ss.quota_refused)
GETTER(sockets, s->ctx->sockets)
GETTER(refused_max_connections, s->ws->refused_max_connections)
GETTER(refused_upgrade_origin, s->ws->refused_upgrade_origin)
GETTER(refused_unauthorized, s->ws->refused_unauthorized)
GETTER(refused_forbidden, s->ws->refused_forbidden)
GETTER(refused_http_origin, s->ws->refused_http_origin)
GETTER(refused_rate_limited, s->ws->refused_rate_limited)
GETTER(http_requests, s->ws->http_requests)

static int header(struct buf *b, const struct family *f)
{
	char line[HEADER_LINE_MAX];
	int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
			 f->name, f->type);

	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENOBUFS;
	return buf_append(b, line, (size_t)n);
}

static int sample(struct buf *b, const char *name, const char *labels, double value)
{
	char line[SAMPLE_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%s%s%s%s %.17g\n", name, labels ? "{" : "",
			 labels ? labels : "", labels ? "}" : "", value);

	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENOBUFS;
	return buf_append(b, line, (size_t)n);
}

static int write_status_classes(struct buf *b, const struct family *f, const struct snap *s)
{
	char label[16];
	int rc = 0;

	for (int i = STATUS_CLASS_FIRST; i <= STATUS_CLASS_LAST; i++) {
		snprintf(label, sizeof(label), "code=\"%dxx\"", i);
		rc |= sample(b, f->name, label, (double)s->ws->http_responses[i]);
	}
	return rc;
}

static int write_latency(struct buf *b, const struct family *f, const struct snap *s)
{
	char name[SAMPLE_LINE_MAX / 2], label[32];
	uint64_t cumulative = 0;
	int rc = 0;

	snprintf(name, sizeof(name), "%s_bucket", f->name);
	for (int i = 0; i <= WEB_LATENCY_BUCKETS; i++) {
		cumulative += s->ws->latency_count[i];
		if (i < WEB_LATENCY_BUCKETS)
			snprintf(label, sizeof(label), "le=\"%g\"", web_latency_bounds[i]);
		else
			snprintf(label, sizeof(label), "le=\"+Inf\"");
		rc |= sample(b, name, label, (double)cumulative);
	}
	snprintf(name, sizeof(name), "%s_sum", f->name);
	rc |= sample(b, name, NULL, s->ws->latency_sum);
	snprintf(name, sizeof(name), "%s_count", f->name);
	rc |= sample(b, name, NULL, (double)cumulative);
	return rc;
}

static const struct family families[] = {
    {"mwb_broker_connected",
     "gauge",
     "1 when the bridge's own broker link is up.",
     {{NULL, broker_connected}}},
    {"mwb_broker_reconnects_total",
     "counter",
     "Times the broker link came back.",
     {{NULL, broker_reconnects}}},
    {"mwb_broker_protocol_level",
     "gauge",
     "MQTT protocol level of the broker link: 5, 4 (3.1.1) or 3 (3.1); 0 while down.",
     {{NULL, broker_protocol_level}}},
    {"mwb_broker_properties_dropped_total",
     "counter",
     "Packets whose MQTT 5 properties a 3.1.x broker client could not carry.",
     {{NULL, props_dropped}}},
    {"mwb_connections",
     "gauge",
     "Open connections by kind.",
     {{"kind=\"mqtt\"", connections_mqtt},
      {"kind=\"sse\"", connections_sse},
      {"kind=\"http\"", connections_http}}},
    {"mwb_sessions",
     "gauge",
     "MQTT sessions alive by mode: shared (served from the hub), dedicated (their own broker "
     "client, connecting or connected), connecting (no mode yet: waiting for CONNECT, or for "
     "the hub).",
     {{"mode=\"shared\"", sessions_shared},
      {"mode=\"dedicated\"", sessions_dedicated},
      {"mode=\"connecting\"", sessions_connecting}}},
    {"mwb_hub_filters",
     "gauge",
     "Distinct filters the hub has subscribed at the broker (SSE streams and shared sessions "
     "together).",
     {{NULL, hub_filters}}},
    {"mwb_hub_subscriptions",
     "gauge",
     "Local subscriptions on the hub's filters, by kind.",
     {{"kind=\"mqtt\"", hub_members}, {"kind=\"sse\"", hub_subscribers}}},
    {"mwb_shared_fanout_total",
     "counter",
     "Messages the hub handed to shared sessions (message x browser).",
     {{NULL, shared_fanout}}},
    {"mwb_shared_held_total",
     "counter",
     "Live messages to shared browsers that waited for their SUBACK or retained ones.",
     {{NULL, shared_held}}},
    {"mwb_stored_sessions",
     "gauge",
     "Persistent sessions whose unacknowledged messages the bridge keeps.",
     {{NULL, stored_sessions}}},
    {"mwb_messages_total",
     "counter",
     "Messages by path.",
     {{"path=\"broker_to_browser\"", to_browser},
      {"path=\"browser_to_broker\"", from_browser},
      {"path=\"broker_to_hub\"", to_hub},
      {"path=\"rest_to_broker\"", rest_published},
      {"path=\"hub_to_sse\"", sse_events}}},
    {"mwb_bytes_total",
     "counter",
     "Bytes of MQTT packets by direction.",
     {{"path=\"browser_to_bridge\"", bytes_from_browser},
      {"path=\"bridge_to_browser\"", bytes_to_browser}}},
    {"mwb_dropped_total",
     "counter",
     "Messages dropped, by reason.",
     {{"reason=\"slow_browser_qos0\"", qos0_dropped},
      {"reason=\"broker_link_busy_qos0\"", qos0_upstream_dropped},
      {"reason=\"slow_sse\"", sse_dropped},
      {"reason=\"session_store\"", qos12_lost}}},
    {"mwb_disconnects_total",
     "counter",
     "Connections the bridge ended, by reason.",
     {{"reason=\"protocol_error\"", protocol_errors},
      {"reason=\"slow_browser\"", slow_disconnects},
      {"reason=\"slow_sse\"", sse_cut_off},
      {"reason=\"connect_timeout\"", ws_connect_timeouts},
      {"reason=\"keepalive_timeout\"", ws_keepalive_timeouts}}},
    {"mwb_mqtt_denied_total",
     "counter",
     "MQTT over WebSocket: PUBLISHes and filters the bridge refused, by reason.",
     {{"kind=\"publish\"", denied_publish},
      {"kind=\"subscribe\"", denied_subscribe},
      {"kind=\"subscription_quota\"", quota_refused}}},
    {"mwb_sockets",
     "gauge",
     "Accepted connections of every kind open (limits.max_connections counts these).",
     {{NULL, sockets}}},
    {"mwb_connections_refused_total",
     "counter",
     "Connections and WebSocket upgrades refused before any request, by reason.",
     {{"reason=\"max_connections\"", refused_max_connections},
      {"reason=\"origin\"", refused_upgrade_origin}}},
    {"mwb_http_refused_total",
     "counter",
     "API requests refused by access control, by reason (401, 403, 429).",
     {{"reason=\"unauthorized\"", refused_unauthorized},
      {"reason=\"forbidden\"", refused_forbidden},
      {"reason=\"origin\"", refused_http_origin},
      {"reason=\"rate_limited\"", refused_rate_limited}}},
    {"mwb_http_requests_total", "counter", "API requests.", {{NULL, http_requests}}},
    {"mwb_http_responses_total",
     "counter",
     "API answers by status class.",
     {{NULL, NULL}},
     write_status_classes},
    {"mwb_publish_latency_seconds",
     "histogram",
     "From a REST publish's arrival to the broker's acknowledgement.",
     {{NULL, NULL}},
     write_latency},
};

static int write_family(struct buf *b, const struct family *f, const struct snap *s)
{
	int rc = header(b, f);

	if (f->write)
		return rc | f->write(b, f, s);
	for (size_t i = 0; i < FAMILY_SAMPLES_MAX && f->samples[i].get; i++)
		rc |= sample(b, f->name, f->samples[i].labels, f->samples[i].get(s));
	return rc;
}

void metrics_serve(struct http_conn *c)
{
	struct snap s = {.ctx = c->ctx, .ws = &c->ctx->stats};
	struct buf b = BUF_INIT;
	int rc = 0;

	if (c->method != HTTP_GET) {
		http_header(c, "allow:", "GET");
		http_error(c, 405, "method_not_allowed", "use GET");
		return;
	}
	hub_get_stats(c->ctx->deps.hub, &s.hs);
	sessions_get_stats(c->ctx->deps.sessions, &s.ss);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		rc |= write_family(&b, &families[i], &s);
	if (rc)
		http_error(c, 500, "internal", "out of memory");
	else
		http_respond(c, 200, "text/plain; version=0.0.4", b.data, b.len);
	buf_clear(&b);
}
