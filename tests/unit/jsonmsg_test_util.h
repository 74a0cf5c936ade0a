/* tests/unit/jsonmsg_test_util.h — helpers shared by the jsonmsg tests (test_jsonmsg_*.c). */
#ifndef JSONMSG_TEST_UTIL_H
#define JSONMSG_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsonmsg.h"

static inline struct jsonmsg_batch parse_ok(const char *json, size_t max)
{
	struct jsonmsg_batch b = {NULL, 0, false};
	struct jsonmsg_error err = {0, NULL, ""};
	int rc = jsonmsg_parse(json, strlen(json), max, &b, &err);
	if (rc)
		fail_msg("%s refused: %d %s %s", json, rc, err.code ? err.code : "-", err.message);
	return b;
}

static inline void assert_payload(const struct jsonmsg *m, const void *want, size_t len)
{
	if (m->payload_len != len)
		fail_msg("payload of %zu bytes \"%.*s\", wanted %zu \"%.*s\"", m->payload_len,
			 (int)m->payload_len, m->payload ? (const char *)m->payload : "", len,
			 (int)len, (const char *)want);
	if (len)
		assert_memory_equal(m->payload, want, len);
	else
		assert_null(m->payload);
}

static inline void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t len)
{
	assert_int_equal(got_len, len);
	if (len)
		assert_memory_equal(got, want, len);
}

#endif
