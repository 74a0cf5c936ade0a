/*
 * bridge/config.c — reads the configuration file strictly: every key known, every type and range
 * checked, and each error names the key, so a typo stops start-up instead of being ignored.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "netaddr.h"
#include "topic.h"

enum key_kind {
	KIND_STRING,
	KIND_INT,
	KIND_BOOL,
	KIND_CHOICE, /* a string from a fixed list, stored as its index */
};

struct key {
	const char *section; /* NULL at the top level */
	const char *name;
	enum key_kind kind;
	size_t offset;
	long min, max;             /* KIND_INT */
	const char *const *choices; /* KIND_CHOICE, NULL-terminated */
	const int *values;          /* KIND_CHOICE: stored for choices[i] instead of i, when set */
};

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const auth_modes[] = {"none", "tokens", NULL};
static const char *const metrics_modes[] = {"open", "token", NULL};
static const char *const credential_modes[] = {"passthrough", "bridge", NULL};
static const char *const session_modes[] = {"auto", "dedicated", NULL};
static const char *const mqtt_version_names[] = {"auto", "5", "3.1.1", "3.1", NULL};
static const int mqtt_version_levels[] = {0, MQTT_V5, MQTT_V311, MQTT_V31};

#define STR(sec, key, field) {sec, key, KIND_STRING, offsetof(struct config, field), 0, 0, NULL}
#define INT(sec, key, field, lo, hi) {sec, key, KIND_INT, offsetof(struct config, field), lo, hi, NULL}
#define BOOL(sec, key, field) {sec, key, KIND_BOOL, offsetof(struct config, field), 0, 0, NULL}
#define CHOICE(sec, key, field, list) {sec, key, KIND_CHOICE, offsetof(struct config, field), 0, 0, list}
#define CHOICE_VALUES(sec, key, field, list, values)                                               \
	{sec, key, KIND_CHOICE, offsetof(struct config, field), 0, 0, list, values}

/* The scalar keys; "listen", the lists and "auth.tokens" have their own readers. */
static const struct key keys[] = {
	STR(NULL, "static_dir", static_dir),
	CHOICE(NULL, "log_level", log_level, log_levels),
	STR("broker", "url", broker.url),
	STR("broker", "client_id", broker.client_id),
	STR("broker", "username", broker.username),
	STR("broker", "password", broker.password),
	INT("broker", "keepalive_s", broker.keepalive_s, 0, 65535),
	STR("broker", "ca_file", broker.ca_file),
	STR("broker", "cert_file", broker.cert_file),
	STR("broker", "key_file", broker.key_file),
	BOOL("broker", "verify", broker.verify),
	CHOICE_VALUES("broker", "mqtt_version", broker.mqtt_version, mqtt_version_names,
		      mqtt_version_levels),
	STR("tls", "cert_file", tls.cert_file),
	STR("tls", "key_file", tls.key_file),
	CHOICE("auth", "mode", auth.mode, auth_modes),
	CHOICE("auth", "metrics", auth.metrics, metrics_modes),
	CHOICE(NULL, "mqtt_credentials", mqtt_credentials, credential_modes),
	CHOICE(NULL, "mqtt_sessions", mqtt_sessions, session_modes),
	INT("limits", "max_connections", limits.max_connections, 1, 1000000),
	INT("limits", "max_packet_bytes", limits.max_packet_bytes, 16, 268435460),
	INT("limits", "max_body_bytes", limits.max_body_bytes, 1, 268435456),
	INT("limits", "max_subscriptions", limits.max_subscriptions, 1, 1000000),
	INT("limits", "max_queue_bytes", limits.max_queue_bytes, 1024, 1L << 34),
	INT("limits", "requests_per_minute", limits.requests_per_minute, 0, 100000000),
	INT(NULL, "publish_timeout_ms", publish_timeout_ms, 1, 3600000),
	INT("sse", "heartbeat_s", sse.heartbeat_s, 1, 3600),
	INT("sse", "replay", sse.replay, 0, 1000000),
};

