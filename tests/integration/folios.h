/*
 * folios.h - the large folios of a tenant's range per size, counted by the
 * test itself (pagemap + kpageflags through mig_query_pages), to check
 * the per-size counts libmig reports (large_before[], large_after[]).
 */
#ifndef MIG_TEST_FOLIOS_H
#define MIG_TEST_FOLIOS_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mig.h"

/*
 * Heads of large folios per order in [start, start + len) of pid into
 * counts[]. Returns 0 or mig_query_pages's -errno.
 */
static inline int folios_count(pid_t pid, uint64_t start, uint64_t len, uint64_t *counts)
{
	const size_t chunk = 16384;
	struct mig_pageinfo *pi = calloc(chunk, sizeof(*pi));

	if (!pi)
		return -ENOMEM;
	memset(counts, 0, MIG_FOLIO_ORDERS * sizeof(*counts));
	for (uint64_t a = start; a < start + len; a += chunk * 4096) {
		size_t n = (size_t)((start + len - a) / 4096 < chunk ? (start + len - a) / 4096
								     : chunk);
		int r = mig_query_pages(pid, a, n, MIG_QUERY_PAGEMAP, pi);

		if (r < 0) {
			free(pi);
			return r;
		}
		for (size_t i = 0; i < n; i++)
			if ((pi[i].flags & MIG_PAGE_LARGE) && (pi[i].flags & MIG_PAGE_HEAD) &&
			    pi[i].order > 0)
				counts[pi[i].order < MIG_FOLIO_ORDERS ? pi[i].order
								      : MIG_FOLIO_ORDERS - 1]++;
	}
	free(pi);
	return 0;
}

/* "16kB 4, 2048kB 32" (sizes with 4 KiB pages), or "none". */
static inline const char *folios_str(const uint64_t *counts, char *buf, size_t size)
{
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned o = 1; o < MIG_FOLIO_ORDERS && at < size; o++)
		if (counts[o])
			at += (size_t)snprintf(buf + at, size - at, "%s%ukB %" PRIu64,
					       at ? ", " : "", 4u << o, counts[o]);
	if (!buf[0])
		snprintf(buf, size, "none");
	return buf;
}

/* Is thp the PMD order's (9) count and mthp the smaller orders' sum? */
static inline bool folios_sums(const uint64_t *counts, uint64_t thp, uint64_t mthp)
{
	uint64_t t = 0, m = 0;

	for (unsigned o = 1; o < MIG_FOLIO_ORDERS; o++)
		*(o < 9 ? &m : &t) += counts[o];
	return t == thp && m == mthp;
}

/*
 * Is libmig's count lib the test's own count own, in every size but the
 * 2 MiB one, and lib's 2 MiB count in [own - below, own + above] (THPs
 * khugepaged may have formed between the two counts)?
 */
static inline bool folios_within(const uint64_t *lib, const uint64_t *own, uint64_t below,
				 uint64_t above)
{
	for (unsigned o = 0; o < MIG_FOLIO_ORDERS; o++)
		if (o != 9 && lib[o] != own[o])
			return false;
	return lib[9] + below >= own[9] && lib[9] <= own[9] + above;
}

#endif
