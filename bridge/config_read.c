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

/* One key a line reads as the table it is. */
/* clang-format off */
#define STR(sec, key, field) {sec, key, KIND_STRING, offsetof(struct config, field), 0, 0, NULL}
#define INT(sec, key, field, lo, hi) \
	{sec, key, KIND_INT, offsetof(struct config, field), lo, hi, NULL}
#define BOOL(sec, key, field) {sec, key, KIND_BOOL, offsetof(struct config, field), 0, 0, NULL}
#define CHOICE(sec, key, field, list) \
	{sec, key, KIND_CHOICE, offsetof(struct config, field), 0, 0, list}
#define CHOICE_VALUES(sec, key, field, list, values) \
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
/* clang-format on */
const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

static const char *const sections[] = {"broker", "tls", "auth", "limits", "sse"};

/* A key's path as messages name it ("auth.tokens[3].subscribe"); a longer one from the file is
 * cut, and the message still shows where it starts. */
#define KEY_PATH_SIZE 96
/* "auth.tokens[N]", which a token's own keys then extend. */
#define TOKEN_PATH_SIZE 48
/* Room for a choice key's list of values in its message ("error, warn, info, debug"). */
#define CHOICES_TEXT_SIZE 128
/* The file is read in steps of READ_STEP bytes, with at least READ_MIN free for each read, up
 * to READ_MAX: a configuration file is small, and anything much larger is not one. */
#define READ_STEP     65536
#define READ_MIN      4096
#define READ_MAX      (16u << 20)
#define READ_MAX_TEXT "16 MiB"

/* Is @key_section (NULL: the top level) the section @section (NULL: the top level)? */
static bool same_section(const char *section, const char *key_section)
{
	return section ? key_section && !strcmp(section, key_section) : !key_section;
}

static const struct config_key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		if (same_section(section, config_keys[i].section) &&
		    !strcmp(name, config_keys[i].name))
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

