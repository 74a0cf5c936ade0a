/* tests/unit/test_config.c — the configuration file: defaults, strictness, messages naming keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "config.h"

static const char *sample_path;

/* Loads @json over the defaults; returns the rc and leaves the message in @err. */
static int load(struct config *cfg, const char *json, char *err, size_t errlen)
{
	assert_int_equal(config_init(cfg), 0);
	err[0] = '\0';
	return config_load_text(cfg, json, strlen(json), "test.json", err, errlen);
}

static void expect_error(const char *json, const char *needle)
{
	struct config cfg;
	char err[256];
	int rc = load(&cfg, json, err, sizeof(err));

	if (rc == 0)
		rc = config_check(&cfg, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	if (!strstr(err, needle))
		fail_msg("message \"%s\" does not contain \"%s\"", err, needle);
	config_clear(&cfg);
}

static void test_defaults(void **state)
{
	struct config cfg;
	char err[256];

	(void)state;
	assert_int_equal(config_init(&cfg), 0);
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	assert_string_equal(cfg.listen_host, "127.0.0.1");
	assert_int_equal(cfg.listen_port, 8080);
	assert_string_equal(cfg.static_dir, "static");
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_string_equal(cfg.broker.url, "mqtt://127.0.0.1:1883");
	assert_string_equal(cfg.broker.client_id, "");
	assert_int_equal(cfg.broker.keepalive_s, 30);
	assert_true(cfg.broker.verify);
	assert_int_equal(cfg.broker.mqtt_version, 0);
	assert_int_equal(cfg.auth.mode, AUTH_NONE);
	assert_int_equal(cfg.auth.ntokens, 0);
	assert_int_equal(cfg.auth.metrics, METRICS_OPEN);
	assert_int_equal(cfg.mqtt_credentials, CREDENTIALS_PASSTHROUGH);
	assert_int_equal(cfg.mqtt_sessions, SESSIONS_AUTO);
	assert_int_equal(cfg.nallowed_origins, 1);
	assert_string_equal(cfg.allowed_origins[0], "*");
	assert_int_equal(cfg.ntrusted_proxies, 0);
	assert_int_equal(cfg.limits.max_connections, 10000);
	assert_int_equal(cfg.limits.max_packet_bytes, 1048576);
	assert_int_equal(cfg.limits.max_body_bytes, 1048576);
	assert_int_equal(cfg.limits.max_subscriptions, 256);
	assert_int_equal(cfg.limits.max_queue_bytes, 4194304);
	assert_int_equal(cfg.limits.requests_per_minute, 0);
	assert_int_equal(cfg.publish_timeout_ms, 5000);
	assert_int_equal(cfg.sse.heartbeat_s, 20);
	assert_int_equal(cfg.sse.replay, 1000);
	assert_int_equal(config_check(&cfg, err, sizeof(err)), 0);
	config_clear(&cfg);
}

/* The shipped sample must be exactly the defaults, so it documents them truthfully. */
static void test_sample_is_defaults(void **state)
{
	struct config def, sample;
	char err[256];

	(void)state;
	assert_int_equal(config_init(&def), 0);
	assert_int_equal(config_init(&sample), 0);
	/* Start the sample from values that differ from every default, so each key must be
	 * present in the file for the comparison to pass. */
	sample.log_level = LOG_ERROR;
	sample.broker.keepalive_s = 1;
	sample.broker.verify = false;
	sample.broker.mqtt_version = MQTT_V31;
	sample.limits.max_connections = 1;
	sample.limits.max_packet_bytes = 16;
	sample.limits.max_body_bytes = 1;
	sample.limits.max_subscriptions = 1;
	sample.limits.max_queue_bytes = 1024;
	sample.limits.requests_per_minute = 7;
	sample.auth.metrics = METRICS_TOKEN;
	sample.publish_timeout_ms = 1;
	sample.sse.heartbeat_s = 1;
	sample.sse.replay = 1;
	assert_int_equal(config_set_listen(&sample, "[::1]:1", err, sizeof(err)), 0);
	assert_int_equal(config_set_string(&sample.static_dir, "x"), 0);
	assert_int_equal(config_set_string(&sample.broker.url, "mqtt://x"), 0);
	if (config_load_text(&sample, "{\"trusted_proxies\": [\"10.0.0.1\"]}", 33, "x", err,
			     sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(sample.ntrusted_proxies, 1);
	if (config_load_file(&sample, sample_path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(sample.listen, def.listen);
	assert_int_equal(sample.listen_port, def.listen_port);
	assert_string_equal(sample.static_dir, def.static_dir);
	assert_int_equal(sample.log_level, def.log_level);
	assert_string_equal(sample.broker.url, def.broker.url);
	assert_int_equal(sample.broker.keepalive_s, def.broker.keepalive_s);
	assert_int_equal(sample.broker.verify, def.broker.verify);
	assert_int_equal(sample.broker.mqtt_version, def.broker.mqtt_version);
	assert_memory_equal(&sample.limits, &def.limits, sizeof(def.limits));
	assert_int_equal(sample.auth.mode, def.auth.mode);
	assert_int_equal(sample.auth.metrics, def.auth.metrics);
	assert_int_equal(sample.publish_timeout_ms, def.publish_timeout_ms);
	assert_memory_equal(&sample.sse, &def.sse, sizeof(def.sse));
	assert_int_equal(sample.nallowed_origins, 1);
	assert_string_equal(sample.allowed_origins[0], "*");
	assert_int_equal(sample.ntrusted_proxies, 0);
	config_clear(&def);
	config_clear(&sample);
}

static void test_values_read(void **state)
{
	struct config cfg;
	char err[256];
	const char *json =
	    "{\"listen\": \"[::1]:9001\", \"log_level\": \"debug\","
	    " \"broker\": {\"url\": \"mqtts://broker:8883\", \"keepalive_s\": 0, \"verify\": false,"
	    "  \"ca_file\": \"/etc/ca.pem\"},"
	    " \"allowed_origins\": [\"https://a.example\", \"https://b.example\"],"
	    " \"limits\": {\"max_packet_bytes\": 2048, \"requests_per_minute\": 60},"
	    " \"auth\": {\"mode\": \"tokens\", \"tokens\": [{\"name\": \"dash\", \"sha256\":"
	    "  \"00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\","
	    "  \"publish\": [\"cmd/{name}/#\"], \"subscribe\": [\"sensors/#\", \"+/status\"]}],"
	    "  \"metrics\": \"token\"},"
	    " \"mqtt_credentials\": \"bridge\", \"mqtt_sessions\": \"dedicated\","
	    " \"trusted_proxies\": [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]}";

	(void)state;
	if (load(&cfg, json, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(config_check(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.listen_host, "::1");
	assert_int_equal(cfg.listen_port, 9001);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_string_equal(cfg.broker.url, "mqtts://broker:8883");
	assert_int_equal(cfg.broker.keepalive_s, 0);
	assert_false(cfg.broker.verify);
	assert_string_equal(cfg.broker.ca_file, "/etc/ca.pem");
	assert_int_equal(cfg.nallowed_origins, 2);
	assert_string_equal(cfg.allowed_origins[1], "https://b.example");
	assert_int_equal(cfg.limits.max_packet_bytes, 2048);
	assert_int_equal(cfg.limits.max_connections, 10000);
	assert_int_equal(cfg.limits.requests_per_minute, 60);
	assert_int_equal(cfg.auth.mode, AUTH_TOKENS);
	assert_int_equal(cfg.auth.ntokens, 1);
	assert_int_equal(cfg.auth.metrics, METRICS_TOKEN);
	assert_string_equal(cfg.auth.tokens[0].name, "dash");
	assert_int_equal(cfg.auth.tokens[0].sha256[0], 0x00);
	assert_int_equal(cfg.auth.tokens[0].sha256[1], 0x11);
	assert_int_equal(cfg.auth.tokens[0].sha256[31], 0xff);
	assert_int_equal(cfg.auth.tokens[0].npublish, 1);
	assert_string_equal(cfg.auth.tokens[0].publish[0], "cmd/{name}/#");
	assert_int_equal(cfg.auth.tokens[0].nsubscribe, 2);
	assert_string_equal(cfg.auth.tokens[0].subscribe[1], "+/status");
	assert_int_equal(cfg.mqtt_credentials, CREDENTIALS_BRIDGE);
	assert_int_equal(cfg.mqtt_sessions, SESSIONS_DEDICATED);
	assert_int_equal(cfg.ntrusted_proxies, 3);
	assert_string_equal(cfg.trusted_proxies[2], "fd00::/8");
	config_clear(&cfg);
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_error("{\"lisen\": \"x\"}", "unknown key 'lisen'");
	expect_error("{\"limits\": {\"max_conections\": 5}}",
		     "unknown key 'limits.max_conections'");
	expect_error("{\"broker\": {\"uri\": \"mqtt://x\"}}", "unknown key 'broker.uri'");
	expect_error("{\"auth\": {\"tokens\": [{\"name\": \"a\", \"sha256\": "
		     "\"0000000000000000000000000000000000000000000000000000000000000000\", "
		     "\"secret\": \"x\"}]}}",
		     "unknown key 'auth.tokens[0].secret'");
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_error("{\"listen\": 8080}", "'listen' must be a string");
	expect_error("{\"static_dir\": true}", "'static_dir' must be a string");
	expect_error("{\"limits\": {\"max_packet_bytes\": \"1M\"}}",
		     "'limits.max_packet_bytes' must be an integer");
	expect_error("{\"limits\": {\"max_packet_bytes\": 1.5}}",
		     "'limits.max_packet_bytes' must be an integer");
	expect_error("{\"broker\": {\"verify\": 1}}", "'broker.verify' must be true or false");
	expect_error("{\"log_level\": \"loud\"}",
		     "'log_level' must be one of: error, warn, info, debug");
	expect_error("{\"auth\": {\"mode\": \"open\"}}",
		     "'auth.mode' must be one of: none, tokens");
	expect_error("{\"auth\": {\"metrics\": \"closed\"}}",
		     "'auth.metrics' must be one of: open, token");
	expect_error("{\"auth\": {\"metrics\": true}}", "'auth.metrics'");
	expect_error("{\"broker\": []}", "'broker' must be an object");
	expect_error("{\"allowed_origins\": \"*\"}",
		     "'allowed_origins' must be an array of strings");
	expect_error("{\"allowed_origins\": [\"*\", 3]}", "'allowed_origins[1]' must be a string");
	expect_error("{\"trusted_proxies\": \"127.0.0.1\"}",
		     "'trusted_proxies' must be an array of strings");
	expect_error("{\"trusted_proxies\": [\"127.0.0.1\", 7]}",
		     "'trusted_proxies[1]' must be a string");
	expect_error("{\"trusted_proxies\": [\"127.0.0.1\", \"localhost\"]}",
		     "'trusted_proxies[1]' must be an IP address or a CIDR range");
	expect_error("{\"trusted_proxies\": [\"10.0.0.0/33\"]}",
		     "'trusted_proxies[0]' must be an IP address or a CIDR range");
	expect_error("[]", "the top level must be a JSON object");
	expect_error("{\"auth\": {\"tokens\": {}}}", "'auth.tokens' must be an array of objects");
}

static void test_ranges(void **state)
{
	(void)state;
	expect_error("{\"limits\": {\"max_connections\": 0}}",
		     "'limits.max_connections' must be between");
	expect_error("{\"limits\": {\"requests_per_minute\": -1}}",
		     "'limits.requests_per_minute' must be between");
	expect_error("{\"broker\": {\"keepalive_s\": 65536}}",
		     "'broker.keepalive_s' must be between");
	expect_error("{\"sse\": {\"heartbeat_s\": 0}}", "'sse.heartbeat_s' must be between");
	expect_error("{\"publish_timeout_ms\": 0}", "'publish_timeout_ms' must be between");
}

static void test_listen(void **state)
{
	struct config cfg;
	char err[256];

	(void)state;
	assert_int_equal(config_init(&cfg), 0);
	assert_int_equal(config_set_listen(&cfg, "0.0.0.0:80", err, sizeof(err)), 0);
	assert_string_equal(cfg.listen_host, "0.0.0.0");
	assert_int_equal(cfg.listen_port, 80);
	assert_int_equal(config_set_listen(&cfg, "[::]:65535", err, sizeof(err)), 0);
	assert_string_equal(cfg.listen_host, "::");
	assert_int_equal(cfg.listen_port, 65535);
	assert_int_equal(config_set_listen(&cfg, "localhost:0", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "port must be 1..65535"));
	assert_int_equal(config_set_listen(&cfg, "localhost:65536", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set_listen(&cfg, "localhost:80x", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set_listen(&cfg, "localhost", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set_listen(&cfg, ":80", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set_listen(&cfg, "::1:80", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "brackets"));
	assert_int_equal(config_set_listen(&cfg, "[]:80", err, sizeof(err)), -EINVAL);
	/* A failed set leaves the previous value. */
	assert_string_equal(cfg.listen, "[::]:65535");
	config_clear(&cfg);
}

static void test_tokens(void **state)
{
	static const char hash[] =
	    "\"0000000000000000000000000000000000000000000000000000000000000000\"";
	char json[512];

	(void)state;
	snprintf(json, sizeof(json), "{\"auth\": {\"tokens\": [{\"sha256\": %s}]}}", hash);
	expect_error(json, "'auth.tokens[0].name' is missing");
	expect_error("{\"auth\": {\"tokens\": [{\"name\": \"a\"}]}}",
		     "'auth.tokens[0].sha256' is missing");
	expect_error("{\"auth\": {\"tokens\": [{\"name\": \"a\", \"sha256\": \"abc\"}]}}",
		     "'auth.tokens[0].sha256' must be 64 hex digits");
	expect_error("{\"auth\": {\"tokens\": [{\"name\": \"a\", \"sha256\": "
		     "\"zz00000000000000000000000000000000000000000000000000000000000000\"}]}}",
		     "'auth.tokens[0].sha256' must be 64 hex digits");
	snprintf(json, sizeof(json),
		 "{\"auth\": {\"tokens\": [{\"name\": \"a b\", \"sha256\": %s}]}}", hash);
	expect_error(json, "'auth.tokens[0].name' must be a non-empty string");
	snprintf(json, sizeof(json),
		 "{\"auth\": {\"tokens\": [{\"name\": \"a\", \"sha256\": %s, \"publish\": "
		 "[\"a/#/b\"]}]}}",
		 hash);
	expect_error(json, "'auth.tokens[0].publish[0]' is not a valid MQTT topic filter");
	snprintf(json, sizeof(json),
		 "{\"auth\": {\"tokens\": [{\"name\": \"a\", \"sha256\": %s}, {\"name\": \"a\", "
		 "\"sha256\": %s}]}}",
		 hash, hash);
	expect_error(json, "'auth.tokens[1].name': 'a' is used twice");
}

static void test_cross_checks(void **state)
{
	(void)state;
	expect_error("{\"tls\": {\"cert_file\": \"c.pem\"}}",
		     "'tls.cert_file' and 'tls.key_file' go together");
	expect_error("{\"broker\": {\"key_file\": \"k.pem\"}}",
		     "'broker.cert_file' and 'broker.key_file'");
	expect_error("{\"broker\": {\"url\": \"http://x\"}}",
		     "'broker.url' 'http://x' must start with");
	expect_error("{\"broker\": {\"url\": \"mqtt://\"}}", "must start with");
	expect_error("{\"auth\": {\"mode\": \"tokens\"}}", "'auth.tokens' is empty");
	expect_error("{\"mqtt_credentials\": \"bridge\"}", "needs 'auth.mode' \"tokens\"");
}

static void test_json_errors(void **state)
{
	struct config cfg;
	char err[256];

	(void)state;
	expect_error("{\"listen\": \"a:1\",}", "test.json:1:");
	expect_error("{\"listen\": \"a:1\", \"listen\": \"b:2\"}", "test.json:");
	expect_error("", "test.json:");
	/* jansson quotes the text near a syntax error, which may be a password. */
	assert_int_equal(load(&cfg, "{\"broker\": {\"password\": \"s3cr3t", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "test.json:1:"));
	assert_null(strstr(err, "s3cr3t"));
	config_clear(&cfg);
	assert_int_equal(load(&cfg, "{\"broker\": {\"password\": s3cr3t}}", err, sizeof(err)),
			 -EINVAL);
	assert_null(strstr(err, "s3cr3t"));
	config_clear(&cfg);
}

/* Sets broker.url to @url over @json (the other keys) and checks; the rc, message in @err. */
static int check_url(struct config *cfg, const char *json, const char *url, char *err,
		     size_t errlen)
{
	int rc = load(cfg, json, err, errlen);

	if (rc)
		fail_msg("%s", err);
	assert_int_equal(config_set_string(&cfg->broker.url, url), 0);
	return config_check(cfg, err, errlen);
}

static void test_url_credentials(void **state)
{
	static const struct {
		const char *url, *bare, *username, *password;
	} cases[] = {
	    /* The issue's example: '@' ':' '/' '%' in the password, percent-encoded. */
	    {"mqtt://user:p%40ss%3Aw%2Frd%25@127.0.0.1:1883", "mqtt://127.0.0.1:1883", "user",
	     "p@ss:w/rd%"},
	    {"tcp://us%65r%20name:pw@broker", "tcp://broker", "user name", "pw"},
	    {"mqtts://u:%e2%82%ac@broker:8883/", "mqtts://broker:8883/", "u", "\xe2\x82\xac"},
	    /* A ':' after the first is the password's own. */
	    {"mqtt://u:pa:ss@h", "mqtt://h", "u", "pa:ss"},
	    {"mqtt://user@broker:1883", "mqtt://broker:1883", "user", ""},
	    {"mqtt://:secret@broker", "mqtt://broker", "", "secret"},
	    {"mqtt://user:@broker", "mqtt://broker", "user", ""},
	    {"mqtt://@broker", "mqtt://broker", "", ""},
	    {"mqtts://u:p@[::1]:8883", "mqtts://[::1]:8883", "u", "p"},
	    {"ws://u:p@[fe80::1%25eth0]:9001/mqtt", "ws://[fe80::1%25eth0]:9001/mqtt", "u", "p"},
	    {"wss://u:p@broker/mqtt@x?a=b@c", "wss://broker/mqtt@x?a=b@c", "u", "p"},
	    /* No user info: the URL is left as it is, the keys too. */
	    {"mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:1883", "", ""},
	    {"mqtt://[::1]:1883", "mqtt://[::1]:1883", "", ""},
	    {"mqtt://[::1]", "mqtt://[::1]", "", ""},
	    {"ws://broker:9001/mqtt@x", "ws://broker:9001/mqtt@x", "", ""},
	    {"ws://broker?u=a:b@c", "ws://broker?u=a:b@c", "", ""},
	    {"ws://broker#a:b@c", "ws://broker#a:b@c", "", ""},
	};
	struct config cfg;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (check_url(&cfg, "{}", cases[i].url, err, sizeof(err)))
			fail_msg("%s: %s", cases[i].url, err);
		assert_string_equal(cfg.broker.url, cases[i].bare);
		assert_string_equal(cfg.broker.username, cases[i].username);
		assert_string_equal(cfg.broker.password, cases[i].password);
		/* Checking the result again changes nothing (and finds no conflict). */
		assert_int_equal(config_check(&cfg, err, sizeof(err)), 0);
		assert_string_equal(cfg.broker.url, cases[i].bare);
		assert_string_equal(cfg.broker.password, cases[i].password);
		config_clear(&cfg);
	}

	/* From the file, and the keys alone as before. */
	if (load(&cfg, "{\"broker\": {\"url\": \"mqtt://a%3Ab:c%2Fd@h:1\"}}", err, sizeof(err)) ||
	    config_check(&cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(cfg.broker.url, "mqtt://h:1");
	assert_string_equal(cfg.broker.username, "a:b");
	assert_string_equal(cfg.broker.password, "c/d");
	config_clear(&cfg);
	if (load(&cfg,
		 "{\"broker\": {\"url\": \"mqtt://h\", \"username\": \"k\", \"password\": \"v\"}}",
		 err, sizeof(err)) ||
	    config_check(&cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(cfg.broker.url, "mqtt://h");
	assert_string_equal(cfg.broker.username, "k");
	assert_string_equal(cfg.broker.password, "v");
	config_clear(&cfg);
}

/* @url (over the keys of @json) is refused with a message holding @needle and not @secret. */
static void expect_url_error(const char *json, const char *url, const char *needle,
			     const char *secret)
{
	struct config cfg;
	char err[512];

	assert_int_equal(check_url(&cfg, json, url, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("%s: message \"%s\" does not contain \"%s\"", url, err, needle);
	if (secret && strstr(err, secret))
		fail_msg("%s: message \"%s\" shows \"%s\"", url, err, secret);
	config_clear(&cfg);
}

static void test_url_credentials_refused(void **state)
{
	(void)state;
	/* Malformed escapes: named, never quoted. */
	expect_url_error("{}", "mqtt://u:s3cr%4@h", "password in the user info has a '%'", "s3cr");
	expect_url_error("{}", "mqtt://u:s3cr%zz@h", "does not start an escape", "s3cr");
	expect_url_error("{}", "mqtt://u:s3cr%@h", "does not start an escape", "s3cr");
	expect_url_error("{}", "mqtt://us%2@h", "user name in the user info has a '%'", "us%2");
	expect_url_error("{}", "mqtt://u:s3cr%00et@h", "%00", "s3cr");
	/* Credentials in the URL and in the keys. */
	expect_url_error("{\"broker\": {\"username\": \"k\"}}", "mqtt://u:s3cret@h",
			 "'broker.url' holds credentials (user info before '@') and "
			 "'broker.username' is set too",
			 "s3cret");
	expect_url_error("{\"broker\": {\"password\": \"k3y\"}}", "mqtt://u:s3cret@h",
			 "and 'broker.password' is set too", "s3cret");
	expect_url_error("{\"broker\": {\"username\": \"k\", \"password\": \"k3y\"}}",
			 "mqtt://u:s3cret@h", "'broker.username' and 'broker.password' are set too",
			 "k3y");
	expect_url_error("{\"broker\": {\"password\": \"k3y\"}}", "mqtt://user@h",
			 "'broker.password' is set too", "k3y");
	expect_url_error("{\"broker\": {\"username\": \"k\"}}", "mqtt://:s3cret@h",
			 "'broker.username' is set too", "s3cret");
	/* Characters left raw: the user info ends early and the rest must not be echoed. */
	expect_url_error("{}", "mqtt://u:s3@cret@h", "its host holds a '@'", "cret");
	expect_url_error("{}", "mqtt://u:s3/cret@h", "the port after the host must be", "s3");
	expect_url_error("{}", "mqtt://u:12/cret@h", "a path after the host is for ws://", "cret");
	expect_url_error("{}", "mqtt://u:s3?cret@h", "the port after the host must be", "cret");
	expect_url_error("{}", "mqtt://u:s3:c/ret@h", "an IPv6 address goes in brackets", "s3");
	/* A bad scheme is reported before the split: the URL shows without its password. */
	expect_url_error("{}", "ftp://user:s3cret@host", "'ftp://user:***@host' must start with",
			 "s3cret");
	expect_url_error("{}", "user:s3cret@host", "'user:***@host' must start with", "s3cret");
	expect_url_error("{}", "mqtt:/user:s3cret@host", "must start with", "s3cret");
	/* The host and port of a URL without user info. */
	expect_url_error("{}", "mqtt://u:s3cret@", "'broker.url' names no host", "s3cret");
	expect_url_error("{}", "mqtt://u:s3cret@:1883", "'broker.url' names no host", "s3cret");
	expect_url_error("{}", "mqtt://h:0", "the port after the host must be 1..65535", NULL);
	expect_url_error("{}", "mqtt://h:65536", "the port after the host must be 1..65535", NULL);
	expect_url_error("{}", "mqtt://h:", "the port after the host must be 1..65535", NULL);
	expect_url_error("{}", "mqtt://::1:1883", "an IPv6 address goes in brackets", NULL);
	expect_url_error("{}", "mqtt://[::1:1883", "an IPv6 address goes in brackets", NULL);
	expect_url_error("{}", "mqtt://[]:1883", "an IPv6 address goes in brackets", NULL);
	expect_url_error("{}", "mqtt://[::1]1883", "an IPv6 address goes in brackets", NULL);
	expect_url_error("{}", "mqtt://h:1883/x", "a path after the host is for ws://", NULL);
}

static void test_url_display(void **state)
{
	static const struct {
		const char *url, *shown, *hidden;
	} cases[] = {
	    {"mqtt://u:s3cret@h:1", "mqtt://u:***@h:1", "mqtt://u@h:1"},
	    {"mqtt://u:p%40ss@h", "mqtt://u:***@h", "mqtt://u@h"},
	    {"mqtt://:pw@h", "mqtt://:***@h", "mqtt://@h"},
	    {"mqtt://u@h", "mqtt://u@h", "mqtt://u@h"},
	    {"mqtt://h:1883", "mqtt://h:1883", "mqtt://h:1883"},
	    /* Raw '@', '/' in the password: everything up to the last '@' is hidden. */
	    {"mqtt://u:s3@c/r@h", "mqtt://u:***@h", "mqtt://u@h"},
	    {"user:s3cret@h", "user:***@h", "user@h"},
	    {"mqtt:/u:s3cret@h", "mqtt:***@h", "mqtt@h"},
	    {"--broker-url=mqtt://u:s3cret@h", "--broker-url=mqtt://u:***@h",
	     "--broker-url=mqtt://u@h"},
	    {"u:s3cret@h mqtt://x", "u:***@h mqtt://x", "u@h mqtt://x"},
	    {"", "", ""},
	};
	char buf[64], copy[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_ptr_equal(config_url_for_display(cases[i].url, buf, sizeof(buf)), buf);
		assert_string_equal(buf, cases[i].shown);
		memset(copy, 'x', sizeof(copy));
		strcpy(copy, cases[i].url);
		config_url_hide_password(copy);
		assert_string_equal(copy, cases[i].hidden);
		/* The bytes the password held are cleared, up to where the string ended. */
		for (size_t j = strlen(copy); j <= strlen(cases[i].url); j++)
			assert_int_equal(copy[j], 0);
	}
	/* Cut to fit: shorter, never the password. */
	assert_string_equal(config_url_for_display("mqtt://user:s3cret@host", buf, 12),
			    "mqtt://user");
	assert_string_equal(config_url_for_display("mqtt://h", buf, 1), "");
}

static void test_mqtt_version(void **state)
{
	static const struct {
		const char *value;
		int level;
	} good[] = {{"auto", 0}, {"5", MQTT_V5}, {"3.1.1", MQTT_V311}, {"3.1", MQTT_V31}};
	static const char *const bad[] = {"\"4\"", "\"3\"",      "\"v5\"",   "\"5.0\"",
					  "\"\"",  "\"3.1.1 \"", "\"AUTO\"", "\"mqttv311\""};
	struct config cfg;
	char json[128], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(json, sizeof(json), "{\"broker\": {\"mqtt_version\": \"%s\"}}",
			 good[i].value);
		if (load(&cfg, json, err, sizeof(err)) || config_check(&cfg, err, sizeof(err)))
			fail_msg("%s: %s", good[i].value, err);
		assert_int_equal(cfg.broker.mqtt_version, good[i].level);
		config_clear(&cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json), "{\"broker\": {\"mqtt_version\": %s}}", bad[i]);
		expect_error(json, "'broker.mqtt_version' must be one of: auto, 5, 3.1.1, 3.1");
	}
	expect_error("{\"broker\": {\"mqtt_version\": 5}}",
		     "'broker.mqtt_version' must be a string, one of: auto, 5, 3.1.1, 3.1");
	expect_error("{\"broker\": {\"mqtt_version\": 3.1}}",
		     "'broker.mqtt_version' must be a string");
	expect_error("{\"broker\": {\"mqtt_version\": null}}",
		     "'broker.mqtt_version' must be a string");
	expect_error("{\"mqtt_version\": \"5\"}", "unknown key 'mqtt_version'");
}

static void test_missing_file(void **state)
{
	struct config cfg;
	char err[256];

	(void)state;
	assert_int_equal(config_init(&cfg), 0);
	assert_int_equal(config_load_file(&cfg, "/nonexistent/mwb.json", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/mwb.json: cannot open"));
	config_clear(&cfg);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_sample_is_defaults),
	    cmocka_unit_test(test_values_read),
	    cmocka_unit_test(test_unknown_keys),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_listen),
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test(test_cross_checks),
	    cmocka_unit_test(test_json_errors),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_url_credentials),
	    cmocka_unit_test(test_url_credentials_refused),
	    cmocka_unit_test(test_url_display),
	    cmocka_unit_test(test_mqtt_version),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s SAMPLE_CONFIG\n", argv[0]);
		return 2;
	}
	sample_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