static const char *const sections[] = {"broker", "tls", "auth", "limits", "sse"};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Messages quote keys and values from the file, and jansson's text quotes the file itself. The
 * message is logged as one line, so control characters in them are written as \xNN: a key such
 * as "a\nb" must not end the line early or reach a terminal raw.
 */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	static const char hex[] = "0123456789abcdef";
	char msg[512];
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

static void free_strings(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void free_tokens(struct config_token *tokens, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(tokens[i].name);
		free_strings(tokens[i].publish, tokens[i].npublish);
		free_strings(tokens[i].subscribe, tokens[i].nsubscribe);
	}
	free(tokens);
}

void config_clear(struct config *cfg)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].kind == KIND_STRING)
			free(*(char **)((char *)cfg + keys[i].offset));
	}
	free(cfg->listen);
	free(cfg->listen_host);
	free_strings(cfg->allowed_origins, cfg->nallowed_origins);
	free_strings(cfg->trusted_proxies, cfg->ntrusted_proxies);
	free_tokens(cfg->auth.tokens, cfg->auth.ntokens);
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
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].kind == KIND_STRING &&
		    config_set_string((char **)((char *)cfg + keys[i].offset), ""))
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
		return fail(err, errlen, "listen '%s': expected host:port", hostport);
	host_len = (size_t)(colon - hostport);
	if (host[0] == '[') {
		if (host_len < 3 || host[host_len - 1] != ']')
			return fail(err, errlen, "listen '%s': expected [ipv6]:port", hostport);
		host++;
		host_len -= 2;
	} else if (memchr(host, ':', host_len)) {
		return fail(err, errlen, "listen '%s': put an IPv6 address in brackets", hostport);
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
		return fail(err, errlen, "listen '%s': port must be 1..65535", hostport);
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

static const struct key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		bool same_section = section ? keys[i].section && !strcmp(section, keys[i].section)
					    : !keys[i].section;
		if (same_section && !strcmp(name, keys[i].name))
			return &keys[i];
	}
	return NULL;
}

static bool is_section(const char *name)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (!strcmp(name, sections[i]))
			return true;
	}
	return false;
}

static int read_scalar(struct config *cfg, const struct key *k, json_t *v, const char *path,
		       char *err, size_t errlen)
{
	void *field = (char *)cfg + k->offset;

	switch (k->kind) {
	case KIND_STRING:
		if (!json_is_string(v))
			return fail(err, errlen, "'%s' must be a string", path);
		if (strlen(json_string_value(v)) != json_string_length(v))
			return fail(err, errlen, "'%s' must not contain NUL", path);
		return config_set_string(field, json_string_value(v));
	case KIND_INT: {
		json_int_t n;
		if (!json_is_integer(v))
			return fail(err, errlen, "'%s' must be an integer", path);
		n = json_integer_value(v);
		if (n < k->min || n > k->max)
			return fail(err, errlen, "'%s' must be between %ld and %ld", path, k->min,
				    k->max);
		*(long *)field = (long)n;
		return 0;
	}
	case KIND_BOOL:
		if (!json_is_boolean(v))
			return fail(err, errlen, "'%s' must be true or false", path);
		*(bool *)field = json_is_true(v);
		return 0;
	case KIND_CHOICE:
		if (json_is_string(v)) {
			for (int i = 0; k->choices[i]; i++) {
				if (!strcmp(json_string_value(v), k->choices[i])) {
					*(int *)field = k->values ? k->values[i] : i;
					return 0;
				}
			}
		}
		{
			char list[128] = "";
			for (int i = 0; k->choices[i]; i++) {
				strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, k->choices[i], sizeof(list) - strlen(list) - 1);
			}
			/* "mqtt_version": 5 is a number: say that a string is wanted. */
			return fail(err, errlen, "'%s' must be %sone of: %s", path,
				    json_is_string(v) ? "" : "a string, ", list);
		}
	}
	return -EINVAL;
}

