/*
 * tests/fuzz/fuzz.h — what every fuzz target shares: libFuzzer's entry point, and CHECK, which
 * aborts when an invariant breaks so that libFuzzer (or the replay under a sanitizer) reports the
 * input that broke it.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/** libFuzzer calls it once per input; @data[0..size) is only valid during the call. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
