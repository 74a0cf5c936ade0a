/* web/ws.h — the MQTT over WebSocket endpoint "/mqtt" (subprotocols mqtt and mqttv3.1). */
#pragma once
#include <libwebsockets.h>

/** Startup. The protocol entry for subprotocol @name (a string that outlives the server). */
struct lws_protocols web_ws_protocol(const char *name);
