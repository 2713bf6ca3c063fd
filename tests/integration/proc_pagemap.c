/*
 * proc_pagemap.c - mig_query_pages() on a live tenant that wrote every
 * other page of its region: written pages are present, exclusive, on a
 * node; the others are absent (-ENOENT), and stay absent - reading pagemap
 * and asking move_pages faults nothing in. The tenant's data is unchanged.
 */
#include "mig.h"
#include "integration/proc_util.h"

int main(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	struct mig_pageinfo *pi;
	struct tenant t;
	size_t n, present = 0;
	bool pfns;
	int r;

	need_root();
	tenant_start(&t, "-s", "16M", "-m", "small", "-t", "half", (char *)NULL);
	n = (size_t)((t.end - t.start) / (uint64_t)ps);
	pi = calloc(n, sizeof(*pi));
	CHECK(pi, "calloc");

	for (int round = 0; round < 2; round++) {
		r = mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi);
		CHECK(r == 0, "mig_query_pages: %d", r);
		pfns = false;
		for (size_t i = 0; i < n; i++) {
			if (i % 2 == 0) {
				CHECK(pi[i].flags & MIG_PAGE_PRESENT, "page %zu absent", i);
				CHECK(pi[i].flags & MIG_PAGE_EXCLUSIVE, "page %zu not exclusive",
				      i);
				CHECK(!(pi[i].flags & MIG_PAGE_LARGE), "page %zu large", i);
				CHECK(pi[i].node >= 0, "page %zu node %d", i, pi[i].node);
				pfns |= pi[i].pfn != 0;
				present++;
			} else {
				CHECK(!(pi[i].flags & MIG_PAGE_PRESENT), "page %zu present", i);
				CHECK(pi[i].node == -ENOENT, "page %zu node %d", i, pi[i].node);
			}
		}
		CHECK(pfns, "no PFNs although we are root");
	}
	printf("# %zu of %zu pages present, as written\n", present / 2, n);

	/* A range past the region (unmapped) reads as absent, and -EFAULT from move_pages. */
	r = mig_query_pages(t.pid, t.end, 4, MIG_QUERY_NODE, pi);
	CHECK(r == 0, "query of an unmapped range: %d", r);
	for (int i = 0; i < 4; i++)
		CHECK(pi[i].node == -EFAULT || pi[i].node == -ENOENT, "unmapped page node %d",
		      pi[i].node);
	CHECK(tenant_verify(&t), "tenant data changed");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");

	r = mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP, pi);
	CHECK(r == -ESRCH, "query of a reaped tenant: %d", r);
	free(pi);
	return 0;
}
