/*
 * ranges.h - what a request's address ranges cost before the engine sees
 * them. A client may send many, overlapping or huge ranges; the daemon
 * sorts and merges them when the request arrives (a count still too high
 * after that is refused), intersects them with the tenant's anonymous
 * private VMAs when the job runs, and hands them to libmig in chunks of
 * bounded span, so what a job allocates follows the memory that exists,
 * not the span a client wrote.
 */
#ifndef MIGD_RANGES_H
#define MIGD_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "mig.h"

/* Most ranges a request may carry after merging. */
#define RANGES_MAX 1024

/*
 * Sort r[*n] by start and merge overlapping and touching ranges in place;
 * *n becomes the merged count. Empty ranges (end <= start) are dropped.
 */
void ranges_normalize(struct mig_range *r, size_t *n);

/*
 * The parts of the sorted, merged want[nwant] (nwant == 0: everything) that
 * lie in the VMAs of v[nv] for which keep(v) is true, in address order,
 * into a malloc'd *ret[*ret_n]. Returns 0 or -ENOMEM.
 */
int ranges_intersect_vmas(const struct mig_range *want, size_t nwant, const struct mig_vma *v,
			  size_t nv, bool (*keep)(const struct mig_vma *v, void *userdata),
			  void *userdata, struct mig_range **ret, size_t *ret_n);

/* Total bytes of r[n]. */
uint64_t ranges_span(const struct mig_range *r, size_t n);

#endif /* MIGD_RANGES_H */
