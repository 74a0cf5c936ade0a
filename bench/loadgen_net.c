/*
 * bench/loadgen_net.c — loadgen's connections: endpoints, the output queue, the WebSocket client
 * (masked frames out, unmasked frames in), HTTP publish and SSE input, and opening connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

/* ---- endpoints ---- */

int endpoint_parse(const char *url, struct endpoint *e)
{
	static const struct {
		const char *scheme;
		enum kind kind;
	} schemes[] = {{"ws://", K_WS}, {"tcp://", K_TCP}, {"http://", K_HTTP}, {"sse://", K_SSE}};
	const char *rest = NULL;

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].scheme);
		if (!strncmp(url, schemes[i].scheme, n)) {
			e->kind = schemes[i].kind;
			rest = url + n;
		}
	}
	if (!rest)
		return -EINVAL;
	const char *colon = strchr(rest, ':');
	char ip[40];
	if (!colon || (size_t)(colon - rest) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, rest, (size_t)(colon - rest));
	ip[colon - rest] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (port <= 0 || port > 65535)
		return -EINVAL;
	snprintf(e->path, sizeof(e->path), "%s", *end ? end : "/mqtt");
	snprintf(e->host, sizeof(e->host), "%s:%ld", ip, port);
	memset(&e->addr, 0, sizeof(e->addr));
	e->addr.sin_family = AF_INET;
	e->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &e->addr.sin_addr) != 1)
		return -EINVAL;
	return 0;
}

/* ---- output ---- */

void mark_dirty(struct lg *g, struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		g->dirty[g->ndirty++] = c;
	}
}

