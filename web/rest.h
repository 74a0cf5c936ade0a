/* web/rest.h — the REST handlers (publish, retained topics, request/response) and the routing. */
#pragma once

#include "http.h"

/** Routes an /api/v1 request other than /stream and answers it (now or when the broker has). */
void rest_route(struct http_conn *c);

/** The connection is going away: forget what it waits for. */
void rest_cancel(struct http_conn *c);
