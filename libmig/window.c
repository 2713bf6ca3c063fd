/*
 * window.c - one migration window through its passes:
 *
 *   REGISTER(MISSING|WP) -> FREEZE(WP) -> scan -> STAGE -> ZAP -> FILL
 *   -> collapse -> THAW -> (DIRTY pages: next pass) -> UNREGISTER -> collapse
 *
 * Page states are bitmaps in struct mig__win (bitmap.h). A page is zapped
 * only when it is COPIED and not DIRTY, so a failed or raced copy never
 * destroys the original. Passes after the first work on the DIRTY pages
 * only; from pass MIG__HOLD_PASS on, writes to the pass's pages wait for
 * the fill instead of dirtying the page, so a page written without pause
 * still converges (docs/engine.md: "holding passes").
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "bitmap.h"
#include "crashpoint.h"
#include "engine.h"
#include "procfs.h"
#include "tenant.h"
#include "uffd.h"
#include "trace.h"

/* First pass that holds writers instead of chasing them. */
#define MIG__HOLD_PASS 3
/*
 * Free memory a target node keeps after a window's pages (bytes). It has
 * to cover what the kernel allocates there meanwhile (khugepaged's
 * collapse copies, page tables): with 32 MiB a 1 GiB guest node still
 * reached the OOM killer.
 */
#define MIG__NODE_RESERVE (64UL << 20)
/* Page-state bitmaps of a window, in one block (see mig__window_alloc). */
#define NBITMAPS 13
/* Pages per UFFDIO_COPY of a fill chunk. */
#define FILL_CHUNK 64
/*
 * How long a node's free memory figure serves the target-full check
 * before it is read again: a read parses the node's meminfo (about 0.1 ms,
 * 5 % of migd's CPU per GB when done for every pass).
 */
#define NODE_FREE_NS (50ULL * 1000 * 1000)

int mig__window_alloc(struct mig__journal *jr, size_t npages, struct mig__win **ret)
{
	size_t words = MIG__BITMAP_WORDS(npages);
	struct mig__win *w;
	uint64_t *bits = NULL;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->npages = npages;
	/*
	 * Addresses and page states live in the journal when the job has one
	 * (journal.c): a window a crash could not be recovered from never runs.
	 */
	if (jr) {
		int r = mig__journal_window_mem(jr, npages, NBITMAPS, &w->addr, &bits);

		if (r < 0) {
			free(w);
			return r;
		}
		w->in_journal = true;
	} else {
		w->addr = calloc(npages, sizeof(uint64_t));
		bits = calloc(NBITMAPS * words, sizeof(uint64_t));
	}
	w->err = calloc(npages, sizeof(int32_t));
	w->held_ns = calloc(npages, sizeof(uint64_t));
	w->held_tid = calloc(npages, sizeof(int32_t));
	w->hready = calloc(MIG__BITMAP_WORDS(npages / MIG__PMD_PAGES + 1), sizeof(uint64_t));
	w->placed = calloc(MIG__BITMAP_WORDS(npages / MIG__PMD_PAGES + 1), sizeof(uint64_t));
	w->reformed = calloc(MIG__BITMAP_WORDS(npages / MIG__PMD_PAGES + 1), sizeof(uint64_t));
	w->pulled = calloc(words, sizeof(uint64_t));
	w->filled_read = calloc(words, sizeof(uint64_t));
	if (!w->addr || !w->err || !w->held_ns || !w->held_tid || !w->hready || !w->placed ||
	    !w->reformed || !w->pulled || !w->filled_read || !bits) {
		if (!w->in_journal)
			free(bits);
		mig__window_free(w);
		return -ENOMEM;
	}
	w->invma = bits;
	w->sel = bits + 1 * words;
	w->copied = bits + 2 * words;
	w->dirty = bits + 3 * words;
	w->zap = bits + 4 * words;
	w->filled = bits + 5 * words;
	w->gone = bits + 6 * words;
	w->thp = bits + 7 * words;
	w->present = bits + 8 * words;
	w->skipped = bits + 9 * words;
	w->remapped = bits + 10 * words;
	w->pend = bits + 11 * words;
	w->fallback = bits + 12 * words;
	*ret = w;
	return 0;
}

void mig__window_free(struct mig__win *w)
{
	if (!w)
		return;
	if (!w->in_journal) {
		free(w->invma);
		free(w->addr);
	}
	free(w->err);
	free(w->held_ns);
	free(w->held_tid);
	free(w->hready);
	free(w->placed);
	free(w->reformed);
	free(w->pulled);
	free(w->filled_read);
	free(w);
}

/* Contiguous runs (by current address) of the pages set in bits. */
size_t mig__runs_of(const struct mig__win *w, const uint64_t *bits, struct mig_range *out,
		    size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < w->npages; i++) {
		if (!mig__bit_test(bits, i))
			continue;
		if (n > 0 && out[n - 1].end == w->addr[i])
			out[n - 1].end += MIG__PAGE;
		else if (n < max)
			out[n++] = (struct mig_range){ w->addr[i], w->addr[i] + MIG__PAGE };
		else
			break;
	}
	return n;
}

/*
 * UFFDIO_WRITEPROTECT, retried while an event makes the mm "changing"
 * (-EAGAIN until the fault thread has read it).
 */
int mig__wp_range(struct mig__job *j, uint64_t start, uint64_t len, bool wp)
{
	int r;

	for (int tries = 0;; tries++) {
		r = mig__uffd_writeprotect(j->uffd, start, len, wp, false);
		if (r != -EAGAIN || tries > 20000 || __atomic_load_n(&j->exited, __ATOMIC_ACQUIRE))
			return r;
		usleep(50);
	}
}

static int protect(struct mig__job *j, struct mig__win *w, const uint64_t *bits, bool wp)
{
	struct mig_range runs[512];
	size_t n = mig__runs_of(w, bits, runs, ARRAY_SIZE(runs));
	int r = 0;

	for (size_t k = 0; k < n; k++) {
		int q = mig__wp_range(j, runs[k].start, runs[k].end - runs[k].start, wp);

		/*
		 * A run that could not be protected (the tenant unmapped or
		 * moved it meanwhile) is not tracked: it must not be zapped in
		 * this pass, so it counts as written.
		 */
		if (q < 0 && wp) {
			pthread_rwlock_wrlock(&j->lock);
			for (size_t i = 0; i < w->npages; i++)
				if (w->addr[i] >= runs[k].start && w->addr[i] < runs[k].end)
					mig__bit_set(w->dirty, i);
			pthread_rwlock_unlock(&j->lock);
		}
		if (q < 0 && q != -ENOENT && q != -EINVAL && r >= 0)
			r = q;
	}
	return r;
}

/*
 * Un-protect every page the window may have protected: the pages of its
 * VMAs, at their current addresses (the registration spans whole VMAs,
 * which can be far larger than the window).
 */
