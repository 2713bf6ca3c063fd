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
 *   proc_split [thp|mthp|sizes|edges|skip]   (no argument: thp, mthp,
 *                                  sizes and skip; mTHP absent is a note
 *                                  then, a skip when asked alone)
 *
 * sizes (issue 14): large folios of every mTHP size and 2 MiB THPs in one
 * tenant, migrated; libmig's per-size counts before and after must be the
 * test's own (see test_sizes); mTHPs not on the target move whole.
 *
 * skip (issue 14): huge_pages = skip in the same tenant: the large folios
 * left out are counted per size, keep their physical pages and node, the
 * rest moves (see test_skip).
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
 * libmig counts exactly one large folio of the size before (the one
 * inside) and afterwards what the test counts itself, and the THP fully
 * inside the range is one THP afterwards: placed whole with a PMD move
 * (huge_moved 1, huge_collapsed 0) where the tenant's uffd has
 * UFFDIO_MOVE, else copied and re-formed (huge_collapsed 1). The mTHP
 * inside moves whole (move_pages, mthp_moved 1, one 64 KiB folio on the
 * target) where it was not on the target, else (one node, force) as
 * 4 KiB pages.
 */
#include <inttypes.h>
#include <linux/userfaultfd.h>

#include "mig.h"
#include "integration/folios.h"
#include "integration/khugepaged.h"
#include "integration/proc_util.h"

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

#define MTHP_KNOB "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled"

#define PMD_KNOB "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled"

/* THP controls this test changed, with their old values (restore_knobs). */
static struct knob {
	char path[96];
	char val[32];
} knobs[16];
static size_t nknobs;

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

/*
 * Set a THP control, remembering its old value the first time; -errno
 * (nothing changed) when it cannot be read or written.
 */
static int set_knob(const char *path, const char *val)
{
	char old[32];
	size_t i;
	int r;

	for (i = 0; i < nknobs && strcmp(knobs[i].path, path); i++)
		;
	if (i == nknobs &&
	    (i == sizeof(knobs) / sizeof(knobs[0]) || read_knob(path, old, sizeof(old)) < 0))
		return -ENOENT;
	r = write_knob(path, val);
	if (r < 0 || i < nknobs)
		return r;
	snprintf(knobs[i].path, sizeof(knobs[i].path), "%s", path);
	snprintf(knobs[i].val, sizeof(knobs[i].val), "%s", old);
	nknobs++;
	return 0;
}

