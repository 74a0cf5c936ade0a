/*
 * bench/loadgen_mqtt.c — loadgen's MQTT: CONNECT and SUBSCRIBE, the packets a connection receives,
 * and publishing (closed loop or at a fixed rate).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loadgen.h"

/* ---- MQTT ---- */

static void client_id(struct lg *g, struct conn *c, char *out, size_t cap)
{
	static const char *roles[] = {"p", "s", "i", "c"};
	snprintf(out, cap, "bench-%d-%s%d-%u", (int)getpid(), roles[c->role], c->idx, c->gen);
	(void)g;
}

int mqtt_connect(struct lg *g, struct conn *c)
{
	char id[64];
	struct mqtt_packet p = {.type = MQTT_CONNECT};

	client_id(g, c, id, sizeof(id));
	p.u.connect.version = MQTT_V311;
	p.u.connect.clean_start = true;
	/* Long enough that no PINGREQ is due during a run; the servers still keep the timer. */
	p.u.connect.keepalive = 600;
	p.u.connect.client_id = (struct mqtt_bytes){(const uint8_t *)id, strlen(id)};
	c->state = ST_CONNACK;
	return send_packet(g, c, &p);
}

static void own_topic(struct lg *g, struct conn *c, char *out, size_t cap)
{
	snprintf(out, cap, "bench/%d/own/%c%d", (int)getpid(), c->role == R_IDLE ? 'i' : 'c',
		 c->idx);
	(void)g;
}

static int mqtt_subscribe(struct lg *g, struct conn *c, const char *topic, int qos)
{
	struct buf entries = BUF_INIT;
	struct mqtt_packet p = {.type = MQTT_SUBSCRIBE};
	int rc = codec_put_entry(&entries, MQTT_SUBSCRIBE, topic, strlen(topic), (uint8_t)qos);

	if (rc)
		return rc;
	p.u.sub.packet_id = 1;
	p.u.sub.entries = (struct mqtt_bytes){entries.data, entries.len};
	p.u.sub.count = 1;
	rc = send_packet(g, c, &p);
	buf_clear(&entries);
	c->state = ST_SUBACK;
	return rc;
}

void became_ready(struct lg *g, struct conn *c)
{
	c->state = ST_READY;
	g->connecting--;
	g->ready++;
}

static void on_mqtt(struct lg *g, struct conn *c, const struct mqtt_packet *p)
{
	char topic[160];

	switch (p->type) {
	case MQTT_CONNACK:
		if (c->state != ST_CONNACK || p->u.connack.code != 0) {
			conn_fail(g, c, "CONNACK refused");
			return;
		}
		if (c->role == R_SUB) {
			mqtt_subscribe(g, c, g->topic, g->qos);
		} else if (c->role == R_IDLE || c->role == R_CHURN) {
			own_topic(g, c, topic, sizeof(topic));
			mqtt_subscribe(g, c, topic, c->role == R_CHURN ? 1 : 0);
		} else {
			became_ready(g, c);
		}
		return;
	case MQTT_SUBACK:
		if (c->state != ST_SUBACK || p->u.suback.codes.len != 1 ||
		    p->u.suback.codes.data[0] >= 0x80) {
			conn_fail(g, c, "SUBACK refused");
			return;
		}
		became_ready(g, c);
		if (c->role == R_CHURN) {
			/* One round trip through the server per visit: publish to ourselves at QoS 1. */
			uint8_t pl[64];
			struct mqtt_packet pub = {.type = MQTT_PUBLISH};
			own_topic(g, c, topic, sizeof(topic));
			payload_make(pl, sizeof(pl), 0, 0, now_ns());
			pub.u.publish.qos = 1;
			pub.u.publish.packet_id = 1;
			pub.u.publish.topic =
			    (struct mqtt_bytes){(const uint8_t *)topic, strlen(topic)};
			pub.u.publish.payload = (struct mqtt_bytes){pl, sizeof(pl)};
			send_packet(g, c, &pub);
		}
		return;
	case MQTT_PUBLISH:
		if (p->u.publish.qos > 0) {
			struct mqtt_packet ack = {.type = MQTT_PUBACK};
			ack.u.ack.packet_id = p->u.publish.packet_id;
			send_packet(g, c, &ack);
		}
		if (c->role == R_CHURN) {
			c->got_own = true;
			g->churn_roundtrips++;
		} else if (c->role == R_SUB) {
			deliver(g, c, p->u.publish.payload.data, p->u.publish.payload.len);
		}
		return;
	case MQTT_PUBACK:
		if (c->acks_pending)
			c->acks_pending--;
		return;
	case MQTT_PINGRESP:
		return;
	default:
		conn_fail(g, c, "unexpected MQTT packet");
		return;
	}
}