static void thaw(struct mig__job *j, struct mig__win *w)
{
	struct mig_range *runs = calloc(w->npages, sizeof(*runs));
	size_t n;

	if (!runs) {
		/* No memory for the runs: un-protect the registered ranges whole. */
		struct mig_range regs[MIG__MAX_REGS];

		pthread_rwlock_rdlock(&j->lock);
		n = w->nregs;
		memcpy(regs, w->regs, n * sizeof(regs[0]));
		pthread_rwlock_unlock(&j->lock);
		for (size_t k = 0; k < n; k++)
			(void)mig__wp_range(j, regs[k].start, regs[k].end - regs[k].start, false);
	} else {
		pthread_rwlock_rdlock(&j->lock);
		n = mig__runs_of(w, w->invma, runs, w->npages);
		pthread_rwlock_unlock(&j->lock);
		for (size_t k = 0; k < n; k++)
			(void)mig__wp_range(j, runs[k].start, runs[k].end - runs[k].start, false);
		free(runs);
	}
	for (size_t i = 0; i < w->npages; i++)
		if (w->held_ns[i]) {
			mig__job_stall(j, w->held_ns[i]);
			w->held_ns[i] = 0;
		}
}

static bool dirty_now(struct mig__job *j, const struct mig__win *w, size_t i)
{
	bool d;

	pthread_rwlock_rdlock(&j->lock);
	d = mig__bit_test(w->dirty, i);
	pthread_rwlock_unlock(&j->lock);
	return d;
}

/*
 * Move first has no FREEZE to tell a page in an unregistered VMA: a page
 * counts when its current address lies in a piece the window registered
 * (UNMAP and REMAP events keep the pieces current; a VMA moved in from
 * elsewhere unmaps a registered one first, which marks its pages gone).
 */
static bool in_regs(struct mig__job *j, const struct mig__win *w, size_t i)
{
	bool in = false;

	pthread_rwlock_rdlock(&j->lock);
	for (size_t k = 0; k < w->nregs && !in; k++)
		in = w->addr[i] >= w->regs[k].start && w->addr[i] < w->regs[k].end;
	pthread_rwlock_unlock(&j->lock);
	return in;
}

/*
 * Which pages of sel are present, where, and which belong to a PMD THP.
 * Pages not present leave sel. In the first pass pages already on a
 * target leave sel too unless forced.
 */
static int scan(struct mig__job *j, struct mig__win *w, bool first)
{
	_cleanup_free_ uint64_t *thp = NULL;
	_cleanup_free_ struct mig_pageinfo *folios = NULL;
	const struct mig_pageinfo *fo = NULL;
	struct mig_pageinfo *pi;
	int r = 0;

	pi = calloc(w->npages, sizeof(*pi));
	thp = first ? calloc(MIG__BITMAP_WORDS(w->npages), sizeof(uint64_t)) : NULL;
	folios = first ? calloc(w->npages, sizeof(*folios)) : NULL;
	if (!pi || (first && (!thp || !folios))) {
		free(pi);
		return -ENOMEM;
	}
	/* Pages are contiguous unless a REMAP moved some: query runs. */
	for (size_t i = 0; i < w->npages && r >= 0;) {
		size_t k = i + 1;

		while (k < w->npages && w->addr[k] == w->addr[k - 1] + MIG__PAGE)
			k++;
		/* One PAGEMAP_SCAN where the kernel has it (6.7+), else pagemap + kpageflags. */
		r = mig__scan_pages(j->pid, w->addr[i], k - i, pi + i);
		/*
		 * PAGEMAP_SCAN sees only PMD-mapped THPs: a THP whose PMD a
		 * write fault since the FREEZE split (un-protecting 4 KiB of
		 * it; no hint without whole-THP placing), and every mTHP, is
		 * a large folio mapped by PTEs. The count of large folios
		 * per size before the job reads them from kpageflags, once
		 * (docs/engine.md, "Large folios per size").
		 */
		if (r == 0 && first) {
			if (mig__query_folios(j->pid, w->addr[i], k - i, folios + i) == 0)
				fo = folios;
			else
				memset(folios + i, 0, (k - i) * sizeof(*folios));
		}
		if (r == 1) {
			r = mig_query_pages(j->pid, w->addr[i], k - i,
					    MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi + i);
			fo = pi;
		}
		if (r == -EINVAL || r == -EFAULT)
			r = 0; /* unmapped meanwhile: the pages below read as absent */
		i = k;
	}
	if (r < 0)
		goto out;
	for (size_t i = 0; i < w->npages; i++) {
		if (!mig__bit_test(w->sel, i))
			continue;
		if (mig__bit_test(w->gone, i) || pi[i].node < 0 ||
		    !(pi[i].flags & MIG_PAGE_PRESENT) || (pi[i].flags & MIG_PAGE_ZERO)) {
			mig__bit_clear(w->sel, i);
			/*
			 * Present at the first scan, not now: the tenant dropped
			 * or replaced it, unless the kernel holds it in a swap or
			 * migration entry (still the tenant's: it stays, -EBUSY).
			 */
			if (!first && (pi[i].flags & MIG_PAGE_SWAPPED) &&
			    !mig__bit_test(w->gone, i)) {
				if (!w->err[i])
					w->err[i] = EBUSY;
			} else if (!first) {
				MIG_TRACE("SCANGONE i=%zu addr=%lx zap=%d flags=%lx node=%d", i,
					  (unsigned long)w->addr[i], (int)mig__bit_test(w->zap, i),
					  (unsigned long)pi[i].flags, pi[i].node);
				mig__bit_set(w->gone, i);
			}
			continue;
		}
		/*
		 * Not write-protected although FREEZE protected it, and not
		 * written either (a write makes the page DIRTY before the fault
		 * thread un-protects it): its VMA is not registered (the tenant
		 * mremapped an unregistered mapping there after the window was
		 * planned). A write to it would go unseen and a fill would find
		 * no registration: it stays.
		 */
		if (w->movefirst ? !in_regs(j, w, i)
				 : !(pi[i].flags & MIG_PAGE_UFFD_WP) && !dirty_now(j, w, i)) {
			mig__bit_clear(w->sel, i);
			if (!w->err[i])
				w->err[i] = EBUSY;
			continue;
		}
		if (!first)
			continue;
		mig__bit_set(w->present, i);
		if (pi[i].flags & MIG_PAGE_THP)
			mig__bit_set(thp, i);
		/* Large folios per size before the job moved anything (after the edge splits). */
		if (fo)
			mig__count_folio(&fo[i], j->large_before);
		if (!j->opts.force && mig_nodes_test(&j->targets, (unsigned)pi[i].node)) {
			mig__bit_clear(w->sel, i);
			mig__bit_set(w->skipped, i);
		}
	}
out:
	/*
	 * The THPs as this scan found them replace the hint (mig__huge_hint)
	 * in one go: a write fault in between sees the one or the other.
	 */
	if (first && r >= 0) {
		pthread_rwlock_wrlock(&j->lock);
		memcpy(w->thp, thp, MIG__BITMAP_WORDS(w->npages) * sizeof(uint64_t));
		pthread_rwlock_unlock(&j->lock);
	}
	free(pi);
	return r;
}

