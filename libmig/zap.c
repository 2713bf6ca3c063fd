/*
 * zap.c - taking pages out of the tenant: the ZAP step of a window pass,
 * for both zaps (UFFDIO_MOVE into a scratch area, injected madvise) and
 * both backends (ptrace, agent), through the backends' few primitives
 * (struct mig__tenant_ops: zap_threads, zap_begin, zap_step, zap_end).
 *
 * The rules that keep the tenant's data safe, and its own mapping changes
 * with it (docs/engine.md, "The zap protocol" and "The zap", tells how
 * each was found):
 *
 *  1. Only pages that are COPIED (staged intact), not DIRTY (written since)
 *     and not gone are zapped: a failed or raced copy never destroys the
 *     original. The zap set is fixed only once the executor is ready
 *     (zap_ready), and WP faults on it are held from then until the fill.
 *  2. The executor (the tenant thread that runs the steps) must never wait
 *     for a fault the engine holds, or the zap waits for it and it for the
 *     zap. So its WP faults are never held from the moment it is named
 *     (zap_prepare releases those already held, legal because nothing is
 *     zapped yet), and the pages its kernel writes while it runs steps
 *     (its rseq area, the stack below its stack pointer, an agent helper's
 *     whole stack) leave the pass, -EBUSY.
 *  3. Every step is computed from the current addresses when it is due
 *     (zap_next), never from a list fixed earlier: a tenant mremap moves
 *     pages, and a run computed before it would zap what the tenant put
 *     at the old addresses.
 *  4. A MOVE step runs with the job lock held for reading, from zap_next
 *     until the syscall has run (zap_unlock): the fault thread cannot
 *     apply a tenant event meanwhile, so the addresses are right, and an
 *     event the tenant made after they were read is still unread, so the
 *     kernel refuses the MOVE (mmap_changing: -EAGAIN) and the step is
 *     computed again. The executor cannot fault while the lock is held: it
 *     runs only the ioctl, and the backend calls zap_unlock before it can
 *     deliver a signal to it. A MOVE sends no event, so every REMOVE the
 *     fault thread reads is the tenant's, and those pages read zero.
 *  5. Holes are not allowed in a MOVE (no ALLOW_SRC_HOLES): every page of
 *     a run was present when scanned, so a hole is a page the tenant
 *     dropped (its REMOVE maybe read before this window began; the kernel
 *     zaps a DONTNEED range only after its event was read): -ENOENT there,
 *     the page is gone, never refilled. Since Linux 6.9 a MOVE also says
 *     -ENOENT for a tenant mremap whose event is unread (it looks the VMA
 *     up before it checks mmap_changing again): a hole only when no event
 *     is unread and the page is absent (hole_now).
 *  6. madvise steps (no UFFDIO_MOVE, agent tenants, pages MOVE refused)
 *     run with every other thread of the tenant stopped (MIG__ZAP_STOP,
 *     the backend's stop_others), taken before the first one: a thread
 *     stops only once its own mapping change is complete and its event
 *     read, so nothing can change between computing a run and its
 *     madvise, and every REMOVE read while a madvise runs is that
 *     madvise's own. Before each run its
 *     pagemap is read (drop_absent): a page absent now was dropped by the
 *     tenant after it was staged: gone. A thread held in a kernel-mode
 *     fault cannot stop: after a while every held fault is let go the
 *     STAGE way (zap_release) and from the STOP step on none is held.
 *  7. Pages still pending when the session ends were not taken out: they
 *     leave the zap set as written (DIRTY) and wait for the next pass.
 *  8. A whole THP whose content waits as a THP on the target (hugemove.c)
 *     is placed by the step after the one that took it out, a PMD move
 *     from its huge staging slot. MOVE runs never cross a PMD boundary,
 *     so an aligned THP leaves with one PMD move and its PMD is empty.
 *     From the first of the two steps to the end of the second the block
 *     is the step in flight: a fault on it waits for the outcome, never
 *     gets a 4 KiB page from staging that would fill the PMD. Pages the
 *     placing did not bring back are filled from staging as usual.
 *  9. A FORK read during a session copies into the child only the pages
 *     it may lack (faults.c, child_lacks): those taken out (pend cleared)
 *     and those of the step in flight. So a step is recorded before its
 *     syscall can run and until its outcome is applied: a MOVE step by
 *     inflight_* under the job lock it holds until the syscall returned,
 *     a madvise step by zapping and zap_run_i under the write lock; and
 *     pend is cleared, for a page left in the zap set and not gone, only
 *     by zap_done (under the write lock), for the pages its step took out
 *     or may have (moved_by_slot). Nothing else takes a zap-set page out.
 * 10. Move first: a MOVE step takes pages only out of VMAs registered with
 *     the job's uffd, asked of the kernel for its run under the lock of
 *     rule 4 (registered_prefix): UFFDIO_MOVE checks only that its
 *     destination is registered, and a page taken out of an unregistered
 *     VMA can be neither filled (-ENOENT) nor served (its faults never
 *     reach us). Only a definite answer counts: -EAGAIN (an event in
 *     progress, or read and its thread not run yet) runs no MOVE; the
 *     run is asked again as a refused MOVE would be. The classic window
 *     needs no such check: its scan takes only pages its FREEZE
 *     write-protected, which only a registered VMA allows.
 *
 * Locks: the job lock (j->lock) is taken and released in this file only;
 * the tenant's op_lock (one in-tenant operation at a time) is held for
 * the whole session by zap_session, and around a starved fill by
 * mig__window_stopped.
 */
#include <errno.h>
#include <string.h>

#include "bitmap.h"
#include "crashpoint.h"
#include "engine.h"
#include "procfs.h"
#include "stopset.h"
#include "tenant.h"
#include "uffd.h"
#include "trace.h"

struct zap_ctx {
	struct mig__job *j;
	struct mig__win *w;
	bool locked;	    /* j->lock held for reading by a MOVE step */
	bool scratch_used;  /* pages were moved into the scratch area */
	bool scratch_freed; /* the step freeing it was given */
	size_t cur, ncur;   /* pages of the step in flight */
	unsigned again;	    /* MOVE steps refused while events were unread */
	uint64_t again_t0;  /* when the first of them was refused */
	size_t limit;	    /* pages in the next MOVE step at most, 0: no limit */
	bool give_up;	    /* no more MOVE steps in this session */
	unsigned busy;	    /* MOVE steps refused -EBUSY in this session */
	struct mig_range excl[MIG__ZAP_MAX_EXCL];
	size_t nexcl;
	bool stop_asked; /* the MIG__ZAP_STOP step was given */
	size_t place;	 /* 1 + first page of a block to place whole next (rule 8), 0: none */
	bool placing;	 /* the step in flight places a block */
	bool started;	 /* zap_next was called in this session */
	bool back;	 /* move first: MOVE pages back from the scratch area (move_back) */
	bool stale;	 /* the scratch area's slots hold pages: no MOVE into them */
	/* [one_lo, one_hi) lay in one VMA at the last step that said so. */
	uint64_t one_lo, one_hi;
	/* The tenant's VMAs when last read (vma_ns), for run ends. */
	struct mig_vma *vmas;
	size_t nvmas;
	uint64_t vma_ns;
};

