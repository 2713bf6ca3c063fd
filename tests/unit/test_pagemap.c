/*
 * test_pagemap.c - libmig/pagemap.c: the pagemap/kpageflags decoding table,
 * the per-size count of large folios (mig__count_folio), argument checks, and mig_query_pages() on
 * this process's own memory: written pages are present with a node, read-only-touched pages are the
 * zero page, untouched pages are absent and stay absent after the query.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "mig.h"
#include "procfs.h"
#include "unit.h"
#include "util.h"

#define P    MIG__PM_PRESENT
#define KH   MIG__KPF(MIG__KPF_COMPOUND_HEAD)
#define KT   MIG__KPF(MIG__KPF_COMPOUND_TAIL)
#define KTHP MIG__KPF(MIG__KPF_THP)
#define KZ   MIG__KPF(MIG__KPF_ZERO_PAGE)

static const struct {
	uint64_t pm, kpf;
	int known;
	uint32_t flags;
} flag_cases[] = {
	{ 0, 0, 0, 0 },
	{ P | 1234, 0, 0, MIG_PAGE_PRESENT },
	{ MIG__PM_SWAPPED | 77, 0, 0, MIG_PAGE_SWAPPED },
	{ P | MIG__PM_EXCLUSIVE | 5, 0, 1, MIG_PAGE_PRESENT | MIG_PAGE_EXCLUSIVE },
	{ P | 5, KH | KTHP, 1, MIG_PAGE_PRESENT | MIG_PAGE_LARGE | MIG_PAGE_HEAD },
	{ P | 5, KT | KTHP, 1, MIG_PAGE_PRESENT | MIG_PAGE_LARGE },
	/* kpageflags unknown: the THP bits are not trusted. */
	{ P | 5, KT | KTHP, 0, MIG_PAGE_PRESENT },
	/* A compound page that is not a THP (hugetlb, driver memory) is not LARGE. */
	{ P | 5, KH | MIG__KPF(MIG__KPF_HUGE), 1, MIG_PAGE_PRESENT },
	{ P | 5, KZ, 1, MIG_PAGE_PRESENT | MIG_PAGE_ZERO },
	{ P | 5, KZ | KTHP | KT, 1, MIG_PAGE_PRESENT | MIG_PAGE_ZERO | MIG_PAGE_LARGE },
	/* kpageflags of a page that is not present is meaningless. */
	{ 0, KTHP | KH, 1, 0 },
	{ P | 5, MIG__KPF(MIG__KPF_NOPAGE), 1, MIG_PAGE_PRESENT },
};

START_TEST(test_page_flags)
{
	uint32_t f = mig__page_flags(flag_cases[_i].pm, flag_cases[_i].kpf, flag_cases[_i].known);

	ck_assert_msg(f == flag_cases[_i].flags, "case %d: %#x want %#x", _i, f,
		      flag_cases[_i].flags);
}
END_TEST

/* Large folio heads counted per order; 0 with MIG_PAGE_THP counts as the PMD order. */
static const struct {
	uint32_t flags;
	uint8_t order;
	int counted; /* the order counted, -1 none */
} folio_cases[] = {
	{ MIG_PAGE_PRESENT, 0, -1 },
	{ MIG_PAGE_PRESENT | MIG_PAGE_LARGE, 4, -1 }, /* a tail */
	{ MIG_PAGE_PRESENT | MIG_PAGE_LARGE | MIG_PAGE_HEAD, 2, 2 },
	{ MIG_PAGE_PRESENT | MIG_PAGE_LARGE | MIG_PAGE_HEAD, 4, 4 },
	{ MIG_PAGE_PRESENT | MIG_PAGE_LARGE | MIG_PAGE_HEAD | MIG_PAGE_THP, 9, 9 },
	{ MIG_PAGE_PRESENT | MIG_PAGE_LARGE | MIG_PAGE_HEAD | MIG_PAGE_THP, 0, 9 },
	{ MIG_PAGE_PRESENT | MIG_PAGE_LARGE | MIG_PAGE_HEAD, 0, -1 }, /* order unknown */
	{ MIG_PAGE_PRESENT | MIG_PAGE_LARGE | MIG_PAGE_HEAD, 20, MIG_FOLIO_ORDERS - 1 },
};