/*
 * Has the target node room for need bytes, of which this pass may take
 * use? A figure read less than NODE_FREE_NS ago, less what the job's
 * passes may have taken since, can say yes; a no is only ever said on a
 * figure read now, as before. What other processes allocate in those
 * 50 ms is not seen: the reserve is there for it (and for the kernel).
 * A node without a figure (-ENODEV) is not checked.
 */
static bool target_room(struct mig__job *j, int node, uint64_t need, uint64_t use)
{
	struct mig__node_free *f = NULL;
	uint64_t now = mig__now_ns();
	int64_t avail;

	for (size_t k = 0; k < j->npools; k++)
		if (j->pool_nodes[k] == node)
			f = &j->node_free[k];
	if (f && f->read_ns && now - f->read_ns < NODE_FREE_NS && f->bytes >= 0 &&
	    (uint64_t)f->bytes >= f->used + need) {
		f->used += use;
		return true;
	}
	avail = mig__node_free(node);
	if (f)
		*f = (struct mig__node_free){ .bytes = avail, .read_ns = now, .used = use };
	return avail < 0 || (uint64_t)avail >= need;
}

static int stage(struct mig__job *j, struct mig__win *w, struct mig__pool *pool)
{
	_cleanup_free_ uint64_t *src = NULL, *copied = NULL;
	_cleanup_free_ void **dst = NULL;
	_cleanup_free_ size_t *idx = NULL;
	_cleanup_free_ int *err = NULL;
	size_t n = 0;
	int r;

	src = calloc(w->npages, sizeof(*src));
	dst = calloc(w->npages, sizeof(*dst));
	idx = calloc(w->npages, sizeof(*idx));
	err = calloc(w->npages, sizeof(*err));
	copied = calloc(MIG__BITMAP_WORDS(w->npages), sizeof(uint64_t));
	if (!src || !dst || !idx || !err || !copied)
		return -ENOMEM;
	for (size_t i = 0; i < w->npages; i++)
		if (mig__bit_test(w->sel, i)) {
			src[n] = w->addr[i];
			dst[n] = w->staging + i * MIG__PAGE;
			idx[n++] = i;
		}
	if (n == 0)
		return 0;
	r = mig__copy_stage(j->engine, &(struct mig_copy_req){
					       .pid = j->pid,
					       .npages = n,
					       .src = src,
					       .dst = dst,
					       .copied = copied,
					       .err = err,
					       .pool = pool,
				       });
	mig__crash_point("window:stage");
	for (size_t k = 0; k < n; k++) {
		if (mig__bit_test(copied, k)) {
			mig__bit_set(w->copied, idx[k]);
			w->err[idx[k]] = 0;
			__atomic_fetch_add(&j->copies, 1, __ATOMIC_RELAXED);
		} else if (err[k])
			w->err[idx[k]] = err[k];
		else
			w->err[idx[k]] = EIO;
	}
	return r;
}

/*
 * Move first: copy the scratch pages of [from, to) that are taken out and
 * not yet filled nor pulled into their staging slots, with one
 * process_vm_readv (the slots of a chunk lie side by side). The slot of
 * a page taken out holds it until our next zap session drops the area,
 * which never runs during a fill. Were a slot empty anyway, the read
 * would fault there and the fault thread answer with the zero page: the
 * count of such answers (j->scratch_faults) is read before and after,
 * and a read it changed counts for nothing (the pages are then pulled
 * one by one with pagemap's word first, mig__movefirst_pull_locked).
 */
static void pull_chunk(struct mig__job *j, struct mig__win *w, size_t from, size_t to)
{
	struct iovec l[FILL_CHUNK], rv[FILL_CHUNK];
	size_t idx[FILL_CHUNK], n = 0;
	uint64_t f0;
	ssize_t got;

	if (to - from > FILL_CHUNK)
		return;
	pthread_rwlock_rdlock(&j->lock);
	for (size_t i = from; i < to; i++) {
		if (!mig__bit_test(w->zap, i) || mig__bit_test(w->pend, i) ||
		    mig__bit_test(w->filled, i) || mig__bit_test(w->gone, i) ||
		    mig__bit_test(w->pulled, i))
			continue;
		l[n] = (struct iovec){ w->staging + i * MIG__PAGE, MIG__PAGE };
		rv[n] = (struct iovec){ (void *)(uintptr_t)(j->scratch_dst + i * MIG__PAGE),
					MIG__PAGE };
		idx[n++] = i;
	}
	pthread_rwlock_unlock(&j->lock);
	if (n == 0)
		return;
	f0 = __atomic_load_n(&j->scratch_faults, __ATOMIC_ACQUIRE);
	got = process_vm_readv(j->pid, l, n, rv, n, 0);
	/*
	 * Chunks are 64 pages, one bitmap word each: the workers set bits of
	 * their own word, the fault thread only under the write lock.
	 */
	pthread_rwlock_rdlock(&j->lock);
	if (__atomic_load_n(&j->scratch_faults, __ATOMIC_ACQUIRE) != f0)
		got = 0;
	for (size_t k = 0; got > 0 && k < (size_t)got / MIG__PAGE && k < n; k++) {
		mig__bit_set(w->pulled, idx[k]);
		__atomic_fetch_add(&j->copies, 1, __ATOMIC_RELAXED);
	}
	pthread_rwlock_unlock(&j->lock);
	if (got > 0 && (size_t)got == n * MIG__PAGE)
		return;
	pthread_rwlock_wrlock(&j->lock);
	for (size_t k = 0; k < n; k++)
		if (!mig__bit_test(w->pulled, idx[k]) && !mig__bit_test(w->filled, idx[k]))
			(void)mig__movefirst_pull_locked(j, w, idx[k], NULL);
	pthread_rwlock_unlock(&j->lock);
}

int mig__movefirst_pull_locked(struct mig__job *j, struct mig__win *w, size_t i,
			       const struct mig_pageinfo *slot)
{
	struct mig_pageinfo pi;
	struct iovec l = { w->staging + i * MIG__PAGE, MIG__PAGE };
	struct iovec rv = { (void *)(uintptr_t)(j->scratch_dst + i * MIG__PAGE), MIG__PAGE };

	if (mig__bit_test(w->pulled, i))
		return 0;
	if (slot)
		pi = *slot;
	else if (mig_query_pages(j->pid, j->scratch_dst + i * MIG__PAGE, 1, MIG_QUERY_PAGEMAP,
				 &pi) < 0)
		return -ESRCH;
	if (!(pi.flags & MIG_PAGE_PRESENT) || (pi.flags & MIG_PAGE_ZERO))
		return -ENODATA;
	/*
	 * With the job lock held for writing, which the fault thread needs
	 * to serve a fault in the scratch area: a read that faulted there
	 * would wait for ever. Through /proc/PID/mem it fails instead.
	 */
	errno = 0;
	if (mig__mem_readv(j->pid, &l, &rv, 1) != (ssize_t)MIG__PAGE) {
		MIG_TRACE("SLOTREAD i=%zu failed: %s", i, strerror(errno ? errno : EIO));
		return errno ? -errno : -EIO;
	}
	mig__bit_set(w->pulled, i);
	__atomic_fetch_add(&j->copies, 1, __ATOMIC_RELAXED);
	return 0;
}