/*
 * MOVE steps refused (-EAGAIN, or halved at a VMA boundary) before the
 * pages left wait for the next pass: at most this many, and for at most
 * MOVE_AGAIN_NS. Each refusal costs an injected syscall (a ptrace round
 * trip, milliseconds on a loaded host), and a tenant that keeps changing
 * its mappings must not hold its writers that long.
 */
#define MOVE_AGAIN_MAX 2000
#define MOVE_AGAIN_NS  (1000ULL * 1000 * 1000)

/*
 * Classic window: after this many MOVE steps refused -EBUSY in a session,
 * every page still pending is zapped with madvise (zap_done).
 */
#define BUSY_MAX 4

/* One more refused MOVE step: may the session try again? */
static bool move_again(struct zap_ctx *z)
{
	uint64_t now = mig__now_ns();

	if (z->again++ == 0)
		z->again_t0 = now;
	return z->again < MOVE_AGAIN_MAX && now - z->again_t0 < MOVE_AGAIN_NS;
}

/*
 * Let held writers go the STAGE way (page DIRTY, un-protected, woken):
 * those mig__may_hold no longer allows, or all. Pages already zapped
 * are left alone (no write fault can wait on those); a page whose zap
 * is still pending leaves the zap set, as written. Call with the lock
 * held for writing; un-protects and wakes after unlocking it.
 */
static void release_held(struct mig__job *j, struct mig__win *w, bool all)
{
	_cleanup_free_ struct mig_range *rel = calloc(w->npages, sizeof(*rel));
	size_t nrel = 0;

	for (size_t i = 0; i < w->npages; i++) {
		if (!w->held_ns[i] ||
		    (!all && mig__may_hold(j, w->held_tid[i] > 0 ? w->held_tid[i] : 0)) ||
		    (mig__bit_test(w->zap, i) && !mig__bit_test(w->pend, i)))
			continue;
		uint64_t us, ul;

		mig__job_stall(j, w->held_ns[i]);
		w->held_ns[i] = 0;
		w->held_tid[i] = 0;
		mig__bit_clear(w->pend, i);
		mig__bit_clear(w->zap, i);
		/* Written: the page, or the THP block that is to move whole (hugemove.c). */
		mig__huge_written(j, w, i, &us, &ul);
		if (rel)
			rel[nrel++] = (struct mig_range){ us, us + ul };
	}
	pthread_rwlock_unlock(&j->lock);
	/* Un-protecting wakes the writer; its retried fault then succeeds. */
	for (size_t k = 0; k < nrel; k++) {
		(void)mig__wp_range(j, rel[k].start, rel[k].end - rel[k].start, false);
		(void)mig__uffd_wake(j->uffd, rel[k].start, rel[k].end - rel[k].start);
	}
}

/*
 * Zap protocol, step 1: the backend names the threads that will run the
 * zap. From now on their WP faults are not held, and the ones held
 * already are released the STAGE way (page DIRTY, un-protected, woken):
 * legal, since nothing is zapped yet and the zap set is not fixed. A
 * thread held in a fault taken from kernel mode, which ptrace cannot
 * stop, so finishes its access and can be stopped.
 */
static void zap_prepare(struct zap_ctx *z, const pid_t *tids, size_t n)
{
	struct mig__job *j = z->j;

	pthread_rwlock_wrlock(&j->lock);
	j->nexec = MIN(n, ARRAY_SIZE(j->exec_tids));
	memcpy(j->exec_tids, tids, j->nexec * sizeof(tids[0]));
	j->exec_preparing = true;
	release_held(j, z->w, false);
}

/* The tenant's threads are being stopped and some take long: let all go. */
static void zap_release(void *ud)
{
	struct zap_ctx *z = ud;

	pthread_rwlock_wrlock(&z->j->lock);
	release_held(z->j, z->w, true);
}

/*
 * Step 2: the executor is ready (ptrace: stopped, so it cannot fault).
 * Only now is the zap set fixed (COPIED, not DIRTY, not gone) and WP
 * faults on it held until the fill. The pages the executor's kernel
 * writes (excl) stay, -EBUSY, and lose their protection: a MOVE step
 * holds the job lock, and the executor must then never wait for the
 * fault thread.
 */
static void zap_ready(struct zap_ctx *z, const struct mig_range *excl, size_t nexcl)
{
	struct mig__job *j = z->j;
	struct mig__win *w = z->w;

	pthread_rwlock_wrlock(&j->lock);
	j->exec_preparing = false;
	if (z->back) {
		/* Moving back fixes no zap set: its pages are out already. */
		pthread_rwlock_unlock(&j->lock);
		return;
	}
	for (size_t i = 0; i < w->npages; i++) {
		bool busy = false;

		if (!mig__bit_test(w->sel, i))
			continue;
		for (size_t k = 0; k < nexcl && !busy; k++)
			busy = w->addr[i] >= excl[k].start && w->addr[i] < excl[k].end;
		if (busy) {
			/*
			 * The executor's kernel writes this page while it runs
			 * the zap: holding such a write would deadlock, letting
			 * it through would lose it. The page stays, -EBUSY.
			 */
			mig__bit_clear(w->sel, i);
			w->err[i] = EBUSY;
			continue;
		}
		if (mig__bit_test(w->copied, i) && !mig__bit_test(w->dirty, i) &&
		    !mig__bit_test(w->gone, i)) {
			mig__bit_set(w->zap, i);
			mig__bit_set(w->pend, i);
		}
	}
	mig__huge_whole_or_none(j, w);
	w->zap_fixed = true;
	pthread_rwlock_unlock(&j->lock);
	z->nexcl = MIN(nexcl, ARRAY_SIZE(z->excl));
	memcpy(z->excl, excl, z->nexcl * sizeof(excl[0]));
	if (j->move_zap)
		for (size_t k = 0; k < z->nexcl; k++)
			(void)mig__wp_range(j, excl[k].start, excl[k].end - excl[k].start, false);
}

