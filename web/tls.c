/*
 * web/tls.c — checks the listener's certificate and key at startup.
 *
 * lws 4.1 does not refuse a vhost whose certificate file is missing: it starts without one
 * (waiting for it to appear, as with ACME) and every handshake then fails. Its errors for a bad
 * key do not say which file is at fault, and OpenSSL would prompt on the terminal for the
 * passphrase of an encrypted key. So the files are read here first, with the same OpenSSL that
 * lws uses, and a bad one stops the startup with a line that names it.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log.h"

/* Quoted-value buffers: a path or an OpenSSL reason, cut when longer. */
#define QUOTED_MAX 512

/* A daemon has nobody to type a passphrase: reading an encrypted key fails instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* @what, and OpenSSL's reason when it gave one (its reasons alone, "unsupported" say, are
 * too terse to act on). */
static const char *explain(char *buf, size_t cap, const char *what)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());
	int n = snprintf(buf, cap, "%s%s%s%s", what, r ? " (OpenSSL: " : "", r ? r : "",
			 r ? ")" : "");

	return n < 0 || (size_t)n >= cap ? what : buf;
}

static void log_bad(const char *event, const char *key, const char *path, const char *why)
{
	char qpath[QUOTED_MAX], qwhy[QUOTED_MAX];

	log_msg(LOG_ERROR, "web", "%s key=%s file=%s error=%s", event, key,
		log_quote(qpath, sizeof(qpath), path, strlen(path)),
		log_quote(qwhy, sizeof(qwhy), why, strlen(why)));
}

/* NULL (logged) when @path cannot be opened for reading; *@err is the negative errno. */
static FILE *open_file(const char *key, const char *path, int *err)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		*err = -errno;
		log_bad("tls-file-unreadable", key, path, strerror(errno));
	}
	return f;
}

int web_tls_check(const char *cert_file, const char *key_file)
{
	char qcert[QUOTED_MAX], qkey[QUOTED_MAX], why[QUOTED_MAX];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	FILE *f;
	int rc = -EINVAL;

	ERR_clear_error();
	f = open_file("tls.cert_file", cert_file, &rc);
	if (!f)
		goto out;
	cert = PEM_read_X509(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!cert) {
		log_bad("tls-cert-invalid", "tls.cert_file", cert_file,
			explain(why, sizeof(why), "no PEM certificate in the file"));
		goto out;
	}
	f = open_file("tls.key_file", key_file, &rc);
	if (!f)
		goto out;
	key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!key) {
		/* An encrypted key fails here too: say so, the OpenSSL reason alone would not. */
		log_bad("tls-key-invalid", "tls.key_file", key_file,
			explain(why, sizeof(why),
				"no unencrypted PEM private key in the file"));
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		log_msg(LOG_ERROR, "web", "tls-key-mismatch key=tls.key_file file=%s cert_file=%s "
					  "error=\"the key does not belong to the certificate\"",
			log_quote(qkey, sizeof(qkey), key_file, strlen(key_file)),
			log_quote(qcert, sizeof(qcert), cert_file, strlen(cert_file)));
		goto out;
	}
	/* Expired is not fatal (the operator may be renewing it) but clients will refuse it. */
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
		log_msg(LOG_WARN, "web", "tls-cert-expired key=tls.cert_file file=%s",
			log_quote(qcert, sizeof(qcert), cert_file, strlen(cert_file)));
	rc = 0;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}
