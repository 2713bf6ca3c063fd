/*
 * proc_numa.c - the /proc readers across real NUMA nodes. Needs nodes 0
 * and 1 with memory (the qemu guests of tests/vm; on a one-node machine it
 * skips). The test arranges where a tenant's pages live with move_pages(2)
 * and checks that mig_placement() and mig_query_pages() report exactly
 * that arrangement.
 *
 *   proc_numa [placement|time|kpf]...   (no argument: all three)
 *
 *   placement  a tenant that wrote every other page of 16 MiB gets part of
 *              its pages moved to node 1 and the rest to node 0; the
 *              per-node and absent counts (one range, two ranges) and the
 *              node of every page must match. Then a whole 2 MiB THP goes
 *              to node 1 and the rest of an 8 MiB THP tenant to node 0.
 *   kpf        kpageflags decoding on this kernel: 2 MiB THPs are LARGE,
 *              THP, order 9 with one head and contiguous PFNs; small pages
 *              are not; the zero page is ZERO, -EFAULT for move_pages and
 *              absent for placement.
 *   time       a 256 MiB tenant, half of it moved to node 1: the counts
 *              are checked and the placement time is printed.
 *
 * Every tenant checks its data at the end: reading placement and moving
 * pages must not change it.
 */
#include <numa.h>
#include <sys/utsname.h>

#include "mig.h"
#include "integration/proc_util.h"
#include "util.h"

#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

static uint64_t page_size;

static bool node_has_memory(int node)
{
	char path[96], buf[256] = "";
	unsigned long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "Node %*d MemTotal: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb > 0;
}

/*
 * Move each page to its node with move_pages(2), asking again for those
 * it did not move at once: the tail pages of a THP whose head is already
 * isolated report -EBUSY and are on the target after the first round.
 */
static void arrange(pid_t pid, uint64_t *addrs, int *nodes, size_t n)
{
	void **pages = calloc(n, sizeof(*pages));
	int *want = calloc(n, sizeof(*want)), *status = calloc(n, sizeof(*status));
	size_t left = n;

	CHECK(pages && want && status, "calloc");
	for (size_t i = 0; i < n; i++) {
		pages[i] = (void *)(uintptr_t)addrs[i];
		want[i] = nodes[i];
	}
	for (int round = 0; round < 4 && left; round++) {
		size_t k = 0;
		long r = numa_move_pages(pid, (unsigned long)left, pages, want, status,
					 MPOL_MF_MOVE);

		CHECK(r >= 0, "move_pages: %s", strerror(errno));
		for (size_t i = 0; i < left; i++)
			if (status[i] != want[i]) {
				if (round == 3)
					FAIL("page 0x%lx: move_pages status %d, wanted node %d",
					     (unsigned long)(uintptr_t)pages[i], status[i],
					     want[i]);
				pages[k] = pages[i];
				want[k++] = want[i];
			}
		left = k;
	}
	free(pages);
	free(want);
	free(status);
}

static void check_placement(const struct mig_placement *p, const uint64_t want[2], uint64_t absent,
			    uint64_t total, const char *what)
{
	CHECK(p->node_pages[0] == want[0] && p->node_pages[1] == want[1],
	      "%s: node 0 %lu node 1 %lu, arranged %lu and %lu", what,
	      (unsigned long)p->node_pages[0], (unsigned long)p->node_pages[1],
	      (unsigned long)want[0], (unsigned long)want[1]);
	for (int i = 2; i < MIG_MAX_NODES; i++)
		CHECK(p->node_pages[i] == 0, "%s: %lu pages on node %d", what,
		      (unsigned long)p->node_pages[i], i);
	CHECK(p->absent == absent && p->total == total, "%s: absent %lu total %lu, wanted %lu %lu",
	      what, (unsigned long)p->absent, (unsigned long)p->total, (unsigned long)absent,
	      (unsigned long)total);
}

