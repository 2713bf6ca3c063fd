/*
 * pagemap.c - what backs each page of a tenant, seen from outside:
 * /proc/PID/pagemap (present, swapped, exclusive, PFN), /proc/kpageflags
 * (large folio, head/tail, zero page) and move_pages(2) with nodes == NULL
 * (the NUMA node of each page). None of these faults anything in.
 *
 * Speed matters: the daemon reads the placement of whole tenants, so
 * pagemap is read in large preads, kpageflags once per cluster of runs
 * of contiguous PFNs that lie close together (decode_chunk), a THP that
 * PAGEMAP_SCAN finds mapped by its PMD for its head's entry alone
 * (thp_block), and move_pages is asked in large batches and only about
 * pages pagemap says are present.
 *
 * Folio order. KPF_THP is set for every anonymous large folio on recent
 * kernels (fs/proc/page.c stable_page_flags(): folio_test_large() &&
 * folio_test_large_rmappable(), "any THPs here, not just PMD-sized ones");
 * 6.1 sets it for PageTransCompound pages that are on the LRU or anon, and
 * 6.1 has no mTHP, so there it always means a PMD-sized THP. To tell a PMD
 * THP from an mTHP we read the kpageflags of the PMD-aligned PFN block that
 * holds the page: folios are naturally aligned in PFN space, so the head
 * is found walking back over tail pages and the end walking forward.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bitmap.h"
#include "compat.h"
#include "mig.h"
#include "procfs.h"
#include "util.h"

/* Entries per pagemap pread: 256 KiB of entries describe 128 MiB. */
#define PAGEMAP_CHUNK 32768
/* Pages per move_pages(2) call. */
#define MOVE_PAGES_BATCH 16384
/* Largest run of PFNs read from kpageflags at once. */
#define KPF_RUN_MAX 4096
/*
 * PFNs read between two runs rather than a second pread. One pread costs
 * about 1.5 us, each entry about 60 ns (host 6.18): 16 entries are under
 * a second pread.
 */
#define KPF_GAP 16

unsigned mig__pmd_order(void)
{
	static unsigned order;
	unsigned o = __atomic_load_n(&order, __ATOMIC_RELAXED);

	if (o == 0) {
		unsigned long pmd = 0;
		long ps = sysconf(_SC_PAGESIZE);
		FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");

		if (f) {
			if (fscanf(f, "%lu", &pmd) != 1)
				pmd = 0;
			fclose(f);
		}
		/* Without THP support in the kernel there is no file: assume x86_64's 2 MiB. */
		if (pmd == 0 || ps <= 0 || pmd < (unsigned long)ps)
			pmd = 2UL << 20;
		for (o = 0; ((unsigned long)ps << o) < pmd; o++)
			;
		__atomic_store_n(&order, o, __ATOMIC_RELAXED);
	}
	return o;
}

void mig__count_folio(const struct mig_pageinfo *p, uint64_t *counts)
{
	unsigned o = p->order;

	if (!(p->flags & MIG_PAGE_LARGE) || !(p->flags & MIG_PAGE_HEAD))
		return;
	if (o == 0 && (p->flags & MIG_PAGE_THP))
		o = mig__pmd_order();
	if (o == 0)
		return;
	counts[MIN(o, (unsigned)MIG_FOLIO_ORDERS - 1)]++;
}

void mig__folio_totals(const uint64_t *counts, uint64_t *ret_thp, uint64_t *ret_mthp)
{
	unsigned pmd = mig__pmd_order();
	uint64_t thp = 0, mthp = 0;

	for (unsigned o = 1; o < MIG_FOLIO_ORDERS; o++) {
		if (o < pmd)
			mthp += counts[o];
		else
			thp += counts[o];
	}
	*ret_thp = thp;
	*ret_mthp = mthp;
}

uint32_t mig__page_flags(uint64_t pm, uint64_t kpf, int kpf_known)
{
	uint32_t f = 0;

	if (pm & MIG__PM_PRESENT)
		f |= MIG_PAGE_PRESENT;
	if (pm & MIG__PM_SWAPPED)
		f |= MIG_PAGE_SWAPPED;
	if (pm & MIG__PM_EXCLUSIVE)
		f |= MIG_PAGE_EXCLUSIVE;
	if (pm & MIG__PM_UFFD_WP)
		f |= MIG_PAGE_UFFD_WP;
	if (!kpf_known || !(f & MIG_PAGE_PRESENT) || (kpf & MIG__KPF(MIG__KPF_NOPAGE)))
		return f;
	if (kpf & MIG__KPF(MIG__KPF_ZERO_PAGE))
		f |= MIG_PAGE_ZERO;
	/* KPF_THP without compound bits cannot happen; hugetlb (KPF_HUGE) is not THP. */
	if ((kpf & MIG__KPF(MIG__KPF_THP)) &&
	    (kpf & (MIG__KPF(MIG__KPF_COMPOUND_HEAD) | MIG__KPF(MIG__KPF_COMPOUND_TAIL)))) {
		f |= MIG_PAGE_LARGE;
		if (kpf & MIG__KPF(MIG__KPF_COMPOUND_HEAD))
			f |= MIG_PAGE_HEAD;
	}
	return f;
}