START_TEST(test_count_folio)
{
	struct mig_pageinfo p = { .flags = folio_cases[_i].flags, .order = folio_cases[_i].order };
	uint64_t counts[MIG_FOLIO_ORDERS] = { 0 }, thp, mthp;
	int want = folio_cases[_i].counted;
	unsigned pmd = mig__pmd_order();

	/* The table is written for x86_64's 4 KiB pages: PMD order 9. */
	if (pmd != 9 && want == 9)
		want = (int)pmd;
	mig__count_folio(&p, counts);
	for (int o = 0; o < MIG_FOLIO_ORDERS; o++)
		ck_assert_msg(counts[o] == (o == want), "case %d: order %d counted %llu", _i, o,
			      (unsigned long long)counts[o]);
	mig__folio_totals(counts, &thp, &mthp);
	ck_assert_uint_eq(thp, want >= (int)pmd);
	ck_assert_uint_eq(mthp, want > 0 && want < (int)pmd);
}
END_TEST

START_TEST(test_args)
{
	long ps = sysconf(_SC_PAGESIZE);
	struct mig_pageinfo pi[2];
	uint64_t base = (uintptr_t)pi & ~(uint64_t)(ps - 1);

	ck_assert_int_eq(mig_query_pages(getpid(), base + 1, 1, MIG_QUERY_PAGEMAP, pi), -EINVAL);
	ck_assert_int_eq(mig_query_pages(getpid(), base, 0, MIG_QUERY_PAGEMAP, pi), -EINVAL);
	ck_assert_int_eq(mig_query_pages(getpid(), base, 1, 0, pi), -EINVAL);
	ck_assert_int_eq(mig_query_pages(getpid(), base, 1, 1u << 7, pi), -EINVAL);
	ck_assert_int_eq(mig_query_pages(getpid(), base, 1, MIG_QUERY_PAGEMAP, NULL), -EINVAL);
	ck_assert_int_eq(mig_query_pages(0, base, 1, MIG_QUERY_PAGEMAP, pi), -EINVAL);
	ck_assert_int_eq(
		mig_query_pages(getpid(), UINT64_MAX - (uint64_t)ps + 1, 2, MIG_QUERY_PAGEMAP, pi),
		-EINVAL);
	ck_assert_int_eq(mig_query_pages(0x7ffffff0, base, 1, MIG_QUERY_PAGEMAP, pi), -ESRCH);
	ck_assert_int_eq(mig_query_pages(0x7ffffff0, base, 1, MIG_QUERY_NODE, pi), -ESRCH);
	ck_assert_uint_ge(mig__pmd_order(), 1);
}
END_TEST

