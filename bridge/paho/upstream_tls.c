/*
 * bridge/paho/upstream_tls.c — broker TLS for every Paho client, and why a TLS connect failed in
 * words an operator can act on (OpenSSL's reason, an unreadable file, what Paho leaves unsaid).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "upstream_int.h"

/* OpenSSL's error line, "tid:error:code:library:function:reason:file:line:data": its fields. */
enum ssl_field {
	SSL_FIELD_TID,
	SSL_FIELD_ERROR, /* the word "error" */
	SSL_FIELD_CODE,
	SSL_FIELD_LIBRARY,
	SSL_FIELD_FUNCTION,
	SSL_FIELD_REASON,
	SSL_FIELD_FILE,
	SSL_FIELD_LINE,
	SSL_FIELD_DATA,
	SSL_FIELDS,
};
#define SSL_ERROR_WORD "error:"

/* The URL schemes Paho connects with TLS. */
static const char *const tls_schemes[] = {"ssl://", "mqtts://", "wss://"};

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

bool upstream_tls_url(const char *url)
{
	for (size_t i = 0; i < sizeof(tls_schemes) / sizeof(tls_schemes[0]); i++) {
		if (!strncmp(url, tls_schemes[i], strlen(tls_schemes[i])))
			return true;
	}
	return false;
}

/* Paho's thread. "" when @path is unset or readable, else "KEY PATH: why" in @buf. */
static const char *unreadable(const char *key, const char *path, char *buf, size_t cap)
{
	int n;

	if (!path || !*path || access(path, R_OK) == 0)
		return "";
	n = snprintf(buf, cap, "%s %s: %s", key, path, strerror(errno));
	return n < 0 ? "" : buf;
}

/*
 * Paho's thread. Why a connect failed, for the log: a TLS file that cannot be read (OpenSSL's
 * error queue says little about that, and Paho consumes its first entry), else OpenSSL's
 * reason, else Paho's own words. Paho checks the host name itself after the handshake and
 * reports a mismatch, like a refused client certificate, only as a failed connect: for a TLS
 * URL those causes are named beside its words. @buf may hold the result.
 */
const char *upstream_tls_failure(const struct upstream_env *env, const char *tls_error,
				 const char *message, char *buf, size_t cap)
{
	const char *why;
	int n;

	if (!upstream_tls_url(env->url))
		return message ? message : "";
	why = unreadable("broker.ca_file", env->ca_file, buf, cap);
	if (!*why)
		why = unreadable("broker.cert_file", env->cert_file, buf, cap);
	if (!*why)
		why = unreadable("broker.key_file", env->key_file, buf, cap);
	if (*why)
		return why;
	if (tls_error[0])
		return tls_error;
	if (!message)
		return "";
	n = snprintf(buf, cap, "%s (no TLS reason given: broker not reachable, %sor %s)", message,
		     env->verify ? "host name not in its certificate, " : "",
		     nonempty(env->cert_file) ? "client certificate refused"
					      : "a client certificate needed");
	return n < 0 || (size_t)n >= cap ? message : buf;
}

/* Appends @len bytes of @s to the NUL-terminated @dst of @cap bytes, cutting what does not fit. */
static void append(char *dst, size_t cap, const char *s, size_t len)
{
	size_t used = strlen(dst);

	if (used + 1 >= cap)
		return;
	if (len > cap - used - 1)
		len = cap - used - 1;
	memcpy(dst + used, s, len);
	dst[used + len] = 0;
}

static void append_str(char *dst, const char *s)
{
	append(dst, TLS_ERROR_MAX, s, strlen(s));
}

/*
 * Paho's thread, inside its connect processing (see struct upstream). OpenSSL hands over its
 * error queue one line at a time, "tid:error:code:library:function:reason:file:line:data"; the
 * reason and the data (a file name, say) are what an operator needs, so only they are kept.
 */
static int on_tls_error(const char *str, size_t len, void *ctx)
{
	char *tls_error = ctx;
	const char *field[SSL_FIELDS], *end;
	size_t n = 0;

	while (len && (str[len - 1] == '\n' || str[len - 1] == '\r'))
		len--;
	end = str + len;
	field[n++] = str;
	for (const char *p = str; p < end && n < SSL_FIELDS; p++)
		if (*p == ':')
			field[n++] = p + 1;
	if (tls_error[0])
		append_str(tls_error, "; ");
	if (n == SSL_FIELDS &&
	    !strncmp(field[SSL_FIELD_ERROR], SSL_ERROR_WORD, strlen(SSL_ERROR_WORD))) {
		append(tls_error, TLS_ERROR_MAX, field[SSL_FIELD_REASON],
		       (size_t)(field[SSL_FIELD_FILE] - field[SSL_FIELD_REASON] - 1));
		if (field[SSL_FIELD_DATA] < end) {
			append_str(tls_error, " (");
			append(tls_error, TLS_ERROR_MAX, field[SSL_FIELD_DATA],
			       (size_t)(end - field[SSL_FIELD_DATA]));
			append_str(tls_error, ")");
		}
	} else {
		append(tls_error, TLS_ERROR_MAX, str, len);
	}
	return 1; /* the next line too */
}

/*
 * The one place broker TLS is set up, for every client the bridge makes (browser sessions and
 * its own links): broker.ca_file is the trust store (none: the system's), broker.cert_file and
 * key_file the optional client certificate, and broker.verify checks both the chain and that
 * the certificate names the host of the URL.
 */
void upstream_tls_options(const struct upstream_env *env, char *tls_error,
			  MQTTAsync_SSLOptions *ssl)
{
	ssl->trustStore = nonempty(env->ca_file);
	ssl->keyStore = nonempty(env->cert_file);
	ssl->privateKey = nonempty(env->key_file);
	/* Without a password OpenSSL would prompt on the terminal for an encrypted key. */
	ssl->privateKeyPassword = ssl->privateKey ? "" : NULL;
	ssl->enableServerCertAuth = env->verify;
	ssl->verify = env->verify;
	ssl->ssl_error_cb = on_tls_error;
	ssl->ssl_error_context = tls_error;
}
