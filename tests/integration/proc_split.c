/*
 * proc_split.c - mig_split_large_at() and mig_collapse() on live tenants.
 *
 * PMD THP: a tenant with MADV_HUGEPAGE holds 2 MiB THPs; cutting one in
 * its middle splits exactly that folio (kpageflags: no page on either side
 * of the edge is large any more), its neighbour stays a THP, an edge on a
 * THP boundary splits nothing, and MADV_COLLAPSE makes the split block a
 * THP again. mTHP: with 64 KiB mTHP switched on for the test (restored
 * afterwards) the same holds for a 64 KiB folio. The tenant's data is
 * checked after every step.
 *
 *   proc_split [thp|mthp|edges]   (no argument: thp and mthp; mTHP absent
 *                                  is a note then, a skip when asked alone)
 *
 * edges (issue 14): mig_migrate of a range that cuts two PMD THPs (and,
 * where the kernel has 64 KiB mTHP, of one that cuts two mTHPs) moves
 * exactly its pages: to the other node where there are two nodes (the
 * tenant is not bound: its pages are where its CPU was, in the 2-node
 * guests node 1 about half the time, and pages already on the target
 * were skipped: 0 moved, 6.1 guest), else to node 0 (the node part is then
 * not checked, the rest is); forced either way. The pages
 * outside keep their node, content and physical page (pagemap PFN), no
 * page on either side of an edge is left in a large folio (kpageflags),
 * and a folio fully inside the range is still one large folio after the
 * move where the kernel has UFFDIO_MOVE (placed whole), or was moved.
 */
#include <inttypes.h>

#include "mig.h"
#include "integration/khugepaged.h"
#include "integration/proc_util.h"

#define MTHP_KNOB "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled"

#define PMD_KNOB "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled"

static char mthp_saved[32], pmd_saved[32];

static int read_knob(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	char line[256], *a, *b;

	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	a = strchr(line, '[');
	b = a ? strchr(a, ']') : NULL;
	if (!a || !b)
		return -EIO;
	*b = '\0';
	snprintf(buf, size, "%s", a + 1);
	return 0;
}

static int write_knob(const char *path, const char *val)
{
	FILE *f = fopen(path, "we");
	int r = 0;

	if (!f)
		return -errno;
	if (fputs(val, f) < 0)
		r = -EIO;
	if (fclose(f) != 0)
		r = -errno;
	return r;
}

static void restore_mthp(void)
{
	if (mthp_saved[0])
		write_knob(MTHP_KNOB, mthp_saved);
	if (pmd_saved[0])
		write_knob(PMD_KNOB, pmd_saved);
}

static void query(const struct tenant *t, uint64_t addr, size_t n, struct mig_pageinfo *pi)
{
	int r = mig_query_pages(t->pid, addr, n, MIG_QUERY_PAGEMAP, pi);

	CHECK(r == 0, "mig_query_pages: %d", r);
}

/* True when the n pages at addr form exactly one large folio of the given order. */
static bool one_folio(const struct tenant *t, uint64_t addr, size_t n, unsigned order)
{
	struct mig_pageinfo pi[512];

	query(t, addr, n, pi);
	for (size_t i = 0; i < n; i++) {
		if (!(pi[i].flags & MIG_PAGE_LARGE) || pi[i].order != order ||
		    !(pi[i].flags & MIG_PAGE_HEAD) != (i != 0))
			return false;
		if (i > 0 && pi[i].pfn != pi[0].pfn + i)
			return false;
	}
	return true;
}

static bool none_large(const struct tenant *t, uint64_t addr, size_t n)
{
	struct mig_pageinfo pi[512];

	query(t, addr, n, pi);
	for (size_t i = 0; i < n; i++)
		if (!(pi[i].flags & MIG_PAGE_PRESENT) || (pi[i].flags & MIG_PAGE_LARGE))
			return false;
	return true;
}

