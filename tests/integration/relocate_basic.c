/*
 * relocate_basic.c - mig_compact and mig_relocate on a live tenant with
 * writer threads (tests/tenants/relocate_tenant.c).
 *
 * The tenant mremapped a faulted block (block 1) right behind another
 * (block 0): two neighbouring VMAs that do not merge. After mig_compact
 * they are one VMA, every page holds its data, every page is on the node
 * it was on, and where UFFDIO_MOVE was used it is the same physical page
 * (pagemap PFN) and THPs stay THPs. Then block 2 is relocated right
 * behind them with mig_relocate: one VMA again, same checks, block 2's
 * old place unmapped. With 2+ nodes block 1 and 2 are first put on the
 * last node, so a copy that ignored the node would show.
 *
 *   relocate_basic [move|copy|uncounted]   move: the kernel's best path
 *       (MOVE on 6.8+, copy before); copy: MIG_RELOCATE_NO_MOVE; uncounted:
 *       MOVE, and every MOVE that moved its whole run answers -EEXIST,
 *       "nothing moved", as Linux 6.18 sometimes does (fault point
 *       relocate:uncounted): the pages must be found where they went.
 */
#include <numaif.h>

#include "integration/relocate_common.h"

static int last_node(void)
{
	int n = 0;

	for (int i = 0; i < 64; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/sys/devices/system/node/node%d", i);
		if (access(p, F_OK) == 0)
			n = i;
	}
	return n;
}

/* Put n pages from addr of pid on node (move_pages(2)); returns how many went. */
static size_t put_on(pid_t pid, uint64_t addr, size_t n, int node)
{
	void **pages = calloc(n, sizeof(*pages));
	int *nodes = calloc(n, sizeof(*nodes)), *st = calloc(n, sizeof(*st));
	size_t ok = 0;

	CHECK(pages && nodes && st, "calloc");
	for (size_t i = 0; i < n; i++) {
		pages[i] = (void *)(uintptr_t)(addr + i * RPAGE);
		nodes[i] = node;
	}
	CHECK(move_pages(pid, n, pages, nodes, st, MPOL_MF_MOVE) >= 0, "move_pages: %s",
	      strerror(errno));
	for (size_t i = 0; i < n; i++)
		ok += st[i] == node;
	free(pages);
	free(nodes);
	free(st);
	return ok;
}

/* Same node for every page; same PFN too when same_pfn. Returns pages compared. */
static size_t compare(const struct mig_pageinfo *before, const struct mig_pageinfo *after, size_t n,
		      bool same_pfn, const char *what)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++) {
		if (!(before[i].flags & MIG_PAGE_PRESENT))
			continue;
		CHECK(after[i].flags & MIG_PAGE_PRESENT, "%s: page %zu not present after", what, i);
		CHECK(after[i].node == before[i].node, "%s: page %zu was on node %d, now %d", what,
		      i, before[i].node, after[i].node);
		if (same_pfn)
			CHECK(after[i].pfn == before[i].pfn,
			      "%s: page %zu was PFN 0x%llx, now 0x%llx", what, i,
			      (unsigned long long)before[i].pfn, (unsigned long long)after[i].pfn);
		c++;
	}
	return c;
}

/*
 * The block whose pages were before[] is now at addr: every page present,
 * on its node (and PFN), as many THPs as before.
 */
static void check_block(const struct rtenant *t, const char *what,
			const struct mig_pageinfo *before, uint64_t addr, bool same_pfn)
{
	struct mig_pageinfo *after = pages_of(t->pid, addr, t->npages);
	size_t n = compare(before, after, t->npages, same_pfn, what);
	size_t h0 = count_heads(before, t->npages, 9), h1 = count_heads(after, t->npages, 9);

	CHECK(n == t->npages, "%s: only %zu pages of the block were present", what, n);
	CHECK(h1 == h0, "%s: the block had %zu THPs, now %zu", what, h0, h1);
	printf("# %s: %zu pages on their node%s, THPs %zu kept\n", what, n,
	       same_pfn ? " with their PFN" : "", h1);
	free(after);
}

