/* bridge/paho/upstream_props.c — MQTT 5 properties between the codec's bytes and Paho's lists. */
#include <errno.h>
#include <string.h>

#include "props.h"
#include "upstream_int.h"

/* Serialises Paho properties as MQTT property bytes; Topic Alias is the link's own business. */
int upstream_props_from_paho(const MQTTProperties *in, struct buf *out)
{
	int rc = 0;

	for (int i = 0; in && i < in->count && !rc; i++) {
		const MQTTProperty *p = &in->array[i];
		uint8_t id = (uint8_t)p->identifier;

		switch (props_type(id)) {
		case MQTT_PROP_T_BYTE:
			rc = props_put_int(out, id, p->value.byte);
			break;
		case MQTT_PROP_T_U16:
			if (id != MQTT_PROP_TOPIC_ALIAS)
				rc = props_put_int(out, id, p->value.integer2);
			break;
		case MQTT_PROP_T_U32:
		case MQTT_PROP_T_VARINT:
			rc = props_put_int(out, id, p->value.integer4);
			break;
		case MQTT_PROP_T_STRING:
		case MQTT_PROP_T_BINARY:
			rc =
			    props_put_bytes(out, id, p->value.data.data, (size_t)p->value.data.len);
			break;
		case MQTT_PROP_T_PAIR:
			rc = props_put_pair(out, p->value.data.data, (size_t)p->value.data.len,
					    p->value.value.data, (size_t)p->value.value.len);
			break;
		default:
			break;
		}
	}
	return rc;
}

/*
 * Fills Paho properties from validated property bytes, leaving out the identifiers in @drop.
 * 0 or -ENOMEM; on error the caller still frees @out.
 */
int upstream_props_to_paho(struct mqtt_bytes in, const uint8_t *drop, size_t ndrop,
			   MQTTProperties *out)
{
	struct props_iter it;
	struct mqtt_prop p;

	props_iter_init(&it, in.data, in.len);
	while (props_next(&it, &p)) {
		MQTTProperty q;
		if (ndrop && memchr(drop, p.id, ndrop))
			continue;
		memset(&q, 0, sizeof(q));
		q.identifier = (enum MQTTPropertyCodes)p.id;
		switch (props_type(p.id)) {
		case MQTT_PROP_T_BYTE:
			q.value.byte = (unsigned char)p.value;
			break;
		case MQTT_PROP_T_U16:
			q.value.integer2 = (unsigned short)p.value;
			break;
		case MQTT_PROP_T_U32:
		case MQTT_PROP_T_VARINT:
			q.value.integer4 = p.value;
			break;
		case MQTT_PROP_T_PAIR:
		case MQTT_PROP_T_STRING:
		case MQTT_PROP_T_BINARY:
			/* A pair's name goes where a string's value goes. */
			q.value.data.data = (char *)p.data;
			q.value.data.len = (int)p.len;
			q.value.value.data = (char *)p.data2;
			q.value.value.len = (int)p.len2;
			break;
		default:
			continue;
		}
		/* Paho copies string data into its own allocation. */
		if (MQTTProperties_add(out, &q))
			return -ENOMEM;
	}
	return 0;
}
