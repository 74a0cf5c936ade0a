/*
 * bridge/main.c — the composition root: command line, configuration, the evq between Paho and
 * lws, the sessions, the web server, signals and the orderly shutdown.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "auth.h"
#include "buildconf.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "evq.h"
#include "hub.h"
#include "linger.h"
#include "log.h"
#include "notify.h"
#include "retained.h"
#include "server.h"
#include "session.h"
#include "upstream.h"
#include "version.h"
#include "waker.h"

/* How long a shutdown waits for sessions to hand their upstreams back, and for acks. */
#define SHUTDOWN_WAIT_S 3
/* How often stored persistent sessions are checked for expiry. */
#define EXPIRE_EVERY_S 10
/* How long the broker may take to answer a browser's CONNECT. */
#define UPSTREAM_CONNECT_TIMEOUT_S 10
/* How long a new WebSocket may take to send its CONNECT. */
#define CONNECT_WAIT_MS 10000
/* Memory the SSE replay ring may hold, beside its sse.replay events. */
#define REPLAY_MAX_BYTES (16u << 20)
/* What one retained read may collect. */
#define RETAINED_MAX_MESSAGES 10000
#define RETAINED_MAX_BYTES    (16u << 20)

/* Long options without a short letter. */
#define OPT_NEW_TOKEN 256

struct app {
	struct config cfg;
	const char *config_path; /* NULL: defaults only */
	struct auth *auth;       /* the current token table; a SIGHUP replaces it */
	struct evq *evq;
	struct upstream_env env;
	struct waker *waker;
	struct sessions *sessions;
	struct hub *hub;
	struct retained *retained;
	struct web_server *web;
	/* What Paho's threads wake: set once the web server exists (main thread), read by them;
	 * @waking counts those inside a wake, so that the web server is freed after the last. */
	_Atomic(struct web_server *) wake_target;
	atomic_int waking;
	int signal_fd;
	bool stopping;
	bool done;
	unsigned ticks;
	unsigned stop_ticks;
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: mqtt-web-bridge [OPTIONS]\n"
	    "Puts the web in front of an MQTT broker: MQTT over WebSocket at /mqtt, and the\n"
	    "browser files at /.\n"
	    "\n"
	    "  -c, --config FILE   JSON configuration (default: %s when it exists,\n"
	    "                      else %s when it exists)\n"
	    "  -l, --listen ADDR   host:port to listen on (config key \"listen\")\n"
	    "  -b, --broker URL    broker URL, mqtt:// mqtts:// tcp:// ssl:// ws:// wss://\n"
	    "                      (config key \"broker.url\"); credentials as\n"
	    "                      mqtt://USER:PASSWORD@HOST:PORT, percent-encoded\n"
	    "  -s, --static DIR    browser files to serve (config key \"static_dir\")\n"
	    "  -v, --verbose       debug logging (config key \"log_level\": \"debug\")\n"
	    "      --check         check the configuration, print the effective settings, exit\n"
	    "      --new-token NAME  print a fresh random secret and its \"auth.tokens\" entry\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       the version\n"
	    "\n"
	    "Every configuration key is documented in the README. Exit status: 0 after a clean\n"
	    "shutdown (SIGTERM/SIGINT), 1 when the server cannot run, 2 for a usage or\n"
	    "configuration error.\n",
	    CONFIG_DEFAULT_PATH, MWB_INSTALLED_CONFIG);
}