static void test_pmd_thp(void)
{
	const uint64_t huge = 2 << 20;
	const unsigned order = 9;
	struct tenant t;
	struct mig_range range;
	uint64_t a = 0, kh;
	int r;

	tenant_start(&t, "-s", "16M", "-m", "thp", "-t", "all", (char *)NULL);
	/* Two neighbouring THPs: the one we cut, and the one that must stay. */
	for (uint64_t x = t.start; x + 2 * huge <= t.end; x += huge)
		if (one_folio(&t, x, 512, order) && one_folio(&t, x + huge, 512, order)) {
			a = x;
			break;
		}
	if (!a) {
		tenant_kill(&t);
		SKIP("no two neighbouring 2 MiB THPs formed in a MADV_HUGEPAGE region");
	}

	/* An edge on a THP boundary cuts nothing: both stay huge. */
	r = mig_split_large_at(t.pid, t.pidfd, a + huge);
	CHECK(r == 0, "split at a THP boundary: %d", r);
	CHECK(one_folio(&t, a, 512, order) && one_folio(&t, a + huge, 512, order),
	      "a THP was split at a clean boundary");

	/* An edge in the middle splits that THP only. */
	kh = khugepaged_collapsed();
	r = mig_split_large_at(t.pid, t.pidfd, a + huge / 2);
	CHECK(r == 1, "split in a THP: %d", r);
	CHECK(none_large(&t, a, 512), "pages of the cut THP are still large");
	CHECK(one_folio(&t, a + huge, 512, order), "the neighbouring THP was split");
	CHECK(tenant_verify(&t), "data changed by the split");
	r = mig_split_large_at(t.pid, t.pidfd, a + huge / 2);
	/*
	 * Nothing large is left at the edge, unless khugepaged re-formed
	 * the THP in between (its region is MADV_HUGEPAGE): 1 of 30 host
	 * runs. Then the second split splits it again.
	 */
	if (r == 1 && khugepaged_collapsed() != kh)
		printf("# khugepaged re-formed the THP before the second split: split again\n");
	else
		CHECK(r == 0, "second split at the same edge: %d", r);
	printf("# PMD THP split at an edge: ok, neighbour kept huge\n");

	/* MADV_COLLAPSE re-forms it. */
	range = (struct mig_range){ a, a + huge };
	r = mig_collapse(t.pidfd, &range);
	CHECK(r == 0, "mig_collapse: %d", r);
	CHECK(one_folio(&t, a, 512, order), "not a THP after MADV_COLLAPSE");
	CHECK(tenant_verify(&t), "data changed by the collapse");
	printf("# MADV_COLLAPSE re-formed the THP\n");

	/* Bad input. */
	CHECK(mig_split_large_at(t.pid, t.pidfd, a + 1) == -EINVAL, "unaligned accepted");
	CHECK(mig_split_large_at(t.pid, -1, a) == -EINVAL, "bad pidfd accepted");
	range = (struct mig_range){ a + 1, a + huge };
	CHECK(mig_collapse(t.pidfd, &range) == -EINVAL, "unaligned collapse accepted");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
}

/* must: skip when mTHP is absent, rather than note it and go on. */
static void test_mthp(bool must)
{
	const uint64_t size = 64 << 10;
	const unsigned order = 4;
	const size_t n = size / 4096;
	struct tenant t;
	uint64_t a = 0;
	int r;

	if (read_knob(MTHP_KNOB, mthp_saved, sizeof(mthp_saved)) < 0) {
		if (must)
			SKIP("no 64 KiB mTHP control on this kernel: mTHP exists since Linux 6.8");
		printf("# mTHP: no 64 KiB mTHP control on this kernel (before 6.8): not tested\n");
		return;
	}
	atexit(restore_mthp);
	if (write_knob(MTHP_KNOB, "always") < 0) {
		mthp_saved[0] = '\0';
		if (must)
			SKIP("cannot enable 64 KiB mTHP");
		printf("# mTHP: cannot enable 64 KiB mTHP: not tested\n");
		return;
	}
	/*
	 * Where THP is "always" (Debian's kernels) the aligned region would
	 * get 2 MiB THPs first: the 2 MiB size is off while the tenant fills.
	 */
	if (read_knob(PMD_KNOB, pmd_saved, sizeof(pmd_saved)) == 0 &&
	    write_knob(PMD_KNOB, "never") < 0)
		pmd_saved[0] = '\0';
	/* "small" would forbid mTHP too: the default mode lets the 64 KiB size apply. */
	tenant_start(&t, "-s", "4M", "-m", "default", "-t", "all", (char *)NULL);
	restore_mthp();
	for (uint64_t x = t.start; x + 2 * size <= t.end; x += size)
		if (one_folio(&t, x, n, order) && one_folio(&t, x + size, n, order)) {
			a = x;
			break;
		}
	if (!a) {
		tenant_kill(&t);
		if (must)
			SKIP("no 64 KiB mTHP folios formed with the 64 KiB size set to always");
		printf("# mTHP: no 64 KiB folios formed: not tested\n");
		return;
	}
	r = mig_split_large_at(t.pid, t.pidfd, a + size);
	CHECK(r == 0, "split at an mTHP boundary: %d", r);
	r = mig_split_large_at(t.pid, t.pidfd, a + size / 2);
	CHECK(r == 1, "split in an mTHP: %d", r);
	CHECK(none_large(&t, a, n), "pages of the cut mTHP are still large");
	CHECK(one_folio(&t, a + size, n, order), "the neighbouring mTHP was split");
	CHECK(tenant_verify(&t), "data changed by the split");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	printf("# 64 KiB mTHP split at an edge: ok, neighbour kept large\n");
}