struct fill_ctx {
	struct mig__job *j;
	struct mig__win *w;
	struct mig_nodes node;
	size_t nchunks;
	bool bounded; /* give up after FILL_STARVE_NS of -EAGAIN (fill) */
	bool starved; /* a chunk gave up so */
};

/*
 * A fill whose COPYs meet -EAGAIN (an event pending: the kernel's
 * mmap_changing) for this long without a page filled is starved: the
 * tenant raises events faster than they complete (fork churn on a loaded
 * host), and fill stops the tenant's threads to finish (fill).
 */
#define FILL_STARVE_NS (100ULL * 1000 * 1000)

/* Fill chunk c of the zap set: runs of up to FILL_CHUNK pages per COPY. */
static int fill_chunk(void *arg, size_t c)
{
	struct fill_ctx *f = arg;
	struct mig__win *w = f->w;
	struct mig__job *j = f->j;
	size_t from = c * FILL_CHUNK, to = MIN(w->npages, from + FILL_CHUNK);
	uint64_t again0 = 0; /* when -EAGAIN began, with no page filled since */

	if (w->movefirst)
		pull_chunk(j, w, from, to);
	for (size_t i = from; i < to;) {
		uint64_t done = 0;
		size_t k, i0 = i;
		int r;

		pthread_rwlock_rdlock(&j->lock);
		if (!mig__bit_test(w->zap, i) || mig__bit_test(w->filled, i) ||
		    mig__bit_test(w->gone, i) || (w->movefirst && !mig__bit_test(w->pulled, i))) {
			pthread_rwlock_unlock(&j->lock);
			i++;
			continue;
		}
		for (k = i + 1;
		     k < to && mig__bit_test(w->zap, k) && !mig__bit_test(w->filled, k) &&
		     !mig__bit_test(w->gone, k) && w->addr[k] == w->addr[k - 1] + MIG__PAGE &&
		     (!w->movefirst || mig__bit_test(w->pulled, k));
		     k++)
			;
		r = mig__uffd_copy(j->uffd, w->addr[i], w->staging + i * MIG__PAGE,
				   (k - i) * MIG__PAGE, 0, &done);
		MIG_TRACE("FILL i=%zu addr=%lx n=%zu r=%d done=%lu", i, (unsigned long)w->addr[i],
			  k - i, r, (unsigned long)done);
		for (size_t p = 0; p < done / MIG__PAGE; p++) {
			mig__bit_set(w->filled, i + p);
			if (w->held_ns[i + p])
				mig__job_stall(j, w->held_ns[i + p]);
		}
		mig__crash_point("window:fill");
		i += done / MIG__PAGE;
		if (r < 0 && i < k) {
			/* The page that stopped the run: its own outcome. */
			r = mig__fill_page_locked(j, w, j->uffd, i, &f->node);
			MIG_TRACE("FILL1 i=%zu addr=%lx r=%d", i, (unsigned long)w->addr[i], r);
			if (r == -ENOENT && w->movefirst) {
				/*
				 * Move first: no VMA registered with us at its
				 * address, and no event said the tenant took it
				 * away (it would be gone, or the COPY -EAGAIN).
				 * Its only copy is its slot: never dropped. It
				 * stays out, and bring_back keeps the scratch
				 * area and fails the job (zap.c, rule 10, keeps
				 * MOVE from getting here).
				 */
				MIG_TRACE("FILLNOENT i=%zu addr=%lx: no event, kept out", i,
					  (unsigned long)w->addr[i]);
				r = 0;
			} else if (r == -ENOENT || r == -ESRCH) {
				mig__bit_set(w->gone, i);
				r = 0;
			}
			if (r >= 0)
				i++;
		}
		pthread_rwlock_unlock(&j->lock);
		if (i != i0)
			again0 = 0;
		if (r == -EAGAIN) {
			uint64_t now = mig__now_ns();

			/* An event is waiting for the fault thread; let it read. */
			if (__atomic_load_n(&j->exited, __ATOMIC_ACQUIRE)) {
				MIG_TRACE("FILL i=%zu: the tenant exited: -ESRCH", i);
				return -ESRCH;
			}
			if (!again0)
				again0 = now;
			if (f->bounded && (__atomic_load_n(&f->starved, __ATOMIC_RELAXED) ||
					   now - again0 > FILL_STARVE_NS)) {
				/* Left for fill to finish with the tenant stopped. */
				__atomic_store_n(&f->starved, true, __ATOMIC_RELAXED);
				return 0;
			}
			usleep(50);
		} else if (r < 0)
			return r;
	}
	return 0;
}

struct fill_rest {
	struct mig__pool *pool;
	struct fill_ctx *f;
};

/* The rest of a starved fill, the tenant stopped: no bound any more. */
static int fill_rest(void *arg)
{
	struct fill_rest *fr = arg;

	fr->f->bounded = false;
	return mig__pool_run(fr->pool, fill_chunk, fr->f, fr->f->nchunks);
}

/*
 * FILL: COPY the zap set from staging. A COPY fails -EAGAIN while one of
 * the tenant's events is pending (mmap_changing, raised from the event's
 * preparation until the thread that raised it runs again after the fault
 * thread read it). A tenant whose threads keep forking, unmapping and
 * remapping can keep one pending nearly all the time: in a qemu TCG guest
 * on a loaded host a fill under stress_chaos's fork churn took 40 s
 * (4,040 FORKs read meanwhile), with a writer held all along, and in CI
 * a writer was held 86 s, near the test's 90 s hang limit. So a fill starved for
 * FILL_STARVE_NS stops the tenant's threads (mig__window_stopped: each stops
 * only once its own mapping change is complete and its event read, and a
 * stopped thread raises none), finishes, and lets them go.
 */
static int fill(struct mig__job *j, struct mig__win *w, struct mig__pool *pool)
{
	struct fill_ctx f = { .j = j, .w = w, .bounded = true };
	struct fill_rest fr = { pool, &f };
	uint64_t t0;
	int r, q = 0;

	mig_nodes_set(&f.node, (unsigned)mig__pool_node(pool));
	f.nchunks = (w->npages + FILL_CHUNK - 1) / FILL_CHUNK;
	r = mig__pool_run(pool, fill_chunk, &f, f.nchunks);
	if (r < 0 || !f.starved)
		return r;
	t0 = mig__now_ns();
	r = mig__window_stopped(j, w, fill_rest, &fr, &q);
	MIG_TRACE("FILLSTOPPED start=%lx r=%d stop=%d us=%lu", (unsigned long)w->start, r, q,
		  (unsigned long)((mig__now_ns() - t0) / 1000));
	return r;
}