/* Reads a JSON array of strings; each must pass @check when given. */
static int read_strings(json_t *v, const char *path, bool (*check)(const char *), char ***out,
			size_t *nout, char *err, size_t errlen)
{
	size_t n = json_array_size(v), i;
	char **list;
	json_t *item;

	if (!json_is_array(v))
		return fail(err, errlen, "'%s' must be an array of strings", path);
	list = calloc(n ? n : 1, sizeof(char *));
	if (!list)
		return -ENOMEM;
	json_array_foreach (v, i, item) {
		if (!json_is_string(item)) {
			free_strings(list, n);
			return fail(err, errlen, "'%s[%zu]' must be a string", path, i);
		}
		if (check && !check(json_string_value(item))) {
			free_strings(list, n);
			return fail(err, errlen, "'%s[%zu]' is not a valid MQTT topic filter: '%s'",
				    path, i, json_string_value(item));
		}
		list[i] = strdup(json_string_value(item));
		if (!list[i]) {
			free_strings(list, n);
			return -ENOMEM;
		}
	}
	*out = list;
	*nout = n;
	return 0;
}

static bool filter_ok(const char *f)
{
	return topic_filter_valid(f, strlen(f));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool config_token_name_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	}
	return true;
}

static int read_token(struct config_token *t, json_t *obj, const char *path, char *err,
		      size_t errlen)
{
	const char *key;
	json_t *v;
	char sub[96];
	int rc;

	if (!json_is_object(obj))
		return fail(err, errlen, "'%s' must be an object", path);
	json_object_foreach (obj, key, v) {
		snprintf(sub, sizeof(sub), "%s.%s", path, key);
		if (!strcmp(key, "name")) {
			if (!json_is_string(v) || !config_token_name_valid(json_string_value(v)))
				return fail(err, errlen,
					    "'%s' must be a non-empty string of letters, digits, "
					    "'-', '_' or '.'",
					    sub);
			if ((rc = config_set_string(&t->name, json_string_value(v))))
				return rc;
		} else if (!strcmp(key, "sha256")) {
			const char *hex = json_is_string(v) ? json_string_value(v) : "";
			if (strlen(hex) != 64)
				return fail(err, errlen, "'%s' must be 64 hex digits", sub);
			for (int i = 0; i < 32; i++) {
				int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
				if (hi < 0 || lo < 0)
					return fail(err, errlen, "'%s' must be 64 hex digits", sub);
				t->sha256[i] = (uint8_t)(hi << 4 | lo);
			}
		} else if (!strcmp(key, "publish")) {
			free_strings(t->publish, t->npublish);
			t->publish = NULL;
			t->npublish = 0;
			if ((rc = read_strings(v, sub, filter_ok, &t->publish, &t->npublish, err,
					       errlen)))
				return rc;
		} else if (!strcmp(key, "subscribe")) {
			free_strings(t->subscribe, t->nsubscribe);
			t->subscribe = NULL;
			t->nsubscribe = 0;
			if ((rc = read_strings(v, sub, filter_ok, &t->subscribe, &t->nsubscribe, err,
					       errlen)))
				return rc;
		} else {
			return fail(err, errlen, "unknown key '%s'", sub);
		}
	}
	if (!t->name)
		return fail(err, errlen, "'%s.name' is missing", path);
	if (!json_object_get(obj, "sha256"))
		return fail(err, errlen, "'%s.sha256' is missing", path);
	return 0;
}

