/*
 * fuzz_check.h
 *		Property checks for the libFuzzer targets in test/fuzz.
 *
 * A failed check prints the condition and aborts, so that libFuzzer treats
 * the input like a crash: it saves the input as an artifact and exits 1.
 */
#ifndef HG_FUZZ_CHECK_H
#define HG_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(condition) \
	do \
	{ \
		if (!(condition)) \
		{ \
			fprintf(stderr, "%s:%d: property failed: %s\n", \
					__FILE__, __LINE__, #condition); \
			abort(); \
		} \
	} while (0)

#endif							/* HG_FUZZ_CHECK_H */