static void hook(struct mig__job *j, struct mig__win *w, int phase)
{
	struct mig_range rg = { w->start, w->start + w->npages * MIG__PAGE };

	if (j->opts.phase_hook)
		j->opts.phase_hook(phase, &rg, j->opts.hook_userdata);
}

static bool any(const uint64_t *bits, size_t n)
{
	for (size_t k = 0; k < MIG__BITMAP_WORDS(n); k++)
		if (bits[k])
			return true;
	return false;
}

static void set_err(struct mig__win *w, const uint64_t *bits, int err)
{
	for (size_t i = 0; i < w->npages; i++)
		if (mig__bit_test(bits, i) && !w->err[i])
			w->err[i] = err;
}

static void collapse(struct mig__job *j, struct mig__win *w, bool final);

/*
 * After a pass: the next one works on the pages written during this one
 * (classic), or left in place by the MOVE (move first; zap.c marks them
 * DIRTY). Returns whether there is a next pass.
 */
static bool next_pass(struct mig__job *j, struct mig__win *w, unsigned pass, unsigned max)
{
	pthread_rwlock_wrlock(&j->lock);
	w->zap_fixed = false;
	w->hold = false;
	for (size_t i = 0; i < w->npages; i++) {
		bool again = mig__bit_test(w->sel, i) && mig__bit_test(w->dirty, i) &&
			     !mig__bit_test(w->zap, i) && !mig__bit_test(w->gone, i);

		if (again)
			mig__bit_set(w->sel, i);
		else
			mig__bit_clear(w->sel, i);
	}
	pthread_rwlock_unlock(&j->lock);
	if (!any(w->sel, w->npages))
		return false;
	if (pass >= max) {
		set_err(w, w->sel, EAGAIN);
		return false;
	}
	j->retried += mig__bitmap_count(w->sel, w->npages);
	if (j->opts.cancel && *j->opts.cancel) {
		set_err(w, w->sel, ECANCELED);
		return false;
	}
	return true;
}

/* A pass begins: its markers are cleared; hold: WP faults on sel wait (classic). */
static void pass_begin(struct mig__job *j, struct mig__win *w, unsigned pass, bool hold)
{
	if (pass > j->max_pass)
		j->max_pass = pass;
	pthread_rwlock_wrlock(&j->lock);
	w->hold = hold;
	w->last_pass = pass == j->opts.max_passes;
	w->zap_fixed = false;
	mig__bitmap_zero(w->copied, w->npages);
	mig__bitmap_zero(w->dirty, w->npages);
	mig__bitmap_zero(w->zap, w->npages);
	mig__bitmap_zero(w->pulled, w->npages);
	w->mf_busy = 0;
	pthread_rwlock_unlock(&j->lock);
}

/*
 * Move first, after a pass in which MOVE refused pages -EBUSY: the
 * window's next passes run classic. After a fork MOVE refuses every page
 * not written since (the kernel sets AnonExclusive again only on a
 * write), pass after pass, and move first never zaps with madvise; the
 * classic pass stages such pages and takes them out with madvise steps.
 * Only at a pass boundary, with every page back (bring_back): the
 * journal's protocol flag changes with it, and recovery then reads a
 * page taken out from staging, as for any classic window. The job's
 * later windows begin classic too: the pages of a tenant that forked
 * stay refused until written.
 */
static void to_classic(struct mig__job *j, struct mig__win *w, unsigned pass)
{
	MIG_TRACE("CLASSIC win=%lx pass=%u busy=%u", (unsigned long)w->start, pass, w->mf_busy);
	pthread_rwlock_wrlock(&j->lock);
	w->movefirst = false;
	w->switched = true;
	pthread_rwlock_unlock(&j->lock);
	mig__faults_priority(j, false);
	mig__journal_window_protocol(j->journal, w);
	j->windows_switched++;
	j->movefirst_off = true;
}

/* Move first: pages taken out and not back yet (not filled, not gone). */
static size_t out_count(struct mig__job *j, struct mig__win *w)
{
	size_t n = 0;

	pthread_rwlock_rdlock(&j->lock);
	for (size_t i = 0; i < w->npages; i++)
		n += mig__bit_test(w->zap, i) && !mig__bit_test(w->pend, i) &&
		     !mig__bit_test(w->filled, i) && !mig__bit_test(w->gone, i);
	pthread_rwlock_unlock(&j->lock);
	return n;
}

/*
 * Move first: every page taken out must be back before the window lets
 * go. What the fill could not copy (its slot could not be read, the
 * COPY failed) is filled once more, then moved back from the scratch
 * area with injected MOVEs (mig__window_move_back). What is still out
 * after that stays in the scratch area, which is then kept for good
 * (j->scratch_keep): the job fails with -EIO rather than drop it.
 */
static int bring_back(struct mig__job *j, struct mig__win *w, struct mig__pool *pool)
{
	if (out_count(j, w) == 0)
		return 0;
	(void)fill(j, w, pool);
	if (out_count(j, w) == 0)
		return 0;
	(void)mig__window_move_back(j, w);
	if (out_count(j, w) == 0)
		return 0;
	j->scratch_keep = true;
	return -EIO;
}

/*
 * Room under the tenant's memory cgroup limits (memcg.c) for a pass of
 * nsel pages. Each copy is charged to the tenant while the page it
 * replaces may still be: a move-first window keeps its pages in the
 * scratch area until filled (twice nsel), and a classic one frees before
 * it fills, but not at once (the host's 6.18 OOM report of a THP window at
 * the limit: usage 2 MiB above the tenant's pages and page tables, the
 * THP just taken out not yet uncharged). Without the room the pages stay
 * where they are, failed -EDQUOT (the limit is the tenant's quota), and
 * the fill never meets a charge that would wake the memcg OOM killer,
 * which kills the tenant.
 */
static bool memcg_room(struct mig__job *j, struct mig__win *w, size_t nsel)
{
	if (mig__memcg_fits(j, nsel * MIG__PAGE, w->movefirst))
		return true;
	MIG_TRACE("MEMCG %zu pages of window %lx stay (-EDQUOT)", nsel, (unsigned long)w->start);
	mig__memcg_held_back(j, w->start);
	return false;
}

/*
 * The pass's scan, then the target-full check: with a full target the
 * pages stay, reported -ENOMEM, nothing is taken out; without room under
 * the tenant's memory limit likewise, reported -EDQUOT (memcg_room). Staging (move
 * first: the pulled copy) prefers the target node too, so until the fill
 * is done the window needs its pages there twice. Returns 0 (go on, *nsel
 * pages), 1 (the window is done) or -errno.
 */
