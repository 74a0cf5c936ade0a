/*
 * bridge/config_read.c — reads the configuration file strictly: every key known, every type and
 * range checked, and each error names the key, so a typo stops start-up instead of being ignored.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "config_int.h"
#include "netaddr.h"
#include "topic.h"

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
const struct config_key config_keys[] = {
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
const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

static const char *const sections[] = {"broker", "tls", "auth", "limits", "sse"};

static const struct config_key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		bool same_section = section ? config_keys[i].section && !strcmp(section, config_keys[i].section)
					    : !config_keys[i].section;
		if (same_section && !strcmp(name, config_keys[i].name))
			return &config_keys[i];
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

static int read_scalar(struct config *cfg, const struct config_key *k, json_t *v, const char *path,
		       char *err, size_t errlen)
{
	void *field = (char *)cfg + k->offset;

	switch (k->kind) {
	case KIND_STRING:
		if (!json_is_string(v))
			return config_fail(err, errlen, "'%s' must be a string", path);
		if (strlen(json_string_value(v)) != json_string_length(v))
			return config_fail(err, errlen, "'%s' must not contain NUL", path);
		return config_set_string(field, json_string_value(v));
	case KIND_INT: {
		json_int_t n;
		if (!json_is_integer(v))
			return config_fail(err, errlen, "'%s' must be an integer", path);
		n = json_integer_value(v);
		if (n < k->min || n > k->max)
			return config_fail(err, errlen, "'%s' must be between %ld and %ld", path, k->min,
				    k->max);
		*(long *)field = (long)n;
		return 0;
	}
	case KIND_BOOL:
		if (!json_is_boolean(v))
			return config_fail(err, errlen, "'%s' must be true or false", path);
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
			return config_fail(err, errlen, "'%s' must be %sone of: %s", path,
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
		return config_fail(err, errlen, "'%s' must be an array of strings", path);
	list = calloc(n ? n : 1, sizeof(char *));
	if (!list)
		return -ENOMEM;
	json_array_foreach (v, i, item) {
		if (!json_is_string(item)) {
			config_free_strings(list, n);
			return config_fail(err, errlen, "'%s[%zu]' must be a string", path, i);
		}
		if (check && !check(json_string_value(item))) {
			config_free_strings(list, n);
			return config_fail(err, errlen, "'%s[%zu]' is not a valid MQTT topic filter: '%s'",
				    path, i, json_string_value(item));
		}
		list[i] = strdup(json_string_value(item));
		if (!list[i]) {
			config_free_strings(list, n);
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
		return config_fail(err, errlen, "'%s' must be an object", path);
	json_object_foreach (obj, key, v) {
		snprintf(sub, sizeof(sub), "%s.%s", path, key);
		if (!strcmp(key, "name")) {
			if (!json_is_string(v) || !config_token_name_valid(json_string_value(v)))
				return config_fail(err, errlen,
					    "'%s' must be a non-empty string of letters, digits, "
					    "'-', '_' or '.'",
					    sub);
			if ((rc = config_set_string(&t->name, json_string_value(v))))
				return rc;
		} else if (!strcmp(key, "sha256")) {
			const char *hex = json_is_string(v) ? json_string_value(v) : "";
			if (strlen(hex) != 64)
				return config_fail(err, errlen, "'%s' must be 64 hex digits", sub);
			for (int i = 0; i < 32; i++) {
				int hi = config_hexval(hex[2 * i]), lo = config_hexval(hex[2 * i + 1]);
				if (hi < 0 || lo < 0)
					return config_fail(err, errlen, "'%s' must be 64 hex digits", sub);
				t->sha256[i] = (uint8_t)(hi << 4 | lo);
			}
		} else if (!strcmp(key, "publish")) {
			config_free_strings(t->publish, t->npublish);
			t->publish = NULL;
			t->npublish = 0;
			if ((rc = read_strings(v, sub, filter_ok, &t->publish, &t->npublish, err,
					       errlen)))
				return rc;
		} else if (!strcmp(key, "subscribe")) {
			config_free_strings(t->subscribe, t->nsubscribe);
			t->subscribe = NULL;
			t->nsubscribe = 0;
			if ((rc = read_strings(v, sub, filter_ok, &t->subscribe, &t->nsubscribe, err,
					       errlen)))
				return rc;
		} else {
			return config_fail(err, errlen, "unknown key '%s'", sub);
		}
	}
	if (!t->name)
		return config_fail(err, errlen, "'%s.name' is missing", path);
	if (!json_object_get(obj, "sha256"))
		return config_fail(err, errlen, "'%s.sha256' is missing", path);
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
		return config_fail(err, errlen, "'auth.tokens' must be an array of objects");
	tokens = calloc(n ? n : 1, sizeof(*tokens));
	if (!tokens)
		return -ENOMEM;
	json_array_foreach (v, i, item) {
		snprintf(path, sizeof(path), "auth.tokens[%zu]", i);
		if ((rc = read_token(&tokens[i], item, path, err, errlen))) {
			config_free_tokens(tokens, n);
			return rc;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(tokens[j].name, tokens[i].name)) {
				rc = config_fail(err, errlen, "'%s.name': '%s' is used twice", path,
					  tokens[i].name);
				config_free_tokens(tokens, n);
				return rc;
			}
		}
	}
	config_free_tokens(cfg->auth.tokens, cfg->auth.ntokens);
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
			rc = config_fail(err, errlen,
				  "'%s[%zu]' must be an IP address or a CIDR range such as "
				  "10.0.0.0/8: '%s'",
				  path, i, list[i]);
			config_free_strings(list, n);
			return rc;
		}
	}
	config_free_strings(cfg->trusted_proxies, cfg->ntrusted_proxies);
	cfg->trusted_proxies = list;
	cfg->ntrusted_proxies = n;
	return 0;
}

static int read_member(struct config *cfg, const char *section, const char *name, json_t *v,
		       char *err, size_t errlen)
{
	const struct config_key *k;
	char path[96];

	snprintf(path, sizeof(path), "%s%s%s", section ? section : "", section ? "." : "", name);
	if (section && !strcmp(section, "auth") && !strcmp(name, "tokens"))
		return read_tokens(cfg, v, err, errlen);
	if (!section && !strcmp(name, "listen")) {
		if (!json_is_string(v))
			return config_fail(err, errlen, "'listen' must be a string");
		return config_set_listen(cfg, json_string_value(v), err, errlen);
	}
	if (!section && !strcmp(name, "allowed_origins")) {
		char **list;
		size_t n;
		int rc = read_strings(v, path, NULL, &list, &n, err, errlen);
		if (rc)
			return rc;
		config_free_strings(cfg->allowed_origins, cfg->nallowed_origins);
		cfg->allowed_origins = list;
		cfg->nallowed_origins = n;
		return 0;
	}
	if (!section && !strcmp(name, "trusted_proxies"))
		return read_proxies(cfg, v, path, err, errlen);
	k = find_key(section, name);
	if (!k)
		return config_fail(err, errlen, "unknown key '%s'", path);
	return read_scalar(cfg, k, v, path, err, errlen);
}

static int read_root(struct config *cfg, json_t *root, char *err, size_t errlen)
{
	const char *name, *inner_name;
	json_t *v, *inner;
	int rc;

	if (!json_is_object(root))
		return config_fail(err, errlen, "the top level must be a JSON object");
	json_object_foreach (root, name, v) {
		if (is_section(name)) {
			if (!json_is_object(v))
				return config_fail(err, errlen, "'%s' must be an object", name);
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
		return config_fail(err, errlen, "%s:%d:%d: %s", origin, jerr.line, jerr.column, jerr.text);
	}
	rc = read_root(cfg, root, inner, sizeof(inner));
	json_decref(root);
	if (rc == -EINVAL)
		return config_fail(err, errlen, "%s: %s", origin, inner);
	if (rc) {
		config_fail(err, errlen, "%s: out of memory", origin);
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
		config_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -ENOENT;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *bigger;
			if (cap > (16u << 20)) {
				free(text);
				fclose(f);
				return config_fail(err, errlen, "%s: larger than 16 MiB", path);
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
		config_fail(err, errlen, "%s: read error", path);
		return -ENOENT;
	}
	fclose(f);
	rc = config_load_text(cfg, text, len, path, err, errlen);
	free(text);
	return rc;
}