static void zap_unlock(void *ud)
{
	struct zap_ctx *z = ud;

	if (z->locked) {
		z->locked = false;
		pthread_rwlock_unlock(&z->j->lock);
	}
}

/*
 * A run of pending pages from i: consecutive indices at consecutive
 * addresses, not across a PMD boundary (a THP leaves whole, rule 8).
 */
static size_t pending_run(const struct mig__win *w, size_t i, bool fallback)
{
	size_t k = i + 1;

	while (k < w->npages && k - i < 512 && w->addr[k] % MIG__PMD && mig__bit_test(w->pend, k) &&
	       !mig__bit_test(w->gone, k) && !mig__bit_test(w->dirty, k) &&
	       mig__bit_test(w->fallback, k) == fallback &&
	       w->addr[k] == w->addr[k - 1] + MIG__PAGE)
		k++;
	return k - i;
}

/*
 * Before a madvise step on pages [i, i + n): those no longer present (or
 * now the zero page) were dropped by the tenant after they were staged,
 * maybe with their REMOVE read before this window began: they are gone,
 * never zapped nor filled. With the tenant's threads stopped nothing can
 * change between this look and the madvise. Returns whether any was.
 */
static bool drop_absent(struct mig__job *j, struct mig__win *w, size_t i, size_t n)
{
	struct mig_pageinfo pi[512];
	bool any = false;

	if (n > ARRAY_SIZE(pi) || mig_query_pages(j->pid, w->addr[i], n, MIG_QUERY_PAGEMAP, pi) < 0)
		return false;
	for (size_t k = 0; k < n; k++)
		if (!(pi[k].flags & MIG_PAGE_PRESENT) || (pi[k].flags & MIG_PAGE_ZERO)) {
			MIG_TRACE("ABSENT i=%zu addr=%lx flags=%lx", i + k,
				  (unsigned long)w->addr[i + k], (unsigned long)pi[k].flags);
			mig__bit_set(w->gone, i + k);
			mig__bit_clear(w->pend, i + k);
			any = true;
		}
	return any;
}

/*
 * Is the run of n pages at i a THP block of the window, PMD-mapped at
 * its first scan? Its MOVE into the scratch area is then a PMD move
 * and leaves no page table there.
 */
static bool whole_thp_run(const struct mig__win *w, size_t i, size_t n)
{
	if (i % MIG__PMD_PAGES || n != MIG__PMD_PAGES || w->addr[i] % MIG__PMD)
		return false;
	for (size_t k = i; k < i + n; k++)
		if (!mig__bit_test(w->thp, k))
			return false;
	return true;
}

/*
 * Read the tenant's VMAs (/proc/PID/maps) for the MOVE run ends
 * (vma_cap), both windows. A tenant that mprotects single pages has a VMA every few
 * pages, and finding each boundary by halving a refused run (-EINVAL)
 * costs an injected step per halving. Read once a session, and again
 * after a refusal when the last read is older than VMAS_NS.
 */
#define VMAS_NS (20ULL * 1000 * 1000)

static void vmas_read(struct zap_ctx *z)
{
	const struct mig__win *w = z->w;
	uint64_t lo = UINT64_MAX, hi = 0;

	free(z->vmas);
	z->vmas = NULL;
	z->nvmas = 0;
	/*
	 * Only the VMAs under the pages still to go (the window's, unless
	 * the tenant moved some): a VMA not read leaves a run as long as
	 * before, refused and halved if it crosses an end.
	 */
	pthread_rwlock_rdlock(&z->j->lock);
	for (size_t i = 0; i < w->npages; i++)
		if (mig__bit_test(w->pend, i)) {
			lo = MIN(lo, w->addr[i]);
			hi = MAX(hi, w->addr[i] + MIG__PAGE);
		}
	pthread_rwlock_unlock(&z->j->lock);
	if (lo >= hi || mig__read_vmas_range(z->j->pid, lo, hi, &z->vmas, &z->nvmas) < 0) {
		z->vmas = NULL;
		z->nvmas = 0;
	}
	z->vma_ns = mig__now_ns();
}

/* A run of n pages from addr, ended at the end of its VMA as last read. */
static size_t vma_cap(const struct zap_ctx *z, uint64_t addr, size_t n)
{
	size_t lo = 0, hi = z->nvmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->vmas[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < z->nvmas && z->vmas[lo].start <= addr && n > (z->vmas[lo].end - addr) / MIG__PAGE)
		n = (z->vmas[lo].end - addr) / MIG__PAGE;
	return n ? n : 1;
}

/* registered_prefix: the kernel gave no answer (an event in progress). */
#define PROBE_AGAIN SIZE_MAX

static unsigned probe_flip; /* zap:probe-again */

/*
 * Move first: how many of the n pages from addr lie in VMAs registered
 * with the job's uffd now (rule 10). UFFDIO_MOVE checks only its
 * destination's registration, so it takes a page out of an unregistered
 * VMA too, whose fill then meets -ENOENT and whose faults never reach us.
 * The registered pieces (w->regs, in_regs) do not tell: UFFDIO_REGISTER
 * registers the VMAs a piece holds when it runs, and a VMA the tenant
 * puts later into a hole of the piece (mmap after munmap, mremap back
 * after mremap away) is not registered and raises no event. An
 * un-protect (UFFDIO_WRITEPROTECT, mode 0, no wake) of the run says
 * -ENOENT if a VMA in it has no uffd-wp registration and changes nothing
 * else on this path (move first protects nothing). It runs with the job
 * lock held for reading until the MOVE has run (rule 4): a VMA that was
 * registered can lose it only by a munmap or mremap, whose event stays
 * unread meanwhile and makes the MOVE -EAGAIN.
 *
 * -EAGAIN (mmap_changing raised) is no answer: PROBE_AGAIN, and no MOVE.
 * It used to count as registered, on the grounds that the MOVE would be
 * refused for the same unread event. But the flag stays raised after our
 * read until the thread that raised the event runs again (rule 5), and
 * on a loaded host that is milliseconds: the MOVE then ran with no event
 * unread and nothing checked, and took pages out of a VMA the tenant had
 * put unregistered into a hole of the piece (a run moved away and back
 * with 'x'). Their fill met -ENOENT (FILLNOENT), they could not be moved
 * back (-EINVAL), and the tenant read zeros there: the 6.12 guest's
 * move-first losses of sessions 17 and 18 (docs/engine.md).
 */