static int scan_room(struct mig__job *j, struct mig__win *w, unsigned pass, size_t *nsel)
{
	int r = scan(j, w, pass == 1);

	if (r < 0)
		return r;
	*nsel = mig__bitmap_count(w->sel, w->npages);
	if (*nsel == 0)
		return 1;
	if (!target_room(j, w->node, 2 * *nsel * MIG__PAGE + MIG__NODE_RESERVE,
			 2 * *nsel * MIG__PAGE)) {
		set_err(w, w->sel, ENOMEM);
		return 1;
	}
	if (!memcg_room(j, w, *nsel)) {
		set_err(w, w->sel, EDQUOT);
		return 1;
	}
	return 0;
}

/*
 * One pass. Classic: FREEZE, scan, STAGE, ZAP, FILL, collapse, THAW.
 * Move first (docs/engine.md, "Move first"): no FREEZE, no held writers;
 * the zap session moves the pass's present pages into the scratch area
 * (one MOVE per run), a fault on one is served from there at once, the
 * fill pulls the scratch pages and copies them into place on the target,
 * and what it could not copy is brought back (bring_back). A page the
 * MOVE left in place (refused, or the tenant moved it meanwhile) is tried
 * again in the next pass. Returns 0 (a next pass may follow), 1 (the
 * window is done) or -errno.
 */
static int pass_run(struct mig__job *j, struct mig__win *w, struct mig__pool *pool, unsigned pass,
		    bool *ret_took)
{
	uint64_t t0, t1, t2;
	size_t nsel;
	int r;

	if (!w->movefirst) {
		if (pass == 1)
			mig__huge_hint(j, w);
		/* FREEZE: from here on every write to sel reaches the fault thread. */
		r = protect(j, w, w->sel, true);
		if (r < 0)
			return r;
		mig__crash_point("window:freeze");
	}
	r = scan_room(j, w, pass, &nsel);
	if (r != 0)
		return r;
	if (w->movefirst) {
		/* Nothing to stage: a MOVE takes the page with its last content. */
		pthread_rwlock_wrlock(&j->lock);
		memcpy(w->copied, w->sel, MIG__BITMAP_WORDS(w->npages) * sizeof(uint64_t));
		pthread_rwlock_unlock(&j->lock);
	} else {
		r = stage(j, w, pool);
		if (r < 0)
			return r;
		/* Whole THPs wait as THPs on the target, to be placed by the zap (hugemove.c). */
		mig__huge_stage(j, w, pool);
	}
	hook(j, w, MIG_PHASE_STAGED);
	MIG_TRACE("PASS %u start=%lx sel=%zu movefirst=%d", pass, (unsigned long)w->start, nsel,
		  (int)w->movefirst);
	t0 = mig__now_ns();
	r = mig__window_zap(j, w);
	t1 = mig__now_ns();
	if (r == -ESRCH)
		return r;
	*ret_took = any(w->zap, w->npages);
	/* Only where something was taken out: the content is then only in staging (scratch). */
	if (any(w->zap, w->npages)) {
		mig__crash_point("window:zap");
		/* The same, in a window that began move first (recovery reads staging). */
		if (w->switched)
			mig__crash_point("window:switched");
	}
	/* A failed zap leaves pages in place: their fill gets -EEXIST. */
	hook(j, w, MIG_PHASE_ZAPPED);
	r = fill(j, w, pool);
	t2 = mig__now_ns();
	if (r < 0 && (!w->movefirst || r == -ESRCH))
		return r;
	if (w->movefirst)
		r = bring_back(j, w, pool);
	MIG_TRACE("PASSEND %u start=%lx zap_us=%lu fill_us=%lu back_us=%lu r=%d", pass,
		  (unsigned long)w->start, (unsigned long)((t1 - t0) / 1000),
		  (unsigned long)((t2 - t1) / 1000), (unsigned long)((mig__now_ns() - t2) / 1000),
		  r);
	if (w->movefirst && r < 0)
		return r;
	collapse(j, w, false);
	if (!w->movefirst)
		thaw(j, w);
	return 0;
}

static int passes(struct mig__job *j, struct mig__win *w, struct mig__pool *pool)
{
	unsigned max = j->opts.max_passes;

	memcpy(w->sel, w->invma, MIG__BITMAP_WORDS(w->npages) * sizeof(uint64_t));
	for (unsigned pass = 1;; pass++) {
		bool took = true;
		int r;

		pass_begin(j, w, pass,
			   !w->movefirst && (pass >= MIG__HOLD_PASS || (pass == max && pass > 1)));
		r = pass_run(j, w, pool, pass, &took);
		if (r < 0)
			return r;
		if (r == 0 && w->movefirst && w->mf_busy) {
			to_classic(j, w, pass);
			took = true;
		}
		/*
		 * Move first: a pass that took no page out was the last (its
		 * pages fail -EAGAIN as after max_passes). MOVE refuses a page
		 * shared with a fork child (-EBUSY), and one not written since
		 * a fork stays refused after the child is gone (the kernel
		 * clears AnonExclusive at the fork and sets it again only on a
		 * write), so under fork churn the next passes refuse the same
		 * pages again, one injected step a page (issue 16).
		 */
		if (r > 0 || !next_pass(j, w, pass, w->movefirst && !took ? pass : max))
			break;
	}
	return 0;
}

/*
 * Re-form the THPs the window had, where all their pages were filled with
 * 4 KiB copies (a block placed whole by a PMD move is a THP already).
 *
 * In each pass right after the FILL, before the THAW: MADV_COLLAPSE needs
 * one writable PTE in the block (else SCAN_PAGE_RO, -EINVAL), and on 6.1
 * un-protecting (THAW, and UNREGISTER, which un-protects the whole VMA)
 * rebuilds every PTE from vm_page_prot, which is read-only for a private
 * mapping: after it only the blocks a tenant thread wrote to since
 * collapsed (6.1 guest: 10-14 of 32, the others -EINVAL until written).
 * The copies the FILL just made are writable and carry no uffd-wp bit,
 * and a block with no empty PTE collapses in a registered VMA too.
 * What fails there (or completes only at the end) is tried once more after
 * the UNREGISTER (final), and a transient failure (-EAGAIN: a page off
 * the LRU, locked or with an extra reference; -EINVAL: read-only, see
 * above) up to COLLAPSE_TRIES times with growing pauses.
 */
#define COLLAPSE_TRIES 4

