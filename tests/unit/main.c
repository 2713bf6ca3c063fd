/*
 * main.c - runs every registered Check suite in one SRunner so that the
 * log ends with one Check summary line for the whole unit-test set.
 */
#include <stdlib.h>

#include "unit.h"

#define MAX_SUITES 128

static unit_suite_fn suites[MAX_SUITES];
static int n_suites;

void unit_register(unit_suite_fn fn)
{
	if (n_suites == MAX_SUITES) {
		fprintf(stderr, "unit: too many suites (max %d)\n", MAX_SUITES);
		abort();
	}
	suites[n_suites++] = fn;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (n_suites == 0) {
		fprintf(stderr, "unit: no suites registered\n");
		return EXIT_FAILURE;
	}
	sr = srunner_create(suites[0]());
	for (int i = 1; i < n_suites; i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
