/*
 * tests/fuzz/fuzz_config.c — libFuzzer target for the configuration file (config.h): the input
 * is the text of a config file, read over the defaults as the daemon does at start-up
 * (config_init, config_load_text, config_check, config_clear). With AddressSanitizer every
 * input also checks that nothing leaks, whichever key an error stops at.
 *
 * Checked: errors are -EINVAL with one line naming the file; what loads keeps the promises of
 * config.h (strings never NULL, listen parsed, token filters valid); what passes config_check has
 * no user info left in broker.url (config_check moves it to broker.username and .password);
 * loading the same text again over the result gives the same result.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "codec.h"
#include "config.h"
#include "topic.h"

#include "fuzz.h"

#define ORIGIN "fuzz.json"

/*
 * "One line naming the file and the key": the message is logged as one event, so no byte of
 * the file may end the line early or reach a terminal as a control sequence.
 */
static bool one_line(const char *msg)
{
	for (; *msg; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f)
			return false;
	return true;
}

static void check_error(int rc, const char *err)
{
	CHECK(rc == -EINVAL || rc == -ENOMEM);
	CHECK(!strncmp(err, ORIGIN, strlen(ORIGIN)));
	CHECK(one_line(err));
}

static void check_filters(char **list, size_t n)
{
	CHECK(list || n == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(list[i] && topic_filter_valid(list[i], strlen(list[i])));
}

/* What config.h promises of a loaded configuration. */
static void check_loaded(const struct config *cfg)
{
	const char *const strings[] = {
	    cfg->listen,           cfg->listen_host,     cfg->static_dir,      cfg->broker.url,
	    cfg->broker.client_id, cfg->broker.username, cfg->broker.password, cfg->broker.ca_file,
	    cfg->broker.cert_file, cfg->broker.key_file, cfg->tls.cert_file,   cfg->tls.key_file,
	};
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
		CHECK(strings[i] != NULL);
	CHECK(cfg->listen_port >= 1 && cfg->listen_port <= 65535);
	CHECK(cfg->log_level >= LOG_ERROR && cfg->log_level <= LOG_DEBUG);
	CHECK(cfg->auth.mode == AUTH_NONE || cfg->auth.mode == AUTH_TOKENS);
	CHECK(cfg->mqtt_credentials == CREDENTIALS_PASSTHROUGH ||
	      cfg->mqtt_credentials == CREDENTIALS_BRIDGE);
	CHECK(cfg->broker.keepalive_s >= 0 && cfg->broker.keepalive_s <= 65535);
	CHECK(cfg->broker.mqtt_version == 0 || cfg->broker.mqtt_version == MQTT_V5 ||
	      cfg->broker.mqtt_version == MQTT_V311 || cfg->broker.mqtt_version == MQTT_V31);
	CHECK(cfg->limits.max_connections >= 1 && cfg->limits.max_packet_bytes >= 16);
	CHECK(cfg->publish_timeout_ms >= 1 && cfg->sse.heartbeat_s >= 1);
	CHECK(cfg->allowed_origins || cfg->nallowed_origins == 0);
	for (size_t i = 0; i < cfg->nallowed_origins; i++)
		CHECK(cfg->allowed_origins[i] != NULL);
	CHECK(cfg->auth.tokens || cfg->auth.ntokens == 0);
	for (size_t i = 0; i < cfg->auth.ntokens; i++) {
		const struct config_token *t = &cfg->auth.tokens[i];
		CHECK(t->name && *t->name);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(cfg->auth.tokens[j].name, t->name) != 0);
		check_filters(t->publish, t->npublish);
		check_filters(t->subscribe, t->nsubscribe);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg, again;
	char err[256] = "", check_err[256] = "", check_err2[256] = "";

	CHECK(config_init(&cfg) == 0);
	int rc = config_load_text(&cfg, (const char *)data, size, ORIGIN, err, sizeof err);
	if (rc) {
		check_error(rc, err);
		config_clear(&cfg);
		return 0;
	}
	check_loaded(&cfg);
	rc = config_check(&cfg, check_err, sizeof check_err);
	CHECK(rc == 0 || (rc == -EINVAL && check_err[0] && one_line(check_err)));
	if (rc == 0) {
		const char *auth = strstr(cfg.broker.url, "://") + 3;
		CHECK(!memchr(auth, '@', strcspn(auth, "/?#")));
		/* A second check finds nothing to move and no conflict. */
		CHECK(config_check(&cfg, check_err2, sizeof check_err2) == 0);
	}

	/* Read over itself (what is replaced must be freed) and over the defaults: same result. */
	CHECK(config_load_text(&cfg, (const char *)data, size, ORIGIN, err, sizeof err) == 0);
	check_loaded(&cfg);
	CHECK(config_init(&again) == 0);
	CHECK(config_load_text(&again, (const char *)data, size, ORIGIN, err, sizeof err) == 0);
	CHECK(strcmp(cfg.listen, again.listen) == 0 && cfg.listen_port == again.listen_port);
	CHECK(cfg.auth.ntokens == again.auth.ntokens);
	CHECK(cfg.nallowed_origins == again.nallowed_origins);
	CHECK(config_check(&again, check_err2, sizeof check_err2) == rc);
	CHECK(strcmp(check_err, check_err2) == 0);
	config_clear(&again);
	config_clear(&cfg);
	return 0;
}
