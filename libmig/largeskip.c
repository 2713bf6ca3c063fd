/*
 * largeskip.c - leave large folios out of a set of ranges, for migrations
 * that must not touch them (a policy's huge_pages = skip).
 *
 * A page belongs to a large folio (PMD THP or mTHP) when kpageflags say so
 * (pagemap.c works out the folio from the compound flags); the ranges
 * returned are the input minus every such page, so their edges fall on
 * folio boundaries and a migration of them splits nothing. What khugepaged
 * collapses after this look is not known here: the promise covers the
 * large folios present when the job starts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mig.h"
#include "procfs.h"
#include "util.h"

#define PAGE  4096UL
#define CHUNK 4096 /* pages per query */

struct out {
	struct mig_range *v;
	size_t n, cap;
};

static int out_add(struct out *o, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	if (o->n > 0 && o->v[o->n - 1].end == start) {
		o->v[o->n - 1].end = end;
		return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 16;
		struct mig_range *nv = realloc(o->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		o->v = nv;
		o->cap = cap;
	}
	o->v[o->n++] = (struct mig_range){ start, end };
	return 0;
}

/* What was left out: pages, and folios per order (each counted once). */
struct skipped {
	uint64_t pages;
	uint64_t folios[MIG_FOLIO_ORDERS];
	uint64_t last_head; /* PFN of the last folio counted, plus one; 0 none */
};

static void count_skipped(struct skipped *sk, const struct mig_pageinfo *p)
{
	unsigned o = p->order;
	uint64_t head;

	sk->pages++;
	if (o == 0 && (p->flags & MIG_PAGE_THP))
		o = mig__pmd_order();
	if (o == 0)
		return; /* order unknown: counted in pages only */
	/* Folios are naturally aligned in PFN space: the head's PFN names the folio. */
	head = p->pfn & ~((UINT64_C(1) << o) - 1);
	if (sk->last_head == head + 1)
		return;
	sk->last_head = head + 1;
	sk->folios[MIN(o, (unsigned)MIG_FOLIO_ORDERS - 1)]++;
}

/* [start, end) lies in one VMA: keep its pages that are in no large folio. */
static int filter(pid_t pid, uint64_t start, uint64_t end, struct mig_pageinfo *pi, struct out *o,
		  struct skipped *sk)
{
	for (uint64_t a = start; a < end;) {
		size_t n = MIN((end - a) / PAGE, (uint64_t)CHUNK);
		int r = mig_query_pages(pid, a, n, MIG_QUERY_PAGEMAP, pi);

		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			if ((pi[i].flags & MIG_PAGE_PRESENT) && !pi[i].pfn)
				return -EPERM; /* no PFNs: folios cannot be seen */
			if (pi[i].flags & MIG_PAGE_LARGE)
				count_skipped(sk, &pi[i]);
			else if ((r = out_add(o, a + i * PAGE, a + (i + 1) * PAGE)) < 0)
				return r;
		}
		a += n * PAGE;
	}
	return 0;
}

int mig_ranges_without_large(pid_t pid, const struct mig_range *ranges, size_t n,
			     struct mig_range **ret_ranges, size_t *ret_n, uint64_t *ret_skipped,
			     uint64_t *ret_folios)
{
	_cleanup_free_ struct mig_pageinfo *pi = NULL;
	_cleanup_free_ struct mig_vma *v = NULL;
	struct out o = { 0 };
	struct skipped sk = { 0 };
	size_t nv = 0;
	int r;

	if (pid <= 0 || (n && !ranges) || !ret_ranges || !ret_n || !ret_skipped)
		return -EINVAL;
	pi = calloc(CHUNK, sizeof(*pi));
	if (!pi)
		return -ENOMEM;
	r = mig_read_vmas(pid, &v, &nv);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n && r >= 0; k++) {
		uint64_t a = ranges[k].start;

		if (ranges[k].end <= a || (a | ranges[k].end) % PAGE) {
			r = -EINVAL;
			break;
		}
		/* Parts outside anonymous VMAs go through as they are: migrate reports them. */
		for (size_t i = 0; i < nv && r >= 0 && a < ranges[k].end; i++) {
			uint64_t s = MAX(a, v[i].start), e = MIN(ranges[k].end, v[i].end);

			if (s >= e || !mig_vma_is_anon_private(&v[i]))
				continue;
			r = out_add(&o, a, s);
			if (r >= 0)
				r = filter(pid, s, e, pi, &o, &sk);
			a = e;
		}
		if (r >= 0)
			r = out_add(&o, a, ranges[k].end);
	}
	if (r < 0) {
		free(o.v);
		return r;
	}
	*ret_ranges = o.v;
	*ret_n = o.n;
	*ret_skipped = sk.pages;
	if (ret_folios)
		memcpy(ret_folios, sk.folios, sizeof(sk.folios));
	return 0;
}