/* For --check: what the bridge would run with, one key=value per line (no secrets). */
static void print_settings(const struct config *cfg, const char *path)
{
	printf("config=%s\n", path ? path : "(defaults)");
	printf("listen=%s\n", cfg->listen);
	printf("static_dir=%s\n", cfg->static_dir);
	printf("log_level=%s\n", log_level_name((enum log_level)cfg->log_level));
	printf("broker.url=%s\n", cfg->broker.url);
	printf("broker.username=%s\n", *cfg->broker.username ? "(set)" : "");
	printf("broker.password=%s\n", *cfg->broker.password ? "(set)" : "");
	printf("broker.mqtt_version=%s\n",
	       cfg->broker.mqtt_version ? codec_version_name(cfg->broker.mqtt_version) : "auto");
	printf("tls=%s\n", *cfg->tls.cert_file ? "on" : "off");
	printf("auth.mode=%s\n", cfg->auth.mode == AUTH_TOKENS ? "tokens" : "none");
	printf("auth.tokens=%zu\n", cfg->auth.ntokens);
	printf("auth.metrics=%s\n", cfg->auth.metrics == METRICS_TOKEN ? "token" : "open");
	printf("mqtt_credentials=%s\n",
	       cfg->mqtt_credentials == CREDENTIALS_BRIDGE ? "bridge" : "passthrough");
	printf("mqtt_sessions=%s\n",
	       cfg->mqtt_sessions == SESSIONS_DEDICATED ? "dedicated" : "auto");
	printf("allowed_origins=");
	for (size_t i = 0; i < cfg->nallowed_origins; i++)
		printf("%s%s", i ? "," : "", cfg->allowed_origins[i]);
	printf("\n");
	printf("trusted_proxies=");
	for (size_t i = 0; i < cfg->ntrusted_proxies; i++)
		printf("%s%s", i ? "," : "", cfg->trusted_proxies[i]);
	printf("\n");
	printf("limits.max_connections=%ld\n", cfg->limits.max_connections);
	printf("limits.max_packet_bytes=%ld\n", cfg->limits.max_packet_bytes);
	printf("limits.max_body_bytes=%ld\n", cfg->limits.max_body_bytes);
	printf("limits.max_subscriptions=%ld\n", cfg->limits.max_subscriptions);
	printf("limits.max_queue_bytes=%ld\n", cfg->limits.max_queue_bytes);
	printf("limits.requests_per_minute=%ld\n", cfg->limits.requests_per_minute);
}

/* Reads the command line and the configuration; exits with 0 or 2 when start-up must stop. */
/*
 * --new-token NAME: the secret goes to stdout alone on the first line (for scripts) and is never
 * stored; the config entry holds only its hash. The ACLs start empty: the operator grants.
 */
static int new_token(const char *name)
{
	char secret[AUTH_SECRET_LEN + 1];
	uint8_t hash[32];

	if (!config_token_name_valid(name)) {
		fprintf(stderr,
			"mqtt-web-bridge: token name '%s' is not valid (letters, digits, "
			"'-', '_', '.')\n",
			name);
		return 2;
	}
	if (auth_new_secret(secret)) {
		fprintf(stderr, "mqtt-web-bridge: no randomness available for a secret\n");
		return 1;
	}
	auth_sha256(secret, strlen(secret), hash);
	printf("%s\n", secret);
	printf("\n# The secret above is shown once; the config keeps only its hash. Add this to\n"
	       "# \"auth.tokens\", fill in the filters it may publish to and subscribe to\n"
	       "# (\"{name}\" stands for the token's name), then reload with SIGHUP:\n"
	       "{\"name\": \"%s\", \"sha256\": \"",
	       name);
	for (size_t i = 0; i < sizeof(hash); i++)
		printf("%02x", hash[i]);
	printf("\", \"publish\": [], \"subscribe\": []}\n");
	explicit_bzero(secret, sizeof(secret));
	return 0;
}

/*
 * getopt's own messages would echo "--broker-url=mqtt://user:password@host" as typed: it is
 * told to be quiet (opterr 0), and this says what it would, without the password.
 */
static void bad_option(int opt, char **argv)
{
	const char *arg = argv[optind - 1];
	const char *what = opt == ':' ? "a value is missing after" : "unknown or ambiguous";
	char shown[512];

	if (strncmp(arg, "--", 2) && optopt > 0 && optopt < 128)
		fprintf(stderr, "mqtt-web-bridge: %s option '-%c'\n", what, optopt);
	else
		fprintf(stderr, "mqtt-web-bridge: %s option '%s'\n", what,
			config_url_for_display(arg, shown, sizeof(shown)));
}