/* Takes whole MQTT packets from the front of @b. */
void mqtt_stream(struct lg *g, struct conn *c, struct buf *b)
{
	size_t off = 0;

	while (c->fd >= 0 && off < b->len) {
		size_t plen;
		int rc = codec_frame(b->data + off, b->len - off, &plen);
		if (rc == -EAGAIN || (!rc && plen > b->len - off))
			break;
		struct mqtt_packet p;
		if (rc || codec_decode(b->data + off, plen, MQTT_V311, &p, NULL)) {
			conn_fail(g, c, "malformed MQTT from the server");
			return;
		}
		on_mqtt(g, c, &p);
		off += plen;
	}
	if (c->fd < 0)
		return;
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
}

/* ---- publishing ---- */

static int publish_one(struct lg *g, struct conn *c, uint32_t seq)
{
	uint8_t pl[4096];
	int64_t ts = now_ns();

	payload_make(pl, (size_t)g->payload, (unsigned)c->idx, seq, ts);
	if (c->kind == K_HTTP) {
		char head[512];
		int n = snprintf(head, sizeof(head),
				 "POST /api/v1/publish/%s?qos=%d HTTP/1.1\r\nHost: %s\r\n"
				 "Content-Length: %d\r\n\r\n",
				 g->topic, g->qos, g->pub_ep.host, g->payload);
		if (n < 0 || (size_t)n >= sizeof(head) || buf_append(&c->out, head, (size_t)n) ||
		    buf_append(&c->out, pl, (size_t)g->payload))
			return -ENOMEM;
		c->http_busy = true;
		c->acks_pending++;
		mark_dirty(g, c);
		return 0;
	}
	struct mqtt_packet p = {.type = MQTT_PUBLISH};
	p.u.publish.qos = (uint8_t)g->qos;
	if (g->qos) {
		p.u.publish.packet_id = (uint16_t)(seq % 65535u + 1u);
		c->acks_pending++;
	}
	p.u.publish.topic = (struct mqtt_bytes){(const uint8_t *)g->topic, strlen(g->topic)};
	p.u.publish.payload = (struct mqtt_bytes){pl, (size_t)g->payload};
	return send_packet(g, c, &p);
}

void pump(struct lg *g)
{
	if (g->phase != PH_RUN || g->rate > 0)
		return;
	for (int i = 0; i < g->npubs; i++) {
		struct conn *c = &g->pubs[i];
		if (c->fd < 0)
			continue;
		while (!c->http_busy && c->sent - g->done[i] < (uint32_t)g->window) {
			if (publish_one(g, c, c->sent + 1))
				break;
			c->sent++;
		}
	}
}

void on_timer(struct lg *g)
{
	uint64_t ticks = 0;
	if (read(g->tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (g->phase == PH_WARMUP) {
		/* Probes until every subscriber has one: SSE streams have no SUBACK to wait for. */
		for (int i = 0; i < g->npubs; i++)
			if (g->pubs[i].fd >= 0 && !g->pubs[i].http_busy)
				publish_one(g, &g->pubs[i], 0);
		return;
	}
	if (g->phase != PH_RUN || g->rate <= 0)
		return;
	for (int i = 0; i < g->npubs; i++) {
		struct conn *c = &g->pubs[i];
		for (uint64_t k = 0; k < ticks && c->fd >= 0 && !c->http_busy; k++)
			if (!publish_one(g, c, c->sent + 1))
				c->sent++;
	}
}

void timer_set(struct lg *g, int64_t interval_ns)
{
	struct itimerspec it = {0};
	it.it_interval.tv_sec = interval_ns / 1000000000LL;
	it.it_interval.tv_nsec = interval_ns % 1000000000LL;
	it.it_value = it.it_interval;
	timerfd_settime(g->tfd, 0, &it, NULL);
}
