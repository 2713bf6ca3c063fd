/*
 * faults.c - the fault thread of a migration job.
 *
 * One thread per job waits with epoll on the tenant's userfaultfd, on the
 * tenant's pidfd (exit) and on a stop eventfd. It is the only reader of
 * the uffd: the engine injects zaps into the tenant, and such a madvise
 * on a range registered with EVENT_REMOVE blocks until the event is read,
 * so nothing the engine waits for may ever wait for the engine.
 *
 * One switch dispatches every message:
 *  - MISSING on a page the window zapped: filled at once from staging,
 *    ahead of the batch. -EEXIST means it is there already: just wake.
 *    MISSING anywhere else is a page that had never been touched (or that
 *    the tenant itself dropped): it gets the zero page, as without us.
 *  - WP: while the zap set is fixed, a write to a page of it waits for
 *    the fill (the COPY wakes it); in a holding pass a write to any page
 *    of the pass waits. Otherwise the page loses its COPIED marker
 *    (DIRTY), is un-protected and the writer goes on at once.
 *  - REMOVE by the tenant (its own DONTNEED): the pages must read zero
 *    afterwards, so they are never refilled. Our own zap produces REMOVE
 *    events too; those are recognised by their range lying inside a run
 *    that is being zapped right now.
 *  - UNMAP: the pages are gone. REMAP: the pages have new addresses.
 *  - FORK: the child's uffd arrives as a new fd. The child inherited our
 *    registration, our write protection and our holes. Its holes are
 *    filled from the same staged content, its protection cleared and its
 *    registration dropped before its uffd is closed.
 *  - pidfd readable: the tenant exited; the engine aborts the job.
 *
 * The job lock is taken for writing around each read and the handling of
 * what was read; fill workers hold it for reading around each COPY. A
 * tenant REMOVE can therefore never slip between a worker's "not removed"
 * check and its COPY: the tenant only zaps after we read the event.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bitmap.h"
#include "crashpoint.h"
#include "engine.h"
#include "procfs.h"
#include "uffd.h"
#include "trace.h"

#define KEY_STOP  0
#define KEY_PIDFD 1
#define KEY_UFFD  2
#define KEY_KICK  3

struct pending {
	int fd;
	uint64_t addr;
	uint64_t flags;
	uint64_t t0;
	pid_t tid;
};

#define MAX_PENDING 1024
/* How long the uffd must stay quiet before a stopping fault thread exits. */
#define QUIET_MS 50

struct fstate {
	struct mig__job *j;
	struct pending pend[MAX_PENDING];
	size_t npend;
};

void mig__faults_kick(struct mig__job *j)
{
	uint64_t one = 1;

	if (j->kickfd >= 0 && __atomic_load_n(&j->faults_waiting, __ATOMIC_ACQUIRE))
		(void)!write(j->kickfd, &one, sizeof(one));
}

void mig__faults_priority(struct mig__job *j, bool rt)
{
	pid_t tid = __atomic_load_n(&j->fault_tid, __ATOMIC_ACQUIRE);
	struct sched_param sp = { 0 };

	rt = rt && j->opts.fault_rt && j->fault_rt >= 0;
	if (rt == j->fault_rt_now || tid <= 0)
		return;
	sp.sched_priority = rt ? 1 : 0;
	if (sched_setscheduler(tid, rt ? SCHED_FIFO | SCHED_RESET_ON_FORK : SCHED_OTHER, &sp) < 0) {
		MIG_TRACE("FAULTRT rt=%d: %d", (int)rt, -errno);
		if (rt)
			j->fault_rt = -errno;
		return;
	}
	j->fault_rt_now = rt;
	if (rt)
		j->fault_rt = 1;
}