/* A KIND_CHOICE key: the index of its value in k->choices, or k->values at that index. */
static int read_choice(int *field, const struct config_key *k, json_t *v, const char *path,
		       char *err, size_t errlen)
{
	char list[CHOICES_TEXT_SIZE] = "";

	if (json_is_string(v)) {
		for (int i = 0; k->choices[i]; i++) {
			if (!strcmp(json_string_value(v), k->choices[i])) {
				*field = k->values ? k->values[i] : i;
				return 0;
			}
		}
	}
	for (int i = 0; k->choices[i]; i++) {
		strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
		strncat(list, k->choices[i], sizeof(list) - strlen(list) - 1);
	}
	/* "mqtt_version": 5 is a number: say that a string is wanted. */
	return config_fail(err, errlen, "'%s' must be %sone of: %s", path,
			   json_is_string(v) ? "" : "a string, ", list);
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
			return config_fail(err, errlen, "'%s' must be between %ld and %ld", path,
					   k->min, k->max);
		*(long *)field = (long)n;
		return 0;
	}
	case KIND_BOOL:
		if (!json_is_boolean(v))
			return config_fail(err, errlen, "'%s' must be true or false", path);
		*(bool *)field = json_is_true(v);
		return 0;
	case KIND_CHOICE:
		return read_choice(field, k, v, path, err, errlen);
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
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item)) {
			config_free_strings(list, n);
			return config_fail(err, errlen, "'%s[%zu]' must be a string", path, i);
		}
		if (check && !check(json_string_value(item))) {
			config_free_strings(list, n);
			return config_fail(err, errlen,
					   "'%s[%zu]' is not a valid MQTT topic filter: '%s'", path,
					   i, json_string_value(item));
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

/* A token's "sha256": the SHA-256 of the token, as hex. */
static int read_sha256(uint8_t *sha256, json_t *v, const char *path, char *err, size_t errlen)
{
	const size_t size = CONFIG_SHA256_SIZE;
	const char *hex = json_is_string(v) ? json_string_value(v) : "";

	if (strlen(hex) != 2 * size)
		return config_fail(err, errlen, "'%s' must be %zu hex digits", path, 2 * size);
	for (size_t i = 0; i < size; i++) {
		int hi = config_hexval(hex[2 * i]), lo = config_hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return config_fail(err, errlen, "'%s' must be %zu hex digits", path,
					   2 * size);
		sha256[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* A token's "publish" or "subscribe": MQTT topic filters, replacing what *@list held. */
static int read_filters(char ***list, size_t *n, json_t *v, const char *path, char *err,
			size_t errlen)
{
	config_free_strings(*list, *n);
	*list = NULL;
	*n = 0;
	return read_strings(v, path, filter_ok, list, n, err, errlen);
}

static int read_token(struct config_token *t, json_t *obj, const char *path, char *err,
		      size_t errlen)
{
	const char *key;
	json_t *v;
	char sub[KEY_PATH_SIZE];
	int rc;

	if (!json_is_object(obj))
		return config_fail(err, errlen, "'%s' must be an object", path);
	json_object_foreach(obj, key, v)
	{
		snprintf(sub, sizeof(sub), "%s.%s", path, key);
		if (!strcmp(key, "name")) {
			if (!json_is_string(v) || !config_token_name_valid(json_string_value(v)))
				return config_fail(
				    err, errlen,
				    "'%s' must be a non-empty string of letters, digits, "
				    "'-', '_' or '.'",
				    sub);
			if ((rc = config_set_string(&t->name, json_string_value(v))))
				return rc;
		} else if (!strcmp(key, "sha256")) {
			if ((rc = read_sha256(t->sha256, v, sub, err, errlen)))
				return rc;
		} else if (!strcmp(key, "publish")) {
			if ((rc = read_filters(&t->publish, &t->npublish, v, sub, err, errlen)))
				return rc;
		} else if (!strcmp(key, "subscribe")) {
			if ((rc = read_filters(&t->subscribe, &t->nsubscribe, v, sub, err, errlen)))
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

/* "auth.tokens" (@path): an array of token objects, with names used once. */
static int read_tokens(struct config *cfg, json_t *v, const char *path, char *err, size_t errlen)
{
	size_t n = json_array_size(v), i;
	struct config_token *tokens;
	json_t *item;
	char item_path[TOKEN_PATH_SIZE];
	int rc;

	if (!json_is_array(v))
		return config_fail(err, errlen, "'%s' must be an array of objects", path);
	tokens = calloc(n ? n : 1, sizeof(*tokens));
	if (!tokens)
		return -ENOMEM;
	json_array_foreach(v, i, item)
	{
		snprintf(item_path, sizeof(item_path), "%s[%zu]", path, i);
		if ((rc = read_token(&tokens[i], item, item_path, err, errlen))) {
			config_free_tokens(tokens, n);
			return rc;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(tokens[j].name, tokens[i].name)) {
				rc = config_fail(err, errlen, "'%s.name': '%s' is used twice",
						 item_path, tokens[i].name);
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

/* "listen": "host:port". */
static int read_listen(struct config *cfg, json_t *v, const char *path, char *err, size_t errlen)
{
	if (!json_is_string(v))
		return config_fail(err, errlen, "'%s' must be a string", path);
	return config_set_listen(cfg, json_string_value(v), err, errlen);
}

/* "allowed_origins": any strings ("*" among them allows every origin). */
static int read_origins(struct config *cfg, json_t *v, const char *path, char *err, size_t errlen)
{
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

/* The keys that are not in config_keys: each has a reader of its own. */
static const struct {
	const char *section; /* NULL at the top level */
	const char *name;
	int (*read)(struct config *cfg, json_t *v, const char *path, char *err, size_t errlen);
} own_readers[] = {
    {NULL, "listen", read_listen},
    {NULL, "allowed_origins", read_origins},
    {NULL, "trusted_proxies", read_proxies},
    {"auth", "tokens", read_tokens},
};

static int read_member(struct config *cfg, const char *section, const char *name, json_t *v,
		       char *err, size_t errlen)
{
	const struct config_key *k;
	char path[KEY_PATH_SIZE];

	snprintf(path, sizeof(path), "%s%s%s", section ? section : "", section ? "." : "", name);
	for (size_t i = 0; i < sizeof(own_readers) / sizeof(own_readers[0]); i++) {
		if (same_section(section, own_readers[i].section) &&
		    !strcmp(name, own_readers[i].name))
			return own_readers[i].read(cfg, v, path, err, errlen);
	}
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
	json_object_foreach(root, name, v)
	{
		if (is_section(name)) {
			if (!json_is_object(v))
				return config_fail(err, errlen, "'%s' must be an object", name);
			json_object_foreach(v, inner_name, inner)
			{
				if ((rc = read_member(cfg, name, inner_name, inner, err, errlen)))
					return rc;
			}
		} else if ((rc = read_member(cfg, NULL, name, v, err, errlen))) {
			return rc;
		}
	}
	return 0;
}

int config_load_text(struct config *cfg, const char *text, size_t len, const char *origin,
		     char *err, size_t errlen)
{
	char inner[CONFIG_ERR_SIZE];
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
		return config_fail(err, errlen, "%s:%d:%d: %s", origin, jerr.line, jerr.column,
				   jerr.text);
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

/* All of @f into *@text (the caller frees it) and *@len. 0, -EFBIG, -ENOMEM or -EIO. */
static int read_all(FILE *f, char **text, size_t *len)
{
	char *buf = NULL;
	size_t used = 0, cap = 0;

	for (;;) {
		if (cap - used < READ_MIN) {
			char *bigger;
			if (cap > READ_MAX) {
				free(buf);
				return -EFBIG;
			}
			bigger = realloc(buf, cap + READ_STEP);
			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
			cap += READ_STEP;
		}
		size_t got = fread(buf + used, 1, cap - used, f);
		used += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	*text = buf;
	*len = used;
	return 0;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *text;
	size_t len;
	int rc;

	if (!f) {
		config_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -ENOENT;
	}
	rc = read_all(f, &text, &len);
	fclose(f);
	if (rc == -EFBIG)
		return config_fail(err, errlen, "%s: larger than " READ_MAX_TEXT, path);
	if (rc == -EIO) {
		config_fail(err, errlen, "%s: read error", path);
		return -ENOENT;
	}
	if (rc)
		return rc;
	rc = config_load_text(cfg, text, len, path, err, errlen);
	free(text);
	return rc;
}