static int ws_frame(struct lg *g, struct buf *out, uint8_t opcode, const uint8_t *p, size_t len)
{
	uint8_t hdr[14];
	size_t h = 0;
	uint32_t key = rnd(g);

	hdr[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		hdr[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(len >> 8);
		hdr[h++] = (uint8_t)len;
	} else {
		return -ERANGE;
	}
	memcpy(hdr + h, &key, 4);
	h += 4;
	if (buf_reserve(out, h + len))
		return -ENOMEM;
	memcpy(out->data + out->len, hdr, h);
	uint8_t *dst = out->data + out->len + h;
	const uint8_t *mask = hdr + h - 4;
	for (size_t i = 0; i < len; i++)
		dst[i] = p[i] ^ mask[i & 3];
	out->len += h + len;
	return 0;
}

/* Queues one MQTT packet on @c: in its own WebSocket frame, or as it is over TCP. */
int send_packet(struct lg *g, struct conn *c, const struct mqtt_packet *pkt)
{
	struct buf *scratch = &g->scratch;
	int rc;

	if (c->kind == K_TCP) {
		rc = codec_encode(&c->out, MQTT_V311, pkt);
	} else {
		scratch->len = 0;
		rc = codec_encode(scratch, MQTT_V311, pkt);
		if (!rc)
			rc = ws_frame(g, &c->out, 0x2, scratch->data, scratch->len);
	}
	if (!rc)
		mark_dirty(g, c);
	return rc;
}

void conn_close(struct lg *g, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	if (c->state != ST_READY && c->state != ST_LEAVING && c->state != ST_OFF)
		g->connecting--;
	if (c->state == ST_READY)
		g->ready--;
	c->state = ST_OFF;
	c->in.len = 0;
	c->out.len = 0;
	c->out_off = 0;
	c->mq.len = 0;
	c->http_busy = false;
}

void conn_fail(struct lg *g, struct conn *c, const char *why)
{
	static const char *roles[] = {"publisher", "subscriber", "idle", "churn"};

	if (!g->errmsg)
		g->errmsg = why;
	if (g->errors++ < 10)
		fprintf(stderr, "loadgen: %s %d: %s\n", roles[c->role], c->idx, why);
	conn_close(g, c);
}

void flush(struct lg *g, struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
		if (n < 0) {
			if (errno == EAGAIN || errno == ENOTCONN)
				return; /* EPOLLOUT (edge) comes back when there is room */
			if (errno == EINTR)
				continue;
			conn_fail(g, c, "write failed");
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out.len = 0;
	c->out_off = 0;
}

void flush_dirty(struct lg *g)
{
	for (int i = 0; i < g->ndirty; i++) {
		struct conn *c = g->dirty[i];
		c->dirty = false;
		if (c->fd >= 0)
			flush(g, c);
	}
	g->ndirty = 0;
}

/* Length of the HTTP header block at the front of @b, or 0 while it is incomplete. */
static size_t http_head_len(const struct buf *b)
{
	for (size_t i = 3; i < b->len; i++)
		if (b->data[i] == '\n' && b->data[i - 1] == '\r' && b->data[i - 2] == '\n' &&
		    b->data[i - 3] == '\r')
			return i + 1;
	return 0;
}

static bool http_status_ok(const struct buf *b, const char *code)
{
	return b->len > 12 && !memcmp(b->data, "HTTP/1.1 ", 9) && !memcmp(b->data + 9, code, 3);
}

static void ws_input(struct lg *g, struct conn *c)
{
	struct buf *b = &c->in;
	size_t off = 0;

	if (c->state == ST_HANDSHAKE) {
		size_t h = http_head_len(b);
		if (!h)
			return;
		if (!http_status_ok(b, "101")) {
			conn_fail(g, c, "WebSocket upgrade refused");
			return;
		}
		off = h;
		if (mqtt_connect(g, c))
			return;
	}
	/* Frames from a server are not masked. */
	while (c->fd >= 0 && b->len - off >= 2) {
		const uint8_t *f = b->data + off;
		size_t avail = b->len - off, h = 2;
		uint64_t len = f[1] & 0x7f;
		if (len == 126) {
			if (avail < 4)
				break;
			len = (uint64_t)f[2] << 8 | f[3];
			h = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | f[2 + i];
			h = 10;
		}
		if (len > avail - h)
			break;
		uint8_t op = f[0] & 0x0f;
		if (op == 0x2 || op == 0x0) {
			if (buf_append(&c->mq, f + h, (size_t)len)) {
				conn_fail(g, c, "out of memory");
				return;
			}
		} else if (op == 0x9) {
			ws_frame(g, &c->out, 0xA, f + h, (size_t)len);
			mark_dirty(g, c);
		} else if (op == 0x8) {
			/* After our DISCONNECT a close is the expected answer; before it, a failure. */
			if (c->state == ST_LEAVING) {
				conn_close(g, c);
			} else {
				/* The status code says whose rule it was (1008 policy, 1011, ...). */
				fprintf(stderr, "loadgen: WebSocket close %u \"%.*s\"\n",
					len >= 2 ? (unsigned)(f[h] << 8 | f[h + 1]) : 0u,
					len > 2 ? (int)(len - 2) : 0, (const char *)f + h + 2);
				conn_fail(g, c, "WebSocket closed by the server");
			}
			return;
		}
		off += h + (size_t)len;
	}
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
	if (c->mq.len)
		mqtt_stream(g, c, &c->mq);
}

static void http_pub_input(struct lg *g, struct conn *c)
{
	for (;;) {
		size_t h = http_head_len(&c->in);
		if (!h)
			return;
		if (!http_status_ok(&c->in, "200")) {
			conn_fail(g, c, "HTTP publish refused");
			return;
		}
		size_t body = 0;
		const char *cl = memmem(c->in.data, h, "ontent-length:", 14);
		if (cl)
			body = strtoul(cl + 14, NULL, 10);
		if (c->in.len < h + body)
			return;
		memmove(c->in.data, c->in.data + h + body, c->in.len - h - body);
		c->in.len -= h + body;
		c->http_busy = false;
		if (c->acks_pending)
			c->acks_pending--;
	}
}

static void sse_input(struct lg *g, struct conn *c)
{
	struct buf *b = &c->in;
	size_t off = 0;

	if (c->state == ST_HANDSHAKE) {
		size_t h = http_head_len(b);
		if (!h)
			return;
		if (!http_status_ok(b, "200") || memmem(b->data, h, "chunked", 7)) {
			conn_fail(
			    g, c,
			    "SSE stream refused (or chunked, which this reader does not take)");
			return;
		}
		off = h;
		became_ready(g, c);
	}
	/* Lines; only "data:" lines matter, the payload is the JSON string after "payload":". */
	for (;;) {
		uint8_t *nl = memchr(b->data + off, '\n', b->len - off);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (b->data + off));
		const uint8_t *line = b->data + off;
		if (n > 5 && !memcmp(line, "data:", 5)) {
			const uint8_t *p = memmem(line, n, "\"payload\":\"", 11);
			if (p)
				deliver(g, c, p + 11, n - (size_t)(p + 11 - line));
		}
		off += n + 1;
	}
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
}

void on_readable(struct lg *g, struct conn *c)
{
	uint8_t tmp[65536];

	for (;;) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n == 0) {
			if (c->role == R_CHURN && c->state == ST_LEAVING) {
				conn_close(g, c);
				return;
			}
			g->closed++;
			conn_fail(g, c, "closed by the server");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_fail(g, c, "read failed");
			return;
		}
		if (buf_append(&c->in, tmp, (size_t)n)) {
			conn_fail(g, c, "out of memory");
			return;
		}
		if ((size_t)n < sizeof(tmp))
			break;
	}
	switch (c->kind) {
	case K_WS:
		ws_input(g, c);
		break;
	case K_TCP:
		mqtt_stream(g, c, &c->in);
		break;
	case K_HTTP:
		http_pub_input(g, c);
		break;
	case K_SSE:
		sse_input(g, c);
		break;
	}
}

