/*
 * bridge/config_check.c — what spans keys, once every source (file, command line) is applied:
 * the broker URL's user info moved into broker.username and broker.password, the URL's form, and
 * keys that go together.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* A percent-escape: '%' and two hex digits. */
#define ESCAPE_LEN 3
/* Room for broker.url as a message shows it; a longer one is cut. */
#define URL_SHOWN_SIZE 256

/*
 * Percent-decodes (RFC 3986) the @len bytes at @s, the @what ("user name", "password") of
 * broker.url's user info, into a new string in *@out. A '%' without two hex digits, and %00,
 * are refused; the message never quotes the text.
 */
static int decode_userinfo(const char *s, size_t len, const char *what, char **out, char *err,
			   size_t errlen)
{
	char *d = malloc(len + 1);
	size_t o = 0;
	int rc = 0;

	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < len && !rc; i++) {
		int hi = len - i >= ESCAPE_LEN ? config_hexval(s[i + 1]) : -1;
		int lo = len - i >= ESCAPE_LEN ? config_hexval(s[i + 2]) : -1;

		if (s[i] != '%') {
			d[o++] = s[i];
			continue;
		}
		if (hi < 0 || lo < 0)
			rc = config_fail(
			    err, errlen,
			    "'broker.url': the %s in the user info has a '%%' that does not "
			    "start an escape %%XX (write '%%' itself as %%25)",
			    what);
		else if (hi == 0 && lo == 0)
			rc = config_fail(
			    err, errlen,
			    "'broker.url': the %s in the user info holds %%00 (NUL), which "
			    "cannot be sent",
			    what);
		else
			d[o++] = (char)(hi << 4 | lo);
		i += ESCAPE_LEN - 1;
	}
	if (rc) {
		explicit_bzero(d, len + 1);
		free(d);
		return rc;
	}
	d[o] = '\0';
	*out = d;
	return 0;
}

/* Frees a string that held a secret, clearing it first. */
static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/*
 * "scheme://user:password@host..." → broker.username "user", broker.password "password"
 * (percent-decoded) and broker.url "scheme://host...", which is all that Paho, the log, health
 * and --check ever see. The user info ends at the first '@' of the authority (before the first
 * '/', '?' or '#'), so an '@' in a path or query is not one; "user@host" gives a user name only,
 * ":password@host" a password only. Credentials in two places are refused rather than one
 * silently winning.
 */
/* broker.url holds credentials, and broker.username or broker.password is set too. */
static int credentials_twice(const struct config *cfg, char *err, size_t errlen)
{
	const char *keys_set = "'broker.username' and 'broker.password' are";

	if (!*cfg->broker.password)
		keys_set = "'broker.username' is";
	else if (!*cfg->broker.username)
		keys_set = "'broker.password' is";
	return config_fail(err, errlen,
			   "'broker.url' holds credentials (user info before '@') and %s set too: "
			   "give them in one place only",
			   keys_set);
}

static int split_userinfo(struct config *cfg, char *err, size_t errlen)
{
	const char *url = cfg->broker.url, *auth = strstr(url, CONFIG_SCHEME_SEP), *at, *colon;
	char *user = NULL, *pass = NULL, *bare = NULL;
	size_t auth_len, info_len, prefix;
	int rc;

	if (!auth)
		return 0;
	auth += CONFIG_SCHEME_SEP_LEN;
	auth_len = strcspn(auth, "/?#");
	at = memchr(auth, '@', auth_len);
	if (!at)
		return 0;
	if (*cfg->broker.username || *cfg->broker.password)
		return credentials_twice(cfg, err, errlen);
	info_len = (size_t)(at - auth);
	colon = memchr(auth, ':', info_len);
	rc = decode_userinfo(auth, colon ? (size_t)(colon - auth) : info_len, "user name", &user,
			     err, errlen);
	if (rc)
		goto fail;
	if (colon)
		rc = decode_userinfo(colon + 1, (size_t)(at - colon - 1), "password", &pass, err,
				     errlen);
	else if (!(pass = strdup("")))
		rc = -ENOMEM;
	if (rc)
		goto fail;
	prefix = (size_t)(auth - url);
	bare = malloc(prefix + strlen(at + 1) + 1);
	if (!bare) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(bare, url, prefix);
	strcpy(bare + prefix, at + 1);
	free_secret(cfg->broker.url);
	cfg->broker.url = bare;
	free(cfg->broker.username);
	cfg->broker.username = user;
	free_secret(cfg->broker.password);
	cfg->broker.password = pass;
	return 0;
fail:
	free(user);
	free_secret(pass);
	if (rc == -ENOMEM)
		config_fail(err, errlen, "out of memory");
	return rc;
}

