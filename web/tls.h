/* web/tls.h — the listener's certificate and key, checked before lws is given them. */
#pragma once
#include <openssl/ssl.h>

/**
 * Startup, one thread. 0 when @cert_file holds a PEM certificate (chain) and @key_file an
 * unencrypted PEM private key that belongs to it. Otherwise one error line that names the file
 * and the cause is logged, and -EINVAL or the negative errno of the failed open is returned.
 */
int web_tls_check(const char *cert_file, const char *key_file);

/**
 * Service thread (SIGHUP). Reads @cert_file (the leaf, then its chain) and @key_file, checks
 * them as web_tls_check() does, and makes them what @ssl_ctx presents to new handshakes;
 * connections already open keep theirs. On any error (logged, naming the file) @ssl_ctx is left
 * as it was and a negative errno is returned; a key of another type than the one in use is
 * refused (-EINVAL), as it needs a restart.
 */
int web_tls_reload(SSL_CTX *ssl_ctx, const char *cert_file, const char *key_file);