START_TEST(test_self)
{
	const size_t n = 64;
	long ps = sysconf(_SC_PAGESIZE);
	struct mig_pageinfo pi[64];
	unsigned char vec[64];
	volatile char *p;
	bool root_view;
	int kfd;

	kfd = open("/proc/kpageflags", O_RDONLY);
	root_view = kfd >= 0;
	if (kfd >= 0)
		close(kfd);

	p = mmap(NULL, n * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne((void *)p, MAP_FAILED);
	/* Small pages only, so that the expectations below hold on any THP setting. */
	madvise((void *)p, n * (size_t)ps, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < 32; i++)
		p[i * (size_t)ps] = (char)(i + 1);
	(void)p[40 * (size_t)ps]; /* a read fault maps the zero page */

	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(mig_query_pages(getpid(), (uintptr_t)p, n,
						 MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi),
				 0);
		for (size_t i = 0; i < n; i++) {
			if (i < 32) {
				ck_assert_msg(pi[i].flags & MIG_PAGE_PRESENT, "page %zu absent", i);
				ck_assert_msg(pi[i].node >= 0, "page %zu node %d", i, pi[i].node);
				ck_assert(!(pi[i].flags & MIG_PAGE_LARGE));
				if (root_view)
					ck_assert_uint_ne(pi[i].pfn, 0);
			} else if (i == 40) {
				ck_assert(pi[i].flags & MIG_PAGE_PRESENT);
				/*
				 * A read fault maps the shared zero page (-EFAULT
				 * from move_pages), unless the kernel has none for
				 * anonymous reads (some hypervisors' guests boot
				 * with pvm_no_zero_page=1): then a zero-filled page
				 * of its own, on a node.
				 */
				if (pi[i].node != -EFAULT) {
					ck_assert_int_ge(pi[i].node, 0);
					ck_assert(!(pi[i].flags & MIG_PAGE_ZERO));
				} else if (root_view) {
					ck_assert(pi[i].flags & MIG_PAGE_ZERO);
				}
			} else {
				ck_assert_msg(!(pi[i].flags & MIG_PAGE_PRESENT), "page %zu present",
					      i);
				ck_assert_int_eq(pi[i].node, -ENOENT);
				ck_assert_uint_eq(pi[i].pfn, 0);
			}
		}
	}
	/* Nothing was faulted in by the queries. */
	ck_assert_int_eq(mincore((void *)p, n * (size_t)ps, vec), 0);
	for (size_t i = 41; i < n; i++)
		ck_assert_msg(!(vec[i] & 1), "page %zu became resident", i);

	/* Node only: flags stay 0; pagemap only: node is -ENODATA. */
	ck_assert_int_eq(mig_query_pages(getpid(), (uintptr_t)p, n, MIG_QUERY_NODE, pi), 0);
	ck_assert_uint_eq(pi[0].flags, 0);
	ck_assert_int_ge(pi[0].node, 0);
	/* move_pages(2) of a page never touched: -ENOENT, -EFAULT on Linux 6.1. */
	ck_assert_msg(pi[50].node == -ENOENT || pi[50].node == -EFAULT, "page 50 node %d",
		      pi[50].node);
	ck_assert_int_eq(mig_query_pages(getpid(), (uintptr_t)p, n, MIG_QUERY_PAGEMAP, pi), 0);
	ck_assert_int_eq(pi[0].node, -ENODATA);
	munmap((void *)p, n * (size_t)ps);
}
END_TEST

/* Whether the kernel has PAGEMAP_SCAN (Linux 6.7+). */
static bool has_pm_scan(void *addr)
{
	struct page_region v[1];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uintptr_t)addr,
		.end = (uintptr_t)addr + (uintptr_t)sysconf(_SC_PAGESIZE),
		.vec = (uintptr_t)v,
		.vec_len = 1,
		.return_mask = PAGE_IS_PRESENT,
	};
	int fd = open("/proc/self/pagemap", O_RDONLY), r;

	ck_assert_int_ge(fd, 0);
	r = ioctl(fd, PAGEMAP_SCAN, &arg);
	close(fd);
	return r >= 0;
}

/* Query 0: mig_query_pages (pagemap), 1: mig__query_folios. */
static int query(int q, const char *p, size_t n, struct mig_pageinfo *out)
{
	return q == 0 ? mig_query_pages(getpid(), (uintptr_t)p, n, MIG_QUERY_PAGEMAP, out)
		      : mig__query_folios(getpid(), (uintptr_t)p, n, out);
}

/*
 * PMD-mapped THPs are told from the head's kpageflags entry alone
 * (pagemap.c, thp_block): the answer must be the one the 512 entries give.
 * 8 blocks of 2 MiB: THPs, one split by an mprotect of one page (mapped
 * by PTEs), one the huge zero page (or a THP, where the kernel maps none),
 * one half dropped, one of 4 KiB pages (MADV_NOHUGEPAGE).
 */
