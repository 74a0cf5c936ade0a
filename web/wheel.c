/* web/wheel.c — a hashed timing wheel: the slot of an entry is its due time modulo the turn. */
#include "wheel.h"

static void list_init(struct wheel_entry *head)
{
	head->prev = head->next = head;
}

static void list_add(struct wheel_entry *head, struct wheel_entry *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}

static void list_del(struct wheel_entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static struct wheel_entry *slot_of(struct wheel *w, int64_t t)
{
	return &w->slots[(t / WHEEL_SLOT_US) % WHEEL_SLOTS];
}

void wheel_init(struct wheel *w, int64_t now_us)
{
	for (size_t i = 0; i < WHEEL_SLOTS; i++)
		list_init(&w->slots[i]);
	w->next_us = now_us - now_us % WHEEL_SLOT_US;
	w->armed = 0;
}

void wheel_cancel(struct wheel *w, struct wheel_entry *e)
{
	if (!e->next)
		return;
	list_del(e);
	w->armed--;
}

void wheel_set(struct wheel *w, struct wheel_entry *e, int64_t due_us)
{
	wheel_cancel(w, e);
	e->due_us = due_us;
	/* Slots behind next_us have been stepped past: a due time there goes to the next one. */
	list_add(slot_of(w, due_us < w->next_us ? w->next_us : due_us), e);
	w->armed++;
}

size_t wheel_expire(struct wheel *w, int64_t now_us, wheel_expired_fn fn, void *arg)
{
	struct wheel_entry due;
	size_t n = 0, steps = 0;

	list_init(&due);
	/* A slot is stepped once it has ended; entries of later turns stay in it. After a stall of
	 * more than a turn, one pass over every slot has seen every entry. */
	while (w->next_us + WHEEL_SLOT_US <= now_us && steps < WHEEL_SLOTS) {
		struct wheel_entry *head = slot_of(w, w->next_us);
		for (struct wheel_entry *e = head->next, *next; e != head; e = next) {
			next = e->next;
			if (e->due_us <= now_us) {
				list_del(e);
				list_add(&due, e);
			}
		}
		w->next_us += WHEEL_SLOT_US;
		steps++;
	}
	if (w->next_us + WHEEL_SLOT_US <= now_us)
		w->next_us = now_us - now_us % WHEEL_SLOT_US;
	/* Callbacks run on a list of our own, so that they may arm or cancel anything. */
	while (due.next != &due) {
		struct wheel_entry *e = due.next;
		list_del(e);
		w->armed--;
		n++;
		fn(e, arg);
	}
	return n;
}
