/* bridge/mqtt/msg.c — messages as one block, so queues move them by pointer and free them once. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

struct msg *msg_new(const void *topic, size_t topic_len, const void *payload, size_t payload_len,
		    const void *props, size_t props_len, uint8_t qos, bool retain)
{
	size_t size = sizeof(struct msg);
	struct msg *m;
	uint8_t *p;

	/* Each part is bounded by the packet size limit; check the sum anyway. */
	if (topic_len > SIZE_MAX / 4 || payload_len > SIZE_MAX / 4 || props_len > SIZE_MAX / 4)
		return NULL;
	size += topic_len + 1 + payload_len + props_len;
	m = malloc(size);
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->size = size;
	m->qos = qos;
	m->retain = retain;
	p = m->data;
	if (topic_len)
		memcpy(p, topic, topic_len);
	p[topic_len] = '\0';
	m->topic = (struct mqtt_bytes){p, topic_len};
	p += topic_len + 1;
	if (payload_len)
		memcpy(p, payload, payload_len);
	m->payload = (struct mqtt_bytes){p, payload_len};
	p += payload_len;
	if (props_len)
		memcpy(p, props, props_len);
	m->props = (struct mqtt_bytes){p, props_len};
	return m;
}

struct msg *msg_dup(const struct msg *m)
{
	struct msg *copy = msg_new(m->topic.data, m->topic.len, m->payload.data, m->payload.len,
				   m->props.data, m->props.len, m->qos, m->retain);

	if (copy) {
		copy->packet_id = m->packet_id;
		copy->state = m->state;
	}
	return copy;
}