static int nodes_count(void)
{
	char path[64];
	int n = 0;

	for (; n < 64; n++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
		if (access(path, F_OK) < 0)
			break;
	}
	return n ? n : 1;
}

/*
 * Migrate [x + fsize / 2, x + 2 * fsize + fsize / 2) of a tenant whose
 * folios of fsize (order) lie at x, x + fsize, x + 2 * fsize: the range
 * cuts the first and the third, covers the second.
 */
static void migrate_edges(struct tenant *t, uint64_t x, uint64_t fsize, unsigned order,
			  const char *what)
{
	const size_t n = 3 * fsize / 4096;
	struct mig_pageinfo *pi0 = calloc(n, sizeof(*pi0)), *pi1 = calloc(n, sizeof(*pi1));
	struct mig_range rg = { x + fsize / 2, x + 2 * fsize + fsize / 2 };
	size_t in0 = fsize / 2 / 4096, in1 = in0 + 2 * fsize / 4096, moved = 0;
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes to = { 0 };
	bool two = nodes_count() >= 2;
	mig_tenant *mt;
	int r, target = 0;

	CHECK(pi0 && pi1, "calloc");
	/* force: a page already on the target moves too (a new physical page). */
	o.force = true;
	CHECK(mig_query_pages(t->pid, x, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi0) == 0,
	      "query before");
	if (two)
		target = pi0[in0].node == 1 ? 0 : 1;
	mig_nodes_set(&to, (unsigned)target);
	r = mig_tenant_attach(t->pid, NULL, &mt);
	CHECK(r == 0, "attach: %s (%s)", strerror(-r), mig_tenant_last_error());
	r = mig_migrate(mt, &rg, 1, &to, &o, NULL, NULL, &res);
	CHECK(r == 0, "mig_migrate: %s (%s)", strerror(-r), mig_tenant_last_error());
	CHECK(mig_tenant_detach(mt) == 0, "detach");
	CHECK(mig_query_pages(t->pid, x, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi1) == 0,
	      "query after");
	for (size_t i = 0; i < n; i++) {
		bool inside = i >= in0 && i < in1;

		CHECK(pi1[i].flags & MIG_PAGE_PRESENT, "%s: page %zu absent after the move", what,
		      i);
		if (!inside) {
			CHECK(pi1[i].pfn == pi0[i].pfn && pi1[i].node == pi0[i].node,
			      "%s: page %zu outside the range changed: pfn %#" PRIx64 " node %d -> "
			      "pfn %#" PRIx64 " node %d",
			      what, i, pi0[i].pfn, pi0[i].node, pi1[i].pfn, pi1[i].node);
		} else {
			CHECK(!two || pi1[i].node == target, "%s: page %zu on node %d", what, i,
			      pi1[i].node);
			moved += pi1[i].pfn != pi0[i].pfn;
		}
	}
	/* No partly mapped large folio at an edge: the cut folios are small now. */
	for (size_t i = 0; i < fsize / 4096; i++) {
		CHECK(!(pi1[i].flags & MIG_PAGE_LARGE), "%s: page %zu of the cut first folio large",
		      what, i);
		CHECK(!(pi1[2 * fsize / 4096 + i].flags & MIG_PAGE_LARGE),
		      "%s: page %zu of the cut last folio large", what, i);
	}
	CHECK(res.pages_total == in1 - in0 && res.pages_moved == in1 - in0,
	      "%s: %" PRIu64 " pages moved of %" PRIu64 ", range %zu pages", what, res.pages_moved,
	      res.pages_total, in1 - in0);
	/*
	 * On one node 1-2 of the pages kept their PFN in 6 of 20 host runs
	 * (main too), most likely the copy got the page the zap had just
	 * freed (the allocator hands recently freed pages out first; not
	 * proven page by page). Only another node proves a new page; migd's
	 * count above and the data check hold on both.
	 */
	if (two)
		CHECK(moved == in1 - in0, "%s: %zu of %zu pages inside have a new physical page",
		      what, moved, in1 - in0);
	else if (moved != in1 - in0)
		printf("# %s: %zu of %zu pages inside have a new physical page (one node: a "
		       "freed page can come back)\n",
		       what, moved, in1 - in0);
	if (order == 9)
		printf("# %s: THPs inside %" PRIu64 " -> %" PRIu64 ", placed whole %" PRIu64
		       ", collapsed %" PRIu64 "\n",
		       what, res.thp_before, res.thp_after, res.huge_moved, res.huge_collapsed);
	CHECK(one_folio(t, x + fsize, fsize / 4096, order) || order != 9,
	      "%s: the THP inside the range is not one THP after the move", what);
	CHECK(tenant_verify(t), "%s: data changed by the migration", what);
	printf("# %s: range cutting two folios moved exactly its %zu pages (%s), the %zu "
	       "pages outside kept node and PFN, no large folio left at the edges\n",
	       what, in1 - in0, two ? (target ? "node 1" : "node 0") : "node 0, one node",
	       n - (in1 - in0));
	mig_migrate_result_free(&res);
	free(pi0);
	free(pi1);
}