/* What the command line asked for; its strings point into argv. */
struct cli {
	const char *config_path, *listen, *static_dir;
	char *broker;
	bool verbose, check;
};

/* Options that answer at once (--help, --version, --new-token) exit here; so do mistakes (2). */
static void parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"broker", required_argument, NULL, 'b'},
	    {"static", required_argument, NULL, 's'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"check", no_argument, NULL, 'C'},
	    {"new-token", required_argument, NULL, OPT_NEW_TOKEN},
	    {NULL, 0, NULL, 0},
	};
	char shown[512];
	int opt;

	memset(cli, 0, sizeof(*cli));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:l:b:s:vhVC", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cli->config_path = optarg;
			break;
		case 'l':
			cli->listen = optarg;
			break;
		case 'b':
			cli->broker = optarg;
			break;
		case 's':
			cli->static_dir = optarg;
			break;
		case 'v':
			cli->verbose = true;
			break;
		case 'C':
			cli->check = true;
			break;
		case OPT_NEW_TOKEN:
			exit(new_token(optarg));
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("mqtt-web-bridge %s\n", MWB_VERSION);
			exit(0);
		default:
			bad_option(opt, argv);
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		/* "mqtt-web-bridge mqtt://user:password@host" forgets --broker. */
		fprintf(stderr, "mqtt-web-bridge: unexpected argument '%s'\n",
			config_url_for_display(argv[optind], shown, sizeof(shown)));
		usage(stderr);
		exit(2);
	}
}

