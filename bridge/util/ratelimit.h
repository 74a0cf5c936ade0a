/*
 * bridge/util/ratelimit.h — request rate limits (limits.requests_per_minute, doc/design.md §4):
 * one token bucket per key (an access token's name, or a client address).
 *
 * A bucket holds up to @per_minute requests and refills at @per_minute / 60 per second, so a key
 * may burst a minute's worth and then goes at the steady rate. Keys come from the network, so
 * their number is bounded: a full bucket is the same as no bucket and is dropped when seen, and
 * when @max_keys are tracked the one idle longest makes room. Pure; one thread at a time.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/** @per_minute >= 1, @max_keys >= 1. NULL when out of memory. */
struct ratelimit *ratelimit_new(long per_minute, size_t max_keys);

/**
 * One request of @key (@len bytes, any bytes) at @now_ms (a monotonic clock in milliseconds).
 * 0: allowed, one token taken. > 0: refused, nothing taken; the whole seconds (rounded up) until
 * a token is there. -ENOMEM: the key could not be tracked (the caller decides; it is allowed).
 */
long ratelimit_take(struct ratelimit *rl, const void *key, size_t len, uint64_t now_ms);

/** Keys tracked now (for tests and metrics). */
size_t ratelimit_keys(const struct ratelimit *rl);

/** Frees @rl. NULL does nothing. */
void ratelimit_free(struct ratelimit *rl);
