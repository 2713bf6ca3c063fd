/* khugepaged.h - what khugepaged did meanwhile, for tests that count THPs. */
#ifndef MIG_TEST_KHUGEPAGED_H
#define MIG_TEST_KHUGEPAGED_H

#include <stdint.h>
#include <stdio.h>

/* khugepaged's pages_collapsed (THPs it formed since boot), 0 if unknown. */
static inline uint64_t khugepaged_collapsed(void)
{
	unsigned long long n = 0;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/khugepaged/pages_collapsed", "re");

	if (f) {
		if (fscanf(f, "%llu", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

#endif