static int pread_all(int fd, void *buf, size_t len, off_t off, size_t *ret_got)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, off + (off_t)got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*ret_got = got;
	return 0;
}

int mig__kpageflags_fd(void)
{
	static int shared = -1;
	int fd = __atomic_load_n(&shared, __ATOMIC_ACQUIRE), none = -1;

	if (fd >= 0)
		return fd;
	fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!__atomic_compare_exchange_n(&shared, &none, fd, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		close(fd); /* another thread's is kept */
		return none;
	}
	return fd;
}

int mig__kpageflags(int fd, uint64_t pfn, uint64_t *ret_flags)
{
	uint64_t v;
	size_t got;
	int r = pread_all(fd, &v, sizeof(v), (off_t)(pfn * sizeof(v)), &got);

	if (r < 0)
		return r;
	if (got != sizeof(v))
		return -ENXIO;
	*ret_flags = v;
	return 0;
}

/* 0 until PAGEMAP_SCAN was found missing (then 1): asked once a process. */
static int no_pm_scan;

/*
 * The PAGEMAP_SCAN walk of mig__scan_pages and mig__pmd_mapped, written
 * once: [start, start + npages pages) of pid is asked with the masks of
 * *mask, vec_len regions at a time, and fn gets each batch with the span
 * [at, walk_end) it covers (every page of the range is in exactly one
 * span). Returns 0, 1 when the kernel has no PAGEMAP_SCAN (found at the
 * first call and remembered), or -errno (fn's own; -ESRCH when the
 * process is gone).
 */
typedef int pm_scan_fn(void *ctx, const struct page_region *v, int n, uint64_t at,
		       uint64_t walk_end);

/* pm_scan on an open pagemap fd, over [start, end). */
static int pm_scan_fd(int fd, uint64_t start, uint64_t end, const struct pm_scan_arg *mask,
		      struct page_region *vec, size_t vec_len, pm_scan_fn *fn, void *ctx)
{
	if (__atomic_load_n(&no_pm_scan, __ATOMIC_RELAXED))
		return 1;
	for (uint64_t at = start; at < end;) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = at,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = vec_len,
			.category_mask = mask->category_mask,
			.category_anyof_mask = mask->category_anyof_mask,
			.return_mask = mask->return_mask,
		};
		int n = ioctl(fd, PAGEMAP_SCAN, &arg), r;

		if (n < 0) {
			if ((errno == ENOTTY || errno == EINVAL) && at == start) {
				__atomic_store_n(&no_pm_scan, 1, __ATOMIC_RELAXED);
				return 1;
			}
			return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
		}
		if (arg.walk_end <= at)
			return -EIO;
		r = fn(ctx, vec, n, at, arg.walk_end);
		if (r < 0)
			return r;
		at = arg.walk_end;
	}
	return 0;
}

static int pm_scan(pid_t pid, uint64_t start, size_t npages, const struct pm_scan_arg *mask,
		   struct page_region *vec, size_t vec_len, pm_scan_fn *fn, void *ctx)
{
	_cleanup_close_ int fd = -EBADF;
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
	char path[64];

	if (__atomic_load_n(&no_pm_scan, __ATOMIC_RELAXED))
		return 1;
	if (pid <= 0 || npages == 0 || start % ps || npages > (UINT64_MAX - start) / ps)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return pm_scan_fd(fd, start, start + npages * ps, mask, vec, vec_len, fn, ctx);
}

/* A one-block cache of kpageflags for the folio-order walk. */
struct kpf_block {
	uint64_t base; /* first PFN, or UINT64_MAX when empty */
	size_t n;      /* entries read */
	uint64_t *flags;
};

static int kpf_block_load(int fd, struct kpf_block *b, uint64_t pfn, size_t block_pages)
{
	uint64_t base = pfn - pfn % block_pages;
	size_t got;
	int r;

	if (b->base == base)
		return 0;
	r = pread_all(fd, b->flags, block_pages * sizeof(uint64_t),
		      (off_t)(base * sizeof(uint64_t)), &got);
	if (r < 0)
		return r;
	b->base = base;
	b->n = got / sizeof(uint64_t);
	return 0;
}