/*
 * What follows the scheme of a URL without user info: "host", "host:port", "[v6]" or
 * "[v6]:port", then a path only for WebSocket. The URL is not quoted: a '/', '?', '#' or '@'
 * left raw in a password ends the user info early, and the rest of the password is then here.
 */
static int check_host(const char *url, bool websocket, char *err, size_t errlen)
{
	static const char encode_hint[] = "(in a user name or password, write '/' '?' '#' '@' "
					  "':' '%' as %2F %3F %23 %40 %3A %25)";
	const char *host = strstr(url, CONFIG_SCHEME_SEP) + CONFIG_SCHEME_SEP_LEN, *port = NULL,
		   *end;
	size_t len = strcspn(host, "/?#");

	end = host + len;
	if (memchr(host, '@', len))
		return config_fail(err, errlen, "'broker.url': its host holds a '@' %s",
				   encode_hint);
	if (*host == '[') {
		const char *close = memchr(host, ']', len);
		if (!close || close == host + 1 || (close + 1 < end && close[1] != ':'))
			return config_fail(err, errlen,
					   "'broker.url': an IPv6 address goes in brackets, then "
					   "':port', as in mqtt://[::1]:1883");
		if (close + 1 < end)
			port = close + 2;
	} else {
		const char *colon = memchr(host, ':', len);
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return config_fail(err, errlen,
					   "'broker.url': an IPv6 address goes in brackets, as in "
					   "mqtt://[::1]:1883 %s",
					   encode_hint);
		if (colon == host || len == 0)
			return config_fail(err, errlen, "'broker.url' names no host");
		if (colon)
			port = colon + 1;
	}
	if (port) {
		long n = 0;
		const char *p = port;
		for (; p < end && *p >= '0' && *p <= '9' && n <= CONFIG_PORT_MAX; p++)
			n = n * 10 + (*p - '0');
		if (p != end || p == port || n < 1 || n > CONFIG_PORT_MAX)
			return config_fail(err, errlen,
					   "'broker.url': the port after the host must be 1..%d %s",
					   CONFIG_PORT_MAX, encode_hint);
	}
	if (!websocket && *end && strcmp(end, "/"))
		return config_fail(
		    err, errlen,
		    "'broker.url': a path after the host is for ws:// and wss:// only %s",
		    encode_hint);
	return 0;
}

int config_check(struct config *cfg, char *err, size_t errlen)
{
	static const char *const schemes[] = {"mqtt://", "tcp://", "mqtts://",
					      "ssl://",  "ws://",  "wss://"};
	const char *scheme = NULL;
	char shown[URL_SHOWN_SIZE];
	int rc;

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (!strncmp(cfg->broker.url, schemes[i], strlen(schemes[i])) &&
		    cfg->broker.url[strlen(schemes[i])])
			scheme = schemes[i];
	}
	/* The user info is still in the URL here: the message shows it without the password. */
	if (!scheme)
		return config_fail(
		    err, errlen,
		    "'broker.url' '%s' must start with mqtt://, tcp://, mqtts://, ssl://, "
		    "ws:// or wss:// and name a host",
		    config_url_for_display(cfg->broker.url, shown, sizeof(shown)));
	if ((rc = split_userinfo(cfg, err, errlen)))
		return rc;
	if ((rc = check_host(cfg->broker.url, !strncmp(scheme, "ws", 2), err, errlen)))
		return rc;
	if (!*cfg->tls.cert_file != !*cfg->tls.key_file)
		return config_fail(err, errlen,
				   "'tls.cert_file' and 'tls.key_file' go together: set both "
				   "or neither");
	if (!*cfg->broker.cert_file != !*cfg->broker.key_file)
		return config_fail(err, errlen,
				   "'broker.cert_file' and 'broker.key_file' go together: "
				   "set both or neither");
	if (!*cfg->static_dir)
		return config_fail(err, errlen, "'static_dir' must not be empty");
	if (cfg->auth.mode == AUTH_TOKENS && cfg->auth.ntokens == 0)
		return config_fail(err, errlen,
				   "'auth.mode' is \"tokens\" but 'auth.tokens' is empty");
	if (cfg->mqtt_credentials == CREDENTIALS_BRIDGE && cfg->auth.mode != AUTH_TOKENS)
		return config_fail(err, errlen,
				   "'mqtt_credentials' \"bridge\" needs 'auth.mode' \"tokens\"");
	return 0;
}
