/*
 * bridge/paho/linger.c — lets Paho's connections end with a FIN, not a reset.
 *
 * Paho closes a connection with shutdown(SHUT_WR) and close() right after. When the broker has
 * sent something meanwhile (a message for a subscription, an ack) that Paho has not read, Linux
 * answers close() with a reset, and a broker that gets the reset may drop what it had not yet
 * handled: the client's last PUBLISHes and its DISCONNECT, so the will is published although the
 * browser disconnected cleanly. This file interposes shutdown(): on Paho's threads, after
 * SHUT_WR, it reads and discards until the broker closes its side (which a broker does after
 * DISCONNECT), for at most LINGER_MS. The service thread (libwebsockets) is never held up: its
 * calls go straight through.
 */
#include "linger.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "clock.h"
#include "interpose.h"

#define LINGER_MS 100
/* Bytes read and dropped at a time. */
#define SCRATCH_SIZE 4096

/* Set once at startup, before any other thread exists; read-only afterwards. */
static pthread_t service_thread;
static atomic_bool enabled;

void linger_init(void)
{
	service_thread = pthread_self();
	atomic_store(&enabled, true);
}

/* Reads until the peer's FIN (or an error, or LINGER_MS), so close() finds nothing unread. */
static void drain(int fd)
{
	char scratch[SCRATCH_SIZE];
	uint64_t deadline = clock_mono_ms() + LINGER_MS;
	uint64_t now;

	while ((now = clock_mono_ms()) < deadline) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, (int)(deadline - now)) <= 0)
			return;
		n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

int shutdown(int fd, int how)
{
	static int (*real_shutdown)(int, int);
	int rc, type;
	socklen_t len = sizeof(type);

	if (!interpose_next(&real_shutdown, "shutdown"))
		return -1;
	rc = real_shutdown(fd, how);
	if (rc || how != SHUT_WR || !atomic_load(&enabled) ||
	    pthread_equal(pthread_self(), service_thread))
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM) {
		int saved = errno;
		drain(fd);
		errno = saved;
	}
	return rc;
}
