/* web/metrics.h — GET /metrics: the bridge's counters and gauges as Prometheus text. */
#pragma once

#include "http.h"

/** Service thread. Answers @c, a request on the /metrics mount (GET only). */
void metrics_serve(struct http_conn *c);
