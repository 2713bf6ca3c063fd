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
 *   proc_split [thp|mthp]   (no argument: both; mTHP absent is a note then,
 *                            and a skip when "mthp" is asked for alone)
 */
#include "mig.h"
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
	uint64_t a = 0;
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
	r = mig_split_large_at(t.pid, t.pidfd, a + huge / 2);
	CHECK(r == 1, "split in a THP: %d", r);
	CHECK(none_large(&t, a, 512), "pages of the cut THP are still large");
	CHECK(one_folio(&t, a + huge, 512, order), "the neighbouring THP was split");
	CHECK(tenant_verify(&t), "data changed by the split");
	r = mig_split_large_at(t.pid, t.pidfd, a + huge / 2);
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

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	char buf[32];

	if (only && strcmp(only, "thp") && strcmp(only, "mthp"))
		FAIL("usage: proc_split [thp|mthp]");
	need_root();
	if (read_knob("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) < 0 ||
	    strcmp(buf, "never") == 0)
		SKIP("transparent huge pages are unavailable or disabled on this host");
	if (!only || !strcmp(only, "mthp"))
		test_mthp(only != NULL);
	if (!only || !strcmp(only, "thp"))
		test_pmd_thp();
	return 0;
}
