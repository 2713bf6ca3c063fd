/*
 * hugemove.c - whole PMD THPs stay whole: a fully covered THP of a window
 * is placed on the target with one PMD-sized UFFDIO_MOVE (Linux 6.8+)
 * instead of 512 UFFDIO_COPYs of 4 KiB and a MADV_COLLAPSE that copies
 * it once more.
 *
 * UFFDIO_MOVE moves pages only within the mm that runs it, so the new
 * huge page has to exist inside the tenant first: the job maps a huge
 * staging area there (2 MiB aligned, one slot per 2 MiB block of a
 * window, not registered with the uffd). After STAGE the target pool's
 * threads, bound to the target node, write a block's staged content into
 * its slot with process_vm_writev: the write faults the slot in the
 * tenant's mm under the writing thread's policy, so the kernel allocates
 * a THP on the target (the slot is MADV_HUGEPAGE). A slot that did not
 * become a THP on the target is not used.
 *
 * The zap (zap.c) takes the old THP out with one aligned PMD move, which
 * leaves the tenant's PMD empty, and then, as its next step, moves the
 * slot's THP into place: UFFDIO_MOVE moves a whole PMD only when source
 * and destination are 2 MiB aligned and the destination PMD is empty.
 * From the first of the two steps to the end of the second the block is
 * the step in flight (w->inflight_*), so a fault on it waits for the
 * outcome instead of being served a 4 KiB page from staging (which would
 * fill the PMD). Whatever goes wrong - the slot is no THP, the tenant
 * changed its mappings, MOVE refused or split the page - the pages not
 * back are filled from staging as before and the block is re-formed with
 * MADV_COLLAPSE: the content in the slot and in staging is the same.
 *
 * The safety rules stay those of zap.c: only pages staged intact and not
 * written since are taken out, and the staged copy (staging file) stays
 * the reference until every page is back.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "bitmap.h"
#include "engine.h"
#include "trace.h"
#include "procfs.h"

struct hstage {
	struct mig__job *j;
	struct mig__win *w;
	const uint64_t *want; /* blocks to stage */
	uint64_t *ready;      /* blocks whose slot holds a THP on the target */
	pthread_mutex_t mu;
};

/* Block b's pages: a THP at scan, staged, not written since, at their aligned addresses. */
static bool stageable(const struct mig__win *w, size_t b)
{
	size_t i = b * MIG__PMD_PAGES;

	if (i + MIG__PMD_PAGES > w->npages || w->addr[i] % MIG__PMD)
		return false;
	for (size_t k = i; k < i + MIG__PMD_PAGES; k++)
		if (!mig__bit_test(w->sel, k) || !mig__bit_test(w->copied, k) ||
		    !mig__bit_test(w->thp, k) || mig__bit_test(w->dirty, k) ||
		    mig__bit_test(w->gone, k) || w->addr[k] != w->addr[i] + (k - i) * MIG__PAGE)
			return false;
	return true;
}

/* On a pool thread (bound to the target): fill slot b, check that it is a THP there. */
static int stage_block(void *arg, size_t b)
{
	struct hstage *h = arg;
	struct mig__job *j = h->j;
	uint64_t slot = j->hscratch + b * MIG__PMD;
	struct iovec l = { h->w->staging + b * MIG__PMD, MIG__PMD };
	struct iovec r = { (void *)(uintptr_t)slot, MIG__PMD };
	struct mig_pageinfo pi;

	if (!mig__bit_test(h->want, b))
		return 0;
	/*
	 * Not ready: the block goes the COPY way. The slot may hold 4 KiB
	 * pages now, whose page table would split every later THP there:
	 * the next window with THPs gets a fresh scratch area.
	 */
	if (process_vm_writev(j->pid, &l, 1, &r, 1, 0) != (ssize_t)MIG__PMD) {
		__atomic_store_n(&j->scratch_ptes, true, __ATOMIC_RELAXED);
		return 0;
	}
	if (mig_query_pages(j->pid, slot, 1, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, &pi) < 0 ||
	    !(pi.flags & MIG_PAGE_THP) || !(pi.flags & MIG_PAGE_HEAD) || pi.node != h->w->node) {
		__atomic_fetch_add(&j->huge_stage_failed, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&j->scratch_ptes, true, __ATOMIC_RELAXED);
		return 0;
	}
	pthread_mutex_lock(&h->mu);
	mig__bit_set(h->ready, b);
	pthread_mutex_unlock(&h->mu);
	return 0;
}