static void collapse(struct mig__job *j, struct mig__win *w, bool final)
{
	size_t per = MIG__PMD_PAGES, nb = w->npages / per, nleft = 0;
	_cleanup_free_ size_t *left = NULL;

	if (j->opts.no_collapse || nb == 0)
		return;
	left = calloc(nb, sizeof(*left));
	if (!left)
		return;
	pthread_rwlock_rdlock(&j->lock);
	for (size_t i = 0; i + per <= w->npages; i += per) {
		bool all = (w->addr[i] & (MIG__PMD - 1)) == 0 &&
			   !mig__bit_test(w->placed, i / per) &&
			   !mig__bit_test(w->reformed, i / per);

		for (size_t k = i; k < i + per && all; k++)
			all = mig__bit_test(w->thp, k) && mig__bit_test(w->filled, k) &&
			      !mig__bit_test(w->gone, k) &&
			      w->addr[k] == w->addr[i] + (k - i) * MIG__PAGE;
		if (all)
			left[nleft++] = i;
	}
	pthread_rwlock_unlock(&j->lock);

	for (int t = 0; nleft && t < (final ? COLLAPSE_TRIES : 1); t++) {
		size_t n = 0;

		if (t > 0) /* 10, 40, 160 ms: give the pages back to the LRU */
			usleep(10000u << (2 * (t - 1)));
		for (size_t b = 0; b < nleft; b++) {
			size_t i = left[b];
			struct mig_range rg;
			int r;

			pthread_rwlock_rdlock(&j->lock);
			rg = (struct mig_range){ w->addr[i], w->addr[i] + MIG__PMD };
			pthread_rwlock_unlock(&j->lock);
			/* Best effort: a page left small is slower, not wrong. */
			r = mig_collapse(j->pidfd, &rg);
			if (r == 0) {
				mig__bit_set(w->reformed, i / per);
				j->collapsed++;
			} else if (r == -EAGAIN || r == -EINVAL) {
				left[n++] = i;
			} else if (final) {
				j->collapse_failed++;
			}
		}
		nleft = n;
	}
	if (final)
		j->collapse_failed += nleft;
}

/*
 * A registered VMA can grow without an event: mremap in place, or moved
 * and grown at once (its REMAP names the old length only). Its new part
 * is registered too (registration belongs to the whole VMA), and left
 * registered after the job a fork or munmap there would raise an event
 * nobody reads, and the tenant would hang (found by stress_chaos's 'g').
 * So every VMA that overlaps a registered piece is unregistered whole.
 */
static void unregister_grown(struct mig__job *j, struct mig__win *w)
{
	_cleanup_free_ struct mig_vma *v = NULL;
	struct mig_range regs[MIG__MAX_REGS];
	uint64_t lo = UINT64_MAX, hi = 0;
	size_t nv = 0, n;

	pthread_rwlock_rdlock(&j->lock);
	n = w->nregs;
	memcpy(regs, w->regs, n * sizeof(regs[0]));
	pthread_rwlock_unlock(&j->lock);
	for (size_t k = 0; k < n; k++) {
		lo = MIN(lo, regs[k].start);
		hi = MAX(hi, regs[k].end);
	}
	/* Only a VMA that overlaps a piece can matter: those between lo and hi. */
	if (n == 0 || mig__read_vmas_range(j->pid, lo, hi, &v, &nv) < 0)
		return;
	for (size_t a = 0; a < nv; a++) {
		bool over = false, inside = false;

		for (size_t k = 0; k < n && !over; k++) {
			over = v[a].start < regs[k].end && regs[k].start < v[a].end;
			inside = regs[k].start <= v[a].start && v[a].end <= regs[k].end;
		}
		if (over && !inside && mig_vma_is_anon_private(&v[a]))
			(void)mig__uffd_unregister(j->uffd, v[a].start, v[a].end - v[a].start);
	}
}

/*
 * Before a window lets go: every event the tenant raised while its ranges
 * were registered has been read and applied to it. Read later, such an
 * event would be applied to the next window, whose addresses were read
 * after the change the event describes (a REMAP would move that window's
 * pages to where they are not). Nothing of this window is registered any
 * more, so no new event can be prepared for it; the kernel keeps the
 * uffd's mmap_changing raised from an event's preparation until it is
 * read (mig__uffd_events_pending), and the fault thread applies what it
 * read before it lets go of the job lock, which the caller takes next.
 *
 * The wait has no short bound. It used to end after 2 s, and an event
 * still unread then was applied to the next window or to none: a FORK
 * read with no window fills nothing into the child, which keeps this
 * window's holes and reads zero there. The pending flag drops once the
 * tenant's thread that raised the event runs again after our read, and
 * on a loaded host (qemu TCG guests, 2 CPUs) that may take seconds.
 * The fill waits for the same flag (and stops the tenant's threads when
 * it starves: fill). The wait ends when
 * the events are read, when the tenant is gone, or after EVENTS_WAIT_NS
 * (an event the tenant never completes): then the job ends with
 * -ETIMEDOUT rather than run another window under an event it cannot
 * place.
 */
#define EVENTS_WAIT_NS (60ULL * 1000 * 1000 * 1000)
#define EVENTS_SLOW_NS (2ULL * 1000 * 1000 * 1000)

static int events_read(struct mig__job *j)
{
	uint64_t t0 = mig__now_ns(), t;
	bool slow = false;

	while (mig__uffd_events_pending(j->uffd)) {
		if (__atomic_load_n(&j->exited, __ATOMIC_ACQUIRE))
			return 0;
		t = mig__now_ns() - t0;
		if (t > EVENTS_WAIT_NS) {
			MIG_TRACE("EVWAIT gave up after %lu ms", (unsigned long)(t / 1000000));
			return -ETIMEDOUT;
		}
		slow |= t > EVENTS_SLOW_NS;
		usleep(100);
	}
	if (slow)
		MIG_TRACE("EVWAIT read after %lu ms",
			  (unsigned long)((mig__now_ns() - t0) / 1000000));
	return 0;
}

/*
 * The window lets go of its registrations: its pieces and the VMAs grown
 * over them, then every event on its way is read (events_read). Again
 * while that reading applied an UNMAP or REMAP to the pieces: a tenant
 * mremap that moved a registered VMA before our UNREGISTER, its REMAP
 * still unread, moves the piece (regs_remap) to where the VMA now is,
 * registered, when it is read here. Unregistered only once, that VMA
 * would stay registered outside every window, and its later events would
 * be applied to whichever window is current (found after helper 33's
 * 6.12 guest failure: a run the tenant had moved away and back, still
 * `um uw` at the end).
 *
 * Whether to go round again is told by the events applied (regs_events),
 * not by comparing the pieces: a run moved away and back while the first
 * UNREGISTER ran (it unregistered a hole) leaves the pieces as they were,
 * and the VMA came back registered (session 18: the LEFTOVER check of a
 * traced host run found it, 12 windows long). Once nothing of the window
 * is registered, no new event can be prepared for it, so this ends; the
 * rounds are bounded all the same (the job's end unregisters whatever is
 * still ours, faults.c settle).
 *
 * Called while the fault thread still knows the window: a fault read
 * before the unregister must still be served from staging. w->regs is
 * updated by UNMAP/REMAP events, so it is read locked.
 */
#define UNREGISTER_ROUNDS 8