START_TEST(test_thp_fast)
{
	const size_t ps = (size_t)sysconf(_SC_PAGESIZE), bp = (size_t)1 << mig__pmd_order();
	const size_t blk = bp * ps, nb = 8, n = nb * bp;
	_cleanup_free_ struct mig_pageinfo *fast = calloc(n, sizeof(*fast)),
					   *slow = calloc(n, sizeof(*slow));
	uint64_t before, after;
	size_t thp = 0;
	char *raw, *p;
	int kfd = open("/proc/kpageflags", O_RDONLY), old;

	if (kfd < 0)
		UNIT_SKIP("/proc/kpageflags cannot be read (needs root)");
	close(kfd);
	ck_assert(fast && slow);
	raw = mmap(NULL, n * ps + blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(raw, MAP_FAILED);
	p = (char *)ALIGN_UP((uintptr_t)raw, blk);
	(void)madvise(p, n * ps, MADV_HUGEPAGE);
	(void)madvise(p + 7 * blk, blk, MADV_NOHUGEPAGE);
	memset(p, 0x5a, n * ps);
	ck_assert_int_eq(mprotect(p + 2 * blk + 100 * ps, ps, PROT_READ), 0);
	ck_assert_int_eq(madvise(p + 4 * blk, blk, MADV_DONTNEED), 0);
	ck_assert_int_eq(((volatile char *)p)[4 * blk], 0);
	ck_assert_int_eq(madvise(p + 6 * blk, blk / 2, MADV_DONTNEED), 0);
	/*
	 * khugepaged must not collapse the half-dropped block again between
	 * the two queries (it did once under load: page 3072 absent to the
	 * fast query, in a new THP to the slow one).
	 */
	(void)madvise(p + 6 * blk, blk, MADV_NOHUGEPAGE);

	for (int q = 0; q < 2; q++) {
		(void)mig__thp_fast_set(1, &before);
		ck_assert_int_eq(query(q, p, n, fast), 0);
		old = mig__thp_fast_set(0, &after);
		ck_assert_int_eq(old, 1);
		ck_assert_int_eq(query(q, p, n, slow), 0);
		(void)mig__thp_fast_set(1, NULL);
		thp = 0;
		for (size_t i = 0; i < n; i++) {
			ck_assert_msg(
				fast[i].flags == slow[i].flags && fast[i].pfn == slow[i].pfn &&
					fast[i].order == slow[i].order,
				"query %d page %zu (block %zu): flags %#x/%#x pfn %llu/%llu "
				"order %u/%u",
				q, i, i / bp, fast[i].flags, slow[i].flags,
				(unsigned long long)fast[i].pfn, (unsigned long long)slow[i].pfn,
				fast[i].order, slow[i].order);
			thp += !!(fast[i].flags & MIG_PAGE_THP);
		}
		if (thp == 0) {
			munmap(raw, n * ps + blk);
			UNIT_SKIP("no THP formed (transparent_hugepage disabled?)");
		}
		/* The blocks still mapped by their PMD were told the short way (6.7+). */
		if (has_pm_scan(p))
			ck_assert_uint_ge(after - before, 1);
		else
			printf("# thp_fast: no PAGEMAP_SCAN in this kernel, only the long way "
			       "ran\n");
		printf("# thp_fast query %d: %zu THP pages, %llu blocks without kpageflags\n", q,
		       thp, (unsigned long long)(after - before));
	}
	/* The split block is still one THP (mapped by PTEs): the long way, same answer. */
	ck_assert(fast[2 * bp].flags & MIG_PAGE_THP);
	ck_assert(!(fast[7 * bp].flags & MIG_PAGE_LARGE));
	munmap(raw, n * ps + blk);
}
END_TEST

/*
 * A page's node from its PFN's memory block (pfnnode.c) must be what
 * move_pages(2) says, page for page: 4 KiB pages, a THP, the zero page,
 * pages shared with a fork child, absent pages. With PFNs (root) the
 * table must have answered for the exclusive pages itself.
 */
START_TEST(test_pfn_nodes)
{
	const size_t ps = (size_t)sysconf(_SC_PAGESIZE), bp = (size_t)1 << mig__pmd_order();
	const size_t blk = bp * ps, n = 4 * bp;
	_cleanup_free_ struct mig_pageinfo *tab = calloc(n, sizeof(*tab)),
					   *ask = calloc(n, sizeof(*ask)),
					   *pm = calloc(n, sizeof(*pm));
	size_t known, excl = 0, zero = 0;
	char *raw, *p;
	pid_t child;
	int old;

	ck_assert(tab && ask && pm);
	raw = mmap(NULL, n * ps + blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(raw, MAP_FAILED);
	p = (char *)ALIGN_UP((uintptr_t)raw, blk);
	/* Block 0: 4 KiB pages; 1: a THP if it forms; 2: shared with a child; 3: zero, absent. */
	(void)madvise(p, blk, MADV_NOHUGEPAGE);
	(void)madvise(p + blk, blk, MADV_HUGEPAGE);
	(void)madvise(p + 2 * blk, 2 * blk, MADV_NOHUGEPAGE);
	memset(p, 0x33, 3 * blk);
	for (size_t i = 0; i < bp / 2; i++)
		zero += ((volatile char *)p)[3 * blk + i * ps] == 0;
	ck_assert_uint_eq(zero, bp / 2);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	/* The parent writes blocks 0 and 1 again: its own pages; block 2 stays shared. */
	memset(p, 0x44, 2 * blk);

	old = mig__pfn_node_set(1);
	ck_assert_int_eq(mig_query_pages(getpid(), (uint64_t)(uintptr_t)p, n,
					 MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, tab),
			 0);
	(void)mig__pfn_node_set(0);
	ck_assert_int_eq(mig_query_pages(getpid(), (uint64_t)(uintptr_t)p, n,
					 MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, ask),
			 0);
	(void)mig__pfn_node_set(old);
	ck_assert_int_eq(
		mig_query_pages(getpid(), (uint64_t)(uintptr_t)p, n, MIG_QUERY_PAGEMAP, pm), 0);
	known = mig__pfn_nodes(pm, n);
	kill(child, SIGKILL);
	(void)waitpid(child, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(tab[i].node == ask[i].node,
			      "page %zu (block %zu, flags %#x): node %d from its PFN, %d from "
			      "move_pages",
			      i, i / bp, tab[i].flags, tab[i].node, ask[i].node);
		excl += (pm[i].flags & MIG_PAGE_EXCLUSIVE) && pm[i].pfn;
	}
	printf("# pfn_nodes: %zu of %zu pages told by their PFN (%zu exclusive with a PFN)\n",
	       known, n, excl);
	/* Root sees PFNs: every exclusive page was told without move_pages. */
	if (pm[0].pfn)
		ck_assert_uint_eq(known, excl);
	ck_assert_uint_ge(excl, pm[0].pfn ? 2 * bp : 0);
	munmap(raw, n * ps + blk);
}
END_TEST

static Suite *pagemap_suite(void)
{
	Suite *s = suite_create("pagemap");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_page_flags, 0,
			    (int)(sizeof(flag_cases) / sizeof(flag_cases[0])));
	tcase_add_loop_test(tc, test_count_folio, 0,
			    (int)(sizeof(folio_cases) / sizeof(folio_cases[0])));
	tcase_add_test(tc, test_args);
	tcase_add_test(tc, test_self);
	tcase_add_test(tc, test_thp_fast);
	tcase_add_test(tc, test_pfn_nodes);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(pagemap_suite)
