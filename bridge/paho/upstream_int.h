/*
 * bridge/paho/upstream_int.h — what upstream.c, upstream_props.c, upstream_sub.c and upstream_tls.c
 * share; for no other module.
 */
#pragma once
#include <MQTTAsync.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "upstream.h"

/* Enough for two or three OpenSSL reasons with a file name. */
#define TLS_ERROR_MAX 256

struct upstream {
	MQTTAsync client;
	const struct upstream_env *env;
	int version;
	atomic_int refs;
	atomic_size_t backlog;  /* bytes of MESSAGE events not yet dispatched */
	atomic_size_t dropped;  /* QoS 0 messages dropped for backlog */
	atomic_bool connecting; /* counted in the waker until Paho answers the connect */
	/*
	 * Why the TLS setup failed, in OpenSSL's words. Written and read only inside Paho's connect
	 * processing, which runs under Paho's global mutex; copied into the connect-failed event.
	 */
	char tls_error[TLS_ERROR_MAX];
	/* Service thread only. */
	upstream_handler handler;
	void *owner;
};

/* upstream.c */

/** Any thread. Drops a reference to @u; the last one frees it. */
void upstream_release(struct upstream *u);

/** Any thread. Pushes the UPSTREAM_DONE event of request @token (copies @props and @codes). */
void upstream_push_done(struct upstream *u, int token, bool failed, uint8_t code,
			const MQTTProperties *props, const uint8_t *codes, size_t ncodes);

/* upstream_props.c: MQTT 5 property bytes to and from Paho's MQTTProperties. Pure. */

/** Serialises Paho properties as MQTT property bytes; Topic Alias is the link's own business. */
int upstream_props_from_paho(const MQTTProperties *in, struct buf *out);

/**
 * Fills Paho properties from validated property bytes, leaving out the identifiers in @drop.
 * 0 or -ENOMEM; on error the caller still frees @out.
 */
int upstream_props_to_paho(struct mqtt_bytes in, const uint8_t *drop, size_t ndrop,
			   MQTTProperties *out);

/* upstream_tls.c: broker TLS settings and why a TLS connect failed. */

/** Does @url ask for TLS? */
bool upstream_tls_url(const char *url);

/**
 * Fills @ssl from @env. OpenSSL's error lines during a connect are appended, shortened, to
 * @tls_error (TLS_ERROR_MAX bytes, NUL-terminated), on Paho's thread inside its connect
 * processing.
 */
void upstream_tls_options(const struct upstream_env *env, char *tls_error,
			  MQTTAsync_SSLOptions *ssl);

/**
 * Paho's thread. Why a connect failed, for the log: for a TLS URL a TLS file that cannot be read,
 * else @tls_error, else Paho's @message with the causes it does not name; else @message. @buf
 * may hold the result.
 */
const char *upstream_tls_failure(const struct upstream_env *env, const char *tls_error,
				 const char *message, char *buf, size_t cap);