static int read_tokens(struct config *cfg, json_t *v, char *err, size_t errlen)
{
	size_t n = json_array_size(v), i;
	struct config_token *tokens;
	json_t *item;
	char path[48];
	int rc;

	if (!json_is_array(v))
		return fail(err, errlen, "'auth.tokens' must be an array of objects");
	tokens = calloc(n ? n : 1, sizeof(*tokens));
	if (!tokens)
		return -ENOMEM;
	json_array_foreach (v, i, item) {
		snprintf(path, sizeof(path), "auth.tokens[%zu]", i);
		if ((rc = read_token(&tokens[i], item, path, err, errlen))) {
			free_tokens(tokens, n);
			return rc;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(tokens[j].name, tokens[i].name)) {
				rc = fail(err, errlen, "'%s.name': '%s' is used twice", path,
					  tokens[i].name);
				free_tokens(tokens, n);
				return rc;
			}
		}
	}
	free_tokens(cfg->auth.tokens, cfg->auth.ntokens);
	cfg->auth.tokens = tokens;
	cfg->auth.ntokens = n;
	return 0;
}

/* "trusted_proxies": addresses or CIDR ranges, each parsed now so that a typo stops start-up. */
static int read_proxies(struct config *cfg, json_t *v, const char *path, char *err, size_t errlen)
{
	struct netaddr_range range;
	char **list;
	size_t n;
	int rc = read_strings(v, path, NULL, &list, &n, err, errlen);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (netaddr_parse_range(list[i], &range)) {
			rc = fail(err, errlen,
				  "'%s[%zu]' must be an IP address or a CIDR range such as "
				  "10.0.0.0/8: '%s'",
				  path, i, list[i]);
			free_strings(list, n);
			return rc;
		}
	}
	free_strings(cfg->trusted_proxies, cfg->ntrusted_proxies);
	cfg->trusted_proxies = list;
	cfg->ntrusted_proxies = n;
	return 0;
}

static int read_member(struct config *cfg, const char *section, const char *name, json_t *v,
		       char *err, size_t errlen)
{
	const struct key *k;
	char path[96];

	snprintf(path, sizeof(path), "%s%s%s", section ? section : "", section ? "." : "", name);
	if (section && !strcmp(section, "auth") && !strcmp(name, "tokens"))
		return read_tokens(cfg, v, err, errlen);
	if (!section && !strcmp(name, "listen")) {
		if (!json_is_string(v))
			return fail(err, errlen, "'listen' must be a string");
		return config_set_listen(cfg, json_string_value(v), err, errlen);
	}
	if (!section && !strcmp(name, "allowed_origins")) {
		char **list;
		size_t n;
		int rc = read_strings(v, path, NULL, &list, &n, err, errlen);
		if (rc)
			return rc;
		free_strings(cfg->allowed_origins, cfg->nallowed_origins);
		cfg->allowed_origins = list;
		cfg->nallowed_origins = n;
		return 0;
	}
	if (!section && !strcmp(name, "trusted_proxies"))
		return read_proxies(cfg, v, path, err, errlen);
	k = find_key(section, name);
	if (!k)
		return fail(err, errlen, "unknown key '%s'", path);
	return read_scalar(cfg, k, v, path, err, errlen);
}

static int read_root(struct config *cfg, json_t *root, char *err, size_t errlen)
{
	const char *name, *inner_name;
	json_t *v, *inner;
	int rc;

	if (!json_is_object(root))
		return fail(err, errlen, "the top level must be a JSON object");
	json_object_foreach (root, name, v) {
		if (is_section(name)) {
			if (!json_is_object(v))
				return fail(err, errlen, "'%s' must be an object", name);
			json_object_foreach (v, inner_name, inner) {
				if ((rc = read_member(cfg, name, inner_name, inner, err, errlen)))
					return rc;
			}
		} else if ((rc = read_member(cfg, NULL, name, v, err, errlen))) {
			return rc;
		}
	}
	return 0;
}

