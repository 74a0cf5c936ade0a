/* bridge/paho/waker.c — a local fake broker for one Paho client, poked to end Paho's read poll. */
#include "waker.h"

#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"

/* Short enough to hide in a connect's own round trip, long enough to cost nothing. */
#define POKE_INTERVAL_NS 1000000L
/* How long after a request its kick follows: requests of a burst share one. */
#define KICK_DELAY_NS    2000000L
#define SETUP_TIMEOUT_MS 5000
#define MS_PER_S         1000
/* Bytes read and dropped at a time, and the most a CONNECT of the waker's own may take. */
#define SCRATCH_SIZE 256
#define CONNECT_MAX  512
/* "tcp://127.0.0.1:<port>", "mqtt-web-bridge-waker-<pid>" */
#define URL_SIZE 64
#define ID_SIZE  64

struct waker {
	int listen_fd;
	int peer_fd;
	MQTTAsync client;
	bool client_made;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int connecting;
	bool kick;
	bool stop;
};

static void pause_ns(long ns)
{
	struct timespec t = {0, ns};

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

/* Queues a QoS 0 PUBLISH on the waker's client: queuing wakes Paho's send thread. */
static void kick_send_thread(struct waker *w)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;

	m.payload = "k";
	m.payloadlen = 1;
	if (MQTTAsync_sendMessage(w->client, "k", &m, NULL) != MQTTASYNC_SUCCESS)
		log_msg(LOG_DEBUG, "waker", "kick-failed");
}

static void *poke_loop(void *arg)
{
	static const uint8_t pingresp[] = {MQTT_PINGRESP << MQTT_TYPE_SHIFT, 0};
	struct waker *w = arg;
	uint8_t scratch[SCRATCH_SIZE];

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		bool poke = w->connecting > 0, kick = w->kick;
		if (!poke && !kick) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		w->kick = false;
		pthread_mutex_unlock(&w->lock);
		pause_ns(poke ? POKE_INTERVAL_NS : KICK_DELAY_NS);
		/* Anything Paho says on this link is of no interest; keep the buffer empty. */
		while (read(w->peer_fd, scratch, sizeof(scratch)) > 0)
			;
		if (poke && write(w->peer_fd, pingresp, sizeof(pingresp)) < 0 && errno != EAGAIN)
			log_msg(LOG_DEBUG, "waker", "poke-failed error=\"%s\"", strerror(errno));
		if (kick)
			kick_send_thread(w);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Reads the client's whole CONNECT (the waker's own, a few dozen bytes) and accepts it. */
static int handshake(int fd)
{
	/* Remaining length 2: no session present, accepted. */
	static const uint8_t connack[] = {MQTT_CONNACK << MQTT_TYPE_SHIFT, 2, 0, MQTT_RC_SUCCESS};
	uint8_t buf[CONNECT_MAX];
	size_t have = 0, need = 0;

	while (!need || have < need) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, SETUP_TIMEOUT_MS) != 1)
			return -ETIMEDOUT;
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0)
			return -EIO;
		have += (size_t)n;
		if (!need && codec_frame(buf, have, &need) == 0 && need > sizeof(buf))
			return -EPROTO;
	}
	if (write(fd, connack, sizeof(connack)) != (ssize_t)sizeof(connack))
		return -EIO;
	return 0;
}

static int start_client(struct waker *w, int port)
{
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
	char url[URL_SIZE], id[ID_SIZE];

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	snprintf(id, sizeof(id), "mqtt-web-bridge-waker-%ld", (long)getpid());
	if (MQTTAsync_create(&w->client, url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
	    MQTTASYNC_SUCCESS)
		return -EIO;
	w->client_made = true;
	opts.keepAliveInterval = 0;
	opts.cleansession = 1;
	opts.MQTTVersion = MQTTVERSION_3_1_1;
	opts.connectTimeout = SETUP_TIMEOUT_MS / MS_PER_S;
	return MQTTAsync_connect(w->client, &opts) == MQTTASYNC_SUCCESS ? 0 : -EIO;
}

struct waker *waker_new(void)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	struct waker *w = calloc(1, sizeof(*w));
	struct pollfd p;
	int rc, one = 1;

	if (!w)
		return NULL;
	w->listen_fd = w->peer_fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	w->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->listen_fd < 0 || bind(w->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(w->listen_fd, 1) || getsockname(w->listen_fd, (struct sockaddr *)&addr, &len))
		goto fail;
	if (start_client(w, ntohs(addr.sin_port)))
		goto fail;
	p = (struct pollfd){w->listen_fd, POLLIN, 0};
	if (poll(&p, 1, SETUP_TIMEOUT_MS) != 1)
		goto fail;
	w->peer_fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (w->peer_fd < 0 || handshake(w->peer_fd))
		goto fail;
	/* Pokes come in pairs a few ms apart (Paho needs one to notice the connect and one more to
	 * read the CONNACK): Nagle would hold the second one back until a delayed ACK, 40 ms. */
	if (fcntl(w->peer_fd, F_SETFL, fcntl(w->peer_fd, F_GETFL) | O_NONBLOCK) ||
	    setsockopt(w->peer_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		goto fail;
	rc = pthread_create(&w->thread, NULL, poke_loop, w);
	if (rc)
		goto fail;
	w->thread_started = true;
	return w;
fail:
	log_msg(LOG_WARN, "waker", "setup-failed error=\"%s\" effect=\"connects take up to 2 s\"",
		strerror(errno));
	waker_free(w);
	return NULL;
}

void waker_connecting(struct waker *w, int delta)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->connecting += delta;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void waker_kick(struct waker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	if (!w->kick) {
		w->kick = true;
		pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
}

void waker_free(struct waker *w)
{
	if (!w)
		return;
	if (w->thread_started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	if (w->client_made)
		MQTTAsync_destroy(&w->client);
	if (w->peer_fd >= 0)
		close(w->peer_fd);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
