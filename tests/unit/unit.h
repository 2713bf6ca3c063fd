/*
 * unit.h - the unit-test runner's registry. Each tests/unit/test_*.c file
 * holds one Check suite for one module and registers it with
 * UNIT_SUITE(make_suite); tests/unit/main.c runs every registered suite
 * (or those named in CK_RUN_SUITE) and prints Check's summary.
 *
 * A test that cannot run here calls UNIT_SKIP("reason"): it prints the
 * reason and returns, so a skip is visible in the log and never silent.
 */
#ifndef MIG_UNIT_H
#define MIG_UNIT_H

#include <check.h>
#include <stdio.h>

typedef Suite *(*unit_suite_fn)(void);

void unit_register(unit_suite_fn fn);

#define UNIT_SUITE(fn)                                               \
	static void __attribute__((constructor)) unit_reg_##fn(void) \
	{                                                            \
		unit_register(fn);                                   \
	}

#define UNIT_SKIP(...)                         \
	do {                                   \
		printf("SKIP %s: ", __func__); \
		printf(__VA_ARGS__);           \
		printf("\n");                  \
		fflush(stdout);                \
		return;                        \
	} while (0)

#endif /* MIG_UNIT_H */