/*
 * Order of the large folio holding pfn, from the head/tail flags of the
 * PMD block around it; 0 when it cannot be told (a folio larger than the
 * block, or a block cut short at the end of memory).
 */
static int folio_span(int fd, struct kpf_block *b, uint64_t pfn, size_t block_pages,
		      uint64_t *ret_head, uint64_t *ret_npages)
{
	const uint64_t head_bit = MIG__KPF(MIG__KPF_COMPOUND_HEAD);
	const uint64_t tail_bit = MIG__KPF(MIG__KPF_COMPOUND_TAIL);
	size_t i, h, e;
	int r;

	r = kpf_block_load(fd, b, pfn, block_pages);
	if (r < 0)
		return r;
	i = (size_t)(pfn - b->base);
	if (i >= b->n)
		return -ENXIO;
	for (h = i; h > 0 && (b->flags[h] & tail_bit); h--)
		;
	if (!(b->flags[h] & head_bit))
		return -ERANGE;
	for (e = h + 1; e < b->n && (b->flags[e] & tail_bit); e++)
		;
	if (e == b->n && e < block_pages)
		return -ERANGE;
	*ret_head = b->base + h;
	*ret_npages = e - h;
	return 0;
}

/*
 * The folio of run entry j when the run just read holds all of it, which
 * saves reading its PMD block a second time (the common case for THPs).
 */
static bool run_span(const uint64_t *kbuf, size_t n, size_t j, uint64_t pfn0, uint64_t *ret_head,
		     uint64_t *ret_npages)
{
	const uint64_t head_bit = MIG__KPF(MIG__KPF_COMPOUND_HEAD);
	const uint64_t tail_bit = MIG__KPF(MIG__KPF_COMPOUND_TAIL);
	size_t h, e;

	if (j >= n)
		return false;
	for (h = j; h > 0 && (kbuf[h] & tail_bit); h--)
		;
	if (!(kbuf[h] & head_bit))
		return false;
	for (e = h + 1; e < n && (kbuf[e] & tail_bit); e++)
		;
	if (e == n)
		return false;
	*ret_head = pfn0 + h;
	*ret_npages = e - h;
	return true;
}

static uint8_t order_of(uint64_t npages)
{
	uint8_t o = 0;

	while ((UINT64_C(1) << o) < npages)
		o++;
	return o;
}

/* One run of pages whose PFNs follow each other: out[i..i + n) from PFN pfn on. */
struct pfn_run {
	uint64_t pfn;
	size_t i, n;
};