void mig__huge_stage(struct mig__job *j, struct mig__win *w, struct mig__pool *pool)
{
	size_t nb = w->npages / MIG__PMD_PAGES;
	_cleanup_free_ uint64_t *want = NULL, *ready = NULL;
	struct hstage h = { .j = j, .w = w };
	bool any = false;

	mig__bitmap_zero(w->hready, nb);
	/*
	 * The zap moves page i to scratch_dst + i * 4 KiB: the old THP leaves
	 * with one PMD move (and the tenant's PMD is then empty) only when
	 * the window starts on a PMD boundary.
	 */
	if (!j->hscratch || nb == 0 || w->start % MIG__PMD || nb * MIG__PMD > j->hscratch_len)
		return;
	want = calloc(MIG__BITMAP_WORDS(nb), sizeof(uint64_t));
	ready = calloc(MIG__BITMAP_WORDS(nb), sizeof(uint64_t));
	if (!want || !ready)
		return;
	pthread_rwlock_rdlock(&j->lock);
	for (size_t b = 0; b < nb; b++)
		if (stageable(w, b)) {
			mig__bit_set(want, b);
			any = true;
		}
	pthread_rwlock_unlock(&j->lock);
	if (any && j->memcg.n) {
		/*
		 * A staged block is a second THP of the tenant's until the
		 * zap: only as many as its memory cgroup has room for (twice
		 * each, as for a move-first window; memcg.c). The others take
		 * the copy path, whose zap frees before it fills, and whose
		 * COLLAPSE charge (a THP's) fails rather than wake the OOM
		 * killer.
		 */
		uint64_t room = mig__memcg_room(&j->memcg, nb * 2 * MIG__PMD + MIG__MEMCG_SLACK);
		uint64_t fit =
			room > MIG__MEMCG_SLACK ? (room - MIG__MEMCG_SLACK) / (2 * MIG__PMD) : 0;
		size_t left = 0;

		any = false;
		for (size_t b = 0; b < nb; b++) {
			if (!mig__bit_test(want, b))
				continue;
			if (fit) {
				fit--;
				any = true;
				continue;
			}
			mig__bit_clear(want, b);
			left++;
		}
		if (left) {
			MIG_TRACE("MEMCG room %llu: %zu THPs of window %lx not staged",
				  (unsigned long long)room, left, (unsigned long)w->start);
			mig__memcg_held_back(j, w->start);
		}
	}
	if (!any)
		return;
	h.want = want;
	h.ready = ready;
	pthread_mutex_init(&h.mu, NULL);
	(void)mig__pool_run(pool, stage_block, &h, nb);
	/* Written or tried: the slots hold pages until the area is dropped. */
	for (size_t b = 0; b < nb && b < MIG__HSLOTS_MAX; b++)
		if (mig__bit_test(want, b))
			mig__bit_set(j->hslots, b);
	pthread_mutex_destroy(&h.mu);
	pthread_rwlock_wrlock(&j->lock);
	memcpy(w->hready, ready, MIG__BITMAP_WORDS(nb) * sizeof(uint64_t));
	pthread_rwlock_unlock(&j->lock);
}

void mig__huge_hint(struct mig__job *j, struct mig__win *w)
{
	_cleanup_free_ uint64_t *pmd = NULL;
	size_t words = MIG__BITMAP_WORDS(w->npages);

	if (!j->hscratch)
		return;
	pmd = calloc(words, sizeof(uint64_t));
	if (!pmd)
		return;
	/* Pages are contiguous unless a REMAP moved some: ask runs. */
	for (size_t i = 0; i < w->npages;) {
		size_t k = i + 1;

		while (k < w->npages && w->addr[k] == w->addr[k - 1] + MIG__PAGE)
			k++;
		/* A hint only: where it fails, a write un-protects just its page. */
		(void)mig__pmd_mapped(j->pid, w->addr[i], k - i, pmd, i);
		i = k;
	}
	pthread_rwlock_wrlock(&j->lock);
	memcpy(w->thp, pmd, words * sizeof(uint64_t));
	pthread_rwlock_unlock(&j->lock);
}

void mig__huge_whole_or_none(struct mig__job *j, struct mig__win *w)
{
	if (!j->hscratch || w->last_pass)
		return;
	for (size_t i = 0; i + MIG__PMD_PAGES <= w->npages; i += MIG__PMD_PAGES) {
		bool whole = w->addr[i] % MIG__PMD == 0;
		size_t nzap = 0, ndirty = 0;

		for (size_t k = i; k < i + MIG__PMD_PAGES && whole; k++) {
			/* Only a THP whose every page is in this pass, at its place. */
			whole = mig__bit_test(w->thp, k) && mig__bit_test(w->sel, k) &&
				!mig__bit_test(w->gone, k) &&
				w->addr[k] == w->addr[i] + (k - i) * MIG__PAGE;
			if (mig__bit_test(w->zap, k))
				nzap++;
			else if (mig__bit_test(w->dirty, k))
				ndirty++;
		}
		/*
		 * Deferred only when every page left out was written (it comes
		 * back next pass); a page that could not be staged would keep
		 * the block back for good.
		 */
		if (!whole || !nzap || !ndirty || nzap + ndirty != MIG__PMD_PAGES)
			continue;
		/* Written pages keep the rest back: the whole block again next pass. */
		for (size_t k = i; k < i + MIG__PMD_PAGES; k++) {
			mig__bit_clear(w->zap, k);
			mig__bit_clear(w->pend, k);
			mig__bit_set(w->dirty, k);
		}
	}
}

