/*
 * bridge/config.c — the configuration's defaults, its small setters, and what the other config
 * files share. Reading the file is in config_read.c, the checks that span keys in config_check.c.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* A URL whose scheme and user info are longer is shown without either: it is not worth showing,
 * and printf's "%.*s" takes an int. */
#define DISPLAY_USERINFO_MAX 4096

/*
 * Messages quote keys and values from the file, and jansson's text quotes the file itself. The
 * message is logged as one line, so control characters in them are written as \xNN: a key such
 * as "a\nb" must not end the line early or reach a terminal raw.
 */
int config_fail(char *err, size_t errlen, const char *fmt, ...)
{
	static const char hex[] = "0123456789abcdef";
	char msg[CONFIG_MSG_SIZE];
	size_t o = 0;
	va_list ap;

	if (!err || !errlen)
		return -EINVAL;
	va_start(ap, fmt);
	/* A message cut at its end still names the key: truncation is accepted. */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (const char *p = msg; *p && o + 1 < errlen; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != 0x7f) {
			err[o++] = (char)c;
		} else if (o + 4 < errlen) {
			err[o++] = '\\';
			err[o++] = 'x';
			err[o++] = hex[c >> 4];
			err[o++] = hex[c & 15];
		} else {
			break;
		}
	}
	err[o] = '\0';
	return -EINVAL;
}

int config_set_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

void config_free_strings(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void config_free_tokens(struct config_token *tokens, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(tokens[i].name);
		config_free_strings(tokens[i].publish, tokens[i].npublish);
		config_free_strings(tokens[i].subscribe, tokens[i].nsubscribe);
	}
	free(tokens);
}

void config_clear(struct config *cfg)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		if (config_keys[i].kind == KIND_STRING)
			free(*(char **)((char *)cfg + config_keys[i].offset));
	}
	free(cfg->listen);
	free(cfg->listen_host);
	config_free_strings(cfg->allowed_origins, cfg->nallowed_origins);
	config_free_strings(cfg->trusted_proxies, cfg->ntrusted_proxies);
	config_free_tokens(cfg->auth.tokens, cfg->auth.ntokens);
	memset(cfg, 0, sizeof(*cfg));
}

int config_init(struct config *cfg)
{
	static const struct {
		size_t offset;
		const char *value;
	} strings[] = {
	    {offsetof(struct config, static_dir), CONFIG_DEFAULT_STATIC},
	    {offsetof(struct config, broker.url), "mqtt://127.0.0.1:1883"},
	};

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < config_nkeys; i++) {
		if (config_keys[i].kind == KIND_STRING &&
		    config_set_string((char **)((char *)cfg + config_keys[i].offset), ""))
			goto fail;
	}
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (config_set_string((char **)((char *)cfg + strings[i].offset), strings[i].value))
			goto fail;
	}
	if (config_set_listen(cfg, "127.0.0.1:8080", NULL, 0))
		goto fail;
	cfg->allowed_origins = calloc(1, sizeof(char *));
	if (!cfg->allowed_origins || !(cfg->allowed_origins[0] = strdup("*")))
		goto fail;
	cfg->nallowed_origins = 1;
	cfg->trusted_proxies = calloc(1, sizeof(char *));
	if (!cfg->trusted_proxies)
		goto fail;
	cfg->log_level = LOG_INFO;
	cfg->broker.keepalive_s = 30;
	cfg->broker.verify = true;
	cfg->broker.mqtt_version = 0; /* "auto" */
	cfg->auth.mode = AUTH_NONE;
	cfg->auth.metrics = METRICS_OPEN;
	cfg->mqtt_credentials = CREDENTIALS_PASSTHROUGH;
	cfg->mqtt_sessions = SESSIONS_AUTO;
	cfg->limits.max_connections = 10000;
	cfg->limits.max_packet_bytes = 1048576;
	cfg->limits.max_body_bytes = 1048576;
	cfg->limits.max_subscriptions = 256;
	cfg->limits.max_queue_bytes = 4194304;
	cfg->limits.requests_per_minute = 0;
	cfg->publish_timeout_ms = 5000;
	cfg->sse.heartbeat_s = 20;
	cfg->sse.replay = 1000;
	return 0;
fail:
	config_clear(cfg);
	return -ENOMEM;
}

int config_set_listen(struct config *cfg, const char *hostport, char *err, size_t errlen)
{
	const char *colon = strrchr(hostport, ':');
	const char *host = hostport;
	size_t host_len;
	char *end, *host_copy, *listen_copy;
	long port;

	if (!colon || colon == hostport)
		return config_fail(err, errlen, "listen '%s': expected host:port", hostport);
	host_len = (size_t)(colon - hostport);
	if (host[0] == '[') {
		if (host_len < 3 || host[host_len - 1] != ']')
			return config_fail(err, errlen, "listen '%s': expected [ipv6]:port",
					   hostport);
		host++;
		host_len -= 2;
	} else if (memchr(host, ':', host_len)) {
		return config_fail(err, errlen, "listen '%s': put an IPv6 address in brackets",
				   hostport);
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > CONFIG_PORT_MAX)
		return config_fail(err, errlen, "listen '%s': port must be 1..%d", hostport,
				   CONFIG_PORT_MAX);
	host_copy = strndup(host, host_len);
	listen_copy = strdup(hostport);
	if (!host_copy || !listen_copy) {
		free(host_copy);
		free(listen_copy);
		return -ENOMEM;
	}
	free(cfg->listen_host);
	free(cfg->listen);
	cfg->listen_host = host_copy;
	cfg->listen = listen_copy;
	cfg->listen_port = (int)port;
	return 0;
}

int config_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The ':' that starts the password in the user info of @url, or NULL; *@at is then the last '@'.
 * The user info is what precedes the last '@', after "://" when that comes before it: without
 * "://" there, all that precedes the '@' may be user info.
 */
static const char *password_colon(const char *url, const char **at)
{
	const char *start = strstr(url, CONFIG_SCHEME_SEP);

	*at = strrchr(url, '@');
	if (!*at)
		return NULL;
	start = start && start + CONFIG_SCHEME_SEP_LEN <= *at ? start + CONFIG_SCHEME_SEP_LEN : url;
	return memchr(start, ':', (size_t)(*at - start));
}

const char *config_url_for_display(const char *url, char *buf, size_t cap)
{
	const char *at, *colon;

	if (!cap)
		return buf;
	colon = password_colon(url, &at);
	/* A display cut short shows less, never more: truncation is accepted. */
	if (colon && at - url < DISPLAY_USERINFO_MAX)
		snprintf(buf, cap, "%.*s***%s", (int)(colon + 1 - url), url, at);
	else if (colon)
		snprintf(buf, cap, "(a URL with a password)");
	else
		snprintf(buf, cap, "%s", url);
	return buf;
}

void config_url_hide_password(char *url)
{
	const char *at, *found = password_colon(url, &at);
	size_t rest, removed;

	if (!found)
		return;
	char *colon = url + (found - url);
	rest = strlen(at) + 1;
	removed = (size_t)(at - colon);
	memmove(colon, at, rest);
	memset(colon + rest, 0, removed);
}