static void load_config(struct app *app, int argc, char **argv)
{
	struct cli cli;
	const char *config_path;
	char err[512];

	parse_args(argc, argv, &cli);
	config_path = cli.config_path;
	if (config_init(&app->cfg)) {
		fprintf(stderr, "mqtt-web-bridge: out of memory\n");
		exit(1);
	}
	/* The repository's config/ first (scripts/run.sh), then the installed one (meson install). */
	if (!config_path && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		config_path = CONFIG_DEFAULT_PATH;
	else if (!config_path && access(MWB_INSTALLED_CONFIG, F_OK) == 0)
		config_path = MWB_INSTALLED_CONFIG;
	if ((config_path && config_load_file(&app->cfg, config_path, err, sizeof(err))) ||
	    (cli.listen && config_set_listen(&app->cfg, cli.listen, err, sizeof(err))) ||
	    (cli.broker && config_set_string(&app->cfg.broker.url, cli.broker)) ||
	    (cli.static_dir && config_set_string(&app->cfg.static_dir, cli.static_dir)) ||
	    config_check(&app->cfg, err, sizeof(err))) {
		fprintf(stderr, "mqtt-web-bridge: configuration error: %s\n", err);
		exit(2);
	}
	/* The copy is in the config now: what `ps` shows of the command line loses the password. */
	if (cli.broker)
		config_url_hide_password(cli.broker);
	/*
	 * The default static_dir names the repository's folder; an installed bridge runs elsewhere
	 * (systemd: in /), so without that folder it serves the installed browser files. Any other
	 * static_dir is taken as it is, and a missing one is a start-up error.
	 */
	if (!strcmp(app->cfg.static_dir, CONFIG_DEFAULT_STATIC) &&
	    access(CONFIG_DEFAULT_STATIC, F_OK) != 0 &&
	    config_set_string(&app->cfg.static_dir, MWB_INSTALLED_STATIC)) {
		fprintf(stderr, "mqtt-web-bridge: out of memory\n");
		config_clear(&app->cfg);
		exit(1);
	}
	if (cli.verbose)
		app->cfg.log_level = LOG_DEBUG;
	if (cli.check) {
		print_settings(&app->cfg, config_path);
		config_clear(&app->cfg);
		exit(0);
	}
	log_set_level((enum log_level)app->cfg.log_level);
	app->config_path = config_path;
	if (config_path)
		log_msg(LOG_INFO, "main", "config path=\"%s\"", config_path);
}

/* Any thread (Paho's): the evq has something for the service thread. */
static void wake_service(void *user)
{
	struct app *app = user;
	struct web_server *web;

	atomic_fetch_add(&app->waking, 1);
	web = atomic_load(&app->wake_target);
	if (web)
		web_server_wake(web);
	atomic_fetch_sub(&app->waking, 1);
}

/* Main thread: no Paho thread wakes the web server from now on; returns once none is inside a
 * wake (one that loaded the target before it went NULL counted itself first). */
static void stop_waking(struct app *app)
{
	atomic_store(&app->wake_target, NULL);
	while (atomic_load(&app->waking))
		sched_yield();
}

static void drain_events(struct app *app)
{
	struct evq_item *it = evq_take_all(app->evq), *next;

	for (; it; it = next) {
		next = it->next;
		upstream_dispatch((struct upstream_event *)it);
	}
}

/* Shutting down ends when nothing is in flight any more, or when the wait is over. */
static void check_done(struct app *app)
{
	struct hub_stats hs;

	if (!app->stopping || app->done)
		return;
	hub_get_stats(app->hub, &hs);
	if ((sessions_count(app->sessions) == 0 && hs.pending == 0 && !web_server_busy(app->web)) ||
	    app->stop_ticks >= SHUTDOWN_WAIT_S)
		app->done = true;
}

static void on_wake(void *user)
{
	drain_events(user);
	check_done(user);
}

static void begin_shutdown(struct app *app, int signo)
{
	if (app->stopping) {
		log_msg(LOG_WARN, "main", "shutdown-forced signal=%d", signo);
		app->done = true;
		return;
	}
	log_msg(LOG_INFO, "main", "shutdown signal=%d sessions=%zu", signo,
		sessions_count(app->sessions));
	app->stopping = true;
	notify_stopping();
	app->stop_ticks = 0;
	web_server_begin_shutdown(app->web);
	sessions_shutdown(app->sessions);
	check_done(app);
}

/*
 * SIGHUP: the token list is read again from the config file. Holders of a token that is still
 * there (same name, same hash) keep their connections under its new ACL; the others are
 * closed. A file that fails its checks changes nothing. Other keys need a restart.
 */
static void reload_tokens(struct app *app)
{
	struct config fresh;
	struct auth *auth;
	char err[512], quoted[600];
	size_t closed;

	if (!app->config_path) {
		log_msg(LOG_WARN, "main", "reload-skipped reason=\"no config file\"");
		return;
	}
	if (config_init(&fresh))
		return;
	if (config_load_file(&fresh, app->config_path, err, sizeof(err)) ||
	    config_check(&fresh, err, sizeof(err))) {
		log_msg(LOG_ERROR, "main", "reload-failed kept=old error=%s",
			log_quote(quoted, sizeof(quoted), err, strlen(err)));
		goto out;
	}
	if (fresh.auth.mode != app->cfg.auth.mode)
		log_msg(LOG_WARN, "main",
			"reload auth.mode-unchanged=true reason=\"needs a restart\"");
	/* The TLS files named at start are read again (on_signal); other names need a restart. */
	if (strcmp(fresh.tls.cert_file, app->cfg.tls.cert_file) ||
	    strcmp(fresh.tls.key_file, app->cfg.tls.key_file))
		log_msg(LOG_WARN, "main",
			"reload tls-paths-unchanged=true reason=\"needs a restart\"");
	auth = auth_new(&fresh);
	if (!auth) {
		log_msg(LOG_ERROR, "main", "reload-failed kept=old error=\"out of memory\"");
		goto out;
	}
	auth->enabled = app->auth->enabled;
	closed = web_server_set_auth(app->web, auth);
	closed += sessions_set_auth(app->sessions, auth);
	auth_unref(app->auth);
	app->auth = auth;
	log_msg(LOG_INFO, "main", "reload tokens=%zu closed=%zu", auth->ntokens, closed);
out:
	config_clear(&fresh);
}

static void on_signal(void *user)
{
	struct app *app = user;
	struct signalfd_siginfo si;

	while (read(app->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			begin_shutdown(app, (int)si.ssi_signo);
			break;
		case SIGHUP:
			reload_tokens(app);
			/* Renewed certificates: new handshakes get them, open connections stay. */
			(void)web_server_reload_tls(app->web);
			break;
		default:
			break;
		}
	}
}

/* Shared sessions follow the hub: a broker outage ends them, and CONNECTs that came while the
 * hub was connecting get their answer. */
static void on_broker_state(void *user, bool up)
{
	struct app *app = user;

	sessions_broker_state(app->sessions, up);
}

static void on_tick(void *user)
{
	struct app *app = user;

	sessions_tick(app->sessions);
	if (++app->ticks % EXPIRE_EVERY_S == 0)
		sessions_expire(app->sessions);
	hub_tick(app->hub);
	retained_tick(app->retained);
	if (app->stopping)
		app->stop_ticks++;
	check_done(app);
}

/* Signals arrive on a signalfd that lws polls; every thread, Paho's too, has them blocked. */
static int setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/*
 * A dedicated browser session costs two descriptors (its socket and its Paho client's; a shared
 * one only its socket), and lws sizes its table from the limit when the server starts: the soft
 * limit goes up to the hard one, and a limit that cannot hold limits.max_connections dedicated
 * sessions is said at once rather than found at runtime.
 */
static void raise_fd_limit(long max_connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_connections * 2 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_msg(LOG_WARN, "main",
			"fd-limit-low limit=%llu needed=%llu max_connections=%ld hint=\"raise "
			"LimitNOFILE / ulimit -n, or lower limits.max_connections\"",
			(unsigned long long)rl.rlim_cur, (unsigned long long)want, max_connections);
}

/* The bridge's own broker links: the hub, and the reader of retained messages. */
static int start_hub(struct app *app)
{
	const struct config *cfg = &app->cfg;
	struct hub_config hc;
	struct retained_config rc;
	struct link_config link;
	char reader_id[256];

	memset(&link, 0, sizeof(link));
	link.env = &app->env;
	link.client_id = cfg->broker.client_id;
	link.username = cfg->broker.username;
	link.password = cfg->broker.password;
	link.keepalive_s = (int)cfg->broker.keepalive_s;
	memset(&hc, 0, sizeof(hc));
	hc.link = link;
	hc.replay_events = (size_t)cfg->sse.replay;
	hc.replay_bytes = REPLAY_MAX_BYTES;
	hc.headroom = web_write_headroom();
	app->hub = hub_new(&hc);
	if (!app->hub)
		return -1;
	memset(&rc, 0, sizeof(rc));
	snprintf(reader_id, sizeof(reader_id), "%s-retained", hub_client_id(app->hub));
	rc.link = link;
	rc.link.client_id = reader_id;
	rc.max_messages = RETAINED_MAX_MESSAGES;
	rc.max_bytes = RETAINED_MAX_BYTES;
	app->retained = retained_new(&rc);
	return app->retained ? 0 : -1;
}

static const char *display_host(const char *host)
{
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !*host)
		return "127.0.0.1";
	return host;
}