/* edges: the PMD THP case, then mTHP where the kernel has it. */
static void test_edges(void)
{
	const uint64_t huge = 2 << 20, m64 = 64 << 10;
	struct tenant t;
	uint64_t a = 0;

	tenant_start(&t, "-s", "16M", "-m", "thp", "-t", "all", (char *)NULL);
	for (uint64_t x = t.start; x + 3 * huge <= t.end && !a; x += huge)
		if (one_folio(&t, x, 512, 9) && one_folio(&t, x + huge, 512, 9) &&
		    one_folio(&t, x + 2 * huge, 512, 9))
			a = x;
	if (!a) {
		tenant_kill(&t);
		SKIP("no three neighbouring 2 MiB THPs formed in a MADV_HUGEPAGE region");
	}
	migrate_edges(&t, a, huge, 9, "PMD THP");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");

	if (read_knob(MTHP_KNOB, mthp_saved, sizeof(mthp_saved)) < 0 ||
	    write_knob(MTHP_KNOB, "always") < 0) {
		mthp_saved[0] = '\0';
		printf("# mTHP: no 64 KiB mTHP on this kernel (before 6.8): not tested\n");
		return;
	}
	atexit(restore_mthp);
	if (read_knob(PMD_KNOB, pmd_saved, sizeof(pmd_saved)) == 0 &&
	    write_knob(PMD_KNOB, "never") < 0)
		pmd_saved[0] = '\0';
	tenant_start(&t, "-s", "4M", "-m", "default", "-t", "all", (char *)NULL);
	restore_mthp();
	a = 0;
	for (uint64_t x = t.start; x + 3 * m64 <= t.end && !a; x += m64)
		if (one_folio(&t, x, 16, 4) && one_folio(&t, x + m64, 16, 4) &&
		    one_folio(&t, x + 2 * m64, 16, 4))
			a = x;
	if (!a) {
		tenant_kill(&t);
		FAIL("no three neighbouring 64 KiB mTHPs formed with the 64 KiB size on always");
	}
	migrate_edges(&t, a, m64, 4, "64 KiB mTHP");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	char buf[32];

	if (only && strcmp(only, "thp") && strcmp(only, "mthp") && strcmp(only, "edges"))
		FAIL("usage: proc_split [thp|mthp|edges]");
	need_root();
	if (read_knob("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) < 0 ||
	    strcmp(buf, "never") == 0)
		SKIP("transparent huge pages are unavailable or disabled on this host");
	if (only && !strcmp(only, "edges")) {
		test_edges();
		return 0;
	}
	if (!only || !strcmp(only, "mthp"))
		test_mthp(only != NULL);
	if (!only || !strcmp(only, "thp"))
		test_pmd_thp();
	return 0;
}
