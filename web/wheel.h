/*
 * web/wheel.h — deadlines for many connections: armed, moved and cancelled in O(1).
 *
 * lws 4.1 keeps every timer in one list sorted by due time and inserts by walking it from the
 * head; a keepalive deadline, being the latest, walks all of them. With one lws timer per
 * browser every re-arm cost O(browsers), and a crowd of browsers O(browsers²). Here entries go
 * into slots by due time (a hashed timing wheel); one lws timer steps it a slot at a time.
 * Pure code, no lws: times are plain microseconds on any monotonic clock.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define WHEEL_SLOTS 512
/* Deadlines fire up to one slot late: 50 ms, well inside MQTT's keepalive grace. */
#define WHEEL_SLOT_US 50000

struct wheel_entry {
	struct wheel_entry *prev, *next; /* NULL: not armed */
	int64_t due_us;
};

struct wheel {
	struct wheel_entry slots[WHEEL_SLOTS]; /* list heads */
	int64_t next_us;                       /* start of the first slot not yet expired */
	size_t armed;
};

typedef void (*wheel_expired_fn)(struct wheel_entry *e, void *arg);

void wheel_init(struct wheel *w, int64_t now_us);

/** Arms @e for @due_us, moving it when it was armed already. A time past fires at the next step. */
void wheel_set(struct wheel *w, struct wheel_entry *e, int64_t due_us);

/** Disarms @e; nothing when it is not armed. */
void wheel_cancel(struct wheel *w, struct wheel_entry *e);

/**
 * Disarms every entry due at or before @now_us in the slots that have ended by then and calls
 * @fn for each; @fn may arm or cancel any entry. Returns how many expired.
 */
size_t wheel_expire(struct wheel *w, int64_t now_us, wheel_expired_fn fn, void *arg);