void mig__job_stall(struct mig__job *j, uint64_t since_ns)
{
	uint64_t d = mig__now_ns() - since_ns, cur;

	cur = __atomic_load_n(&j->max_stall_ns, __ATOMIC_RELAXED);
	while (d > cur && !__atomic_compare_exchange_n(&j->max_stall_ns, &cur, d, false,
						       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

ssize_t mig__window_find(const struct mig__win *w, uint64_t addr)
{
	ssize_t dead = -1;
	uint64_t off;

	/*
	 * Two pages can share an address: a page the tenant unmapped (gone)
	 * and a page it then mremapped there. Only the live one is there;
	 * the gone one is returned only when no live page has the address.
	 */
	if (addr >= w->start) {
		off = (addr - w->start) / MIG__PAGE;
		if (off < w->npages && w->addr[off] == addr && !mig__bit_test(w->gone, off))
			return (ssize_t)off;
	}
	for (size_t i = 0; i < w->npages; i++)
		if (w->addr[i] == addr) {
			if (!mig__bit_test(w->gone, i))
				return (ssize_t)i;
			if (dead < 0)
				dead = (ssize_t)i;
		}
	return dead;
}

int mig__fill_page_locked(struct mig__job *j, struct mig__win *w, int uffd, size_t i,
			  const struct mig_nodes *restore)
{
	uint64_t addr = w->addr[i];
	int r;

	r = mig__uffd_copy(uffd, addr, w->staging + i * MIG__PAGE, MIG__PAGE, 0, NULL);
	if (r == -ENOMEM) {
		/*
		 * The target is full. The page is zapped and its content is
		 * only in staging: put it back wherever the kernel can.
		 */
		(void)mig__prefer_thread(-1);
		r = mig__uffd_copy(uffd, addr, w->staging + i * MIG__PAGE, MIG__PAGE, 0, NULL);
		(void)mig__bind_thread(restore);
		if (uffd == j->uffd)
			w->err[i] = ENOMEM;
		if (r >= 0)
			r = 0;
	}
	if (r == -EEXIST) {
		(void)mig__uffd_wake(uffd, addr, MIG__PAGE);
		r = 1;
	}
	/*
	 * No registered VMA at addr. Since Linux 6.9 UFFDIO_COPY looks the
	 * VMA up before it checks mmap_changing: a tenant munmap or mremap
	 * whose event we have not read yet makes it -ENOENT, not -EAGAIN
	 * (6.1 checks mmap_changing first; 6.9+ checks it at the ioctl's
	 * entry too, so only a mremap that took the mmap lock between that
	 * check and the lookup does it). The page is then not gone: it
	 * may have moved with its VMA, and once the event is read it is
	 * filled where it is now. The caller holds the job lock, so the
	 * event stays unread while we ask (mig__uffd_events_pending).
	 */
	/*
	 * fill:noent: the answer of that race, which a test cannot time:
	 * a COPY refused for an unread event says -ENOENT
	 * (migrate_mremap_unread).
	 */
	if (r == -EAGAIN && uffd == j->uffd && mig__fault_point("fill:noent"))
		r = -ENOENT;
	if (r == -ENOENT && uffd == j->uffd && mig__uffd_events_pending(uffd)) {
		MIG_TRACE("NOENTPEND i=%zu addr=%lx: an event is unread: again", i,
			  (unsigned long)addr);
		r = -EAGAIN;
	}
	if (r >= 0 && uffd == j->uffd) {
		mig__bit_set(w->filled, i);
		if (w->held_ns[i]) {
			mig__job_stall(j, w->held_ns[i]);
			w->held_ns[i] = 0;
		}
	}
	return r;
}

bool mig__may_hold(const struct mig__job *j, pid_t tid)
{
	bool exec = false;

	if (j->exec_all)
		return false;
	for (size_t k = 0; k < j->nexec && tid > 0; k++)
		exec |= j->exec_tids[k] == tid;
	return !j->exec_preparing || (tid > 0 && !exec);
}

/*
 * Page i (at addr) was taken out by us: in the zap set and not gone,
 * and its step done, or it lies in the run our madvise zaps right now
 * (the tenant's other threads are stopped then: only the executor, or
 * an agent's helper, can touch it).
 */
static bool zapped_by_us(const struct mig__win *w, size_t i, uint64_t addr)
{
	if (!mig__bit_test(w->zap, i) || mig__bit_test(w->gone, i))
		return false;
	return !mig__bit_test(w->pend, i) ||
	       (w->zapping && addr >= w->zap_run.start && addr < w->zap_run.end);
}

/*
 * Is the page at addr write-protected with userfaultfd now (pagemap's
 * uffd-wp bit, which a PMD-mapped THP reports for each of its pages)?
 * Unknown counts as yes: the fault is then served as a live one.
 */
static bool protected_now(pid_t pid, uint64_t addr)
{
	struct mig_pageinfo pi;

	if (mig_query_pages(pid, addr, 1, MIG_QUERY_PAGEMAP, &pi) < 0)
		return true;
	return (pi.flags & MIG_PAGE_UFFD_WP) || !(pi.flags & MIG_PAGE_PRESENT);
}

/*
 * Move first: after a fault on page i was served (its thread is awake),
 * the pages out after it at the addresses that follow, up to AHEAD, are
 * pulled and filled too, in one read and one UFFDIO_COPY. A thread that
 * walks its memory (the common writer) would fault on each of them in
 * turn while the window's fill has not reached them. Only what the COPY
 * placed is marked filled; whatever stops it (an event unread, a page
 * there) is left to the fill as before. Only slots pagemap finds
 * present with a page of their own are read, and the read goes through
 * /proc/PID/mem, which fails on an empty slot instead of faulting into
 * the scratch area, which only this thread serves (as for the faulting
 * page, mig__movefirst_pull_locked). The COPY never replaces a page
 * that is there (-EEXIST stops it).
 */
#define AHEAD 32

static void fill_ahead(struct mig__job *j, struct mig__win *w, size_t i)
{
	struct iovec l[AHEAD], rv[AHEAD];
	struct mig_pageinfo pi[AHEAD];
	size_t n = 0, k = i + 1;
	uint64_t done = 0;
	ssize_t got;
	int r;

	for (; k < w->npages && n < AHEAD; k++) {
		if (!mig__bit_test(w->zap, k) || mig__bit_test(w->pend, k) ||
		    mig__bit_test(w->gone, k) || mig__bit_test(w->filled, k) ||
		    w->addr[k] != w->addr[k - 1] + MIG__PAGE ||
		    (k >= w->inflight_i && k < w->inflight_i + w->inflight_n))
			break;
		l[n] = (struct iovec){ w->staging + k * MIG__PAGE, MIG__PAGE };
		rv[n++] = (struct iovec){ (void *)(uintptr_t)(j->scratch_dst + k * MIG__PAGE),
					  MIG__PAGE };
	}
	if (n == 0 || mig_query_pages(j->pid, j->scratch_dst + (i + 1) * MIG__PAGE, n,
				      MIG_QUERY_PAGEMAP, pi) < 0)
		return;
	/* Only slots that hold a page of their own (never the zero page). */
	for (k = 0; k < n; k++)
		if (!(pi[k].flags & MIG_PAGE_PRESENT) || (pi[k].flags & MIG_PAGE_ZERO))
			break;
	n = k;
	if (n == 0)
		return;
	got = mig__mem_readv(j->pid, l, rv, n);
	if (got <= 0)
		return;
	n = MIN(n, (size_t)got / MIG__PAGE);
	for (size_t p = 0; p < n; p++)
		if (!mig__bit_test(w->pulled, i + 1 + p)) {
			mig__bit_set(w->pulled, i + 1 + p);
			__atomic_fetch_add(&j->copies, 1, __ATOMIC_RELAXED);
		}
	r = mig__uffd_copy(j->uffd, w->addr[i + 1], w->staging + (i + 1) * MIG__PAGE, n * MIG__PAGE,
			   0, &done);
	for (size_t p = 0; p < done / MIG__PAGE && p < n; p++)
		mig__bit_set(w->filled, i + 1 + p);
	MIG_TRACE("AHEAD i=%zu n=%zu r=%d done=%lu", i + 1, n, r, (unsigned long)done);
}

static int serve_fault(struct fstate *fs, int fd, uint64_t addr, uint64_t flags, uint64_t t0,
		       pid_t tid)
{
	struct mig__job *j = fs->j;
	struct mig__win *w = j->win;
	bool child = fd != j->uffd;
	ssize_t i = w ? mig__window_find(w, addr) : -1;
	int r;

	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		/*
		 * Never hold the thread that is to run our zap (the zap
		 * protocol): it would wait for the zap that waits for it.
		 * Such a write dirties the page instead, as during STAGE; the
		 * zap set is fixed only once the executor is ready, so a page
		 * written now is never zapped in this pass.
		 */
		if (!child && i >= 0 && mig__bit_test(w->sel, i) && !mig__bit_test(w->gone, i) &&
		    ((w->zap_fixed && mig__bit_test(w->zap, i) && !mig__bit_test(w->filled, i)) ||
		     (w->hold && !w->zap_fixed)) &&
		    mig__may_hold(j, tid)) {
			/* Held: the zap, the fill or the thaw wakes it. */
			if (!w->held_ns[i]) {
				w->held_ns[i] = t0;
				w->held_tid[i] = tid;
			} else if (w->held_tid[i] != tid) {
				w->held_tid[i] = -1;
			}
			return 0;
		}
		if (!child && i >= 0 && w->zapping && addr >= w->zap_run.start &&
		    addr < w->zap_run.end && mig__bit_test(w->pend, i))
			/*
			 * Rule 6 of zap.c broken: a thread runs while its
			 * page is being zapped (it was said to be stopped).
			 * The write goes to a page the madvise then drops.
			 */
			MIG_TRACE("ZAPWRITE i=%zd addr=%lx tid=%d: written while zapped", i,
				  (unsigned long)addr, (int)tid);
		if (!child && i < 0 && !protected_now(j->pid, addr)) {
			/*
			 * A stale fault: its window has ended (thawed and
			 * unregistered) since it was raised, typically one
			 * that waited in the pending list for an event to be
			 * read. Its page is writable again and may be part
			 * of a THP placed whole meanwhile: un-protecting
			 * 4 KiB of it would split that PMD (change_pmd_range
			 * splits on any partial range), which left 1-8 of 32
			 * placed THPs PTE-mapped in the host's migrate_thp
			 * (docs/engine.md, "Whole THPs"). Wake it only.
			 */
			r = mig__uffd_wake(fd, addr, MIG__PAGE);
		} else {
			uint64_t ustart = addr, ulen = MIG__PAGE;

			/* A THP that is to move whole is un-protected whole (hugemove.c). */
			if (!child && i >= 0)
				mig__huge_written(j, w, (size_t)i, &ustart, &ulen);
			r = mig__uffd_writeprotect(fd, ustart, ulen, false, false);
			/* Part of the block gone: the page alone (-EAGAIN: retried whole). */
			if (r < 0 && r != -EAGAIN && ulen > MIG__PAGE)
				r = mig__uffd_writeprotect(fd, addr, MIG__PAGE, false, false);
		}
	} else if (i >= 0 && (size_t)i >= w->inflight_i &&
		   (size_t)i < w->inflight_i + w->inflight_n) {
		/* A MOVE step in flight took it out, or found a hole: wait for its outcome. */
		r = -EAGAIN;
	} else if (i >= 0 && zapped_by_us(w, i, addr) && (child || !mig__bit_test(w->filled, i))) {
		/* Its content is in staging (move first: in the scratch area, pulled now). */
		r = w->movefirst ? mig__movefirst_pull_locked(j, w, (size_t)i, NULL) : 0;
		if (r != 0)
			MIG_TRACE("NOPULL i=%zd addr=%lx r=%d", i, (unsigned long)addr, r);
		else
			r = mig__fill_page_locked(j, w, fd, i, &j->targets);
		if (r == 0 && w->movefirst && !child)
			fill_ahead(j, w, (size_t)i);
	} else {
		if (!child && j->scratch_dst && addr >= j->scratch_dst &&
		    addr < j->scratch_dst + j->scratch_dst_len)
			__atomic_fetch_add(&j->scratch_faults, 1, __ATOMIC_RELEASE);
		/*
		 * Never populated, or dropped by the tenant: zero, as without
		 * us. A page present at the window's first scan that we did
		 * not take out and that is really absent now (the zero page
		 * went in) was dropped by the tenant, even when its REMOVE was
		 * read before this window began (the tenant zaps only after
		 * the event is read): never fill it from staging now. A stale
		 * fault, read after the page came back (filled in an earlier
		 * pass, whose zap set is forgotten), finds it present
		 * (-EEXIST): that page is not gone, it was only waited for.
		 */
		r = mig__uffd_zeropage(fd, addr, MIG__PAGE, 0, NULL);
		if (r >= 0 && !child && i >= 0 && mig__bit_test(w->present, i) &&
		    !mig__bit_test(w->gone, i) && !zapped_by_us(w, i, addr))
			mig__bit_set(w->gone, i);
		if (r == -EEXIST)
			r = mig__uffd_wake(fd, addr, MIG__PAGE);
	}
	if (mig__trace_on()) {
		/* The page's state after the decision: zap pend gone filled dirty, or none. */
		char st[16] = "-";

		if (w && i >= 0)
			snprintf(st, sizeof(st), "%d%d%d%d%d", (int)mig__bit_test(w->zap, i),
				 (int)mig__bit_test(w->pend, i), (int)mig__bit_test(w->gone, i),
				 (int)mig__bit_test(w->filled, i), (int)mig__bit_test(w->dirty, i));
		mig__trace("FAULT fd=%d addr=%lx fl=%lx tid=%d i=%zd win=%lx r=%d zpgfd=%s us=%lu",
			   fd, (unsigned long)addr, (unsigned long)flags, (int)tid, i,
			   w ? (unsigned long)w->start : 0UL, r, st,
			   (unsigned long)((mig__now_ns() - t0) / 1000));
	}
	if (r == -EAGAIN) {
		/* An event is pending on this uffd: retry once it has been read. */
		if (fs->npend < MAX_PENDING) {
			fs->pend[fs->npend++] = (struct pending){ fd, addr, flags, t0, tid };
			return 0;
		}
	}
	mig__job_stall(j, t0);
	return r;
}

/* Pages of the window now in [start, end): call fn on each index. */
static void mark_range(struct mig__win *w, uint64_t start, uint64_t end, uint64_t *bitmap)
{
	for (size_t i = 0; i < w->npages; i++)
		if (w->addr[i] >= start && w->addr[i] < end) {
			MIG_TRACE("MARK i=%zu addr=%lx zap=%d pend=%d filled=%d", i,
				  (unsigned long)w->addr[i], (int)mig__bit_test(w->zap, i),
				  (int)mig__bit_test(w->pend, i), (int)mig__bit_test(w->filled, i));
			mig__bit_set(bitmap, i);
		}
}

static bool our_zap(const struct mig__win *w, uint64_t start, uint64_t end)
{
	if (!w->zapping)
		return false;
	return start >= w->zap_run.start && end <= w->zap_run.end;
}

/*
 * Add r to the registered pieces, kept sorted and disjoint: a piece that
 * overlaps or touches r becomes one with it. Nothing registered may ever
 * be forgotten (it would stay registered and write-protected with nobody
 * reading its faults after the job): when the list is full, the two
 * neighbours with the smallest gap become one piece spanning the gap
 * (mig__regs_add; planning, which may not join, skips instead).
 * Unregistering across a gap: holes and unregistered anonymous VMAs in it
 * are skipped by the kernel, but a VMA it cannot register (a file
 * mapping, or one of another uffd) makes it refuse the whole range:
 * mig__uffd_unregister_piece() then goes VMA by VMA. (Un-protecting goes
 * by the window's runs of pages, never across a gap, but for thaw's
 * fallback without memory; the window's end unregisters, which
 * un-protects, all the same.)
 *
 * Pieces used to be kept sorted only, and joined by taking the second
 * one's end: a piece nested in another (a run moved away and back while
 * the list was full, or VMAs read during a churn) then cut the outer
 * piece's tail off, and what it covered stayed registered after the
 * window (the 6.12 guest's LEFTOVER, seed 1883792164369323: [bb2000,
 * c00000) joined with [bb2000, bb5000) became [bb2000, bb5000)).
 */
bool mig__regs_add(struct mig__win *w, struct mig_range r, bool may_join)
{
	struct mig_range v[MIG__MAX_REGS + 1];
	size_t n = 0, k = 0, best;

	if (r.start >= r.end)
		return true;
	/* Sorted insert, then merge what overlaps or touches. */
	while (k < w->nregs && w->regs[k].start <= r.start)
		v[n++] = w->regs[k++];
	v[n++] = r;
	while (k < w->nregs)
		v[n++] = w->regs[k++];
	k = 0;
	for (size_t i = 1; i < n; i++) {
		if (v[i].start <= v[k].end)
			v[k].end = MAX(v[k].end, v[i].end);
		else
			v[++k] = v[i];
	}
	n = k + 1;
	if (n > MIG__MAX_REGS) {
		if (!may_join)
			return false;
		best = 0;
		for (k = 1; k + 1 < n; k++)
			if (v[k + 1].start - v[k].end < v[best + 1].start - v[best].end)
				best = k;
		v[best].end = MAX(v[best].end, v[best + 1].end);
		memmove(&v[best + 1], &v[best + 2], (n - best - 2) * sizeof(v[0]));
		n--;
	}
	memcpy(w->regs, v, n * sizeof(v[0]));
	w->nregs = n;
	return true;
}

static void regs_add(struct mig__win *w, struct mig_range r)
{
	(void)mig__regs_add(w, r, true);
}

static void regs_cut(struct mig__win *w, uint64_t start, uint64_t end)
{
	struct mig_range old[MIG__MAX_REGS];
	size_t n = w->nregs;

	memcpy(old, w->regs, n * sizeof(old[0]));
	w->nregs = 0;
	for (size_t k = 0; k < n; k++) {
		struct mig_range g = old[k];

		if (g.end <= start || g.start >= end) {
			regs_add(w, g);
			continue;
		}
		regs_add(w, (struct mig_range){ g.start, MIN(g.end, start) });
		regs_add(w, (struct mig_range){ MAX(g.start, end), g.end });
	}
}

static void regs_remap(struct mig__win *w, uint64_t from, uint64_t to, uint64_t len)
{
	struct mig_range moved[MIG__MAX_REGS];
	size_t nm = 0;

	for (size_t k = 0; k < w->nregs; k++) {
		uint64_t s = MAX(w->regs[k].start, from), e = MIN(w->regs[k].end, from + len);

		if (s < e)
			moved[nm++] = (struct mig_range){ s - from + to, e - from + to };
	}
	regs_cut(w, from, from + len);
	for (size_t k = 0; k < nm; k++)
		regs_add(w, moved[k]);
}

/*
 * Move first, a FORK read while page i is pending: its MOVE may have run
 * already (the fault thread can read the event between the step's
 * syscall and zap_done, which clears pend), and the child then has a
 * hole there. Its slot says: present, the page left after the fork began
 * or before (the child's copy is that content); empty, it never left
 * (the child has it). A slot not yet emptied by this session holds an
 * older page: its copy meets the child's own page (-EEXIST). Read into
 * a buffer of its own, never the staging slot, whose pulled copy would
 * then be taken for the page's.
 */
static unsigned child_from_slot(struct mig__job *j, struct mig__win *w, int cfd, size_t i,
				const struct mig_pageinfo *slot)
{
	static __thread char buf[MIG__PAGE] __attribute__((aligned(4096)));
	struct iovec l = { buf, MIG__PAGE };
	struct iovec rv = { (void *)(uintptr_t)(j->scratch_dst + i * MIG__PAGE), MIG__PAGE };
	struct mig_pageinfo pi;

	int tries;

	if (slot)
		pi = *slot;
	else if (mig_query_pages(j->pid, j->scratch_dst + i * MIG__PAGE, 1, MIG_QUERY_PAGEMAP,
				 &pi) < 0)
		return 0;
	/* An empty slot: the page never left (the child has it). */
	if (!(pi.flags & MIG_PAGE_PRESENT) || (pi.flags & MIG_PAGE_ZERO))
		return 0;
	errno = 0;
	if (mig__mem_readv(j->pid, &l, &rv, 1) != (ssize_t)MIG__PAGE) {
		MIG_TRACE("SLOTREAD i=%zu failed: %s", i, strerror(errno ? errno : EIO));
		return 0;
	}
	for (tries = 0; tries < 1000; tries++) {
		int r = mig__uffd_copy(cfd, w->addr[i], buf, MIG__PAGE, 0, NULL);

		if (r == -EEXIST)
			(void)mig__uffd_wake(cfd, w->addr[i], MIG__PAGE);
		if (r != -EAGAIN)
			break;
		usleep(100);
	}
	return (unsigned)tries;
}

/* A page of the child's to fill, move first: taken out, not back, not gone. */
static bool child_out(const struct mig__win *w, size_t i)
{
	return mig__bit_test(w->zap, i) && !mig__bit_test(w->filled_read, i) &&
	       !mig__bit_test(w->gone, i);
}

/* One page into the child, -EAGAIN retried as long as before (fill_one). */
static unsigned child_fill_one(struct mig__job *j, struct mig__win *w, int cfd, size_t i)
{
	unsigned again = 0;

	for (int tries = 0; tries < 1000; tries++) {
		if (mig__fill_page_locked(j, w, cfd, i, &j->targets) != -EAGAIN)
			break;
		again++;
		usleep(100);
	}
	return again;
}

/*
 * Move first: the child's holes, cheaply (the tenant's fork raised
 * mmap_changing until we read its event, and its next fork raises it
 * again: all the while the job lock is held for writing, and every
 * MOVE, COPY and ZEROPAGE into the tenant meets -EAGAIN).
 *  - A page filled (or moved back) before the read that returned the
 *    FORK was back before the fork copied its page tables: the COPY
 *    checks mmap_changing under the lock the fork's copy of that VMA
 *    waits for, and the fork raises it before that copy and drops it
 *    once that read returned. The child has the page: it is skipped (it
 *    would be -EEXIST). Not so a page we filled after that read, while
 *    handling a message the same read returned before the FORK (a
 *    FAULT): that fill came after the fork's copy, and the child has a
 *    hole there (6.1 guest, agent churn: a fork child read a zero page
 *    of the tenant's heap). So the test is filled_read, as it was at
 *    the read, not filled.
 *  - A page still pending: child_from_slot, as before.
 *  - The others are out: their slots (read from pagemap once, present;
 *    the read goes through /proc/PID/mem, mig__mem_readv, so that a
 *    slot found empty all the same fails instead of faulting into the
 *    scratch area, which only this thread serves) are pulled into
 *    staging with one read for up to 64 pages, and copied into the
 *    child one run of consecutive addresses per UFFDIO_COPY; the page a
 *    run stopped at goes alone (mig__fill_page_locked: -EEXIST,
 *    -ENOMEM, -EAGAIN).
 * No uffd-wp bit is set on this path (no FREEZE): the child inherited
 * none, and the unregister drops the registration.
 */
static void child_movefirst(struct mig__job *j, struct mig__win *w, int cfd,
			    const struct mig_pageinfo *slots, unsigned *ncopy, unsigned *npages,
			    unsigned *nslot, unsigned *again)
{
	struct iovec l[64], rv[64];
	size_t idx[64], n = 0;

	for (size_t i = 0; i <= w->npages; i++) {
		ssize_t got;

		if (i < w->npages && child_out(w, i) && !mig__bit_test(w->pend, i) &&
		    !mig__bit_test(w->pulled, i) && (slots[i].flags & MIG_PAGE_PRESENT) &&
		    !(slots[i].flags & MIG_PAGE_ZERO)) {
			l[n] = (struct iovec){ w->staging + i * MIG__PAGE, MIG__PAGE };
			rv[n] = (struct iovec){ (void *)(uintptr_t)(j->scratch_dst + i * MIG__PAGE),
						MIG__PAGE };
			idx[n++] = i;
		}
		if (n == 0 || (n < ARRAY_SIZE(idx) && i < w->npages))
			continue;
		got = mig__mem_readv(j->pid, l, rv, n);
		if (got < (ssize_t)(n * MIG__PAGE))
			MIG_TRACE("SLOTREAD %zu pages from i=%zu: %zd bytes", n, idx[0], got);
		for (size_t k = 0; got > 0 && k < (size_t)got / MIG__PAGE && k < n; k++) {
			mig__bit_set(w->pulled, idx[k]);
			__atomic_fetch_add(&j->copies, 1, __ATOMIC_RELAXED);
		}
		n = 0;
	}
	for (size_t i = 0; i < w->npages;) {
		uint64_t done = 0;
		size_t k;

		if (!child_out(w, i)) {
			i++;
			continue;
		}
		if (mig__bit_test(w->pend, i)) {
			*again += child_from_slot(j, w, cfd, i, &slots[i]);
			(*nslot)++;
			i++;
			continue;
		}
		/* Not pulled: its slot is empty (never taken out) or unreadable. */
		if (!mig__bit_test(w->pulled, i)) {
			i++;
			continue;
		}
		for (k = i + 1; k < w->npages && k - i < 512 && child_out(w, k) &&
				!mig__bit_test(w->pend, k) && mig__bit_test(w->pulled, k) &&
				w->addr[k] == w->addr[k - 1] + MIG__PAGE;
		     k++)
			;
		(*ncopy)++;
		if (mig__uffd_copy(cfd, w->addr[i], w->staging + i * MIG__PAGE, (k - i) * MIG__PAGE,
				   0, &done) >= 0 &&
		    done == (k - i) * MIG__PAGE) {
			*npages += k - i;
			i = k;
			continue;
		}
		*npages += done / MIG__PAGE + 1;
		i += done / MIG__PAGE;
		*again += child_fill_one(j, w, cfd, i);
		i++;
	}
}

/*
 * Classic window: may the fork child lack page i? The child has what the
 * tenant had when the fork copied the page's VMA, so it lacks only pages
 * we had taken out then and not put back. Not filled before the read
 * that returned the FORK (filled_read; such a page was back before that
 * copy: child_movefirst),
 * not gone (the tenant dropped it: it reads zero in the child too), and
 * one of:
 *  - not pending: its zap step took it out (zap_done cleared pend);
 *  - pending, in the step in flight (MOVE: inflight_*, madvise: zapping
 *    from zap_run_i): the step may have run before the fork's copy and
 *    its outcome is not applied yet.
 * A page pending outside the step in flight is skipped (issue 16: under
 * fork churn these were most of a FORK's COPYs, each allocating and
 * copying a page to get -EEXIST, with the job lock held for writing).
 * Why the child has it, whichever way the tenant's threads and our zap
 * interleave:
 *  1. Only a zap step of ours takes a zap-set page out (zap.c, rule 9).
 *     zap_next issues a step under the job lock (MOVE: held for reading
 *     until its syscall has returned, zap_unlock; madvise: zapping set
 *     under the write lock), and zap_done applies its outcome (pend
 *     cleared for the pages it took out, inflight_n and zapping cleared)
 *     under the write lock. We read the FORK and handle it under the
 *     write lock (drain), so every step is applied, in flight, or not
 *     issued yet; none is half-recorded.
 *  2. An applied step that left pend set did not take the page out: the
 *     engine relies on this for the tenant itself (zap.c, rule 7: such
 *     pages leave the zap set, never filled), and a MOVE's short count
 *     is checked against its scratch slots first (moved_by_slot).
 *  3. A step not issued yet has its syscall run after this read. The
 *     forking thread queued the FORK only after dup_mmap had copied every
 *     VMA and let go of the mmap lock (dup_userfaultfd_complete), so that
 *     syscall cannot have taken anything out before the child's page
 *     tables were copied; what it does later changes the tenant, not the
 *     child.
 * So at the fork's copy a pending page outside the step in flight was in
 * the tenant as the tenant itself left it (present, swapped out or part
 * of a THP, or dropped by the tenant: then absent in the child as it
 * should be), and the child holds that. The argument rests on the order
 * of our job lock and the FORK's read, and on the fork copying the page
 * tables before it queues its event; not on mmap_changing, which an
 * injected madvise never checks. (madvise steps run with the tenant's
 * other threads stopped, so no fork is in progress then; where they
 * cannot be stopped the steps run anyway, zaps_unstopped, and the run in
 * flight is copied like a MOVE's.)
 */
static bool child_lacks(const struct mig__win *w, size_t i)
{
	size_t n;

	if (!mig__bit_test(w->zap, i) || mig__bit_test(w->gone, i) ||
	    mig__bit_test(w->filled_read, i))
		return false;
	if (!mig__bit_test(w->pend, i))
		return true;
	if (w->inflight_n && i >= w->inflight_i && i - w->inflight_i < w->inflight_n)
		return true;
	n = (w->zap_run.end - w->zap_run.start) / MIG__PAGE;
	return w->zapping && i >= w->zap_run_i && i - w->zap_run_i < n;
}

/*
 * Classic window: copy into the child the pages it may lack
 * (child_lacks), one UFFDIO_COPY a run of consecutive indices at
 * consecutive addresses (staging is consecutive by index). A run the
 * kernel refuses as a whole with -ENOENT crosses the end of a VMA (the
 * tenant mprotects or maps pieces of its ranges): it is halved until it
 * fits, and the runs after it grow again by doubling (a few ioctls a
 * VMA end, not one a page). The page a run stops at goes alone
 * (mig__fill_page_locked: -EEXIST wakes, -ENOMEM anywhere, -EAGAIN
 * retried).
 */
static void child_classic(struct mig__job *j, struct mig__win *w, int cfd, unsigned *ncopy,
			  unsigned *npages, unsigned *nskip, unsigned *nexist, unsigned *again)
{
	size_t cap = 512;

	for (size_t i = 0; i < w->npages;) {
		uint64_t done = 0, len;
		size_t k;
		int r;

		if (!child_lacks(w, i)) {
			*nskip += mig__bit_test(w->pend, i) && !mig__bit_test(w->gone, i) &&
				  !mig__bit_test(w->filled_read, i);
			i++;
			continue;
		}
		for (k = i + 1; k < w->npages && k - i < cap && child_lacks(w, k) &&
				w->addr[k] == w->addr[k - 1] + MIG__PAGE;
		     k++)
			;
		len = (k - i) * MIG__PAGE;
		(*ncopy)++;
		r = mig__uffd_copy(cfd, w->addr[i], w->staging + i * MIG__PAGE, len, 0, &done);
		if (r >= 0 && done == len) {
			*npages += k - i;
			cap = MIN(2 * cap, 512);
			i = k;
			continue;
		}
		if (r == -ENOENT && done == 0 && k - i > 1) {
			cap = (k - i) / 2;
			continue;
		}
		*npages += done / MIG__PAGE + 1;
		*nexist += r == -EEXIST;
		i += done / MIG__PAGE;
		*again += child_fill_one(j, w, cfd, i);
		i++;
	}
}

/*
 * Clear the child's inherited write protection on n pages from addr.
 * A range over a hole now (the tenant unmapped a page) or a piece no
 * longer registered is refused as a whole: its halves are tried, so a
 * hole costs a few ioctls, not one a page of the range. Returns how
 * many ioctls it took.
 */
static unsigned child_unprotect(int cfd, uint64_t addr, size_t n)
{
	if (mig__uffd_writeprotect(cfd, addr, n * MIG__PAGE, false, false) == 0 || n == 1)
		return 1;
	return 1 + child_unprotect(cfd, addr, n / 2) +
	       child_unprotect(cfd, addr + n / 2 * MIG__PAGE, n - n / 2);
}

static void release_child(struct mig__job *j, int cfd)
{
	struct mig__win *w = j->win;
	_cleanup_free_ struct mig_pageinfo *slots = NULL;
	uint64_t t0 = mig__now_ns(), t1, t2 = 0;
	unsigned ncopy = 0, npages = 0, nskip = 0, nslot = 0, again = 0, nwp = 0, nexist = 0;

	/*
	 * The child is a copy of the tenant at fork time: its holes are the
	 * pages zapped and not yet filled then, whose content is in staging.
	 * Fill those it may lack (classic: child_lacks), then drop the write
	 * protection and the registration it inherited.
	 */
	/*
	 * Move first: the window's scratch slots are read from pagemap once
	 * for the whole FORK, not once a page (the parent's fork waits until
	 * this is done, and the job lock is held meanwhile).
	 */
	if (w && w->movefirst) {
		slots = calloc(w->npages, sizeof(*slots));
		if (slots && mig_query_pages(j->pid, j->scratch_dst, w->npages, MIG_QUERY_PAGEMAP,
					     slots) < 0) {
			free(slots);
			slots = NULL; /* asked page by page, as before */
		}
	}
	if (w && slots) {
		child_movefirst(j, w, cfd, slots, &ncopy, &npages, &nslot, &again);
	} else if (w && w->movefirst) {
		for (size_t i = 0; i < w->npages; i++) {
			if (!mig__bit_test(w->zap, i) || mig__bit_test(w->gone, i))
				continue;
			if (mig__bit_test(w->pend, i)) {
				again += child_from_slot(j, w, cfd, i, NULL);
				nslot++;
				continue;
			}
			/* From its slot (an empty one: never taken out). */
			if (mig__movefirst_pull_locked(j, w, i, NULL) < 0)
				continue;
			ncopy++;
			npages++;
			again += child_fill_one(j, w, cfd, i);
		}
	} else if (w) {
		child_classic(j, w, cfd, &ncopy, &npages, &nskip, &nexist, &again);
	}
	t1 = mig__now_ns();
	if (w) {
		/*
		 * Protected were the window's pages only; registered its whole
		 * VMAs. One ioctl a run of consecutive addresses, not a page.
		 */
		for (size_t i = 0, k; i < w->npages && !w->movefirst; i = k) {
			if (!mig__bit_test(w->invma, i)) {
				k = i + 1;
				continue;
			}
			for (k = i + 1; k < w->npages && mig__bit_test(w->invma, k) &&
					w->addr[k] == w->addr[k - 1] + MIG__PAGE;
			     k++)
				;
			nwp += child_unprotect(cfd, w->addr[i], k - i);
		}
		t2 = mig__now_ns();
		for (size_t k = 0; k < w->nregs; k++)
			(void)mig__uffd_unregister(cfd, w->regs[k].start,
						   w->regs[k].end - w->regs[k].start);
	}
	safe_close(cfd);
	MIG_TRACE("FORKDONE ufd=%d us=%lu copies=%u pages=%u skipped=%u exist=%u slots=%u "
		  "again=%u copy_us=%lu wp_us=%lu wps=%u",
		  cfd, (unsigned long)((mig__now_ns() - t0) / 1000), ncopy, npages, nskip, nexist,
		  nslot, again, (unsigned long)((t1 - t0) / 1000),
		  (unsigned long)(t2 ? (t2 - t1) / 1000 : 0), nwp);
}

static void handle_msg(struct fstate *fs, int fd, const struct uffd_msg *m)
{
	struct mig__job *j = fs->j;
	struct mig__win *w = j->win;

	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		j->faults++;
		/* feat.ptid is the faulting thread with UFFD_FEATURE_THREAD_ID, else 0. */
		(void)serve_fault(fs, fd, m->arg.pagefault.address & ~(MIG__PAGE - 1),
				  m->arg.pagefault.flags, mig__now_ns(),
				  (pid_t)m->arg.pagefault.feat.ptid);
		return;
	case UFFD_EVENT_REMOVE:
		j->events++;
		MIG_TRACE("EV REMOVE fd=%d %llx-%llx win=%lx ours=%d", fd,
			  (unsigned long long)m->arg.remove.start,
			  (unsigned long long)m->arg.remove.end, w ? (unsigned long)w->start : 0UL,
			  w ? (int)our_zap(w, m->arg.remove.start, m->arg.remove.end) : -1);
		if (w && fd == j->uffd && !our_zap(w, m->arg.remove.start, m->arg.remove.end))
			mark_range(w, m->arg.remove.start, m->arg.remove.end, w->gone);
		return;
	case UFFD_EVENT_UNMAP:
		j->events++;
		MIG_TRACE("EV UNMAP fd=%d %llx-%llx win=%lx", fd,
			  (unsigned long long)m->arg.remove.start,
			  (unsigned long long)m->arg.remove.end, w ? (unsigned long)w->start : 0UL);
		if (w && fd == j->uffd) {
			mark_range(w, m->arg.remove.start, m->arg.remove.end, w->gone);
			regs_cut(w, m->arg.remove.start, m->arg.remove.end);
			w->regs_events++;
		}
		return;
	case UFFD_EVENT_REMAP:
		j->events++;
		MIG_TRACE("EV REMAP fd=%d %llx->%llx len %llx win=%lx", fd,
			  (unsigned long long)m->arg.remap.from,
			  (unsigned long long)m->arg.remap.to, (unsigned long long)m->arg.remap.len,
			  w ? (unsigned long)w->start : 0UL);
		if (w && fd == j->uffd) {
			uint64_t from = m->arg.remap.from, to = m->arg.remap.to,
				 len = m->arg.remap.len;

			/*
			 * mremap(MREMAP_FIXED) unmaps the destination first, but
			 * sends UNMAP for it only where that VMA is registered
			 * with this uffd. A page of ours there whose VMA is not
			 * (a piece the tenant moved away and back, registered no
			 * more) is gone all the same: else it keeps the address,
			 * the fault lookup finds it there before the page that
			 * moved in, serves its fault as not ours (a zero page),
			 * and the moved page's fill finds EEXIST: a zero read
			 * (agent seed 1883658766122481, trace: REMAP to an
			 * address, FAULT there with the old page's index).
			 * Source and destination never overlap.
			 */
			mark_range(w, to, to + len, w->gone);
			/*
			 * A page that moved during the pass may have been staged
			 * from its old address after another page took it: its
			 * COPIED marker cannot be trusted. As if written: it is
			 * not taken out in this pass, and staged again in the next.
			 */
			for (size_t i = 0; i < w->npages; i++)
				if (w->addr[i] >= from && w->addr[i] < from + len) {
					uint64_t old = w->addr[i];

					MIG_TRACE("SHIFT i=%zu %lx->%lx zap=%d pend=%d filled=%d",
						  i, (unsigned long)old,
						  (unsigned long)(old - from + to),
						  (int)mig__bit_test(w->zap, i),
						  (int)mig__bit_test(w->pend, i),
						  (int)mig__bit_test(w->filled, i));

					w->addr[i] = w->addr[i] - from + to;
					mig__bit_set(w->remapped, i);
					mig__bit_set(w->dirty, i);
					/*
					 * A writer held on it waits under its old
					 * address, and a wake finds it only there:
					 * every later wake would use the new one.
					 * Let it go now (it retries where it wrote,
					 * as it would have without us); a page still
					 * to be zapped leaves the zap set, written.
					 */
					if (w->held_ns[i]) {
						mig__job_stall(j, w->held_ns[i]);
						w->held_ns[i] = 0;
						w->held_tid[i] = 0;
						if (mig__bit_test(w->pend, i)) {
							mig__bit_clear(w->pend, i);
							mig__bit_clear(w->zap, i);
						}
						(void)mig__uffd_wake(fd, old, MIG__PAGE);
					}
				}
			regs_remap(w, from, to, len);
			w->regs_events++;
		}
		return;
	case UFFD_EVENT_FORK:
		j->events++;
		MIG_TRACE("EV FORK ufd=%d win=%lx", (int)m->arg.fork.ufd,
			  w ? (unsigned long)w->start : 0UL);
		release_child(j, (int)m->arg.fork.ufd);
		return;
	default:
		/* -EPROTO: an event we did not ask for; nothing to serve. */
		return;
	}
}

/*
 * Read and handle what the uffd holds, under the job lock for writing.
 * all: until it is empty (stopping). Else one read's worth: a tenant that
 * forks (or remaps) without pause has its next event queued before we
 * handled the last one, and reading on would hold the job lock for as
 * long as it keeps on (seconds, found under fork churn with move-first
 * windows: no zap step could run). So with a move-first window the lock
 * is let go after each read, and epoll (level-triggered) brings us back
 * at once. Returns whether the read may have left messages behind.
 */
static bool drain(struct fstate *fs, int fd, bool all)
{
	struct uffd_msg msgs[32];
	uint64_t t0 = mig__now_ns(), t1;
	int n, nmsg = 0;

	/* A slow fault thread, for tests (MIG_CRASH_AT=faults:drain:pauseMS). */
	mig__crash_point("faults:drain");
	pthread_rwlock_wrlock(&fs->j->lock);
	t1 = mig__now_ns();
	/* The classic window reads on as it always did. */
	all |= !fs->j->win || !fs->j->win->movefirst;
	do {
		n = mig__uffd_read(fd, msgs, ARRAY_SIZE(msgs));
		/*
		 * What was filled up to this read: a FORK it returned skips
		 * only those pages (struct mig__win, filled_read). Pages we
		 * fill while handling its earlier messages (a FAULT read in
		 * the same batch) came after the fork's copy of the page
		 * tables, whose raised mmap_changing dropped with this read.
		 */
		if (n > 0 && fs->j->win)
			memcpy(fs->j->win->filled_read, fs->j->win->filled,
			       MIG__BITMAP_WORDS(fs->j->win->npages) * sizeof(uint64_t));
		for (int k = 0; k < n; k++, nmsg++)
			handle_msg(fs, fd, &msgs[k]);
	} while (all && n > 0);
	pthread_rwlock_unlock(&fs->j->lock);
	if (mig__now_ns() - t0 > 2000000)
		MIG_TRACE("DRAIN fd=%d msgs=%d wait_us=%lu held_us=%lu", fd, nmsg,
			  (unsigned long)((t1 - t0) / 1000),
			  (unsigned long)((mig__now_ns() - t1) / 1000));
	return n == (int)ARRAY_SIZE(msgs);
}

static void retry_pending(struct fstate *fs)
{
	struct pending p[MAX_PENDING];
	size_t n = fs->npend;

	memcpy(p, fs->pend, n * sizeof(p[0]));
	fs->npend = 0;
	pthread_rwlock_wrlock(&fs->j->lock);
	for (size_t k = 0; k < n; k++)
		(void)serve_fault(fs, p[k].fd, p[k].addr, p[k].flags, p[k].t0, p[k].tid);
	pthread_rwlock_unlock(&fs->j->lock);
}

static void *fault_main(void *arg)
{
	struct mig__job *j = arg;
	struct fstate *fs;
	struct epoll_event ev[8];

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return NULL; /* mig__faults_start checked memory before */
	fs->j = j;
	__atomic_store_n(&j->fault_tid, gettid(), __ATOMIC_RELEASE);
	/* Fills served here must land on the targets, like the workers' ones. */
	(void)mig__bind_thread(&j->targets);
	for (;;) {
		int n = epoll_wait(j->epfd, ev, ARRAY_SIZE(ev), fs->npend ? 1 : -1);
		bool more = false;

		if (n < 0 && errno != EINTR)
			break;
		for (int k = 0; k < n; k++) {
			uint64_t key = ev[k].data.u64 >> 32;
			int fd = (int)(uint32_t)ev[k].data.u64;

			if (key == KEY_STOP)
				goto out;
			if (key == KEY_KICK) {
				uint64_t v;

				(void)!read(fd, &v, sizeof(v));
				continue;
			}
			if (key == KEY_PIDFD) {
				MIG_TRACE("EXITED pid %d (pidfd readable)", (int)j->pid);
				__atomic_store_n(&j->exited, 1, __ATOMIC_RELEASE);
				(void)epoll_ctl(j->epfd, EPOLL_CTL_DEL, fd, NULL);
				continue;
			}
			if (ev[k].events & (EPOLLERR | EPOLLHUP))
				(void)epoll_ctl(j->epfd, EPOLL_CTL_DEL, fd, NULL);
			more |= drain(fs, fd, false);
		}
		/* Retried once every message waiting was read (they got -EAGAIN for it). */
		if (fs->npend && !more)
			retry_pending(fs);
		__atomic_store_n(&j->faults_waiting, fs->npend > 0, __ATOMIC_RELEASE);
	}
out:
	/*
	 * Stopped: everything is unregistered by now, so no new event can
	 * start, but one whose tenant thread passed its check before the
	 * last unregister may still be on its way (a DONTNEED queues its
	 * REMOVE after dropping the mmap lock), and its thread waits until
	 * it is read. Read until the uffd stays quiet for QUIET_MS.
	 */
	for (int rounds = 0; rounds < 100; rounds++) {
		struct pollfd p = { .fd = j->uffd, .events = POLLIN };

		if (poll(&p, 1, fs->npend ? 1 : QUIET_MS) <= 0 && !fs->npend)
			break;
		if (p.revents & POLLIN)
			(void)drain(fs, j->uffd, true);
		if (fs->npend)
			retry_pending(fs);
	}
	free(fs);
	return NULL;
}

static int watch(struct mig__job *j, int fd, uint64_t key)
{
	struct epoll_event ev = {
		.events = EPOLLIN,
		.data.u64 = key << 32 | (uint32_t)fd,
	};

	return RET_NERRNO(epoll_ctl(j->epfd, EPOLL_CTL_ADD, fd, &ev));
}

int mig__faults_start(struct mig__job *j)
{
	int r;

	j->epfd = RET_NERRNO(epoll_create1(EPOLL_CLOEXEC));
	if (j->epfd < 0)
		return j->epfd;
	j->stopfd = RET_NERRNO(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (j->stopfd < 0)
		return j->stopfd;
	j->kickfd = RET_NERRNO(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (j->kickfd < 0)
		return j->kickfd;
	r = watch(j, j->stopfd, KEY_STOP);
	if (r >= 0)
		r = watch(j, j->kickfd, KEY_KICK);
	if (r >= 0)
		r = watch(j, j->pidfd, KEY_PIDFD);
	if (r >= 0)
		r = watch(j, j->uffd, KEY_UFFD);
	if (r < 0)
		return r;
	r = -pthread_create(&j->fault_thread, NULL, fault_main, j);
	if (r < 0)
		return r;
	j->fault_thread_started = true;
	return 0;
}

/* Messages the fault thread has read so far (events and faults). */
static uint64_t msgs_read(struct mig__job *j)
{
	uint64_t n;

	pthread_rwlock_rdlock(&j->lock);
	n = j->events + j->faults;
	pthread_rwlock_unlock(&j->lock);
	return n;
}

/*
 * Before the fault thread may stop, nothing of ours may be left in the
 * tenant that can raise an event or a fault: with no reader, the tenant
 * thread that raises it waits for good (a fork in dup_userfaultfd_complete,
 * a munmap or mremap in userfaultfd_event_wait_completion, a fault in
 * handle_userfault). Two ways one stays behind although every window
 * unregistered its VMAs:
 *  - a tenant mremap moved a registered VMA after its window read the
 *    addresses and before the window unregistered them: the VMA stays
 *    registered at its new place, and its REMAP may be read only later;
 *  - an event prepared before the last unregister (under the tenant's mmap
 *    lock) is queued after it, at any later time (the thread may be
 *    descheduled in between: a quiet period proves nothing on a loaded
 *    host).
 * So: unregister whatever is still ours (smaps), and wait until the kernel
 * says that no event is on its way (mig__uffd_events_pending), reading
 * meanwhile; again until a round finds nothing and reads nothing. Once
 * nothing is registered no new event can be prepared, so this ends.
 */
#define SETTLE_ROUNDS 64
#define SETTLE_NS     (10ULL * 1000 * 1000 * 1000)

static void settle(struct mig__job *j)
{
	uint64_t deadline = mig__now_ns() + SETTLE_NS;

	for (int round = 0; round < SETTLE_ROUNDS; round++) {
		uint64_t seen = msgs_read(j);
		int found = mig__uffd_unregister_ours(j->uffd, j->pid);
		bool busy = false;

		if (found < 0)
			return; /* the tenant is gone */
		while (mig__uffd_events_pending(j->uffd) && !j->exited &&
		       mig__now_ns() < deadline) {
			busy = true;
			usleep(200);
		}
		if (found || busy)
			MIG_TRACE("SETTLE round=%d: %d VMAs unregistered, events %s", round, found,
				  busy ? "on their way" : "none");
		if (!found && !busy && msgs_read(j) == seen)
			return;
		if (j->exited || mig__now_ns() >= deadline)
			break;
	}
	MIG_TRACE("SETTLE gave up (%s)", j->exited ? "the tenant exited" : "rounds or time");
}

void mig__faults_stop(struct mig__job *j)
{
	if (j->fault_thread_started) {
		uint64_t one = 1;

		settle(j);
		if (!__atomic_load_n(&j->exited, __ATOMIC_ACQUIRE))
			mig__trace_leftovers(j, "job's end");
		(void)!write(j->stopfd, &one, sizeof(one));
		pthread_join(j->fault_thread, NULL);
		j->fault_thread_started = false;
	}
	j->stopfd = safe_close(j->stopfd);
	j->kickfd = safe_close(j->kickfd);
	j->epfd = safe_close(j->epfd);
}