/* Every page's node, as arranged (-ENOENT for pages never written). */
static void check_nodes(const struct tenant *t, const int *nodes, size_t n, const char *what)
{
	struct mig_pageinfo *pi = calloc(n, sizeof(*pi));
	int r;

	CHECK(pi, "calloc");
	r = mig_query_pages(t->pid, t->start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi);
	CHECK(r == 0, "%s: mig_query_pages: %d", what, r);
	for (size_t i = 0; i < n; i++) {
		CHECK(pi[i].node == nodes[i], "%s: page %zu on %d, arranged %d", what, i,
		      pi[i].node, nodes[i]);
		CHECK(!(pi[i].flags & MIG_PAGE_PRESENT) == (nodes[i] < 0),
		      "%s: page %zu present flag wrong (flags 0x%x)", what, i, pi[i].flags);
	}
	free(pi);
}

static void test_small_pages(void)
{
	static struct mig_placement p, q;
	uint64_t want[2] = { 0, 0 }, *addrs;
	struct mig_range ranges[2];
	int *nodes, *arranged;
	size_t n, k = 0;
	struct tenant t;

	tenant_start(&t, "-s", "16M", "-m", "small", "-t", "half", (char *)NULL);
	n = (t.end - t.start) / page_size;
	addrs = calloc(n, sizeof(*addrs));
	nodes = calloc(n, sizeof(*nodes));
	arranged = calloc(n, sizeof(*arranged));
	CHECK(addrs && nodes && arranged, "calloc");

	/* The first quarter and every sixth page go to node 1, the rest to node 0. */
	for (size_t i = 0; i < n; i++) {
		arranged[i] = -ENOENT;
		if (i % 2)
			continue;
		arranged[i] = i < n / 4 || i % 6 == 0;
		want[arranged[i]]++;
		addrs[k] = t.start + i * page_size;
		nodes[k++] = arranged[i];
	}
	arrange(t.pid, addrs, nodes, k);

	ranges[0] = (struct mig_range){ t.start, t.start + (t.end - t.start) / 2 };
	ranges[1] = (struct mig_range){ ranges[0].end, t.end };
	CHECK(mig_placement(t.pid, &(struct mig_range){ t.start, t.end }, 1, &p) == 0,
	      "mig_placement");
	check_placement(&p, want, n / 2, n, "one range");
	CHECK(p.huge == 0, "small pages counted huge: %lu", (unsigned long)p.huge);
	CHECK(mig_placement(t.pid, ranges, 2, &q) == 0, "mig_placement of two ranges");
	check_placement(&q, want, n / 2, n, "two ranges");
	check_nodes(&t, arranged, n, "small pages");

	/* The whole process holds at least the region's pages on each node. */
	CHECK(mig_placement(t.pid, NULL, 0, &q) == 0, "mig_placement of the whole process");
	CHECK(q.node_pages[0] >= want[0] && q.node_pages[1] >= want[1],
	      "whole process: node 0 %lu node 1 %lu", (unsigned long)q.node_pages[0],
	      (unsigned long)q.node_pages[1]);
	CHECK(tenant_verify(&t), "tenant data changed");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	printf("# 16 MiB, every other page written: node 0 %lu, node 1 %lu, absent %lu pages, as "
	       "arranged\n",
	       (unsigned long)p.node_pages[0], (unsigned long)p.node_pages[1],
	       (unsigned long)p.absent);
	free(addrs);
	free(nodes);
	free(arranged);
}

/* Index of the first 2 MiB block of t that is one PMD THP, or -1. */
static long first_thp(const struct tenant *t, const struct mig_pageinfo *pi, size_t n)
{
	for (size_t b = 0; b + 512 <= n; b += 512)
		if ((pi[b].flags & MIG_PAGE_THP) && (pi[b].flags & MIG_PAGE_HEAD) &&
		    pi[b].order == 9 && (t->start + b * page_size) % (2 << 20) == 0)
			return (long)b;
	return -1;
}

