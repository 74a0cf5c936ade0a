/* web/static.h — the browser files, with validators, caching and security headers. */
#pragma once
#include <libwebsockets.h>

/** The protocol behind the "/" mount (protocols[] entry). */
struct lws_protocols web_static_protocol(void);
