/*
 * test_pagemap.c - libmig/pagemap.c: the pagemap/kpageflags decoding table,
 * the per-size count of large folios (mig__count_folio), argument checks, and mig_query_pages() on
 * this process's own memory: written pages are present with a node, read-only-touched pages are the
 * zero page, untouched pages are absent and stay absent after the query.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mig.h"
#include "procfs.h"
#include "unit.h"

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
	ck_assert_int_eq(pi[50].node, -ENOENT);
	ck_assert_int_eq(mig_query_pages(getpid(), (uintptr_t)p, n, MIG_QUERY_PAGEMAP, pi), 0);
	ck_assert_int_eq(pi[0].node, -ENODATA);
	munmap((void *)p, n * (size_t)ps);
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
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(pagemap_suite)
