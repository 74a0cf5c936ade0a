/*
 * bridge/paho/interpose.h — calling on from a libc function the bridge interposes (linger.c's
 * shutdown(), nodelay.c's connect()): Paho C has no hook into its sockets, so the executable
 * defines the function and passes each call to the definition it hides.
 */
#pragma once
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

/**
 * Makes *@slot, a function pointer, the next definition of @name (looked up the first time).
 * false, with errno ENOSYS, when there is none. Racing threads store the same value.
 */
static inline bool interpose_next(void *slot, const char *name)
{
	void *sym;

	/* memcpy: POSIX's way round C's ban on object-to-function pointer conversion. */
	memcpy(&sym, slot, sizeof(sym));
	if (!sym) {
		sym = dlsym(RTLD_NEXT, name);
		memcpy(slot, &sym, sizeof(sym));
	}
	if (!sym)
		errno = ENOSYS;
	return sym != NULL;
}