static void test_thp(void)
{
	static struct mig_placement p;
	uint64_t want[2] = { 0, 0 }, *addrs;
	struct mig_pageinfo *pi;
	int *nodes, *arranged;
	size_t n, still_huge = 0;
	struct tenant t;
	long b;

	tenant_start(&t, "-s", "8M", "-m", "thp", "-t", "all", (char *)NULL);
	n = (t.end - t.start) / page_size;
	pi = calloc(n, sizeof(*pi));
	addrs = calloc(n, sizeof(*addrs));
	nodes = calloc(n, sizeof(*nodes));
	arranged = calloc(n, sizeof(*arranged));
	CHECK(pi && addrs && nodes && arranged, "calloc");
	CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP, pi) == 0, "mig_query_pages");
	b = first_thp(&t, pi, n);
	if (b < 0) {
		printf("# no 2 MiB THP formed in a MADV_HUGEPAGE region: THP placement not "
		       "checked\n");
		tenant_kill(&t);
		goto out;
	}

	/* That THP goes to node 1 whole, everything else to node 0. */
	for (size_t i = 0; i < n; i++) {
		arranged[i] = i >= (size_t)b && i < (size_t)b + 512;
		want[arranged[i]]++;
		addrs[i] = t.start + i * page_size;
		nodes[i] = arranged[i];
	}
	arrange(t.pid, addrs, nodes, n);
	CHECK(mig_placement(t.pid, &(struct mig_range){ t.start, t.end }, 1, &p) == 0,
	      "mig_placement");
	check_placement(&p, want, 0, n, "THP tenant");
	check_nodes(&t, arranged, n, "THP tenant");
	CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP, pi) == 0, "mig_query_pages");
	for (size_t i = (size_t)b; i < (size_t)b + 512; i++)
		still_huge += (pi[i].flags & MIG_PAGE_THP) != 0;
	CHECK(tenant_verify(&t), "tenant data changed");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	printf("# 8 MiB THP tenant: one 2 MiB THP on node 1, %lu pages on node 0, as arranged; "
	       "%zu of its 512 pages still in a THP after the move, %lu pages huge in all\n",
	       (unsigned long)p.node_pages[0], still_huge, (unsigned long)p.huge);
out:
	free(pi);
	free(addrs);
	free(nodes);
	free(arranged);
}

static void test_kpf(void)
{
	static struct mig_placement p;
	struct mig_pageinfo *pi;
	size_t n, thps = 0, zeros = 0;
	struct tenant t;

	/* 2 MiB THPs: every page LARGE and THP, order 9, one head, contiguous aligned PFNs. */
	tenant_start(&t, "-s", "8M", "-m", "thp", "-t", "all", (char *)NULL);
	n = (t.end - t.start) / page_size;
	pi = calloc(n, sizeof(*pi));
	CHECK(pi, "calloc");
	CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi) == 0,
	      "mig_query_pages");
	for (size_t b = 0; b < n; b += 512) {
		if (pi[b].order != 9) {
			for (size_t i = b; i < b + 512; i++)
				CHECK(!(pi[i].flags & MIG_PAGE_THP), "page %zu THP outside a THP",
				      i);
			continue;
		}
		thps++;
		CHECK(pi[b].pfn % 512 == 0, "THP head PFN 0x%lx not 2 MiB aligned",
		      (unsigned long)pi[b].pfn);
		for (size_t i = b; i < b + 512; i++) {
			uint32_t want = MIG_PAGE_PRESENT | MIG_PAGE_THP | MIG_PAGE_LARGE;

			CHECK((pi[i].flags & want) == want && pi[i].order == 9,
			      "page %zu of a THP: flags 0x%x order %u", i, pi[i].flags,
			      pi[i].order);
			CHECK(!(pi[i].flags & MIG_PAGE_HEAD) == (i != b),
			      "page %zu: head flag 0x%x", i, pi[i].flags);
			CHECK(pi[i].pfn == pi[b].pfn + (i - b), "page %zu: PFN not contiguous", i);
			CHECK(pi[i].node == pi[b].node && pi[i].node >= 0,
			      "page %zu of a THP on node %d, head on %d", i, pi[i].node,
			      pi[b].node);
		}
	}
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");

	/* Small pages: present, exclusive, nothing large. */
	tenant_start(&t, "-s", "4M", "-m", "small", "-t", "half", (char *)NULL);
	n = (t.end - t.start) / page_size;
	/* Reading every page maps the zero page where nothing was written. */
	CHECK(tenant_verify(&t), "tenant data changed");
	CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi) == 0,
	      "mig_query_pages");
	for (size_t i = 0; i < n; i++) {
		CHECK(pi[i].flags & MIG_PAGE_PRESENT, "page %zu absent after a read", i);
		CHECK(!(pi[i].flags & (MIG_PAGE_LARGE | MIG_PAGE_THP | MIG_PAGE_HEAD)) &&
			      pi[i].order == 0,
		      "small page %zu: flags 0x%x order %u", i, pi[i].flags, pi[i].order);
		if (i % 2 == 0) {
			CHECK(!(pi[i].flags & MIG_PAGE_ZERO) && pi[i].node >= 0 &&
				      (pi[i].flags & MIG_PAGE_EXCLUSIVE),
			      "written page %zu: flags 0x%x node %d", i, pi[i].flags, pi[i].node);
		} else {
			CHECK((pi[i].flags & MIG_PAGE_ZERO) && pi[i].node == -EFAULT,
			      "read-only page %zu: flags 0x%x node %d, wanted the zero page", i,
			      pi[i].flags, pi[i].node);
			zeros++;
		}
	}
	CHECK(mig_placement(t.pid, &(struct mig_range){ t.start, t.end }, 1, &p) == 0,
	      "mig_placement");
	CHECK(p.absent == n / 2 && p.node_pages[0] + p.node_pages[1] == n / 2,
	      "zero pages not counted absent: absent %lu", (unsigned long)p.absent);
	CHECK(tenant_verify(&t), "tenant data changed");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	if (thps == 0)
		SKIP("no 2 MiB THP formed in a MADV_HUGEPAGE region (zero and small pages were "
		     "decoded right)");
	printf("# kpageflags: %zu 2 MiB THPs decoded (order 9, one head, contiguous PFNs), "
	       "%zu zero pages, small pages not large\n",
	       thps, zeros);
	free(pi);
}