/* Put back every control set_knob changed (at exit too). */
static void restore_knobs(void)
{
	while (nknobs > 0) {
		nknobs--;
		write_knob(knobs[nknobs].path, knobs[nknobs].val);
	}
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

	if (access(MTHP_KNOB, F_OK) < 0) {
		if (must)
			SKIP("no 64 KiB mTHP control on this kernel: mTHP exists since Linux 6.8");
		printf("# mTHP: no 64 KiB mTHP control on this kernel (before 6.8): not tested\n");
		return;
	}
	if (set_knob(MTHP_KNOB, "always") < 0) {
		if (must)
			SKIP("cannot enable 64 KiB mTHP");
		printf("# mTHP: cannot enable 64 KiB mTHP: not tested\n");
		return;
	}
	/*
	 * Where THP is "always" (Debian's kernels) the aligned region would
	 * get 2 MiB THPs first: the 2 MiB size is off while the tenant fills.
	 */
	(void)set_knob(PMD_KNOB, "never");
	/* "small" would forbid mTHP too: the default mode lets the 64 KiB size apply. */
	tenant_start(&t, "-s", "4M", "-m", "default", "-t", "all", (char *)NULL);
	restore_knobs();
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

/* Ask the tenant to write its pattern into [off, off + len) of its region, in order. */
static void tenant_touch(struct tenant *t, uint64_t off, uint64_t len)
{
	char line[64];

	fprintf(t->in, "touch %" PRIu64 " %" PRIu64 "\n", off, len);
	fflush(t->in);
	CHECK(fgets(line, sizeof(line), t->out) && !strncmp(line, "ok", 2),
	      "tenant: touch %" PRIu64 " %" PRIu64 " failed", off, len);
}

static int nodes_count(void);

/*
 * mTHPs (orders 2-8) of [start, start + len) whose head is not on node,
 * per order into counts[], and their sum.
 */
static uint64_t mthps_off(pid_t pid, uint64_t start, uint64_t len, int node, uint64_t *counts)
{
	size_t n = len / 4096;
	struct mig_pageinfo *pi = calloc(n, sizeof(*pi));
	uint64_t sum = 0;

	CHECK(pi, "calloc");
	memset(counts, 0, MIG_FOLIO_ORDERS * sizeof(*counts));
	CHECK(mig_query_pages(pid, start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi) == 0,
	      "query nodes");
	for (size_t i = 0; i < n; i++)
		if ((pi[i].flags & MIG_PAGE_LARGE) && (pi[i].flags & MIG_PAGE_HEAD) &&
		    pi[i].order >= 2 && pi[i].order < 9 && pi[i].node != node) {
			counts[pi[i].order]++;
			sum++;
		}
	free(pi);
	return sum;
}

/*
 * sizes: large folios of every mTHP size the kernel has (16 KiB up to
 * 1 MiB on x86_64) and 2 MiB THPs in one region, made one size at a time:
 * every size is off but the one whose 2 MiB stretch the tenant writes
 * next (a write fault takes the largest enabled size that fits), then a
 * stretch of 4 KiB pages with all of them off. mig_migrate of the region
 * (forced; to the other node where there are two) must report, per size,
 * the folios the test counts itself through kpageflags right before and
 * right after (large_before[], large_after[]; thp_* and mthp_* their
 * sums). Every size stays off during the job, so khugepaged forms nothing
 * (6.12's khugepaged collapses to 2 MiB only, with that size enabled).
 * The controls are put back afterwards. Every mTHP not on the target
 * before is one folio of its size on the target afterwards (moved whole
 * by move_pages, mthp_moved); with force, those on the target already
 * (all of them on one node) move as 4 KiB pages.
 */
/*
 * The tenant of sizes and skip: two 2 MiB THPs, then two folios of each
 * mTHP size, each in its own 2 MiB stretch, then 4 KiB pages; every size
 * left off (restore_knobs puts the controls back). fb[] gets the test's
 * count. Returns false (nothing started) where the kernel has no mTHP
 * and must is false; skips when too few folios formed.
 */
static bool sizes_tenant(struct tenant *t, bool must, const char *what, uint64_t *fb)
{
	const uint64_t stretch = 2 << 20;
	char paths[8][96], b1[256];
	unsigned kb[8], nsizes = 0, formed = 0;

	for (unsigned k = 16; k < 2048 && nsizes < 8; k *= 2) {
		snprintf(paths[nsizes], sizeof(paths[0]),
			 "/sys/kernel/mm/transparent_hugepage/hugepages-%ukB/enabled", k);
		if (access(paths[nsizes], F_OK) == 0)
			kb[nsizes++] = k;
	}
	if (nsizes == 0) {
		if (must)
			SKIP("no mTHP size controls (hugepages-<N>kB) on this kernel: mTHP exists "
			     "since Linux 6.8");
		printf("# %s: no mTHP size controls on this kernel (before 6.8): not tested\n",
		       what);
		return false;
	}
	for (unsigned i = 0; i < nsizes; i++)
		if (set_knob(paths[i], "never") < 0)
			SKIP("cannot set %s", paths[i]);
	if (set_knob(PMD_KNOB, "never") < 0)
		SKIP("cannot set %s", PMD_KNOB);
	/* Nothing written yet: each stretch gets its folios when touched below. */
	tenant_start(t, "-s", "24M", "-m", "default", "-t", "none", (char *)NULL);
	CHECK(t->end - t->start >= (nsizes + 3) * stretch, "region too small");
	/*
	 * The 2 MiB THPs first: while that size is on, khugepaged may
	 * collapse any sparse 2 MiB block of the region (6.12 guest: the
	 * 16 KiB stretch, written before, became a THP).
	 */
	CHECK(set_knob(PMD_KNOB, "always") == 0, "enable %s", PMD_KNOB);
	tenant_touch(t, 0, 2 * stretch);
	CHECK(set_knob(PMD_KNOB, "never") == 0, "disable %s", PMD_KNOB);
	for (unsigned i = 0; i < nsizes; i++) {
		CHECK(set_knob(paths[i], "always") == 0, "enable %s", paths[i]);
		tenant_touch(t, (i + 2) * stretch, 2 * (uint64_t)kb[i] << 10);
		CHECK(set_knob(paths[i], "never") == 0, "disable %s", paths[i]);
	}
	tenant_touch(t, (nsizes + 2) * stretch, 64 << 10);

	CHECK(folios_count(t->pid, t->start, t->end - t->start, fb) == 0, "count before");
	for (unsigned k = 2; k < 9; k++)
		formed += fb[k] > 0;
	printf("# %s: %u mTHP sizes enabled one at a time, formed %s\n", what, nsizes,
	       folios_str(fb, b1, sizeof(b1)));
	if (formed < 2 || fb[9] == 0) {
		tenant_kill(t);
		restore_knobs();
		SKIP("only %u mTHP sizes and %" PRIu64 " 2 MiB THPs formed (%s)", formed, fb[9],
		     b1);
	}
	return true;
}

static void test_sizes(bool must)
{
	uint64_t fb[MIG_FOLIO_ORDERS], fa[MIG_FOLIO_ORDERS];
	struct mig_migrate_opts o = { .force = true };
	struct mig_migrate_result res;
	struct mig_nodes to = { 0 };
	struct mig_range rg;
	char b1[256], b2[256], b3[256], b4[256];
	uint64_t offb[MIG_FOLIO_ORDERS], off;
	struct tenant t;
	mig_tenant *mt;
	int r, target;

	if (!sizes_tenant(&t, must, "sizes", fb))
		return;
	/*
	 * The tenant is not bound: its pages are where its CPU was. The
	 * target is node 1 unless every mTHP is there already (then node 0),
	 * so that mTHPs have somewhere to go.
	 */
	target = 0;
	if (nodes_count() >= 2) {
		target = 1;
		if (mthps_off(t.pid, t.start, t.end - t.start, 1, offb) == 0)
			target = 0;
	}
	mig_nodes_set(&to, (unsigned)target);
	rg = (struct mig_range){ t.start, t.end };
	off = mthps_off(t.pid, t.start, t.end - t.start, target, offb);
	r = mig_tenant_attach(t.pid, NULL, &mt);
	CHECK(r == 0, "attach: %s (%s)", strerror(-r), mig_tenant_last_error());
	r = mig_migrate(mt, &rg, 1, &to, &o, NULL, NULL, &res);
	CHECK(r == 0, "mig_migrate: %s (%s)", strerror(-r), mig_tenant_last_error());
	CHECK(mig_tenant_detach(mt) == 0, "detach");
	CHECK(folios_count(t.pid, t.start, t.end - t.start, fa) == 0, "count after");
	restore_knobs();
	printf("# sizes: libmig %s -> %s; the test's own count %s -> %s; THPs placed whole "
	       "%" PRIu64 ", collapsed %" PRIu64 "\n",
	       folios_str(res.large_before, b1, sizeof(b1)),
	       folios_str(res.large_after, b2, sizeof(b2)), folios_str(fb, b3, sizeof(b3)),
	       folios_str(fa, b4, sizeof(b4)), res.huge_moved, res.huge_collapsed);
	CHECK(folios_within(res.large_before, fb, 0, 0), "large folios before: libmig %s, test %s",
	      b1, b3);
	CHECK(folios_within(res.large_after, fa, 0, 0), "large folios after: libmig %s, test %s",
	      b2, b4);
	CHECK(folios_sums(res.large_before, res.thp_before, res.mthp_before) &&
		      folios_sums(res.large_after, res.thp_after, res.mthp_after),
	      "thp_*/mthp_* are not the sums of large_before/large_after");
	CHECK(res.pages_moved == res.pages_present, "%" PRIu64 " of %" PRIu64 " pages moved",
	      res.pages_moved, res.pages_present);
	/*
	 * Every mTHP that was not on the target went there whole (move_pages
	 * of its head), and is one folio of its size afterwards; those
	 * already there (force) moved as 4 KiB pages, as on one node.
	 */
	printf("# sizes: to node %d; mTHPs not on it before: %s; moved whole %" PRIu64 "\n", target,
	       folios_str(offb, b1, sizeof(b1)), res.mthp_moved);
	CHECK(res.mthp_moved == off,
	      "%" PRIu64 " mTHPs moved whole, %" PRIu64 " were not on the target", res.mthp_moved,
	      off);
	for (unsigned k = 2; k < 9; k++)
		CHECK(fa[k] == offb[k],
		      "%u kB: %" PRIu64 " folios after, %" PRIu64 " off the target before", 4u << k,
		      fa[k], offb[k]);
	CHECK(tenant_verify(&t), "data changed by the migration");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	mig_migrate_result_free(&res);
}

/*
 * skip (huge_pages = skip, issue 14): in the sizes tenant,
 * mig_ranges_without_large leaves out exactly the pages of the large
 * folios and counts them per size as the test does (ret_folios, every
 * size incl. 2 MiB; the pages, their sum); the rest migrated (forced; to
 * node 1 where there are two nodes), every page of a large folio keeps
 * its physical page and node, the folios per size are as before, the
 * 4 KiB pages moved (to node 1 where there are two), the data is intact.
 */
static void test_skip(bool must)
{
	uint64_t fb[MIG_FOLIO_ORDERS], fs[MIG_FOLIO_ORDERS], fa[MIG_FOLIO_ORDERS], pages = 0,
										   want = 0;
	struct mig_migrate_opts o = { .force = true };
	struct mig_range rg, *small = NULL;
	struct mig_pageinfo *pi0, *pi1;
	struct mig_migrate_result res;
	struct mig_nodes to = { 0 };
	char b1[256], b2[256];
	size_t nsmall = 0, n, large = 0, moved = 0;
	int target = nodes_count() >= 2 ? 1 : 0, r;
	struct tenant t;
	mig_tenant *mt;

	if (!sizes_tenant(&t, must, "skip", fb))
		return;
	n = (t.end - t.start) / 4096;
	pi0 = calloc(n, sizeof(*pi0));
	pi1 = calloc(n, sizeof(*pi1));
	CHECK(pi0 && pi1, "calloc");
	CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi0) == 0,
	      "query before");
	rg = (struct mig_range){ t.start, t.end };
	r = mig_ranges_without_large(t.pid, &rg, 1, &small, &nsmall, &pages, fs);
	CHECK(r == 0, "mig_ranges_without_large: %s", strerror(-r));
	for (unsigned k = 1; k < MIG_FOLIO_ORDERS; k++)
		want += fb[k] << k;
	printf("# skip: left out %s (%" PRIu64 " pages), the test counts %s (%" PRIu64
	       " pages); %zu ranges left\n",
	       folios_str(fs, b1, sizeof(b1)), pages, folios_str(fb, b2, sizeof(b2)), want, nsmall);
	for (unsigned k = 0; k < MIG_FOLIO_ORDERS; k++)
		CHECK(fs[k] == fb[k], "skipped per size %s, the test counts %s", b1, b2);
	CHECK(pages == want, "%" PRIu64 " pages skipped, %" PRIu64 " in large folios", pages, want);
	CHECK(nsmall > 0, "nothing left to migrate");

	mig_nodes_set(&to, (unsigned)target);
	r = mig_tenant_attach(t.pid, NULL, &mt);
	CHECK(r == 0, "attach: %s (%s)", strerror(-r), mig_tenant_last_error());
	r = mig_migrate(mt, small, nsmall, &to, &o, NULL, NULL, &res);
	CHECK(r == 0, "mig_migrate: %s (%s)", strerror(-r), mig_tenant_last_error());
	CHECK(mig_tenant_detach(mt) == 0, "detach");
	CHECK(mig_query_pages(t.pid, t.start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi1) == 0,
	      "query after");
	CHECK(folios_count(t.pid, t.start, t.end - t.start, fa) == 0, "count after");
	restore_knobs();
	for (size_t i = 0; i < n; i++) {
		if (!(pi0[i].flags & MIG_PAGE_PRESENT))
			continue;
		if (pi0[i].flags & MIG_PAGE_LARGE) {
			CHECK(pi1[i].pfn == pi0[i].pfn && pi1[i].node == pi0[i].node &&
				      (pi1[i].flags & MIG_PAGE_LARGE),
			      "page %zu of a large folio changed: pfn %#" PRIx64 " node %d -> pfn "
			      "%#" PRIx64 " node %d",
			      i, pi0[i].pfn, pi0[i].node, pi1[i].pfn, pi1[i].node);
			large++;
		} else {
			CHECK(nodes_count() < 2 || pi1[i].node == target,
			      "4 KiB page %zu on node %d", i, pi1[i].node);
			moved++;
		}
	}
	CHECK(res.pages_moved == moved && res.large_before[9] == 0 && res.mthp_before == 0,
	      "the job moved %" PRIu64 " pages (%zu small present), met %" PRIu64
	      " THPs and %" PRIu64 " mTHPs",
	      res.pages_moved, moved, res.thp_before, res.mthp_before);
	for (unsigned k = 0; k < MIG_FOLIO_ORDERS; k++)
		CHECK(fa[k] == fb[k], "large folios after %s, before %s",
		      folios_str(fa, b1, sizeof(b1)), folios_str(fb, b2, sizeof(b2)));
	printf("# skip: %zu pages of large folios kept their physical page and node, %zu 4 KiB "
	       "pages moved (%s)\n",
	       large, moved, nodes_count() >= 2 ? "to node 1" : "node 0, one node");
	CHECK(tenant_verify(&t), "data changed by the migration");
	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	mig_migrate_result_free(&res);
	free(small);
	free(pi0);
	free(pi1);
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
	bool two = nodes_count() >= 2, move;
	uint64_t own[MIG_FOLIO_ORDERS];
	char b1[256], b2[256], b3[256];
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
	move = mig_tenant_features(mt) & UFFD_FEATURE_MOVE;
	r = mig_migrate(mt, &rg, 1, &to, &o, NULL, NULL, &res);
	CHECK(r == 0, "mig_migrate: %s (%s)", strerror(-r), mig_tenant_last_error());
	CHECK(mig_tenant_detach(mt) == 0, "detach");
	CHECK(mig_query_pages(t->pid, x, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi1) == 0,
	      "query after");
	CHECK(folios_count(t->pid, rg.start, rg.end - rg.start, own) == 0, "count after");
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
	/*
	 * Per size: the folio inside the range, and only it (the cut ones
	 * were split before the job looked); afterwards what the test sees.
	 */
	printf("# %s: large folios in the range %s -> %s (the test's own count after: %s); "
	       "THPs placed whole %" PRIu64 ", collapsed %" PRIu64 ", fell back %" PRIu64 "\n",
	       what, folios_str(res.large_before, b1, sizeof(b1)),
	       folios_str(res.large_after, b2, sizeof(b2)), folios_str(own, b3, sizeof(b3)),
	       res.huge_moved, res.huge_collapsed, res.huge_fallback);
	for (unsigned k = 1; k < MIG_FOLIO_ORDERS; k++)
		CHECK(res.large_before[k] == (k == order),
		      "%s: large folios before: %s, want one "
		      "of order %u",
		      what, b1, order);
	CHECK(folios_within(res.large_after, own, 0, 0),
	      "%s: large folios after: libmig %s, the "
	      "test %s",
	      what, b2, b3);
	/*
	 * The THP inside: whole on the target afterwards, and where the
	 * tenant's uffd has UFFDIO_MOVE placed whole with one PMD move
	 * (docs/engine.md, "Whole THPs"), not copied and re-formed.
	 */
	if (order == 9) {
		CHECK(one_folio(t, x + fsize, fsize / 4096, order),
		      "%s: the THP inside the range is not one THP after the move", what);
		CHECK(res.large_after[9] == 1, "%s: %" PRIu64 " THPs in the range after", what,
		      res.large_after[9]);
		bool kern = pi0[fsize / 4096].node != target && !o.thp_uffd && !o.no_collapse;

		/* Off the target: the kernel's migration moves it whole (large_move). */
		if (kern)
			CHECK(res.huge_kmoved == 1 && res.huge_moved == 0 &&
				      res.huge_collapsed == 0,
			      "%s: the THP inside was off the target: moved by the kernel %" PRIu64
			      ", placed whole %" PRIu64 ", collapsed %" PRIu64,
			      what, res.huge_kmoved, res.huge_moved, res.huge_collapsed);
		else if (move)
			CHECK(res.huge_moved == 1 && res.huge_collapsed == 0,
			      "%s: UFFDIO_MOVE: the THP inside was placed whole %" PRIu64
			      " times, collapsed %" PRIu64 " (fell back %" PRIu64 ")",
			      what, res.huge_moved, res.huge_collapsed, res.huge_fallback);
		else
			CHECK(res.huge_moved == 0 && res.huge_collapsed == 1,
			      "%s: no UFFDIO_MOVE: placed whole %" PRIu64 ", collapsed %" PRIu64,
			      what, res.huge_moved, res.huge_collapsed);
	}
	if (order < 9) {
		bool away = pi0[fsize / 4096].node != target;

		CHECK(res.mthp_moved == (away ? 1u : 0u),
		      "%s: mthp_moved %" PRIu64 ", the mTHP inside was %s the target", what,
		      res.mthp_moved, away ? "off" : "on");
		CHECK(!away || one_folio(t, x + fsize, fsize / 4096, order),
		      "%s: the mTHP inside is not one folio on the target", what);
	}
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

	if (set_knob(MTHP_KNOB, "always") < 0) {
		printf("# mTHP: no 64 KiB mTHP on this kernel (before 6.8): not tested\n");
		return;
	}
	(void)set_knob(PMD_KNOB, "never");
	tenant_start(&t, "-s", "4M", "-m", "default", "-t", "all", (char *)NULL);
	restore_knobs();
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

	if (only && strcmp(only, "thp") && strcmp(only, "mthp") && strcmp(only, "sizes") &&
	    strcmp(only, "edges") && strcmp(only, "skip"))
		FAIL("usage: proc_split [thp|mthp|sizes|edges|skip]");
	need_root();
	atexit(restore_knobs);
	if (read_knob("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) < 0 ||
	    strcmp(buf, "never") == 0)
		SKIP("transparent huge pages are unavailable or disabled on this host");
	if (only && !strcmp(only, "edges")) {
		test_edges();
		return 0;
	}
	if (!only || !strcmp(only, "mthp"))
		test_mthp(only != NULL);
	if (!only || !strcmp(only, "sizes"))
		test_sizes(only != NULL);
	if (!only || !strcmp(only, "skip"))
		test_skip(only != NULL);
	if (!only || !strcmp(only, "thp"))
		test_pmd_thp();
	return 0;
}