/* The broker environment every Paho client of the bridge shares (upstream.h). */
static void fill_env(struct app *app)
{
	const struct config *cfg = &app->cfg;

	app->env.evq = app->evq;
	app->env.url = cfg->broker.url;
	app->env.ca_file = cfg->broker.ca_file;
	app->env.cert_file = cfg->broker.cert_file;
	app->env.key_file = cfg->broker.key_file;
	app->env.verify = cfg->broker.verify;
	app->env.mqtt_version = cfg->broker.mqtt_version;
	app->env.connect_timeout_s = UPSTREAM_CONNECT_TIMEOUT_S;
	app->env.max_backlog = (size_t)cfg->limits.max_queue_bytes;
	app->env.waker = app->waker;
}

static int start_sessions(struct app *app)
{
	const struct config *cfg = &app->cfg;
	struct sessions_config scfg;

	memset(&scfg, 0, sizeof(scfg));
	scfg.env = &app->env;
	scfg.max_packet_bytes = (size_t)cfg->limits.max_packet_bytes;
	scfg.max_queue_bytes = (size_t)cfg->limits.max_queue_bytes;
	scfg.max_sessions = (size_t)cfg->limits.max_connections;
	scfg.connect_wait_ms = CONNECT_WAIT_MS;
	scfg.max_subscriptions = (size_t)cfg->limits.max_subscriptions;
	scfg.bridge_credentials = cfg->mqtt_credentials == CREDENTIALS_BRIDGE;
	scfg.broker_username = cfg->broker.username;
	scfg.broker_password = cfg->broker.password;
	scfg.shared_sessions = cfg->mqtt_sessions == SESSIONS_AUTO;
	scfg.auth_none = cfg->auth.mode == AUTH_NONE;
	scfg.hub = app->hub;
	scfg.retained = app->retained;
	app->sessions = sessions_new(&scfg);
	if (!app->sessions)
		return -1;
	sessions_set_auth(app->sessions, app->auth);
	hub_set_state_fn(app->hub, on_broker_state, app);
	return 0;
}