static size_t registered_prefix(struct mig__job *j, uint64_t addr, size_t n)
{
	size_t lo = 0, hi = n;
	int r = mig__uffd_writeprotect(j->uffd, addr, n * MIG__PAGE, false, true);

	/*
	 * zap:probe-again: the race a test cannot time, every other "not
	 * registered" answered -EAGAIN instead (migrate_unreg_hole).
	 */
	if (r != 0 && r != -EAGAIN && mig__fault_point("zap:probe-again") &&
	    __atomic_fetch_add(&probe_flip, 1, __ATOMIC_RELAXED) % 2 == 0)
		r = -EAGAIN;
	if (r == 0)
		return n;
	if (r == -EAGAIN)
		return PROBE_AGAIN;
	/* The first lo pages are registered, the first hi are not. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		r = mig__uffd_writeprotect(j->uffd, addr, mid * MIG__PAGE, false, true);
		if (r == -EAGAIN)
			return PROBE_AGAIN;
		if (r == 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Move first, the run of z->ncur pages from i about to be computed into a
 * MOVE step (the job lock held for reading): it ends where its registered
 * part ends (1). When page i itself is not registered, it leaves the pass
 * untouched (-EBUSY, as the scan leaves a page outside the pieces): 0.
 * When the kernel gives no answer (PROBE_AGAIN), as for a MOVE refused
 * -EAGAIN: the lock is let go for the events to be read and the threads
 * that raised them to run, and -1 says to look at page i again, unless
 * the session has tried long enough (move_again: z->give_up, the pages
 * wait for the next pass). After 0 or -1 the lock is held again, for
 * reading, so the pages are read anew.
 */
static int registered_run(struct zap_ctx *z, size_t i)
{
	struct mig__job *j = z->j;
	struct mig__win *w = z->w;
	size_t n = registered_prefix(j, w->addr[i], z->ncur);

	if (n == PROBE_AGAIN) {
		bool more = move_again(z);

		MIG_TRACE("PROBEAGAIN i=%zu addr=%lx n=%zu: an event in progress%s", i,
			  (unsigned long)w->addr[i], z->ncur, more ? "" : ", give up");
		zap_unlock(z);
		if (more)
			usleep(20); /* let the fault thread read it, and its thread run */
		else
			z->give_up = true;
		pthread_rwlock_rdlock(&j->lock);
		z->locked = true;
		return -1;
	}
	if (n > 0) {
		z->ncur = n;
		return 1;
	}
	zap_unlock(z);
	pthread_rwlock_wrlock(&j->lock);
	/* An event applied meanwhile changes nothing here: the page stays. */
	MIG_TRACE("UNREG i=%zu addr=%lx: not registered, stays", i, (unsigned long)w->addr[i]);
	mig__bit_clear(w->pend, i);
	mig__bit_clear(w->zap, i);
	if (!w->err[i])
		w->err[i] = EBUSY;
	pthread_rwlock_unlock(&j->lock);
	pthread_rwlock_rdlock(&j->lock);
	z->locked = true;
	return 0;
}

/*
 * The next zap step, from the current addresses. MOVE steps come first,
 * with the job lock held for reading until the step has run: the fault
 * thread cannot apply a tenant event meanwhile, so the addresses are
 * right when the MOVE runs, and an event the tenant made after they
 * were read is still unread then, which makes the kernel refuse the
 * MOVE (-EAGAIN: mmap_changing). madvise steps (no UFFDIO_MOVE, or pages
 * MOVE refused) run without the lock: their REMOVE events must be read.
 * Last, the scratch area's old pages are dropped.
 */
static int zap_next(struct zap_ctx *z, struct mig__zap_step *st)
{
	struct mig__job *j = z->j;
	struct mig__win *w = z->w;

	bool first = !z->started;

	z->started = true;
	if (first && j->move_zap && j->scratch_dirty && !z->back)
		z->stale = true; /* no MOVE into the slots until they are emptied */
	if (z->stale && first && !j->scratch_keep) {
		/*
		 * A move-first window left its pages in the scratch area until
		 * they were filled (all of them are back by now): empty it
		 * before this session moves pages into the same slots.
		 */
		z->ncur = 0;
		*st = (struct mig__zap_step){
			.op = MIG__ZAP_MADVISE,
			.start = j->scratch_dst,
			.len = j->scratch_dst_len + j->hscratch_len,
		};
		return 1;
	}
	if (z->back) {
		/* Move first: page by page back from its slot to its address. */
		pthread_rwlock_rdlock(&j->lock);
		z->locked = true;
		for (size_t i = 0; i < w->npages; i++) {
			if (!mig__bit_test(w->zap, i) || mig__bit_test(w->pend, i) ||
			    mig__bit_test(w->filled, i) || mig__bit_test(w->gone, i) ||
			    mig__bit_test(w->fallback, i))
				continue;
			z->cur = i;
			z->ncur = 1;
			*st = (struct mig__zap_step){
				.op = MIG__ZAP_MOVE,
				.start = j->scratch_dst + i * MIG__PAGE,
				.len = MIG__PAGE,
				.dst = w->addr[i],
				.mode = 0,
				.arg_page = j->arg_page,
			};
			w->inflight_i = i;
			w->inflight_n = 1;
			return 1;
		}
		zap_unlock(z);
		return 0;
	}
	if (z->place) {
		/* Rule 8: the block the last step took out, placed whole if it still may be. */
		size_t i = z->place - 1;
		uint64_t src;

		z->place = 0;
		pthread_rwlock_rdlock(&j->lock);
		z->locked = true;
		if (mig__huge_placeable(j, w, i, &src)) {
			z->placing = true;
			z->cur = i;
			z->ncur = MIG__PMD_PAGES;
			*st = (struct mig__zap_step){
				.op = MIG__ZAP_MOVE,
				.start = src,
				.len = MIG__PMD,
				.dst = w->addr[i],
				.mode = UFFDIO_MOVE_MODE_DONTWAKE,
				.arg_page = j->arg_page,
			};
			return 1; /* still the step in flight (w->inflight_*) */
		}
		/* Only this thread writes it; the fault thread reads it locked. */
		w->inflight_n = 0;
		zap_unlock(z);
	}
	if (j->move_zap && !z->give_up && !z->stale) {
		if (!z->vma_ns)
			vmas_read(z);
		pthread_rwlock_rdlock(&j->lock);
		z->locked = true;
		for (size_t i = 0; i < w->npages; i++) {
			int rr;

		look_again:
			/* Moved by the tenant meanwhile (dirty): left for the next pass. */
			if (!mig__bit_test(w->pend, i) || mig__bit_test(w->fallback, i) ||
			    mig__bit_test(w->dirty, i))
				continue;
			if (mig__bit_test(w->gone, i)) {
				mig__bit_clear(w->pend, i); /* the tenant dropped it: stays out */
				continue;
			}
			z->cur = i;
			z->ncur = pending_run(w, i, false);
			/*
			 * A run that began inside a range the kernel took as one
			 * VMA ends with it, and every run ends at its VMA's end as
			 * last read, rather than be refused (-EINVAL) and halved
			 * again for every run after it (a tenant that forks makes
			 * MOVE refuse its pages one by one, -EBUSY, and each new
			 * run would cross the same boundary). Stale, either only
			 * makes a run shorter.
			 */
			if (w->addr[i] >= z->one_lo && w->addr[i] < z->one_hi &&
			    z->ncur > (z->one_hi - w->addr[i]) / MIG__PAGE)
				z->ncur = (z->one_hi - w->addr[i]) / MIG__PAGE;
			z->ncur = vma_cap(z, w->addr[i], z->ncur);
			if (z->limit && z->ncur > z->limit)
				z->ncur = z->limit;
			z->limit = 0;
			rr = w->movefirst ? registered_run(z, i) : 1;
			if (rr < 0 && z->give_up)
				break; /* the pages left wait for the next pass (rule 7) */
			if (rr < 0)
				goto look_again;
			if (rr == 0)
				continue;
			if (!whole_thp_run(w, i, z->ncur))
				__atomic_store_n(&j->scratch_ptes, true, __ATOMIC_RELAXED);
			/*
			 * No holes allowed: every page of the run was present when
			 * scanned, so a hole is a page the tenant dropped (maybe
			 * with its REMOVE read before this window): -ENOENT there.
			 */
			*st = (struct mig__zap_step){
				.op = MIG__ZAP_MOVE,
				.start = w->addr[i],
				.len = z->ncur * MIG__PAGE,
				.dst = j->scratch_dst + i * MIG__PAGE,
				.mode = UFFDIO_MOVE_MODE_DONTWAKE,
				.arg_page = j->arg_page,
			};
			w->inflight_i = i;
			w->inflight_n = z->ncur;
			return 1;
		}
		zap_unlock(z);
	}
	/*
	 * Move first never zaps with madvise (no page is staged before it
	 * is taken out) and keeps its pages in the scratch area until they
	 * are filled: what MOVE refused waits for the next pass.
	 */
	if (w->movefirst)
		return 0;
	pthread_rwlock_wrlock(&j->lock);
	for (size_t i = 0; i < w->npages; i++) {
		/* With the MOVE zap only the pages MOVE refused for themselves. */
		if (!mig__bit_test(w->pend, i) || mig__bit_test(w->dirty, i) ||
		    (j->move_zap && !mig__bit_test(w->fallback, i)))
			continue;
		if (mig__bit_test(w->gone, i)) {
			mig__bit_clear(w->pend, i);
			continue;
		}
		if (!z->stop_asked) {
			/*
			 * First stop the tenant's other threads (MIG__ZAP_STOP),
			 * and hold none of their faults from now on: a held
			 * thread could not stop. The runs are computed after.
			 */
			z->stop_asked = true;
			j->exec_all = true;
			pthread_rwlock_unlock(&j->lock);
			z->ncur = 0;
			*st = (struct mig__zap_step){ .op = MIG__ZAP_STOP };
			return 1;
		}
		z->cur = i;
		z->ncur = pending_run(w, i, mig__bit_test(w->fallback, i));
		if (drop_absent(j, w, i, z->ncur)) {
			i--; /* the run's pages changed: compute it again */
			continue;
		}
		w->zap_run = (struct mig_range){ w->addr[i], w->addr[i] + z->ncur * MIG__PAGE };
		w->zap_run_i = i;
		w->zapping = true;
		pthread_rwlock_unlock(&j->lock);
		*st = (struct mig__zap_step){
			.op = MIG__ZAP_MADVISE,
			.start = w->zap_run.start,
			.len = z->ncur * MIG__PAGE,
		};
		return 1;
	}
	pthread_rwlock_unlock(&j->lock);
	if (z->scratch_used && !z->scratch_freed) {
		z->scratch_freed = true;
		z->ncur = 0;
		/* The huge staging slots follow: what was not placed goes too. */
		*st = (struct mig__zap_step){
			.op = MIG__ZAP_MADVISE,
			.start = j->scratch_dst,
			.len = j->scratch_dst_len + j->hscratch_len,
		};
		return 1;
	}
	return 0;
}

/*
 * Which pages of a MOVE step did the kernel really take out? Its count
 * can be short: Linux 6.18's batched MOVE (move_pages_ptes) leaves a
 * stale -EAGAIN in move_pages()'s loop after a batch that did move, so
 * the loop goes round again at the same address without counting the
 * batch, finds its own page at the destination and ends with -EEXIST,
 * "nothing moved" (found with stress_chaos and the debug trace: seven
 * heap pages gone from the tenant after a step that said -EEXIST,
 * then zero-filled). The scratch slots tell: slot i gets page i and
 * nothing else, so a slot that holds a page is a page taken out. Sets
 * bit k of *out for each page i + k (k < n) whose slot is present.
 * Returns how many, or -errno when the slots cannot be read.
 */
static int moved_by_slot(struct mig__job *j, const struct mig__zap_step *st, size_t from, size_t n,
			 uint64_t *out)
{
	struct mig_pageinfo pi[512];
	int r, count = 0;

	if (n > ARRAY_SIZE(pi) || from >= n)
		return 0;
	r = mig_query_pages(j->pid, st->dst + from * MIG__PAGE, n - from, MIG_QUERY_PAGEMAP, pi);
	if (r < 0)
		return r;
	for (size_t k = from; k < n; k++)
		if (pi[k - from].flags & (MIG_PAGE_PRESENT | MIG_PAGE_SWAPPED)) {
			mig__bit_set(out, k);
			count++;
		}
	return count;
}

/*
 * A MOVE step said -ENOENT at page k: is it a hole the tenant made (its
 * page dropped)? Only when no tenant event is unread and the page is
 * absent at its address now; asked with the job lock held for writing,
 * so the events read so far are applied and no other is read meanwhile.
 */
static bool hole_now(struct mig__job *j, const struct mig__win *w, size_t k)
{
	struct mig_pageinfo pi;

	if (mig__bit_test(w->gone, k))
		return true;
	if (mig__uffd_events_pending(j->uffd))
		return false;
	if (mig_query_pages(j->pid, w->addr[k], 1, MIG_QUERY_PAGEMAP, &pi) < 0)
		return true;
	return !(pi.flags & (MIG_PAGE_PRESENT | MIG_PAGE_SWAPPED));
}

static void zap_done(struct zap_ctx *z, const struct mig__zap_step *st, int64_t ret, uint64_t moved)
{
	struct mig__job *j = z->j;
	struct mig__win *w = z->w;
	size_t i = z->cur, n = z->ncur, m;
	uint64_t slots[512 / 64] = { 0 };
	int found = 0;
	bool again = false;

	zap_unlock(z);
	/* A MOVE step that says it stopped short: look at the slots (moved_by_slot). */
	if (st->op == MIG__ZAP_MOVE && !z->placing && moved / MIG__PAGE < n)
		found = moved_by_slot(j, st, moved / MIG__PAGE, n, slots);
	/* Between two steps: the executor is stopped inside its session. */
	mig__crash_point("window:step");
	if (st->op == MIG__ZAP_MADVISE && n == 0) {
		/* The scratch area. */
		if (ret == 0) {
			j->scratch_dirty = false;
			j->scratch_held = 0;
			memset(j->hslots, 0, sizeof(j->hslots));
			z->stale = false;
			return;
		}
		/*
		 * Not emptied: its slots still hold pages, and a MOVE into one
		 * would fail -EEXIST while moved_by_slot took the old page
		 * there for the one just taken out. Until it is emptied
		 * (again now after a signal, else at the next session) no
		 * MOVE runs; the pages of this session stay where they are,
		 * with the drop's error (-EPERM: the tenant's seccomp filter
		 * does not allow madvise, seccomp.c).
		 */
		j->scratch_dirty = true;
		if (ret == -EINTR) {
			if (z->stale && move_again(z))
				z->started = false;
			return;
		}
		pthread_rwlock_wrlock(&j->lock);
		for (size_t k = 0; k < w->npages; k++)
			if (mig__bit_test(w->pend, k) && !w->err[k])
				w->err[k] = (int)-ret;
		pthread_rwlock_unlock(&j->lock);
		return;
	}
	pthread_rwlock_wrlock(&j->lock);
	w->inflight_n = 0;
	if (z->back) {
		if (moved == MIG__PAGE) {
			mig__bit_set(w->filled, i);
			if (w->held_ns[i]) {
				mig__job_stall(j, w->held_ns[i]);
				w->held_ns[i] = 0;
			}
		} else if ((ret == -EAGAIN || ret == -EINTR ||
			    (ret == -ENOENT && mig__uffd_events_pending(j->uffd))) &&
			   move_again(z)) {
			/* -ENOENT with an event unread: as -EAGAIN (6.9+, hole_now). */
			again = true;
		} else {
			MIG_TRACE("BACKFAIL i=%zu addr=%lx ret=%ld", i, (unsigned long)w->addr[i],
				  (long)ret);
			mig__bit_set(w->fallback, i); /* not again in this session */
		}
	} else if (z->placing) {
		z->placing = false;
		if ((ret == -EAGAIN || ret == -EINTR) && moved == 0 && move_again(z)) {
			/* A tenant event is unread, or a signal came first: again. */
			z->place = i + 1;
			w->inflight_i = i;
			w->inflight_n = n;
			again = true;
		} else {
			mig__huge_placed(j, w, i, ret, moved);
		}
	} else if (st->op == MIG__ZAP_MADVISE) {
		w->zapping = false;
		if (ret == -EINTR && move_again(z)) {
			/*
			 * A signal came first: the step did not run (the backend
			 * says so only then), its pages are where they were and
			 * stay pending: the same run again. Under churn (a tenant
			 * whose children exit: SIGCHLD) about one madvise step in
			 * ten met one, and its pages waited for the next pass.
			 */
			again = true;
		} else {
			/* A failed madvise leaves its pages: their fill finds them there. */
			for (size_t k = i; k < i + n; k++)
				mig__bit_clear(w->pend, k);
		}
	} else {
		m = MIN(n, moved / MIG__PAGE);
		for (size_t k = i; k < i + m; k++)
			mig__bit_clear(w->pend, k);
		/* Only one VMA passes the kernel's range checks, which come before these. */
		if (st->op == MIG__ZAP_MOVE &&
		    (m > 0 || ret == -EBUSY || ret == -ENOENT || ret == -EEXIST)) {
			z->one_lo = st->start;
			z->one_hi = st->start + st->len;
		}
		if (found > 0) {
			/*
			 * Taken out although not counted: taken out. Continue
			 * after the first page whose slot is empty, and ask the
			 * kernel again from there (its answer for this step is
			 * not to be trusted).
			 */
			MIG_TRACE("UNCOUNTED i=%zu n=%zu counted=%zu in-slots=%d ret=%ld", i, n, m,
				  found, (long)ret);
			j->move_uncounted += (uint64_t)found;
			for (size_t k = m; k < n; k++)
				if (mig__bit_test(slots, k))
					mig__bit_clear(w->pend, i + k);
			while (m < n && mig__bit_test(slots, m))
				m++;
			if (m < n)
				ret = -EAGAIN;
		} else if (found < 0 && ret != -EAGAIN && ret != -EINTR && m < n) {
			/*
			 * The slots cannot be read: what the step did is not
			 * known. Its pages must not be taken for holes or for
			 * refused ones (a madvise step would zap what stayed,
			 * a hole would never be filled): the session ends,
			 * and the fill finds whatever went out.
			 */
			for (size_t k = i + m; k < i + n; k++)
				mig__bit_clear(w->pend, k);
			z->give_up = true;
			n = m;
		}
		if (m) {
			z->scratch_used = true;
			if (w->movefirst) {
				j->scratch_dirty = true;
				j->scratch_held += m * MIG__PAGE;
			}
		}
		if (m == n && n == MIG__PMD_PAGES && i % MIG__PMD_PAGES == 0 &&
		    st->start % MIG__PMD == 0 && st->dst % MIG__PMD == 0 &&
		    mig__bit_test(w->hready, i / MIG__PMD_PAGES)) {
			/* A whole THP left: place its new one next, still in flight (rule 8). */
			z->place = i + 1;
			w->inflight_i = i;
			w->inflight_n = n;
		}
		if (m < n && (ret == -EAGAIN || ret == -EINTR || ret >= 0)) {
			/*
			 * A tenant event is unread (or a signal came first), or
			 * the kernel stopped part way (it then says why only when
			 * asked again from the page it stopped at): again.
			 */
			again = move_again(z);
			/*
			 * The tenant keeps changing its mappings: the pages left
			 * stay for the next pass (a madvise now could hit what a
			 * tenant mremap put at their addresses).
			 */
			z->give_up = !again;
		} else if (m < n && ret == -EINVAL && n - m > 1) {
			/* The VMAs changed; read them again, not too often. */
			if (mig__now_ns() - z->vma_ns > VMAS_NS)
				z->vma_ns = 0;
			/*
			 * The run crosses a VMA boundary (UFFDIO_MOVE moves within
			 * one VMA): halve it until the boundary is found.
			 */
			z->limit = (n - m) / 2;
			again = move_again(z);
			z->give_up = !again;
		} else if (m < n && ret == -ENOENT && !hole_now(j, w, i + m)) {
			/*
			 * Not a hole: since Linux 6.9 UFFDIO_MOVE looks its VMAs
			 * up before it checks mmap_changing, so a tenant mremap
			 * or munmap whose event was unread makes it -ENOENT, not
			 * -EAGAIN. Computed again from the addresses the event
			 * gives (rule 5).
			 */
			MIG_TRACE("NOENTMOVE i=%zu addr=%lx: not a hole: again", i + m,
				  (unsigned long)w->addr[i + m]);
			again = move_again(z);
			z->give_up = !again;
		} else if (m < n && ret == -ENOENT) {
			/* A hole: the tenant dropped this page (see zap_next). */
			mig__bit_set(w->gone, i + m);
			mig__bit_clear(w->pend, i + m);
			again = true;
		} else if (m < n && ret == -EBUSY && !w->movefirst) {
			/*
			 * Shared with another mm (fork, KSM) or pinned. After a
			 * fork MOVE refuses every page not written since (the
			 * kernel sets AnonExclusive again only on a write), and
			 * a zap set is pages not written since they were staged:
			 * under fork churn nearly all of them, one injected step
			 * a page (issue 16). So the rest of the run goes to the
			 * madvise steps with this page, and after BUSY_MAX such
			 * refusals every page still pending: the madvise steps
			 * run anyway for this one, one a run.
			 */
			size_t end = ++z->busy >= BUSY_MAX ? w->npages : i + n;

			for (size_t k = i + m; k < end; k++)
				if (mig__bit_test(w->pend, k))
					mig__bit_set(w->fallback, k);
		} else if (m < n && ret == -EBUSY) {
			/*
			 * Shared with another mm (fork, KSM) or pinned: this
			 * page only. Move first: the window's next passes run
			 * classic, whose madvise steps take such pages.
			 */
			mig__bit_set(w->fallback, i + m);
			w->mf_busy++;
		} else if (m < n && ret == -EPERM) {
			/*
			 * Not run: the tenant's seccomp filter does not allow it
			 * (seccomp.c). The pages stay where they are, -EPERM, and
			 * no more MOVE steps are tried in this session.
			 */
			for (size_t k = i + m; k < i + n; k++)
				if (!w->err[k])
					w->err[k] = EPERM;
			z->give_up = true;
		} else if (m < n) {
			/* Refused for the VMA (mlocked, other protection...): madvise the rest. */
			for (size_t k = i + m; k < i + n; k++)
				mig__bit_set(w->fallback, k);
		}
	}
	pthread_rwlock_unlock(&j->lock);
	mig__faults_kick(j); /* a fault on the step's pages waited for its outcome */
	if (again)
		usleep(20); /* let the fault thread read the event */
}

/*
 * MIG__ZAP_STOP: stop every thread but the executors (keep) until the
 * session ends, through the backend (ptrace: stopset.c; agent: in the
 * tenant, by its own signal handler). Where that fails (a thread traced by
 * a debugger) the threads stopped so far go again at once (they may wait
 * for held faults) and the madvise steps run anyway: the result counts
 * them (zaps_unstopped).
 */
static int zap_stop(struct zap_ctx *z, const pid_t *keep, size_t nkeep, struct mig__stopset *others)
{
	struct mig_tenant *t = z->j->t;
	int r = others->n ? 0 : t->ops->stop_others(t, keep, nkeep, zap_release, z, others);

	if (r < 0) {
		zap_release(z);
		(void)t->ops->resume_others(t, others);
		__atomic_fetch_add(&z->j->unstopped_zaps, 1, __ATOMIC_RELAXED);
	}
	return r;
}

/*
 * The driver, one for both backends: name the executors (step 1), get
 * them ready (2), fix the zap set (3), run the steps (4), end. The job
 * lock a MOVE step takes in zap_next is dropped in zap_unlock, here or
 * by the backend's step through the same function before it can let the
 * executor fault (struct mig__tenant_ops, zap_step).
 */
static int zap_session(struct zap_ctx *z)
{
	struct mig__job *j = z->j;
	struct mig_tenant *t = j->t;
	struct mig_range excl[MIG__ZAP_MAX_EXCL];
	struct mig__stopset others = { 0 };
	struct mig__zap_step st;
	pid_t tids[8];
	void *x = NULL;
	int r, nt, ne, rr, re;

	pthread_mutex_lock(&t->op_lock);
	nt = t->ops->zap_threads(t, tids, ARRAY_SIZE(tids));
	if (nt < 0) {
		r = nt;
		goto out;
	}
	zap_prepare(z, tids, (size_t)nt);
	ne = t->ops->zap_begin(t, tids, (size_t)nt, &x, excl);
	if (ne < 0) {
		r = ne;
		goto out;
	}
	zap_ready(z, excl, (size_t)ne);
	while ((r = zap_next(z, &st)) > 0) {
		int64_t val = 0;
		uint64_t moved = 0;

		if (st.op == MIG__ZAP_STOP) {
			MIG_TRACE("ZAPSTOP");
			r = zap_stop(z, tids, (size_t)nt, &others);
			MIG_TRACE("ZAPSTOPPED r=%d n=%zu", r, others.n);
			if (r == -ESRCH)
				break;
			continue;
		}
		MIG_TRACE("ZAP op=%d %lx+%lx cur=%zu n=%zu", (int)st.op, (unsigned long)st.start,
			  (unsigned long)st.len, z->cur, z->ncur);
		r = t->ops->zap_step(t, x, &st, zap_unlock, z, &val, &moved);
		if (r == 0 && st.op == MIG__ZAP_MOVE && !z->placing && val == 0 &&
		    moved == st.len && mig__fault_point("zap:uncounted")) {
			/* The answer Linux 6.18 can give for a step that moved (moved_by_slot). */
			val = -EEXIST;
			moved = 0;
		}
		MIG_TRACE("ZAPPED op=%d %lx r=%d val=%ld moved=%lu", (int)st.op,
			  (unsigned long)st.start, r, (long)val, (unsigned long)moved);
		zap_unlock(z);
		zap_done(z, &st, r < 0 ? r : val, moved);
		if (r < 0 && r != -EINTR)
			break;
	}
	zap_unlock(z);
	rr = t->ops->resume_others(t, &others);
	re = t->ops->zap_end(t, x);
	/*
	 * zap:esrch: the session ends as if the agent's connection closed at
	 * RESUME, with the tenant alive and its pages taken out
	 * (migrate_esrch_live: the window must fill them all the same).
	 */
	if ((rr < 0 || re < 0 || mig__fault_point("zap:esrch")) && r == 0) {
		MIG_TRACE("ZAPEND resume=%d end=%d: -ESRCH", rr, re);
		r = -ESRCH;
	}
out:
	pthread_mutex_unlock(&t->op_lock);
	return r;
}

int mig__window_zap(struct mig__job *j, struct mig__win *w)
{
	struct zap_ctx z = { .j = j, .w = w };
	_cleanup_free_ struct mig_range *runs = NULL;
	bool any_copied = false;
	size_t n;
	int r;

	for (size_t i = 0; i < w->npages && !any_copied; i++)
		any_copied = mig__bit_test(w->sel, i) && mig__bit_test(w->copied, i);
	if (!any_copied) {
		/* Nothing can be zapped: no need to stop the tenant. */
		pthread_rwlock_wrlock(&j->lock);
		w->zap_fixed = true;
		pthread_rwlock_unlock(&j->lock);
		return 0;
	}
	runs = calloc(w->npages, sizeof(*runs));
	if (!runs)
		return -ENOMEM;

	r = zap_session(&z);
	free(z.vmas);

	/*
	 * Pages still pending were not taken out (the executor failed, or
	 * never got ready): they leave the zap set as written pages, so the
	 * fill leaves them and the next pass tries again. Writers held on
	 * the zap set can go now: their retried fault finds a hole and is
	 * served from staging at once, ahead of the batch, or finds the page.
	 */
	pthread_rwlock_wrlock(&j->lock);
	j->exec_preparing = false;
	j->exec_all = false;
	w->zapping = false;
	w->inflight_n = 0; /* a block whose placing the session did not get to */
	for (size_t i = 0; i < w->npages; i++)
		if (mig__bit_test(w->pend, i)) {
			mig__bit_clear(w->pend, i);
			mig__bit_clear(w->zap, i);
			mig__bit_set(w->dirty, i);
		}
	mig__bitmap_zero(w->fallback, w->npages);
	n = mig__runs_of(w, w->zap, runs, w->npages);
	for (size_t k = 0; k < n; k++)
		(void)mig__uffd_wake(j->uffd, runs[k].start, runs[k].end - runs[k].start);
	pthread_rwlock_unlock(&j->lock);
	mig__faults_kick(j);
	return r;
}

int mig__window_move_back(struct mig__job *j, struct mig__win *w)
{
	struct zap_ctx z = { .j = j, .w = w, .back = true };
	int r = zap_session(&z);

	pthread_rwlock_wrlock(&j->lock);
	j->exec_preparing = false;
	j->exec_all = false;
	w->inflight_n = 0;
	mig__bitmap_zero(w->fallback, w->npages);
	pthread_rwlock_unlock(&j->lock);
	mig__faults_kick(j);
	return r;
}

/*
 * A fill starved by the tenant's events (window.c, fill) finishes with the
 * tenant's threads stopped, as the madvise steps run (rule 6): a thread
 * stops only once its own mapping change is complete and its event read,
 * so no event stays pending and none is raised until they go again. A
 * thread held in a kernel-mode fault cannot stop: zap_release lets held
 * writers go the STAGE way after a while (no zap-set page is pending
 * during a fill, so it touches none of those).
 */
int mig__window_stopped(struct mig__job *j, struct mig__win *w, int (*fn)(void *arg), void *arg,
			int *ret_stop)
{
	struct zap_ctx z = { .j = j, .w = w };
	struct mig__stopset set = { 0 };
	struct mig_tenant *t = j->t;
	pid_t keep[8];
	int nk = 0, r, q, rr;

	pthread_mutex_lock(&t->op_lock);
	/* An agent's helpers answer the stop and resume requests: they go on. */
	if (t->method == MIG_ATTACH_AGENT)
		nk = t->ops->zap_threads(t, keep, ARRAY_SIZE(keep));
	q = t->ops->stop_others(t, keep, nk > 0 ? (size_t)nk : 0, zap_release, &z, &set);
	if (q < 0)
		(void)t->ops->resume_others(t, &set); /* as zap_stop: at once */
	*ret_stop = q;
	r = fn(arg);
	rr = q < 0 ? 0 : t->ops->resume_others(t, &set);
	pthread_mutex_unlock(&t->op_lock);
	if (q == -ESRCH || (rr < 0 && r >= 0))
		r = -ESRCH;
	return r;
}

/* ---------------------------------------------------------------------
 * mig_tenant_zap: fixed runs, no job (attach tests, tools).
 * ------------------------------------------------------------------- */

static bool runs_valid(const struct mig_range *runs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (runs[i].end <= runs[i].start || (runs[i].start | runs[i].end) & 4095)
			return false;
	return true;
}

int mig_tenant_zap(mig_tenant *t, const struct mig_range *runs, size_t n)
{
	struct mig_range excl[MIG__ZAP_MAX_EXCL];
	pid_t tids[8];
	void *x = NULL;
	int r, nt, first = 0;

	if (!t || (n && !runs) || !runs_valid(runs, n))
		return -EINVAL;
	if (n == 0)
		return 0;
	pthread_mutex_lock(&t->op_lock);
	nt = t->ops->zap_threads(t, tids, ARRAY_SIZE(tids));
	r = nt < 0 ? nt : t->ops->zap_begin(t, tids, (size_t)nt, &x, excl);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct mig__zap_step st = { .op = MIG__ZAP_MADVISE,
					    .start = runs[i].start,
					    .len = runs[i].end - runs[i].start };
		int64_t val = 0;
		uint64_t moved;

		r = t->ops->zap_step(t, x, &st, NULL, NULL, &val, &moved);
		if (r == -EINTR) {
			i--; /* a signal came first: the step did not run */
			continue;
		}
		if (r < 0)
			break;
		if (val < 0 && first == 0)
			first = (int)val;
	}
	if (t->ops->zap_end(t, x) < 0 && r == 0)
		r = -ESRCH;
out:
	pthread_mutex_unlock(&t->op_lock);
	return r < 0 ? r : first;
}