void mig__huge_written(struct mig__job *j, struct mig__win *w, size_t i, uint64_t *ret_start,
		       uint64_t *ret_len)
{
	size_t b = i - i % MIG__PMD_PAGES;
	bool whole = j->hscratch && b + MIG__PMD_PAGES <= w->npages && w->addr[b] % MIG__PMD == 0;

	/*
	 * A late fault on a block placed whole (read after the placing): the
	 * new THP is not protected, but a 4 KiB un-protect would split its
	 * PMD. Un-protect the block (nothing changes), the page counts as
	 * written.
	 */
	if (whole && mig__bit_test(w->placed, b / MIG__PMD_PAGES)) {
		mig__bit_set(w->dirty, i);
		*ret_start = w->addr[b];
		*ret_len = MIG__PMD;
		return;
	}

	for (size_t k = b; k < b + MIG__PMD_PAGES && whole; k++)
		whole = mig__bit_test(w->thp, k) && !mig__bit_test(w->zap, k) &&
			w->addr[k] == w->addr[b] + (k - b) * MIG__PAGE;
	if (!whole) {
		mig__bit_set(w->dirty, i);
		*ret_start = w->addr[i];
		*ret_len = MIG__PAGE;
		return;
	}
	/*
	 * Un-protecting one 4 KiB page of a PMD splits the PMD (the folio
	 * stays large, mapped by PTEs), and a THP mapped by PTEs leaves an
	 * empty page table behind when it is taken out, on which no PMD move
	 * can place a THP. So the whole block is un-protected and counts as
	 * written: none of it is in the zap set (the zap takes it whole or
	 * not at all), and all of it comes back in the next pass.
	 */
	for (size_t k = b; k < b + MIG__PMD_PAGES; k++)
		mig__bit_set(w->dirty, k);
	*ret_start = w->addr[b];
	*ret_len = MIG__PMD;
}

bool mig__huge_placeable(const struct mig__job *j, const struct mig__win *w, size_t i,
			 uint64_t *ret_src)
{
	size_t b = i / MIG__PMD_PAGES;

	if (i % MIG__PMD_PAGES || i + MIG__PMD_PAGES > w->npages || !mig__bit_test(w->hready, b) ||
	    w->addr[i] % MIG__PMD)
		return false;
	for (size_t k = i; k < i + MIG__PMD_PAGES; k++)
		if (!mig__bit_test(w->zap, k) || mig__bit_test(w->pend, k) ||
		    mig__bit_test(w->gone, k) || mig__bit_test(w->filled, k) ||
		    mig__bit_test(w->dirty, k) || w->addr[k] != w->addr[i] + (k - i) * MIG__PAGE)
			return false;
	*ret_src = j->hscratch + b * MIG__PMD;
	return true;
}

void mig__huge_placed(struct mig__job *j, struct mig__win *w, size_t i, int64_t ret, uint64_t moved)
{
	size_t m = MIN(moved / MIG__PAGE, MIG__PMD_PAGES);
	struct mig_pageinfo pi;

	mig__bit_clear(w->hready, i / MIG__PMD_PAGES);
	for (size_t k = i; k < i + m; k++) {
		mig__bit_set(w->filled, k);
		if (w->held_ns[k])
			mig__job_stall(j, w->held_ns[k]);
	}
	/*
	 * All back, and one THP: placed whole. MOVE splits the source when
	 * the destination PMD is not empty and then moves 4 KiB pages: the
	 * content is right, the block is re-formed like a COPY fill.
	 */
	if (ret >= 0 && m == MIG__PMD_PAGES &&
	    mig_query_pages(j->pid, w->addr[i], 1, MIG_QUERY_PAGEMAP, &pi) == 0 &&
	    (pi.flags & MIG_PAGE_THP) && (pi.flags & MIG_PAGE_HEAD)) {
		mig__bit_set(w->placed, i / MIG__PMD_PAGES);
		j->huge_moved++;
	} else {
		j->huge_place_failed++;
	}
}
