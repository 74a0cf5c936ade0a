/*
 * web/tls.c — checks the listener's certificate and key at startup, and loads new ones into the
 * running listener on SIGHUP.
 *
 * lws 4.1 does not refuse a vhost whose certificate file is missing: it starts without one
 * (waiting for it to appear, as with ACME) and every handshake then fails. Its errors for a bad
 * key do not say which file is at fault, and OpenSSL would prompt on the terminal for the
 * passphrase of an encrypted key. So the files are read here first, with the same OpenSSL that
 * lws uses, and a bad one stops the startup with a line that names it.
 */
#include "tls.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
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
	int n =
	    snprintf(buf, cap, "%s%s%s%s", what, r ? " (OpenSSL: " : "", r ? r : "", r ? ")" : "");

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

/* What one pair of files holds, checked: the leaf, its key, and the chain after the leaf. */
struct pair {
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain; /* NULL unless asked for */
};

static void pair_clear(struct pair *p)
{
	X509_free(p->cert);
	EVP_PKEY_free(p->key);
	sk_X509_pop_free(p->chain, X509_free);
	memset(p, 0, sizeof(*p));
}

/* The certificates after the leaf, up to the end of the file. -EINVAL (logged): not PEM. */
static int read_chain(FILE *f, const char *cert_file, STACK_OF(X509) * *out)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	char why[QUOTED_MAX];
	X509 *x;

	if (!chain)
		return -ENOMEM;
	while ((x = PEM_read_X509(f, NULL, no_passphrase, NULL))) {
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			sk_X509_pop_free(chain, X509_free);
			return -ENOMEM;
		}
	}
	/* The end of the file reads as "no start line"; anything else is a broken certificate. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		log_bad("tls-cert-invalid", "tls.cert_file", cert_file,
			explain(why, sizeof(why),
				"a chain certificate after the first is not PEM"));
		sk_X509_pop_free(chain, X509_free);
		return -EINVAL;
	}
	ERR_clear_error();
	*out = chain;
	return 0;
}

/* Reads and checks the pair into *@out (the caller's to clear); the chain when @want_chain. */
static int load_pair(const char *cert_file, const char *key_file, bool want_chain, struct pair *out)
{
	char qcert[QUOTED_MAX], qkey[QUOTED_MAX], why[QUOTED_MAX];
	struct pair p = {NULL, NULL, NULL};
	FILE *f;
	int rc = -EINVAL;

	ERR_clear_error();
	f = open_file("tls.cert_file", cert_file, &rc);
	if (!f)
		goto fail;
	p.cert = PEM_read_X509(f, NULL, no_passphrase, NULL);
	if (!p.cert) {
		fclose(f);
		log_bad("tls-cert-invalid", "tls.cert_file", cert_file,
			explain(why, sizeof(why), "no PEM certificate in the file"));
		goto fail;
	}
	rc = want_chain ? read_chain(f, cert_file, &p.chain) : 0;
	fclose(f);
	if (rc)
		goto fail;
	rc = -EINVAL;
	f = open_file("tls.key_file", key_file, &rc);
	if (!f)
		goto fail;
	p.key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!p.key) {
		/* An encrypted key fails here too: say so, the OpenSSL reason alone would not. */
		log_bad("tls-key-invalid", "tls.key_file", key_file,
			explain(why, sizeof(why), "no unencrypted PEM private key in the file"));
		goto fail;
	}
	if (X509_check_private_key(p.cert, p.key) != 1) {
		log_msg(LOG_ERROR, "web",
			"tls-key-mismatch key=tls.key_file file=%s cert_file=%s "
			"error=\"the key does not belong to the certificate\"",
			log_quote(qkey, sizeof(qkey), key_file, strlen(key_file)),
			log_quote(qcert, sizeof(qcert), cert_file, strlen(cert_file)));
		goto fail;
	}
	/* Expired is not fatal (the operator may be renewing it) but clients will refuse it. */
	if (X509_cmp_current_time(X509_get0_notAfter(p.cert)) < 0)
		log_msg(LOG_WARN, "web", "tls-cert-expired key=tls.cert_file file=%s",
			log_quote(qcert, sizeof(qcert), cert_file, strlen(cert_file)));
	ERR_clear_error();
	*out = p;
	return 0;
fail:
	pair_clear(&p);
	ERR_clear_error();
	return rc;
}

int web_tls_check(const char *cert_file, const char *key_file)
{
	struct pair p;
	int rc = load_pair(cert_file, key_file, false, &p);

	if (!rc)
		pair_clear(&p);
	return rc;
}

/* The serial number in hex, for the log line that says which certificate is now served. */
static void serial_hex(X509 *cert, char *out, size_t cap)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, cap, "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

int web_tls_reload(SSL_CTX *ssl_ctx, const char *cert_file, const char *key_file)
{
	EVP_PKEY *old_key = SSL_CTX_get0_privatekey(ssl_ctx);
	char qcert[QUOTED_MAX], serial[128];
	struct pair p;
	int rc = load_pair(cert_file, key_file, true, &p);

	if (rc)
		return rc;
	/*
	 * OpenSSL keeps one certificate per key type in an SSL_CTX and picks among them per
	 * handshake: a new RSA pair would sit beside the old ECDSA one, which clients preferring
	 * ECDSA would still be shown. No call removes the old one, so that change needs a restart.
	 */
	if (old_key && EVP_PKEY_base_id(old_key) != EVP_PKEY_base_id(p.key)) {
		log_msg(LOG_ERROR, "web",
			"tls-reload-failed kept=old file=%s error=\"the new key is of another "
			"type (RSA, EC, ...): restart to change it\"",
			log_quote(qcert, sizeof(qcert), cert_file, strlen(cert_file)));
		rc = -EINVAL;
		goto out;
	}
	/* All three at once, the pair checked again: no handshake sees half a change. Each
	 * connection copied the old pair when it began, and keeps it. */
	if (SSL_CTX_use_cert_and_key(ssl_ctx, p.cert, p.key, p.chain, 1) != 1) {
		char why[QUOTED_MAX];
		log_bad("tls-reload-failed", "tls.cert_file", cert_file,
			explain(why, sizeof(why), "OpenSSL refused the pair"));
		ERR_clear_error();
		rc = -EINVAL;
		goto out;
	}
	serial_hex(p.cert, serial, sizeof(serial));
	log_msg(LOG_INFO, "web", "tls-reloaded file=%s serial=%s chain=%d",
		log_quote(qcert, sizeof(qcert), cert_file, strlen(cert_file)), serial,
		sk_X509_num(p.chain));
out:
	pair_clear(&p);
	return rc;
}
