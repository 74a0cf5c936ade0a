/* bridge/util/clock.h — the bridge's clocks in milliseconds. Any thread. */
#pragma once
#include <stdint.h>

/** CLOCK_MONOTONIC in ms: deadlines, ages and rates (never goes back, ignores clock changes). */
uint64_t clock_mono_ms(void);

/** CLOCK_REALTIME in ms since the epoch: only for times shown to people ("received_at"). */
uint64_t clock_wall_ms(void);