static void test_time(void)
{
	static struct mig_placement p;
	uint64_t want[2] = { 0, 0 }, *addrs;
	double t0, moved, best = 1e9;
	struct utsname u;
	struct tenant t;
	int *nodes;
	size_t n;

	tenant_start(&t, "-s", "256M", "-m", "small", "-t", "all", (char *)NULL);
	n = (t.end - t.start) / page_size;
	addrs = calloc(n, sizeof(*addrs));
	nodes = calloc(n, sizeof(*nodes));
	CHECK(addrs && nodes, "calloc");
	for (size_t i = 0; i < n; i++) {
		addrs[i] = t.start + i * page_size;
		nodes[i] = i >= n / 2;
		want[nodes[i]]++;
	}
	t0 = now_ms();
	arrange(t.pid, addrs, nodes, n);
	moved = now_ms() - t0;
	for (int i = 0; i < 3; i++) {
		t0 = now_ms();
		CHECK(mig_placement(t.pid, &(struct mig_range){ t.start, t.end }, 1, &p) == 0,
		      "mig_placement");
		best = MIN(best, now_ms() - t0);
		check_placement(&p, want, 0, n, "256 MiB");
	}
	CHECK(tenant_verify(&t), "tenant data changed");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	uname(&u);
	printf("# placement of 256 MiB (4 KiB pages, half on node 1), Linux %s: %.1f ms\n",
	       u.release, best);
	printf("# move_pages(2) arranging those 256 MiB: %.0f ms\n", moved);
	free(addrs);
	free(nodes);
}

int main(int argc, char **argv)
{
	bool all = argc < 2;

	page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	need_root();
	if (!node_has_memory(0) || !node_has_memory(1))
		SKIP("needs NUMA nodes 0 and 1 with memory (tests/vm runs it in a 2-node guest)");
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "placement") && strcmp(argv[i], "kpf") &&
		    strcmp(argv[i], "time"))
			FAIL("usage: proc_numa [placement|kpf|time]...");
	for (int i = all ? 0 : 1; i < (all ? 1 : argc); i++) {
		if (all || !strcmp(argv[i], "placement")) {
			test_small_pages();
			test_thp();
		}
		if (all || !strcmp(argv[i], "time"))
			test_time();
		/* Last: it skips when no THP formed. */
		if (all || !strcmp(argv[i], "kpf"))
			test_kpf();
	}
	return 0;
}
