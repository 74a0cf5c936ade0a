/* web/status.h — GET /api/v1/health, /info and /whoami. Service thread. */
#pragma once

#include "http.h"

/** The broker link, the connections and the uptime: 200, or 503 while the broker is down. */
void status_health(struct http_conn *c);

/** What a page needs before it connects: version, auth mode, broker state, features. */
void status_info(struct http_conn *c);

/** The token the request carries and its ACL; all null without tokens. */
void status_whoami(struct http_conn *c);
