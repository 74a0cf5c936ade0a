/* web/query.c — undoing what form decoding does to MQTT filters. */
#include "query.h"

#include <string.h>

void query_restore_plus(char *f)
{
	size_t len = strlen(f);

	for (size_t i = 0; i < len; i++) {
		if (f[i] == ' ' && (i == 0 || f[i - 1] == '/') && (i + 1 == len || f[i + 1] == '/'))
			f[i] = '+';
	}
}
