/*
 * bridge/paho/nodelay.c — Paho's connections to the broker send at once (TCP_NODELAY).
 *
 * Paho C 1.3 leaves Nagle's algorithm on, and has no hook to reach its sockets. A bridge sends
 * small packets that must not wait: with Nagle, a PUBLISH that follows another one still
 * unacknowledged waits for the broker's delayed ACK, up to 40 ms, and the latency through the
 * bridge went from a quarter of a millisecond to 20 ms in half the runs. So connect() is
 * interposed: every TCP stream socket of the process gets TCP_NODELAY before it connects. The
 * bridge's only outgoing TCP connections are Paho's (and the waker's, which wants it too).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "interpose.h"

/* glibc declares it with a transparent union for the address (_GNU_SOURCE): the same here. */
int connect(int fd, __CONST_SOCKADDR_ARG arg, socklen_t len)
{
	static int (*real_connect)(int, __CONST_SOCKADDR_ARG, socklen_t);
	const struct sockaddr *addr = arg.__sockaddr__;
	int type = 0, one = 1;
	socklen_t tlen = sizeof(type);

	if (!interpose_next(&real_connect, "connect"))
		return -1;
	if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
	    !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) && type == SOCK_STREAM)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return real_connect(fd, arg, len);
}
