/* web/tls.h — the listener's certificate and key, checked before lws is given them. */
#pragma once

/**
 * Startup, one thread. 0 when @cert_file holds a PEM certificate (chain) and @key_file an
 * unencrypted PEM private key that belongs to it. Otherwise one error line that names the file
 * and the cause is logged, and -EINVAL or the negative errno of the failed open is returned.
 */
int web_tls_check(const char *cert_file, const char *key_file);