static int unregister_all(struct mig__job *j, struct mig__win *w)
{
	for (int round = 0; round < UNREGISTER_ROUNDS; round++) {
		uint64_t seen;
		int er;

		pthread_rwlock_rdlock(&j->lock);
		seen = w->regs_events;
		for (size_t k = 0; k < w->nregs; k++) {
			int q = mig__uffd_unregister_piece(j->uffd, j->pid, w->regs[k].start,
							   w->regs[k].end - w->regs[k].start);

			MIG_TRACE("UNREGPIECE %lx-%lx round=%d r=%d",
				  (unsigned long)w->regs[k].start, (unsigned long)w->regs[k].end,
				  round, q);
		}
		pthread_rwlock_unlock(&j->lock);
		unregister_grown(j, w);
		er = events_read(j);
		if (er < 0)
			return er;
		pthread_rwlock_rdlock(&j->lock);
		seen = w->regs_events - seen;
		pthread_rwlock_unlock(&j->lock);
		if (!seen)
			return 0;
		MIG_TRACE("UNREGAGAIN start=%lx round=%d: %lu events moved or cut the pieces",
			  (unsigned long)w->start, round, (unsigned long)seen);
	}
	return 0;
}

/*
 * Debug trace only: after a window's end nothing of the tenant may be
 * registered with us but the scratch area, and after the job's end
 * (faults.c settle) nothing at all. A VMA that is (LEFTOVER) lies outside
 * every window, and its events would be applied to whichever window is
 * current (or to none between two): the state behind the 6.12 guest's
 * move-first losses of session 17 (docs/engine.md); after the job, the
 * tenant's next fault, fork, munmap or mremap there would wait for good.
 * churn.sh fails a traced run that has one. Reads smaps: only when
 * tracing. It only reads: a REGISTER to tell a VMA of another uffd (the
 * tenant's own) by its -EBUSY would register whatever the tenant has put
 * at that range since smaps was read. A VMA of another uffd is named all
 * the same.
 */
struct leftover {
	const struct mig__job *j;
	const char *when;
};

static int leftover_one(uint64_t start, uint64_t end, void *arg)
{
	const struct leftover *l = arg;
	const struct mig__job *j = l->j;

	if (j->scratch && start >= j->scratch_dst && end <= j->scratch_dst + j->scratch_dst_len)
		return 0;
	MIG_TRACE("LEFTOVER vma=%lx-%lx: registered after the %s", (unsigned long)start,
		  (unsigned long)end, l->when);
	return 1;
}

void mig__trace_leftovers(const struct mig__job *j, const char *when)
{
	struct leftover l = { j, when };

	if (mig__trace_on())
		(void)mig__uffd_each_flagged(j->pid, leftover_one, &l);
}

int mig__window_run(struct mig__job *j, struct mig__win *w)
{
	struct mig__pool *pool = NULL;
	size_t reg = 0;
	int r = 0, er;

	for (size_t k = 0; k < j->npools; k++)
		if (j->pool_nodes[k] == w->node)
			pool = j->pools[k];
	if (!pool)
		return -EINVAL;

	/*
	 * Publish the window before its first registration. From then on
	 * the tenant's UNMAP/REMAP/REMOVE of a registered piece raises an
	 * event, and the fault thread must apply it to this window: read
	 * while j->win was still NULL it would be dropped, the window would
	 * keep the page at its old address, and a fault at the new one (a
	 * page zapped later, moved by the tenant) would get the zero page.
	 * The registrations run under the read lock, so no event is applied
	 * in the middle of the loop (regs_remap() may reorder w->regs); the
	 * tenant never waits for us with its mmap lock held, so it cannot
	 * deadlock: its events and faults are served once we let go.
	 */
	pthread_rwlock_wrlock(&j->lock);
	j->win = w;
	pthread_rwlock_unlock(&j->lock);
	mig__faults_priority(j, w->movefirst);
	hook(j, w, MIG_PHASE_PLANNED);
	/* From the first registration on, a crash needs the journal to undo it. */
	mig__journal_window_begin(j->journal, w);
	pthread_rwlock_rdlock(&j->lock);
	for (; reg < w->nregs; reg++) {
		uint64_t ioctls = 0;

		r = mig__uffd_register(
			j->uffd, w->regs[reg].start, w->regs[reg].end - w->regs[reg].start,
			UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP, &ioctls);
		if (r >= 0 && !(ioctls & (UINT64_C(1) << _UFFDIO_WRITEPROTECT))) {
			reg++;
			r = -EOPNOTSUPP;
		}
		if (r < 0)
			break;
	}
	if (r < 0) {
		/* Nothing was touched yet: undo the registrations, report why. */
		for (size_t k = 0; k < reg; k++)
			(void)mig__uffd_unregister(j->uffd, w->regs[k].start,
						   w->regs[k].end - w->regs[k].start);
		pthread_rwlock_unlock(&j->lock);
		mig__journal_window_end(j->journal);
		pthread_rwlock_wrlock(&j->lock);
		set_err(w, w->invma, -r);
		j->win = NULL;
		pthread_rwlock_unlock(&j->lock);
		mig__faults_priority(j, false);
		return r == -EOPNOTSUPP || r == -ESRCH ? r : 0;
	}
	pthread_rwlock_unlock(&j->lock);
	hook(j, w, MIG_PHASE_REGISTERED);
	MIG_TRACE("WIN start=%lx n=%zu nregs=%zu reg0=%lx-%lx", (unsigned long)w->start, w->npages,
		  w->nregs, w->nregs ? (unsigned long)w->regs[0].start : 0UL,
		  w->nregs ? (unsigned long)w->regs[0].end : 0UL);
	for (size_t k = 0; k < w->nregs; k++)
		MIG_TRACE("REG %lx-%lx", (unsigned long)w->regs[k].start,
			  (unsigned long)w->regs[k].end);

	r = passes(j, w, pool);
	if (r < 0) {
		/*
		 * Every zapped page must be back before we let go: fill what
		 * is left (the fault thread keeps serving meanwhile), thaw.
		 * -ESRCH is believed only when the pidfd agrees: a backend
		 * says it for a closed agent connection or a failed
		 * injection too, and a tenant that lives gets its pages back
		 * (a dead one's fill would only meet -ESRCH).
		 */
		bool gone = r == -ESRCH && (mig__tenant_exited(j->t) ||
					    __atomic_load_n(&j->exited, __ATOMIC_ACQUIRE));

		if (r == -ESRCH && !gone)
			MIG_TRACE("WIN %lx: -ESRCH but the tenant lives: filling",
				  (unsigned long)w->start);
		if (!gone && w->movefirst)
			(void)bring_back(j, w, pool);
		else if (!gone)
			(void)fill(j, w, pool);
		if (!w->movefirst)
			thaw(j, w);
	}

	er = unregister_all(j, w);
	if (er < 0 && r >= 0)
		r = er;
	mig__trace_leftovers(j, "window's end");
	mig__journal_window_end(j->journal);
	pthread_rwlock_wrlock(&j->lock);
	j->win = NULL;
	pthread_rwlock_unlock(&j->lock);
	mig__faults_priority(j, false);
	MIG_TRACE("WINEND start=%lx r=%d", (unsigned long)w->start, r);
	if (r >= 0)
		collapse(j, w, true);
	return r;
}
