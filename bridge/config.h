/* bridge/config.h — the JSON configuration file (doc/design.md §5): defaults, strict reading,
 * checks. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum auth_mode {
	AUTH_NONE = 0,
	AUTH_TOKENS = 1,
};

/* Who may read /metrics when auth.mode is "tokens". */
enum metrics_access {
	METRICS_OPEN = 0,  /* anyone (a scraper on a private network) */
	METRICS_TOKEN = 1, /* any valid token, whatever its ACL */
};

enum mqtt_credentials {
	CREDENTIALS_PASSTHROUGH = 0,
	CREDENTIALS_BRIDGE = 1,
};

/* Which browser sessions the bridge serves from its shared broker clients (doc/design.md §2). */
enum mqtt_sessions {
	SESSIONS_AUTO = 0,      /* shared where the session allows it */
	SESSIONS_DEDICATED = 1, /* every browser gets its own Paho client */
};

/* The bytes of a SHA-256 digest. */
#define CONFIG_SHA256_SIZE 32

struct config_token {
	char *name;
	uint8_t sha256[CONFIG_SHA256_SIZE];
	char **publish; /* MQTT filters; "{name}" stands for the token's name */
	size_t npublish;
	char **subscribe;
	size_t nsubscribe;
};

/* Every string is owned by the config (malloc'd) and never NULL; "" means unset. */
struct config {
	char *listen;      /* "host:port" as given */
	char *listen_host; /* parsed from listen, without IPv6 brackets */
	int listen_port;
	char *static_dir;
	int log_level; /* enum log_level */
	struct {
		char *url; /* without user info after config_check(): the URL anything may show */
		char *client_id;
		char *username;
		char *password; /* never printed, logged or served */
		long keepalive_s;
		char *ca_file;
		char *cert_file;
		char *key_file;
		bool verify;
		/* The bridge's own links: 0 ("auto": MQTT 5 first, then older as the broker
		 * refuses), else the level pinned, enum mqtt_version of codec.h: 5, 4 (3.1.1) or
		 * 3 (3.1). */
		int mqtt_version;
	} broker;
	struct {
		char *cert_file;
		char *key_file;
	} tls;
	struct {
		int mode;    /* enum auth_mode */
		int metrics; /* enum metrics_access */
		struct config_token *tokens;
		size_t ntokens;
	} auth;
	int mqtt_credentials; /* enum mqtt_credentials */
	int mqtt_sessions;    /* enum mqtt_sessions */
	char **allowed_origins;
	size_t nallowed_origins;
	char **trusted_proxies; /* addresses and CIDR ranges, each checked by netaddr_parse_range */
	size_t ntrusted_proxies;
	struct {
		long max_connections;
		long max_packet_bytes;
		long max_body_bytes;
		long max_subscriptions;
		long max_queue_bytes;
		long requests_per_minute;
	} limits;
	long publish_timeout_ms;
	struct {
		long heartbeat_s;
		long replay;
	} sse;
};

/** The file read when no --config is given and it exists (relative to the working directory). */
#define CONFIG_DEFAULT_PATH "config/mqtt-web-bridge.json"
/** The default static_dir (relative to the working directory, as in the repository). */
#define CONFIG_DEFAULT_STATIC "static"

/** Fills @cfg with the defaults of doc/design.md §5. 0 or -ENOMEM (then @cfg is cleared). */
int config_init(struct config *cfg);

/**
 * Reads the JSON file @path over the values in @cfg. Every key must be known and of the right type
 * and range; on error @err gets one line naming the file and the key, and the return is -EINVAL
 * (-ENOENT when the file cannot be read). @cfg may be partly updated on error: stop then.
 */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/** Same for JSON text (for tests and the fuzzer); @origin names it in messages. */
int config_load_text(struct config *cfg, const char *text, size_t len, const char *origin,
		     char *err, size_t errlen);

/** Sets "listen" from a "host:port" string ("[::1]:8080" for IPv6). 0 or -EINVAL with @err. */
int config_set_listen(struct config *cfg, const char *hostport, char *err, size_t errlen);

/** Replaces a string field (e.g. &cfg->broker.url) with a copy of @value. 0 or -ENOMEM. */
int config_set_string(char **field, const char *value);

/**
 * Completes and checks what spans keys, once every source (file, command line) is applied:
 * moves the user info of "scheme://user:password@host" out of broker.url into broker.username
 * and broker.password (percent-decoded; refused when those keys are set too), then checks
 * (broker.url's form, both TLS files or neither, ...). 0, or -EINVAL (-ENOMEM) with @err, which
 * never holds the password. Running it again on its result changes nothing.
 */
int config_check(struct config *cfg, char *err, size_t errlen);

/**
 * @url for a message, with the password of its user info replaced by "***" (what follows the
 * first ':' of what precedes the last '@' after "://", so that a malformed URL shows less, not
 * more); cut to fit @cap bytes. Returns @buf.
 */
const char *config_url_for_display(const char *url, char *buf, size_t cap);

/**
 * Removes the password (and its ':') from the user info of @url in place, filling the freed
 * tail with NULs: for the command line, which other users can read in /proc.
 */
void config_url_hide_password(char *url);

/** Is @name a valid token name (letters, digits, '-', '_', '.'; not empty)? */
bool config_token_name_valid(const char *name);

/** Frees everything @cfg owns; it must be initialised again before reuse. */
void config_clear(struct config *cfg);