/* ---- opening ---- */

int conn_open(struct lg *g, struct conn *c, const struct endpoint *e)
{
	char req[512];
	int n = 0;

	c->kind = e->kind;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&e->addr, sizeof(e->addr)) &&
	    errno != EINPROGRESS) {
		int rc = -errno;
		close(c->fd);
		c->fd = -1;
		return rc;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP,
				 .data.ptr = c};
	epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev);
	g->connecting++;
	c->state = ST_HANDSHAKE;
	c->warm = false;
	c->gen++;
	switch (e->kind) {
	case K_WS:
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
			     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
			     e->path, e->host);
		break;
	case K_SSE:
		n = snprintf(req, sizeof(req),
			     "GET /api/v1/stream?topic=%s HTTP/1.1\r\nHost: %s\r\n"
			     "Accept: text/event-stream\r\n\r\n",
			     g->topic, e->host);
		break;
	case K_TCP:
		return mqtt_connect(g, c);
	case K_HTTP:
		became_ready(g, c);
		return 0;
	}
	if (n < 0 || (size_t)n >= sizeof(req))
		return -ERANGE;
	buf_append(&c->out, req, (size_t)n);
	mark_dirty(g, c);
	return 0;
}

static struct conn *nth_conn(struct lg *g, int i)
{
	/* Subscribers first, so that they are listening before anyone publishes. */
	if (i < g->nsubs)
		return &g->subs[i];
	i -= g->nsubs;
	if (i < g->npubs)
		return &g->pubs[i];
	return &g->idle[i - g->npubs];
}

void open_more(struct lg *g)
{
	int total = g->nsubs + g->npubs + g->nidle;
	while (g->next_open < total && g->connecting < CONNECT_BURST) {
		struct conn *c = nth_conn(g, g->next_open);
		const struct endpoint *e = c->role == R_PUB ? &g->pub_ep : &g->sub_ep;
		int rc = conn_open(g, c, e);
		if (rc) {
			fprintf(stderr, "loadgen: connect %s: %s\n", e->host, strerror(-rc));
			g->errors++;
			g->errmsg = "connect failed";
		}
		g->next_open++;
	}
}