static int pfn_run_cmp(const void *a, const void *b)
{
	const struct pfn_run *x = a, *y = b;

	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/* The flags, pfn and order of one run's pages from its kpageflags kb[0..got). */
static void decode_run(int kpf_fd, const uint64_t *pm, struct mig_pageinfo *out,
		       const struct pfn_run *rn, const uint64_t *kb, size_t got,
		       struct kpf_block *blk, uint64_t *span_head, uint64_t *span_n)
{
	size_t block_pages = (size_t)1 << mig__pmd_order();

	for (size_t j = 0; j < rn->n; j++) {
		struct mig_pageinfo *o = &out[rn->i + j];
		uint64_t p = rn->pfn + j;

		o->pfn = p;
		o->flags = mig__page_flags(pm[rn->i + j], j < got ? kb[j] : 0, j < got);
		if (!(o->flags & MIG_PAGE_LARGE))
			continue;
		if ((p < *span_head || p >= *span_head + *span_n) &&
		    !run_span(kb, got, j, rn->pfn, span_head, span_n)) {
			if (folio_span(kpf_fd, blk, p, block_pages, span_head, span_n) < 0) {
				*span_head = *span_n = 0;
				continue;
			}
		}
		o->order = order_of(*span_n);
		if (o->order == mig__pmd_order())
			o->flags |= MIG_PAGE_THP;
	}
}

static int thp_fast = 1;
static uint64_t thp_fast_blocks;

int mig__thp_fast_set(int on, uint64_t *ret_blocks)
{
	if (ret_blocks)
		*ret_blocks = __atomic_load_n(&thp_fast_blocks, __ATOMIC_RELAXED);
	return __atomic_exchange_n(&thp_fast, on, __ATOMIC_RELAXED);
}

/* The kpageflags of pfn when it is the head of an anonymous large folio (not hugetlb). */
static bool thp_head(int kpf_fd, uint64_t pfn, uint64_t *ret_kpf)
{
	const uint64_t head = MIG__KPF(MIG__KPF_THP) | MIG__KPF(MIG__KPF_COMPOUND_HEAD);
	const uint64_t excl = MIG__KPF(MIG__KPF_HUGE) | MIG__KPF(MIG__KPF_ZERO_PAGE) |
			      MIG__KPF(MIG__KPF_NOPAGE) | MIG__KPF(MIG__KPF_COMPOUND_TAIL);

	return mig__kpageflags(kpf_fd, pfn, ret_kpf) == 0 && (*ret_kpf & head) == head &&
	       !(*ret_kpf & excl);
}

/*
 * A PMD-mapped THP, told without its 512 kpageflags entries: PAGEMAP_SCAN
 * said the block is mapped by one PMD (not the huge zero page), pagemap
 * gave 512 present pages from one PMD-aligned PFN on, and the head's own
 * entry says anonymous large folio head (not hugetlb, not the zero
 * page). A PMD maps an anonymous folio of exactly the PMD order, so the
 * other 511 entries could only say tail of it: out[] gets what
 * decode_run would have made of them. Reading them cost about 60 ns an
 * entry, 30 us a THP, several times a window (issue 16). False when the
 * head does not say so: the block then takes the kpageflags path.
 */
static bool thp_block(int kpf_fd, const uint64_t *pm, struct mig_pageinfo *out, size_t bp)
{
	const uint64_t tail = MIG__KPF(MIG__KPF_THP) | MIG__KPF(MIG__KPF_COMPOUND_TAIL);
	uint64_t pfn = pm[0] & MIG__PM_PFN_MASK, kpf;

	if (!thp_head(kpf_fd, pfn, &kpf))
		return false;
	__atomic_fetch_add(&thp_fast_blocks, 1, __ATOMIC_RELAXED);
	for (size_t j = 0; j < bp; j++) {
		out[j].pfn = pfn + j;
		out[j].flags = mig__page_flags(pm[j], j ? tail : kpf, 1) | MIG_PAGE_THP;
		out[j].order = (uint8_t)mig__pmd_order();
	}
	return true;
}

/* A block of bp pages from pm[i] on whose PFNs follow each other from a PMD-aligned one. */
static bool pfn_block(const uint64_t *pm, size_t i, size_t n, size_t bp)
{
	uint64_t pfn = pm[i] & MIG__PM_PFN_MASK;

	if (i + bp > n || !(pm[i] & MIG__PM_PRESENT) || pfn == 0 || pfn % bp)
		return false;
	for (size_t k = 1; k < bp; k++)
		if (!(pm[i + k] & MIG__PM_PRESENT) || (pm[i + k] & MIG__PM_PFN_MASK) != pfn + k)
			return false;
	return true;
}

struct pmd_blocks_ctx {
	uint64_t va, ps, pmd;
	uint64_t *bits;
};

/* The PMD-mapped blocks of one PAGEMAP_SCAN batch: a bit at each block's first page. */
static int pmd_blocks_batch(void *ctx, const struct page_region *v, int nv, uint64_t at,
			    uint64_t walk_end)
{
	const struct pmd_blocks_ctx *c = ctx;

	(void)at;
	(void)walk_end;
	for (int k = 0; k < nv; k++) {
		if (v[k].categories & PAGE_IS_PFNZERO)
			continue;
		for (uint64_t a = ALIGN_UP(v[k].start, c->pmd); a + c->pmd <= v[k].end; a += c->pmd)
			mig__bit_set(c->bits, (size_t)((a - c->va) / c->ps));
	}
	return 0;
}

/*
 * The candidate blocks of pm[0..n), pages from va on (pfn_block, and
 * the first page a large folio's head: a block of 4 KiB pages costs one
 * kpageflags entry, no PAGEMAP_SCAN), that PAGEMAP_SCAN finds PMD-mapped:
 * bits at their first page (bits has room for n). Nothing is set where
 * the kernel has no PAGEMAP_SCAN, none is a candidate, or the scan
 * fails: every page then takes kpageflags.
 */
static void pmd_blocks(int fd, int kpf_fd, const uint64_t *pm, size_t n, uint64_t va,
		       uint64_t *bits)
{
	static const struct pm_scan_arg mask = {
		.category_mask = PAGE_IS_HUGE | PAGE_IS_PRESENT,
		.return_mask = PAGE_IS_HUGE | PAGE_IS_PFNZERO,
	};
	const size_t bp = (size_t)1 << mig__pmd_order();
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
	struct pmd_blocks_ctx c = { va, ps, ps * bp, bits };
	struct page_region vec[64];
	size_t first = n, last = 0;
	uint64_t kpf;

	memset(bits, 0, MIG__BITMAP_WORDS(n) * sizeof(uint64_t));
	if (kpf_fd < 0 || __atomic_load_n(&no_pm_scan, __ATOMIC_RELAXED) ||
	    !__atomic_load_n(&thp_fast, __ATOMIC_RELAXED))
		return;
	/* va + i pages is PMD-aligned where i is. */
	for (size_t i = (size_t)(((c.pmd - va % c.pmd) % c.pmd) / ps); i + bp <= n; i += bp)
		if (pfn_block(pm, i, n, bp) && thp_head(kpf_fd, pm[i] & MIG__PM_PFN_MASK, &kpf)) {
			first = MIN(first, i);
			last = i + bp;
		}
	if (first < last)
		(void)pm_scan_fd(fd, va + first * ps, va + last * ps, &mask, vec, ARRAY_SIZE(vec),
				 pmd_blocks_batch, &c);
	/*
	 * A PMD block whose pagemap was read before it changed is none
	 * (thp_block checks the head again).
	 */
	for (size_t i = first; i < last; i += bp)
		if (mig__bit_test(bits, i) && !pfn_block(pm, i, n, bp))
			mig__bit_clear(bits, i);
}

/*
 * Fill flags, pfn and order of out[0..n) from pagemap entries pm[0..n).
 * kpageflags is read for the runs of pages whose PFNs follow each other,
 * but only for runs of min_run pages or more: a shorter run gets the
 * pagemap flags alone (mig__query_folios). The runs are sorted by PFN and
 * read in clusters: runs whose PFNs lie at most KPF_GAP apart share one
 * pread of up to KPF_RUN_MAX entries: reading a few entries between
 * them costs less than a system call, and every page still gets its own
 * entry, so the result is the same. What it saves: the zero page
 * repeated over a window (one pread instead of one a page) and pages
 * from nearby PFNs. Pages spread over gigabytes (a fragmented host: about
 * 340 runs in a 2 MiB window of 4 KiB pages) still cost one pread a run;
 * only kernels without PAGEMAP_SCAN (6.1) read them in every window scan.
 * runs has room for n entries.
 */
static int decode_chunk(int kpf_fd, const uint64_t *pm, size_t n, struct mig_pageinfo *out,
			uint64_t *kbuf, struct pfn_run *runs, struct kpf_block *blk,
			uint64_t *span_head, uint64_t *span_n, size_t min_run, const uint64_t *thp)
{
	const size_t bp = (size_t)1 << mig__pmd_order();
	size_t nr = 0;

	for (size_t i = 0; i < n;) {
		uint64_t pfn = pm[i] & MIG__PM_PFN_MASK;
		size_t run = 1;

		if (mig__bit_test(thp, i) && thp_block(kpf_fd, pm + i, out + i, bp)) {
			i += bp;
			continue;
		}

		out[i].pfn = (pm[i] & MIG__PM_PRESENT) ? pfn : 0;
		out[i].order = 0;
		if (kpf_fd < 0 || !(pm[i] & MIG__PM_PRESENT) || pfn == 0) {
			out[i].flags = mig__page_flags(pm[i], 0, 0);
			i++;
			continue;
		}
		/* A run stops where a PMD-mapped block begins (thp_block above). */
		while (i + run < n && run < KPF_RUN_MAX && (pm[i + run] & MIG__PM_PRESENT) &&
		       (pm[i + run] & MIG__PM_PFN_MASK) == pfn + run &&
		       !mig__bit_test(thp, i + run))
			run++;
		if (run < min_run) {
			for (size_t j = 0; j < run; j++) {
				out[i + j].pfn = pm[i + j] & MIG__PM_PFN_MASK;
				out[i + j].flags = mig__page_flags(pm[i + j], 0, 0);
				out[i + j].order = 0;
			}
		} else {
			runs[nr++] = (struct pfn_run){ pfn, i, run };
		}
		i += run;
	}
	qsort(runs, nr, sizeof(*runs), pfn_run_cmp);
	for (size_t a = 0; a < nr;) {
		uint64_t base = runs[a].pfn, end = base + runs[a].n;
		size_t b = a + 1, got = 0;
		int r;

		/* One pread for the runs that lie close together (a zero page repeats). */
		while (b < nr && runs[b].pfn <= end + KPF_GAP &&
		       MAX(end, runs[b].pfn + runs[b].n) - base <= KPF_RUN_MAX) {
			end = MAX(end, runs[b].pfn + runs[b].n);
			b++;
		}
		r = pread_all(kpf_fd, kbuf, (size_t)(end - base) * sizeof(uint64_t),
			      (off_t)(base * sizeof(uint64_t)), &got);
		if (r < 0)
			return r;
		got /= sizeof(uint64_t);
		for (; a < b; a++) {
			size_t off = (size_t)(runs[a].pfn - base);

			decode_run(kpf_fd, pm, out, &runs[a], kbuf + off, got > off ? got - off : 0,
				   blk, span_head, span_n);
		}
	}
	return 0;
}

static int query_pagemap(pid_t pid, uint64_t start, size_t npages, struct mig_pageinfo *out,
			 size_t min_run)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ uint64_t *pm = NULL, *kbuf = NULL, *blkbuf = NULL;
	_cleanup_free_ struct pfn_run *runs = NULL;
	_cleanup_free_ uint64_t *thp = NULL;
	struct kpf_block blk = { .base = UINT64_MAX };
	uint64_t span_head = 0, span_n = 0;
	long ps = sysconf(_SC_PAGESIZE);
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	/* kpageflags needs CAP_SYS_ADMIN; without it the PFNs read as 0 anyway. */
	int kpf_fd = mig__kpageflags_fd();

	pm = malloc(MIN(npages, (size_t)PAGEMAP_CHUNK) * sizeof(uint64_t));
	kbuf = malloc(KPF_RUN_MAX * sizeof(uint64_t));
	blkbuf = malloc(((size_t)1 << mig__pmd_order()) * sizeof(uint64_t));
	runs = malloc(MIN(npages, (size_t)PAGEMAP_CHUNK) * sizeof(*runs));
	thp = malloc(MIG__BITMAP_WORDS(MIN(npages, (size_t)PAGEMAP_CHUNK)) * sizeof(uint64_t));
	if (!pm || !kbuf || !blkbuf || !runs || !thp)
		return -ENOMEM;
	blk.flags = blkbuf;

	for (size_t done = 0; done < npages;) {
		size_t n = MIN(npages - done, (size_t)PAGEMAP_CHUNK), got = 0;
		off_t off = (off_t)((start / (uint64_t)ps + done) * sizeof(uint64_t));
		int r = pread_all(fd, pm, n * sizeof(uint64_t), off, &got);

		/* A process that has exited leaves a pagemap that reads as ESRCH or nothing. */
		if (r < 0)
			return r == -ESRCH ? -ESRCH : r;
		/* Past the top of user space pagemap ends: those pages exist for no one. */
		if (got < n * sizeof(uint64_t))
			memset((char *)pm + got, 0, n * sizeof(uint64_t) - got);
		pmd_blocks(fd, kpf_fd, pm, n, start + done * (uint64_t)ps, thp);
		r = decode_chunk(kpf_fd, pm, n, out + done, kbuf, runs, &blk, &span_head, &span_n,
				 min_run, thp);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

static bool same_folio(const struct mig_pageinfo *prev, const struct mig_pageinfo *p)
{
	return (p->flags & MIG_PAGE_LARGE) && !(p->flags & MIG_PAGE_HEAD) &&
	       (prev->flags & MIG_PAGE_LARGE) && p->pfn != 0 && p->pfn == prev->pfn + 1;
}

/* A page whose node is still to be asked (never a node nor an -errno). */
#define NODE_ASK INT_MIN

static int query_nodes(pid_t pid, uint64_t start, size_t npages, bool pagemap_known,
		       struct mig_pageinfo *out)
{
	_cleanup_free_ void **pages = NULL;
	_cleanup_free_ int *status = NULL;
	_cleanup_free_ size_t *index = NULL;
	long ps = sysconf(_SC_PAGESIZE);
	size_t batch = MIN(npages, (size_t)MOVE_PAGES_BATCH);

	pages = malloc(batch * sizeof(*pages));
	status = malloc(batch * sizeof(*status));
	index = malloc(batch * sizeof(*index));
	if (!pages || !status || !index)
		return -ENOMEM;
	/* Where pagemap gave a PFN, its memory block names the node (pfnnode.c). */
	if (pagemap_known) {
		for (size_t i = 0; i < npages; i++)
			out[i].node = NODE_ASK;
		(void)mig__pfn_nodes(out, npages);
	}

	for (size_t i = 0; i < npages;) {
		size_t n = 0, first = i;
		long r;

		/*
		 * Pages pagemap says are absent need no question: the answer is
		 * -ENOENT. A tail page that follows the previous page of its
		 * folio shares its node: one question per folio is enough.
		 */
		for (; i < npages && n < batch; i++) {
			if (pagemap_known && !(out[i].flags & MIG_PAGE_PRESENT)) {
				out[i].node = -ENOENT;
				continue;
			}
			if (pagemap_known && out[i].node != NODE_ASK)
				continue;
			if (pagemap_known && i > 0 && same_folio(&out[i - 1], &out[i]))
				continue;
			pages[n] = (void *)(uintptr_t)(start + (uint64_t)i * (uint64_t)ps);
			index[n++] = i;
		}
		if (n > 0) {
			r = numa_move_pages(pid, (unsigned long)n, pages, NULL, status, 0);
			if (r < 0)
				return -errno;
			for (size_t j = 0; j < n; j++)
				out[index[j]].node = status[j];
		}
		/* The skipped tail pages, in order, from their predecessors. */
		for (size_t k = MAX(first, (size_t)1); pagemap_known && k < i; k++)
			if ((out[k].flags & MIG_PAGE_PRESENT) && same_folio(&out[k - 1], &out[k]))
				out[k].node = out[k - 1].node;
	}
	return 0;
}

int mig_query_pages(pid_t pid, uint64_t start, size_t npages, unsigned what,
		    struct mig_pageinfo *out)
{
	long ps = sysconf(_SC_PAGESIZE);
	int r;

	if (pid <= 0 || !out || npages == 0 || what == 0 ||
	    (what & ~(MIG_QUERY_PAGEMAP | MIG_QUERY_NODE)))
		return -EINVAL;
	if (start % (uint64_t)ps || npages > (UINT64_MAX - start) / (uint64_t)ps)
		return -EINVAL;

	if (what & MIG_QUERY_PAGEMAP) {
		r = query_pagemap(pid, start, npages, out, 1);
		if (r < 0)
			return r;
	} else {
		for (size_t i = 0; i < npages; i++)
			out[i] = (struct mig_pageinfo){ 0 };
	}
	if (what & MIG_QUERY_NODE)
		return query_nodes(pid, start, npages, what & MIG_QUERY_PAGEMAP, out);
	for (size_t i = 0; i < npages; i++)
		out[i].node = -ENODATA;
	return 0;
}

int mig__query_folios(pid_t pid, uint64_t start, size_t npages, struct mig_pageinfo *out)
{
	/* The smallest anonymous large folio: order 2 (16 KiB mTHP). */
	const size_t min_folio = 4;
	long ps = sysconf(_SC_PAGESIZE);

	if (pid <= 0 || !out || npages == 0 || start % (uint64_t)ps ||
	    npages > (UINT64_MAX - start) / (uint64_t)ps)
		return -EINVAL;
	return query_pagemap(pid, start, npages, out, min_folio);
}

struct scan_pages_ctx {
	pid_t pid;
	uint64_t start, ps;
	struct mig_pageinfo *out;
};

/* mig__scan_pages: the pages of one span into out[], zeroed first. */
static int scan_pages_batch(void *ctx, const struct page_region *vec, int n, uint64_t at,
			    uint64_t walk_end)
{
	const struct scan_pages_ctx *c = ctx;

	memset(c->out + (at - c->start) / c->ps, 0,
	       (size_t)((walk_end - at) / c->ps) * sizeof(*c->out));
	for (int k = 0; k < n; k++) {
		uint64_t cat = vec[k].categories;
		size_t i = (size_t)((vec[k].start - c->start) / c->ps),
		       e = (size_t)((vec[k].end - c->start) / c->ps);

		/*
		 * A PMD-mapped block: pagemap and kpageflags tell the
		 * huge zero page and the folio's order, as before.
		 */
		if ((cat & PAGE_IS_HUGE) && (cat & PAGE_IS_PRESENT)) {
			int r = query_pagemap(c->pid, vec[k].start, e - i, c->out + i, 1);

			if (r < 0)
				return r;
			continue;
		}
		for (; i < e; i++) {
			uint32_t f = 0;

			if (cat & PAGE_IS_PRESENT)
				f |= MIG_PAGE_PRESENT;
			if (cat & PAGE_IS_SWAPPED)
				f |= MIG_PAGE_SWAPPED;
			if (!(cat & PAGE_IS_WRITTEN))
				f |= MIG_PAGE_UFFD_WP;
			if ((cat & PAGE_IS_PFNZERO) && (cat & PAGE_IS_PRESENT))
				f |= MIG_PAGE_ZERO;
			c->out[i].flags = f;
		}
	}
	return 0;
}

int mig__scan_pages(pid_t pid, uint64_t start, size_t npages, struct mig_pageinfo *out)
{
	static const struct pm_scan_arg mask = {
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN |
			       PAGE_IS_PFNZERO | PAGE_IS_HUGE,
	};
	struct page_region vec[512];
	struct scan_pages_ctx c = { pid, start, (uint64_t)sysconf(_SC_PAGESIZE), out };
	int r;

	if (!out)
		return -EINVAL;
	r = pm_scan(pid, start, npages, &mask, vec, ARRAY_SIZE(vec), scan_pages_batch, &c);
	if (r != 0)
		return r;
	return query_nodes(pid, start, npages, true, out);
}

struct pmd_mapped_ctx {
	uint64_t start, ps;
	uint64_t *bits;
	size_t bit0;
};

/* mig__pmd_mapped: the PMD-mapped regions of one span into the bitmap. */
static int pmd_mapped_batch(void *ctx, const struct page_region *vec, int n, uint64_t at,
			    uint64_t walk_end)
{
	const struct pmd_mapped_ctx *c = ctx;

	(void)at;
	(void)walk_end;
	for (int k = 0; k < n; k++)
		for (uint64_t a = vec[k].start; a < vec[k].end; a += c->ps)
			mig__bit_set(c->bits, c->bit0 + (size_t)((a - c->start) / c->ps));
	return 0;
}

int mig__pmd_mapped(pid_t pid, uint64_t start, size_t npages, uint64_t *bits, size_t bit0)
{
	static const struct pm_scan_arg mask = {
		.category_mask = PAGE_IS_PRESENT | PAGE_IS_HUGE,
		.return_mask = PAGE_IS_HUGE,
	};
	struct page_region vec[64];
	struct pmd_mapped_ctx c = { start, (uint64_t)sysconf(_SC_PAGESIZE), bits, bit0 };

	if (!bits)
		return -EINVAL;
	return pm_scan(pid, start, npages, &mask, vec, ARRAY_SIZE(vec), pmd_mapped_batch, &c);
}

/* Present stretches, grown as they are found. */
struct runs {
	struct mig_range *v;
	size_t n, cap;
	uint64_t gap;
};

static int runs_add(struct runs *rs, uint64_t s, uint64_t e)
{
	if (rs->n > 0 && s <= rs->v[rs->n - 1].end + rs->gap) {
		rs->v[rs->n - 1].end = MAX(rs->v[rs->n - 1].end, e);
		return 0;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct mig_range *v = realloc(rs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n++] = (struct mig_range){ s, e };
	return 0;
}

/*
 * PAGEMAP_SCAN for present pages. Returns 0 (done), 1 (the kernel has no
 * PAGEMAP_SCAN: read pagemap instead) or -errno.
 */
static int scan_present(int fd, uint64_t start, uint64_t end, struct runs *rs)
{
	struct page_region vec[256];

	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = start,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = sizeof(vec) / sizeof(vec[0]),
			.category_anyof_mask = PAGE_IS_PRESENT,
			.return_mask = PAGE_IS_PRESENT,
		};
		int n = ioctl(fd, PAGEMAP_SCAN, &arg);

		if (n < 0) {
			if ((errno == ENOTTY || errno == EINVAL) && rs->n == 0)
				return 1;
			return errno == ENOENT ? -ESRCH : -errno;
		}
		for (int i = 0; i < n; i++) {
			int r = runs_add(rs, vec[i].start, vec[i].end);

			if (r < 0)
				return r;
		}
		if (arg.walk_end <= start)
			return -EIO;
		start = arg.walk_end;
	}
	return 0;
}

/* The same from pagemap entries: 8 bytes a page, 4 KiB per 2 MiB of range. */
static int read_present(int fd, uint64_t start, uint64_t end, struct runs *rs)
{
	_cleanup_free_ uint64_t *pm = malloc(PAGEMAP_CHUNK * sizeof(*pm));
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);

	if (!pm)
		return -ENOMEM;
	while (start < end) {
		size_t n = (size_t)MIN((end - start) / ps, (uint64_t)PAGEMAP_CHUNK), got = 0;
		int r = pread_all(fd, pm, n * sizeof(*pm), (off_t)(start / ps * sizeof(*pm)), &got);

		if (r < 0)
			return r == -ENOENT ? -ESRCH : r;
		if (got < n * sizeof(*pm))
			return -ESRCH; /* the process is gone (its mm is) */
		for (size_t i = 0; i < n; i++)
			if (pm[i] & MIG__PM_PRESENT) {
				r = runs_add(rs, start + i * ps, start + (i + 1) * ps);
				if (r < 0)
					return r;
			}
		start += n * ps;
	}
	return 0;
}

int mig__present_runs(pid_t pid, uint64_t start, uint64_t end, uint64_t gap, struct mig_range **ret,
		      size_t *ret_n)
{
	_cleanup_close_ int fd = -EBADF;
	struct runs rs = { .gap = gap };
	char path[64];
	int r;

	if (pid <= 0 || start > end || !ret || !ret_n)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	r = scan_present(fd, start, end, &rs);
	if (r == 1)
		r = read_present(fd, start, end, &rs);
	if (r < 0) {
		free(rs.v);
		return r;
	}
	*ret = rs.v;
	*ret_n = rs.n;
	return 0;
}
