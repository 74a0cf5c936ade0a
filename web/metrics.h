/* web/metrics.h — GET /metrics: the bridge's counters and gauges as Prometheus text. */
#pragma once

#include "http.h"

/** Service thread. Answers @c, a request on the /metrics mount (GET only). */
void metrics_serve(struct http_conn *c);

/** Service thread. Counts a REST message the broker acknowledged, and its latency from the
 * arrival of @c's request. */
void metrics_rest_published(struct http_conn *c);
