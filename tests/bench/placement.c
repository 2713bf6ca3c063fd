/*
 * placement.c - how long mig_placement() takes to read where 1 GiB of a
 * tenant's memory lives, with 4 KiB pages and with THPs, and what the parts
 * cost (pagemap + kpageflags, move_pages). The bench starts its own
 * tenants (build/tests/tenants/proc_tenant) and ends them.
 */
#include "mig.h"
#include "integration/proc_util.h"
#include "util.h"

#define ROUNDS 5

static void bench(const char *mode)
{
	const size_t n = (1u << 30) / 4096;
	static struct mig_placement p;
	struct mig_pageinfo *pi = malloc(n * sizeof(*pi));
	double best = 1e9, best_pm = 1e9, best_node = 1e9, t0;
	struct mig_range range;
	struct tenant t;

	CHECK(pi, "malloc");
	tenant_start(&t, "-s", "1G", "-m", mode, "-t", "all", (char *)NULL);
	range = (struct mig_range){ t.start, t.end };
	for (int i = 0; i < ROUNDS; i++) {
		t0 = now_ms();
		CHECK(mig_placement(t.pid, &range, 1, &p) == 0, "mig_placement");
		best = MIN(best, now_ms() - t0);
		t0 = now_ms();
		CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP, pi) == 0, "pagemap");
		best_pm = MIN(best_pm, now_ms() - t0);
		t0 = now_ms();
		CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_NODE, pi) == 0, "nodes");
		best_node = MIN(best_node, now_ms() - t0);
	}
	printf("# placement of 1 GiB (%s pages): %.1f ms; pagemap+kpageflags alone %.1f ms, "
	       "move_pages alone %.1f ms; %lu pages, %lu in large folios (best of %d)\n",
	       strcmp(mode, "thp") == 0 ? "THP" : "4 KiB", best, best_pm, best_node,
	       (unsigned long)p.total, (unsigned long)p.huge, ROUNDS);
	tenant_kill(&t);
	free(pi);
}

int main(void)
{
	need_root();
	bench("small");
	bench("thp");
	return 0;
}
