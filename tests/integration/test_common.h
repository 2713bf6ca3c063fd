/*
 * test_common.h - what every integration test program needs: the exit
 * protocol of tests/run-suite (exit 77 after "SKIP: reason", exit 1 after
 * a FAIL line) and a millisecond clock for the "# " figures. Header-only;
 * include it instead of defining SKIP/FAIL/CHECK again.
 */
#ifndef MIG_TEST_COMMON_H
#define MIG_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Print the reason and skip the whole test. */
#define SKIP(...)                             \
	do {                                  \
		printf("SKIP: " __VA_ARGS__); \
		printf("\n");                 \
		exit(77);                     \
	} while (0)

/* Fail with where and why, on stderr (run-suite shows both streams). */
#define FAIL(...)                                                    \
	do {                                                         \
		fflush(stdout);                                      \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                        \
		fprintf(stderr, "\n");                               \
		exit(1);                                             \
	} while (0)

/* Fail unless cond holds; the condition's text is shown too. */
#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, "failed: %s\n", #cond); \
			FAIL(__VA_ARGS__);                      \
		}                                               \
	} while (0)

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif /* MIG_TEST_COMMON_H */