int config_load_text(struct config *cfg, const char *text, size_t len, const char *origin, char *err,
		     size_t errlen)
{
	char inner[256];
	json_error_t jerr;
	json_t *root;
	int rc;

	/* Duplicate keys are refused: a second value silently winning hides mistakes. */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson quotes the text "near" the error, which may be a password: the line
		 * and column say where it is without showing it. */
		char *near = strstr(jerr.text, " near '");
		if (near)
			*near = '\0';
		return fail(err, errlen, "%s:%d:%d: %s", origin, jerr.line, jerr.column, jerr.text);
	}
	rc = read_root(cfg, root, inner, sizeof(inner));
	json_decref(root);
	if (rc == -EINVAL)
		return fail(err, errlen, "%s: %s", origin, inner);
	if (rc) {
		fail(err, errlen, "%s: out of memory", origin);
		return -ENOMEM;
	}
	return 0;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, cap = 0;
	int rc;

	if (!f) {
		fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -ENOENT;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *bigger;
			if (cap > (16u << 20)) {
				free(text);
				fclose(f);
				return fail(err, errlen, "%s: larger than 16 MiB", path);
			}
			bigger = realloc(text, cap + 65536);
			if (!bigger) {
				free(text);
				fclose(f);
				return -ENOMEM;
			}
			text = bigger;
			cap += 65536;
		}
		size_t got = fread(text + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(text);
		fclose(f);
		fail(err, errlen, "%s: read error", path);
		return -ENOENT;
	}
	fclose(f);
	rc = config_load_text(cfg, text, len, path, err, errlen);
	free(text);
	return rc;
}

const char *config_url_for_display(const char *url, char *buf, size_t cap)
{
	const char *start = strstr(url, "://"), *at = strrchr(url, '@'), *colon = NULL;

	if (!cap)
		return buf;
	/* Without "://" before the last '@', all that precedes it may be user info. */
	start = start && at && start + 3 <= at ? start + 3 : url;
	if (at)
		colon = memchr(start, ':', (size_t)(at - start));
	/* A display cut short shows less, never more: truncation is accepted. */
	if (colon && at - url < 4096)
		snprintf(buf, cap, "%.*s***%s", (int)(colon + 1 - url), url, at);
	else if (colon)
		snprintf(buf, cap, "(a URL with a password)");
	else
		snprintf(buf, cap, "%s", url);
	return buf;
}