static int start_web(struct app *app)
{
	const struct config *cfg = &app->cfg;
	struct web_hooks hooks;
	struct web_deps deps;
	const char *lbracket = strchr(cfg->listen_host, ':') ? "[" : "";
	const char *rbracket = *lbracket ? "]" : "";
	const char *host = display_host(cfg->listen_host);
	bool tls = *cfg->tls.cert_file;

	hooks.wake = on_wake;
	hooks.tick = on_tick;
	hooks.signal = on_signal;
	hooks.user = app;
	deps.sessions = app->sessions;
	deps.hub = app->hub;
	deps.retained = app->retained;
	deps.started_ms = clock_mono_ms();
	deps.auth = app->auth;
	app->web = web_server_new(cfg, &deps, &hooks, app->signal_fd);
	if (!app->web)
		return -1;
	/* The hub's links may have pushed events already, their wake-up lost (nobody to wake
	 * yet, and the evq wakes once per batch): one wake-up now takes them. */
	atomic_store(&app->wake_target, app->web);
	web_server_wake(app->web);
	log_msg(LOG_INFO, "main",
		"listening url=%s://%s%s%s:%d/ mqtt=%s://%s%s%s:%d/mqtt broker=%s",
		tls ? "https" : "http", lbracket, host, rbracket, cfg->listen_port,
		tls ? "wss" : "ws", lbracket, host, rbracket, cfg->listen_port, cfg->broker.url);
	return 0;
}

/* Closing the web server detaches what is left; then the upstreams go (doc/design.md §5). */
static void stop_all(struct app *app)
{
	stop_waking(app);
	web_server_free(app->web);
	app->web = NULL;
	if (app->evq)
		drain_events(app);
	sessions_free(app->sessions);
	retained_free(app->retained);
	hub_free(app->hub);
	if (app->evq)
		drain_events(app);
	waker_free(app->waker);
	evq_free(app->evq);
	auth_unref(app->auth);
	if (app->signal_fd >= 0)
		close(app->signal_fd);
}

int main(int argc, char **argv)
{
	struct app app;
	int status = 1;

	memset(&app, 0, sizeof(app));
	app.signal_fd = -1;
	load_config(&app, argc, argv);

	linger_init();
	upstream_init();
	raise_fd_limit(app.cfg.limits.max_connections);
	app.signal_fd = setup_signals();
	if (app.signal_fd < 0) {
		log_msg(LOG_ERROR, "main", "signals-setup-failed error=\"%s\"", strerror(errno));
		goto out;
	}
	app.auth = auth_new(&app.cfg);
	app.evq = evq_new(wake_service, &app);
	if (!app.auth || !app.evq)
		goto out;
	app.waker = waker_new();
	fill_env(&app);

	/* The hub first: shared sessions are served from it. */
	if (start_hub(&app) || start_sessions(&app) || start_web(&app))
		goto out;
	notify_ready(app.cfg.listen);

	while (!app.done)
		web_server_service(app.web);
	status = 0;
out:
	stop_all(&app);
	log_msg(status ? LOG_ERROR : LOG_INFO, "main", "exit status=%d", status);
	config_clear(&app.cfg);
	return status;
}