int main(int argc, char **argv)
{
	bool copy = argc > 1 && !strcmp(argv[1], "copy");
	bool uncounted = argc > 1 && !strcmp(argv[1], "uncounted");
	unsigned flags = copy ? MIG_RELOCATE_NO_MOVE : 0;
	int want_path = !copy && host_has_move() ? MIG_RELOCATE_MOVE : MIG_RELOCATE_COPY;
	bool same_pfn = want_path == MIG_RELOCATE_MOVE;
	struct mig_relocate_result res = { 0 };
	struct mig_pageinfo *b1, *b2;
	struct mig_range rg;
	struct mig_vma v[8];
	struct rtenant t;
	mig_tenant *mt;
	size_t n, pinned;
	int node, r;

	if (argc > 1 && strcmp(argv[1], "move") && strcmp(argv[1], "copy") && !uncounted)
		FAIL("usage: relocate_basic [move|copy|uncounted]");
	if (geteuid() != 0)
		SKIP("needs root (ptrace, pagemap PFNs)");
	if (uncounted && want_path != MIG_RELOCATE_MOVE)
		SKIP("this kernel has no UFFDIO_MOVE (Linux 6.8+)");
	if (uncounted)
		setenv("MIG_CRASH_AT", "relocate:uncounted:fault", 1);
	rtenant_start(&t, "-s", "8M", "-m", "thp", "-w", "2", (char *)NULL);
	CHECK(vmas_in(t.pid, t.a, t.a + 2 * t.size, v, 8) == 2, "expected two VMAs to start with");
	node = last_node();
	if (node > 0) {
		pinned = put_on(t.pid, t.a + t.size, t.npages, node) +
			 put_on(t.pid, t.d, t.npages, node);
		printf("# blocks 1 and 2 put on node %d: %zu of %zu pages\n", node, pinned,
		       2 * t.npages);
		CHECK(pinned > t.npages, "move_pages put too few pages on node %d", node);
	}
	b1 = pages_of(t.pid, t.a + t.size, t.npages);
	b2 = pages_of(t.pid, t.d, t.npages);

	r = mig_tenant_attach(t.pid, NULL, &mt);
	if (r < 0)
		SKIP("cannot attach: %s", mig_tenant_last_error());

	/* compact: the two blocks become one VMA. */
	rg = (struct mig_range){ t.a, t.a + 2 * t.size };
	r = mig_compact(mt, &rg, flags, &res);
	CHECK(r == 0, "mig_compact: %d %s", r, mig_tenant_last_error());
	print_result("compact", &res);
	CHECK(res.vmas_before == 2 && res.vmas_after == 1 && res.merged == 1,
	      "compact: VMAs %llu -> %llu, merged %llu", (unsigned long long)res.vmas_before,
	      (unsigned long long)res.vmas_after, (unsigned long long)res.merged);
	n = vmas_in(t.pid, t.a, t.a + 2 * t.size, v, 8);
	CHECK(n == 1 && v[0].start <= t.a && v[0].end >= t.a + 2 * t.size,
	      "maps show %zu VMAs over the two blocks", n);
	CHECK(all_runs(&res, want_path), "compact did not take the %s path throughout",
	      mig_relocate_path_name(want_path));
	CHECK(res.pages_remapped == 0, "pages were remapped");
	CHECK(res.pages_moved + res.pages_copied + res.pages_absent == t.npages,
	      "not every page accounted for");
	CHECK(!uncounted || res.moved_uncounted > 0, "compact: the fault point did not act");
	check_block(&t, "compact", b1, t.a + t.size, same_pfn);
	CHECK(rtenant_verify(&t), "tenant data wrong after compact");
	mig_relocate_result_free(&res);

	/* compact again: nothing left to do. */
	r = mig_compact(mt, &rg, flags, &res);
	CHECK(r == 0 && res.merged == 0 && res.vmas_after == 1, "second compact: %d", r);
	mig_relocate_result_free(&res);

	/* relocate block 2 behind them: one VMA over all three. */
	r = mig_relocate(mt, t.d, t.size, t.a + 2 * t.size, flags, &res);
	CHECK(r == 0, "mig_relocate: %d %s", r, mig_tenant_last_error());
	print_result("relocate", &res);
	CHECK(!strncmp(rtenant_say(&t, "moved %zu %zu 0x%lx", 2 * t.npages, t.npages,
				   (unsigned long)(t.a + 2 * t.size)),
		       "ok", 2),
	      "tenant did not take the new address");
	n = vmas_in(t.pid, t.a, t.a + 3 * t.size, v, 8);
	CHECK(n == 1 && v[0].start <= t.a && v[0].end >= t.a + 3 * t.size,
	      "maps show %zu VMAs over the three blocks", n);
	CHECK(vmas_in(t.pid, t.d, t.d + t.size, v, 8) == 0, "the source is still mapped");
	CHECK(res.vmas_after + 1 == res.vmas_before, "relocate: VMAs %llu -> %llu",
	      (unsigned long long)res.vmas_before, (unsigned long long)res.vmas_after);
	CHECK(all_runs(&res, want_path), "relocate did not take the %s path throughout",
	      mig_relocate_path_name(want_path));
	CHECK(!uncounted || res.moved_uncounted > 0, "relocate: the fault point did not act");
	check_block(&t, "relocate", b2, t.a + 2 * t.size, same_pfn);
	CHECK(rtenant_verify(&t), "tenant data wrong after relocate");
	mig_relocate_result_free(&res);

	/* Bad input is refused with a reason, nothing touched. */
	r = mig_relocate(mt, t.a, t.size, t.a + t.size / 2, flags, &res);
	CHECK(r == -EINVAL, "overlapping relocate: %d", r);
	r = mig_relocate(mt, t.a, t.size, t.a + 1, flags, &res);
	CHECK(r == -EINVAL, "unaligned relocate: %d", r);
	r = mig_relocate(mt, t.a + 2 * t.size, t.size, t.a, flags, &res);
	CHECK(r == -EEXIST, "relocate onto a mapping: %d %s", r, mig_tenant_last_error());
	printf("# refused: %s\n", mig_tenant_last_error());
	CHECK(rtenant_verify(&t), "tenant data wrong after refused calls");

	CHECK(mig_tenant_detach(mt) == 0, "detach");
	CHECK(rtenant_finish(&t) == 0, "tenant found its memory changed");
	free(b1);
	free(b2);
	return 0;
}