void config_url_hide_password(char *url)
{
	char *start = strstr(url, "://"), *at = strrchr(url, '@'), *colon;
	size_t rest, removed;

	if (!at)
		return;
	start = start && start + 3 <= at ? start + 3 : url;
	colon = memchr(start, ':', (size_t)(at - start));
	if (!colon)
		return;
	rest = strlen(at) + 1;
	removed = (size_t)(at - colon);
	memmove(colon, at, rest);
	memset(colon + rest, 0, removed);
}

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
		int hi = len - i >= 3 ? hexval(s[i + 1]) : -1;
		int lo = len - i >= 3 ? hexval(s[i + 2]) : -1;

		if (s[i] != '%') {
			d[o++] = s[i];
			continue;
		}
		if (hi < 0 || lo < 0)
			rc = fail(err, errlen,
				  "'broker.url': the %s in the user info has a '%%' that does not "
				  "start an escape %%XX (write '%%' itself as %%25)",
				  what);
		else if (hi == 0 && lo == 0)
			rc = fail(err, errlen,
				  "'broker.url': the %s in the user info holds %%00 (NUL), which "
				  "cannot be sent",
				  what);
		else
			d[o++] = (char)(hi << 4 | lo);
		i += 2;
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
static int split_userinfo(struct config *cfg, char *err, size_t errlen)
{
	const char *url = cfg->broker.url, *auth = strstr(url, "://"), *at, *colon;
	char *user = NULL, *pass = NULL, *bare = NULL;
	size_t auth_len, info_len, prefix;
	int rc;

	if (!auth)
		return 0;
	auth += 3;
	auth_len = strcspn(auth, "/?#");
	at = memchr(auth, '@', auth_len);
	if (!at)
		return 0;
	if (*cfg->broker.username || *cfg->broker.password) {
		const char *keys_set = "'broker.username' and 'broker.password' are";
		if (!*cfg->broker.password)
			keys_set = "'broker.username' is";
		else if (!*cfg->broker.username)
			keys_set = "'broker.password' is";
		return fail(err, errlen,
			    "'broker.url' holds credentials (user info before '@') and %s set "
			    "too: give them in one place only",
			    keys_set);
	}
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
		fail(err, errlen, "out of memory");
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
	const char *host = strstr(url, "://") + 3, *port = NULL, *end;
	size_t len = strcspn(host, "/?#");

	end = host + len;
	if (memchr(host, '@', len))
		return fail(err, errlen, "'broker.url': its host holds a '@' %s", encode_hint);
	if (*host == '[') {
		const char *close = memchr(host, ']', len);
		if (!close || close == host + 1 || (close + 1 < end && close[1] != ':'))
			return fail(err, errlen,
				    "'broker.url': an IPv6 address goes in brackets, then "
				    "':port', as in mqtt://[::1]:1883");
		if (close + 1 < end)
			port = close + 2;
	} else {
		const char *colon = memchr(host, ':', len);
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return fail(err, errlen,
				    "'broker.url': an IPv6 address goes in brackets, as in "
				    "mqtt://[::1]:1883 %s",
				    encode_hint);
		if (colon == host || len == 0)
			return fail(err, errlen, "'broker.url' names no host");
		if (colon)
			port = colon + 1;
	}
	if (port) {
		long n = 0;
		const char *p = port;
		for (; p < end && *p >= '0' && *p <= '9' && n <= 65535; p++)
			n = n * 10 + (*p - '0');
		if (p != end || p == port || n < 1 || n > 65535)
			return fail(err, errlen,
				    "'broker.url': the port after the host must be 1..65535 %s",
				    encode_hint);
	}
	if (!websocket && *end && strcmp(end, "/"))
		return fail(err, errlen,
			    "'broker.url': a path after the host is for ws:// and wss:// only %s",
			    encode_hint);
	return 0;
}

int config_check(struct config *cfg, char *err, size_t errlen)
{
	static const char *const schemes[] = {"mqtt://", "tcp://", "mqtts://", "ssl://", "ws://",
					      "wss://"};
	const char *scheme = NULL;
	char shown[256];
	int rc;

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (!strncmp(cfg->broker.url, schemes[i], strlen(schemes[i])) &&
		    cfg->broker.url[strlen(schemes[i])])
			scheme = schemes[i];
	}
	/* The user info is still in the URL here: the message shows it without the password. */
	if (!scheme)
		return fail(err, errlen,
			    "'broker.url' '%s' must start with mqtt://, tcp://, mqtts://, ssl://, "
			    "ws:// or wss:// and name a host",
			    config_url_for_display(cfg->broker.url, shown, sizeof(shown)));
	if ((rc = split_userinfo(cfg, err, errlen)))
		return rc;
	if ((rc = check_host(cfg->broker.url, !strncmp(scheme, "ws", 2), err, errlen)))
		return rc;
	if (!*cfg->tls.cert_file != !*cfg->tls.key_file)
		return fail(err, errlen, "'tls.cert_file' and 'tls.key_file' go together: set both "
					 "or neither");
	if (!*cfg->broker.cert_file != !*cfg->broker.key_file)
		return fail(err, errlen, "'broker.cert_file' and 'broker.key_file' go together: "
					 "set both or neither");
	if (!*cfg->static_dir)
		return fail(err, errlen, "'static_dir' must not be empty");
	if (cfg->auth.mode == AUTH_TOKENS && cfg->auth.ntokens == 0)
		return fail(err, errlen, "'auth.mode' is \"tokens\" but 'auth.tokens' is empty");
	if (cfg->mqtt_credentials == CREDENTIALS_BRIDGE && cfg->auth.mode != AUTH_TOKENS)
		return fail(err, errlen, "'mqtt_credentials' \"bridge\" needs 'auth.mode' \"tokens\"");
	return 0;
}
