/*
 * migrate.c - mig_migrate(): a migration job.
 *
 * A job checks its arguments, starts one worker pool per target node and
 * the fault thread, cuts the ranges into windows (window.c) and runs them
 * one after the other, then verifies placement with move_pages(2) and
 * builds the result: a per-page status like move_pages(2) and a summary.
 * Windows are aligned to the window size, a multiple of the PMD size, so
 * a fully covered THP is never cut; a large folio that a range edge cuts
 * is split first (mig_split_large_at) so the pages outside stay put.
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>

#include "bitmap.h"
#include "compat.h"
#include "crashpoint.h"
#include "engine.h"
#include "procfs.h"
#include "tenant.h"
#include "trace.h"

#define PF_PRESENT 1u
#define PF_SKIPPED 2u
#define PF_GONE	   4u
#define PF_FILLED  8u
#define PF_DONE	   16u /* its window ran */
#define PF_XDEV	   64u /* its VMA's own policy binds it elsewhere */

#define MIG__REQUIRED_FEATURES                                                            \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | \
	 UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_PAGEFAULT_FLAG_WP)

void mig_migrate_result_free(struct mig_migrate_result *r)
{
	if (!r)
		return;
	free(r->status);
	r->status = NULL;
	r->nstatus = 0;
}

static int check_args(mig_tenant *t, const struct mig_range *ranges, size_t n,
		      const struct mig_nodes *targets, const struct mig_migrate_opts *o)
{
	if (!t || !ranges || n == 0 || !targets || mig_nodes_count(targets) == 0)
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		if (ranges[k].start >= ranges[k].end || ranges[k].start % MIG__PAGE ||
		    ranges[k].end % MIG__PAGE)
			return -EINVAL;
	if (o->max_passes > 100 || o->threads > 64 || o->window > (UINT64_C(1) << 34))
		return -EINVAL;
	if (o->fill != MIG_FILL_AUTO && o->fill != MIG_FILL_COPY)
		return -EINVAL;
	for (unsigned node = 0; node < MIG_MAX_NODES; node++)
		if (mig_nodes_test(targets, node) && mig__node_free((int)node) < 0)
			return -ENODEV;
	return 0;
}

static void add_errno(struct mig_migrate_result *res, int err)
{
	for (unsigned k = 0; k < res->nerrnos; k++)
		if (res->errnos[k].err == err) {
			res->errnos[k].pages++;
			return;
		}
	if (res->nerrnos < MIG_MIGRATE_MAX_ERRNOS)
		res->errnos[res->nerrnos++] = (typeof(res->errnos[0])){ err, 1 };
}

/*
 * A run of pages of one window with the same record: its errno and flags.
 * A window's records are kept as runs once it has ended, so the job's
 * memory follows how varied its pages' outcomes are, not how many pages
 * it moved (issue 16: memory bounded by the windows in flight): a 2 MiB
 * window all moved is one run, 12 bytes instead of 2.5 KiB.
 */
struct job_run {
	uint32_t n;
	uint8_t flags;
	int32_t err;
};

/* The pages of one window that ran: [base, base + np) of the job's pages. */
struct job_win {
	size_t base, np;
	size_t nruns;
	struct job_run one;   /* the only run (nruns == 1) */
	struct job_run *runs; /* nruns > 1 */
};

static const struct job_run *job_win_runs(const struct job_win *w)
{
	return w->nruns == 1 ? &w->one : w->runs;
}

/*
 * The job's per-page records exist only for the windows that ran:
 * memory follows what is present, not the span of the ranges (a 1 TiB
 * sparse reservation with a few pages costs a few windows). A page
 * before reached that is in no window was in a window with nothing
 * present; a page from reached on was never planned (cancelled, or the
 * job failed first).
 */
struct job_pages {
	size_t total, reached;
	struct job_win *win;
	size_t nwin, cap;
};

static struct job_win *job_win_add(struct job_pages *jp, size_t base, size_t np)
{
	struct job_win *w;

	if (jp->nwin == jp->cap) {
		size_t cap = jp->cap ? 2 * jp->cap : 16;
		struct job_win *v = reallocarray(jp->win, cap, sizeof(*v));

		if (!v)
			return NULL;
		jp->win = v;
		jp->cap = cap;
	}
	w = &jp->win[jp->nwin];
	*w = (struct job_win){ .base = base, .np = np };
	jp->nwin++;
	return w;
}

/*
 * Keep the window's page records err[np], flags[np] as runs. Without
 * memory for them its pages are one run failed ENOMEM: said, not lost.
 */
static void job_win_pack(struct job_win *w, const int32_t *err, const uint8_t *flags)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < w->np; i++)
		if (i == 0 || err[i] != err[i - 1] || flags[i] != flags[i - 1])
			n++;
	w->nruns = n;
	if (n == 1) {
		w->one = (struct job_run){ (uint32_t)w->np, flags[0], err[0] };
		return;
	}
	w->runs = calloc(n, sizeof(*w->runs));
	if (!w->runs) {
		w->nruns = 1;
		w->one = (struct job_run){ (uint32_t)w->np, PF_DONE | PF_PRESENT, ENOMEM };
		return;
	}
	for (size_t i = 0; i < w->np; i++) {
		if (i && err[i] == err[i - 1] && flags[i] == flags[i - 1]) {
			w->runs[k - 1].n++;
			continue;
		}
		w->runs[k++] = (struct job_run){ 1, flags[i], err[i] };
	}
}

static void job_pages_free(struct job_pages *jp)
{
	for (size_t i = 0; i < jp->nwin; i++)
		if (jp->win[i].nruns > 1)
			free(jp->win[i].runs);
	free(jp->win);
}

/* VMAs up to this size are registered whole for a window (see run_window). */
#define MIG__WHOLE_VMA_MAX (64UL << 20)

/* Does the VMA starting at start have a policy that keeps its pages off the targets? */
static bool vma_bound_elsewhere(const struct mig__job *j, uint64_t start)
{
	size_t lo = 0, hi = j->npols;

	/* pols is sorted by start (numa_maps' order): one lookup, not a walk a VMA. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->pols[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->npols && j->pols[lo].start == start &&
	       !mig__policy_allows(&j->pols[lo].pol, &j->targets);
}

/*
 * Does the kernel make anonymous large folios smaller than a PMD (a
 * hugepages-<N>kB control below the PMD size: Linux 6.8+)? Without, the
 * per-window folio query of large_move is not worth its cost.
 */
static bool kernel_has_mthp(void)
{
	static int known = -1;
	int has = 0;

	if (__atomic_load_n(&known, __ATOMIC_RELAXED) < 0) {
		DIR *d = opendir("/sys/kernel/mm/transparent_hugepage");
		unsigned long pmd_kb = (MIG__PAGE << mig__pmd_order()) >> 10;
		struct dirent *e;

		while (d && (e = readdir(d))) {
			unsigned long kb;

			if (sscanf(e->d_name, "hugepages-%lukB", &kb) == 1 && kb < pmd_kb)
				has = 1;
		}
		if (d)
			closedir(d);
		__atomic_store_n(&known, has, __ATOMIC_RELAXED);
	}
	return __atomic_load_n(&known, __ATOMIC_RELAXED) == 1;
}

static int scratch_renew(struct mig__job *j, uint64_t window);

/*
 * Does [start, end) of the tenant hold a PMD-mapped THP? One PAGEMAP_SCAN:
 * 1 yes, 0 no, -1 not known (no PAGEMAP_SCAN before 6.7, or it failed).
 */
static int pmd_thp_in(const struct mig__job *j, uint64_t start, uint64_t end)
{
	size_t np = (end - start) / MIG__PAGE, words = MIG__BITMAP_WORDS(np);
	_cleanup_free_ uint64_t *bits = calloc(words, sizeof(uint64_t));

	if (!bits || mig__pmd_mapped(j->pid, start, np, bits, 0) != 0)
		return -1;
	for (size_t k = 0; k < words; k++)
		if (bits[k])
			return 1;
	return 0;
}

/* Whether [start, end) may hold a PMD-mapped THP: true where not known, to be safe. */
static bool has_pmd_thp(const struct mig__job *j, uint64_t start, uint64_t end)
{
	return pmd_thp_in(j, start, end) != 0;
}

/*
 * Has 4 KiB pages' going through the scratch area left page tables in it,
 * so that a THP can no longer be moved whole into it (scratch_renew)?
 */
static bool scratch_stale(const struct mig__job *j)
{
	return j->move_zap && j->hscratch && __atomic_load_n(&j->scratch_ptes, __ATOMIC_RELAXED);
}

/* Does the job move whole large folios by the kernel's migration, a chunk ahead (thp_batch)? */
static bool kernel_batches(const struct mig__job *j)
{
	return !j->opts.thp_uffd && !j->opts.no_collapse;
}

/*
 * Where the kernel's migration of the large folios of [start, start + np
 * pages) goes: the pages it may take (mask), the folio orders (lo..hi),
 * the nodes to give them in turn (nodes[nn]).
 */
struct large_req {
	uint64_t start;
	size_t np;
	const uint64_t *mask;
	unsigned lo, hi;
	const int *nodes;
	size_t nn;
};

/*
 * Fully covered large folios go to a target whole, before their window
 * runs: move_pages(2) of a folio's head migrates the whole folio into one
 * of the same order on the node (alloc_migration_target(): order =
 * folio_order(src); the kernel splits it only when no such folio can be
 * had). The kernel's migration keeps the content (the tenant's accesses
 * wait on migration entries meanwhile, one folio's copy long) and needs
 * none of the window's steps.
 *
 * mTHPs (unless no_collapse): UFFDIO_MOVE splits every large folio it
 * moves by PTEs and UFFDIO_COPY makes 4 KiB pages. THPs too, in the job's
 * batch (thp_batch; mig_migrate_opts.thp_uffd asks for the userfaultfd
 * path instead, and the window's own mTHP call): the window's way is a
 * PMD MOVE of a THP staged into a huge slot on the node (hugemove.c), two
 * copies in user space, a second THP charged to the tenant meanwhile and
 * the window's writers held; the kernel copies once, charges nothing
 * twice (the charge moves with the folio) and holds a writer only for its
 * own THP's copy (docs/engine.md, "Whole THPs by the kernel's migration",
 * issue 16).
 *
 * A candidate is the head of a large folio of an order in lo..hi whose
 * pages all lie in mask, mapped here in PFN order (fully mapped), and not
 * on its node yet, nor on another target unless the job forces (force:
 * one on its node moves with the window's own steps). The pages found on
 * the node afterwards are set in moved (the caller takes them out of their
 * window's invma); the rest (not migrated: shared with a fork child,
 * pinned, no room; or split on the way) stay for the window. A candidate
 * whose head left counts in large_before here (the window's scan no
 * longer sees it). Best effort: any failure leaves it all to the window.
 * Returns whether any page moved.
 */
static bool large_move(struct mig__job *j, const struct large_req *q, uint64_t *moved)
{
	const size_t np = q->np;
	const unsigned pmd = mig__pmd_order();
	_cleanup_free_ struct mig_pageinfo *pi = calloc(np, sizeof(*pi)), *after = NULL;
	_cleanup_free_ size_t *cand = NULL;
	_cleanup_free_ void **heads = NULL;
	_cleanup_free_ int *nodes = NULL, *status = NULL;
	size_t nc = 0;
	bool any = false;

	if (!pi || mig__query_folios(j->pid, q->start, np, pi) < 0)
		return false;
	for (size_t k = 0; k < np; k++) {
		unsigned o = pi[k].order;
		size_t n = (size_t)1 << o;
		bool whole;

		if (!(pi[k].flags & MIG_PAGE_LARGE) || !(pi[k].flags & MIG_PAGE_HEAD) ||
		    o < q->lo || o > q->hi || k + n > np)
			continue;
		whole = true;
		for (size_t i = k; i < k + n && whole; i++)
			whole = mig__bit_test(q->mask, i) && (pi[i].flags & MIG_PAGE_LARGE) &&
				pi[i].pfn == pi[k].pfn + (i - k);
		if (!whole)
			continue;
		if (!cand && !(cand = calloc(np, sizeof(*cand))))
			return false;
		cand[nc++] = k;
		k += n - 1;
	}
	if (nc == 0)
		return false;
	heads = calloc(nc, sizeof(*heads));
	nodes = calloc(nc, sizeof(*nodes));
	status = calloc(nc, sizeof(*status));
	after = calloc(np, sizeof(*after));
	if (!heads || !nodes || !status || !after)
		return false;
	/*
	 * Where are they? Those on their node already stay for the window,
	 * as do those on another target unless the job forces.
	 */
	for (size_t c = 0; c < nc; c++)
		heads[c] = (void *)(uintptr_t)(q->start + cand[c] * MIG__PAGE);
	if (numa_move_pages(j->pid, (unsigned long)nc, heads, NULL, status, 0) < 0)
		return false;
	size_t nm = 0;

	for (size_t c = 0; c < nc; c++) {
		int node = q->nodes[c % q->nn];

		if (status[c] < 0 || status[c] == node ||
		    (!j->opts.force && mig_nodes_test(&j->targets, (unsigned)status[c])))
			continue;
		cand[nm] = cand[c];
		heads[nm] = heads[c];
		nodes[nm++] = node;
	}
	if (nm == 0)
		return false;
	/*
	 * One call for them all: each call of move_pages(2) costs the kernel
	 * an lru_cache_disable() (a synchronize_rcu), which with the tenant's
	 * threads busy on every CPU took milliseconds in the guests.
	 *
	 * Only a call that returns 0 wrote every status. One that does not
	 * may have moved part of the list all the same: the kernel migrates
	 * it in groups of one node, and stops at the first group that fails
	 * (no room on its node: -ENOMEM, or a count of pages left), leaving
	 * the status of that group and of those after it unwritten, while the
	 * groups before it are on their nodes. So then every candidate is
	 * looked up: what is on its node counts as moved here, not as "on
	 * the target already" in its window (kmove:fail, a fault point,
	 * answers -ENOMEM after a call that moved them all).
	 */
	uint64_t t0 = mig__now_ns();
	long mr;

	for (size_t c = 0; c < nm; c++)
		status[c] = -EAGAIN;
	mr = numa_move_pages(j->pid, (unsigned long)nm, heads, nodes, status, MPOL_MF_MOVE);
	if (mr < 0)
		mr = -errno;
	if (mr == 0 && mig__fault_point("kmove:fail"))
		mr = -ENOMEM;
	MIG_TRACE("KMOVE %lx: %zu folios of %zu asked, move_pages %lu us r=%ld",
		  (unsigned long)q->start, nm, nc, (unsigned long)((mig__now_ns() - t0) / 1000),
		  mr);
	for (size_t c = 0; c < nm; c++) {
		size_t k = cand[c], n = (size_t)1 << pi[k].order, on = 0;

		if ((mr == 0 && status[c] != nodes[c]) ||
		    mig_query_pages(j->pid, q->start + k * MIG__PAGE, n,
				    MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, after + k) < 0)
			continue;
		for (size_t i = k; i < k + n; i++)
			if ((after[i].flags & MIG_PAGE_PRESENT) && after[i].node == nodes[c]) {
				mig__bit_set(moved, i);
				on++;
				any = true;
			}
		j->kmoved_pages += on;
		/* Its head left the window: the window's scan does not count it. */
		if (mig__bit_test(moved, k))
			j->large_before[pi[k].order]++;
		if (on == n && (after[k].flags & MIG_PAGE_HEAD) && after[k].order == pi[k].order) {
			if (pi[k].order == pmd)
				j->huge_kmoved++;
			else
				j->mthp_moved++;
		}
	}
	return any;
}

/*
 * May [start, end) hold a PMD-mapped THP? PAGEMAP_SCAN tells (6.7+);
 * without it (6.1) the tenant's smaps_rollup does for the whole process
 * (AnonHugePages 0: none anywhere), so a tenant of 4 KiB pages costs no
 * folio query (pagemap and kpageflags of the chunk) per chunk there.
 */
static bool thp_maybe(const struct mig__job *j, uint64_t start, uint64_t end)
{
	_cleanup_fclose_ FILE *f = NULL;
	char path[64], line[128];
	unsigned long kb;
	int r = pmd_thp_in(j, start, end);

	if (r >= 0)
		return r == 1;
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)j->pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			return kb > 0;
	return true; /* not known: look */
}

/*
 * The whole THPs (and, where the kernel makes them, the whole mTHPs) of
 * [start, end) of a range, ahead of its windows, by the kernel's
 * migration in one call (large_move; why one: there). Only in
 * writable anonymous private VMAs whose own policy allows a target, as
 * the windows take. The pages that reached a target are kept in
 * j->kb_bits until their window claims them (batch_claim). The chunk is
 * whole windows (KBATCH at most), so its bits cost 8 KiB a 256 MiB.
 */
#define KBATCH (256UL << 20)

static void thp_batch(struct mig__job *j, uint64_t start, uint64_t end)
{
	size_t np = (end - start) / MIG__PAGE, words = MIG__BITMAP_WORDS(np);
	_cleanup_free_ struct mig_vma *vmas = NULL;
	_cleanup_free_ uint64_t *mask = NULL;
	size_t nvmas = 0;
	bool any = false;

	free(j->kb_bits);
	j->kb_bits = NULL;
	j->kb_start = start;
	j->kb_end = end;
	if ((!kernel_has_mthp() && !thp_maybe(j, start, end)) ||
	    mig__read_vmas_range(j->pid, start, end, &vmas, &nvmas) < 0)
		return;
	mask = calloc(words, sizeof(uint64_t));
	j->kb_bits = calloc(words, sizeof(uint64_t));
	if (!mask || !j->kb_bits)
		return;
	for (size_t v = 0; v < nvmas; v++) {
		uint64_t s = MAX(start, vmas[v].start), e = MIN(end, vmas[v].end);

		if (s >= e || !mig_vma_is_anon_private(&vmas[v]) ||
		    !(vmas[v].flags & MIG_VMA_WRITE) || vma_bound_elsewhere(j, vmas[v].start))
			continue;
		for (uint64_t a = s; a < e; a += MIG__PAGE)
			mig__bit_set(mask, (a - start) / MIG__PAGE);
		any = true;
	}
	if (any) {
		/* mTHPs too where the kernel makes them (6.8+): one call for them all. */
		struct large_req q = { start,
				       np,
				       mask,
				       kernel_has_mthp() ? 2 : mig__pmd_order(),
				       mig__pmd_order(),
				       j->pool_nodes,
				       j->npools };

		any = large_move(j, &q, j->kb_bits);
	}
	MIG_TRACE("KBATCH %lx-%lx: %s", (unsigned long)start, (unsigned long)end,
		  any ? "THPs moved by the kernel" : "none moved");
	if (!any) {
		free(j->kb_bits);
		j->kb_bits = NULL;
	}
}

/*
 * The pages of window w the THP batch moved: those still present on a
 * target now are set in moved (the caller takes them out of invma). One
 * the tenant replaced since by a page elsewhere stays for the window.
 * Returns whether any was.
 */
static bool batch_claim(struct mig__job *j, struct mig__win *w, uint64_t *moved)
{
	size_t off, np = w->npages;
	_cleanup_free_ struct mig_pageinfo *pi = NULL;
	bool any = false, got = false;

	if (!j->kb_bits || w->start < j->kb_start || w->start + np * MIG__PAGE > j->kb_end)
		return false;
	off = (w->start - j->kb_start) / MIG__PAGE;
	for (size_t i = 0; i < np && !any; i++)
		any = mig__bit_test(j->kb_bits, off + i) && mig__bit_test(w->invma, i);
	if (!any || !(pi = calloc(np, sizeof(*pi))) ||
	    mig_query_pages(j->pid, w->start, np, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi) < 0)
		return false;
	for (size_t i = 0; i < np; i++)
		if (mig__bit_test(j->kb_bits, off + i) && mig__bit_test(w->invma, i) &&
		    (pi[i].flags & MIG_PAGE_PRESENT) && pi[i].node >= 0 &&
		    mig_nodes_test(&j->targets, (unsigned)pi[i].node)) {
			mig__bit_set(moved, i);
			got = true;
		}
	return got;
}

/*
 * The window's protocol: move first where the job would (movefirst) and
 * no PMD-mapped THP is left in it (thp), and only with room under the
 * tenant's memory limit: move first holds the window's old pages in the
 * tenant until they are filled, and the fill's charge could wake its
 * OOM killer (memcg.c; classic frees before it fills). A classic window
 * with a THP gets a fresh scratch area where 4 KiB pages went through
 * the old one (scratch_renew). Returns 0, or the scratch area's error
 * that ends the job.
 */
static int window_protocol(struct mig__job *j, struct mig__win *w, bool movefirst, bool thp)
{
	uint64_t len = w->npages * MIG__PAGE;
	int r;

	w->movefirst = movefirst && !thp;
	if (w->movefirst && !mig__memcg_fits(j, len, true)) {
		w->movefirst = false;
		mig__memcg_held_back(j, w->start);
	}
	j->windows_movefirst += w->movefirst;
	if (!thp || j->scratch_keep || !scratch_stale(j))
		return 0;
	r = scratch_renew(j, j->opts.window);
	if (r == -ESRCH || (r < 0 && j->opts.zap == MIG_ZAP_MOVE))
		return r;
	return 0;
}

/*
 * movefirst: the job would run this window move first; thp: it had a
 * PMD-mapped THP at planning (has_pmd_thp).
 */
static int run_window(struct mig__job *j, struct job_pages *jp, size_t base, uint64_t start,
		      uint64_t end, int node, void *staging, bool movefirst, bool thp)
{
	_cleanup_free_ struct mig_vma *vmas = NULL;
	_cleanup_free_ uint64_t *kmoved = NULL;
	int32_t *err;
	uint8_t *flags;
	struct mig__win *w = NULL;
	struct job_win *jw;
	size_t nvmas = 0, np = (end - start) / MIG__PAGE;
	int r;

	/* The window's VMAs only: a tenant may have tens of thousands. */
	r = mig__read_vmas_range(j->pid, start, end, &vmas, &nvmas);
	if (r < 0)
		return r;
	r = mig__window_alloc(j->journal, np, &w);
	if (r < 0)
		return r;
	jw = job_win_add(jp, base, np);
	/* The window's page records while it runs (one allocation: errnos, then flags). */
	err = jw ? calloc(np, sizeof(*err) + sizeof(*flags)) : NULL;
	if (!err) {
		if (jw)
			jp->nwin--;
		mig__window_free(w);
		return -ENOMEM;
	}
	flags = (uint8_t *)(err + np);
	w->start = start;
	w->node = node;
	w->staging = staging;
	for (size_t i = 0; i < np; i++)
		w->addr[i] = start + i * MIG__PAGE;
	for (size_t v = 0; v < nvmas; v++) {
		uint64_t s = MAX(start, vmas[v].start), e = MIN(end, vmas[v].end);
		/*
		 * Registered is the whole VMA, never a piece of it: a piece
		 * would split the tenant's VMA for the window, and an mremap
		 * of the tenant's across that cut would then fail with EFAULT
		 * (since Linux 6.17 after moving the part before the cut).
		 * Only the window's pages are protected and migrated.
		 */
		struct mig_range whole = { vmas[v].start, vmas[v].end };

		/*
		 * Unregistering walks the page tables of the whole range (the
		 * kernel clears write protection over it), once per window: a
		 * VMA far larger than the window is registered as the window's
		 * piece only (the cut then stands for the window's time).
		 */
		if (whole.end - whole.start > MIG__WHOLE_VMA_MAX)
			whole = (struct mig_range){ s, e };

		if (s >= e || !mig_vma_is_anon_private(&vmas[v]) ||
		    !(vmas[v].flags & MIG_VMA_WRITE)) {
			if (s < e)
				MIG_TRACE("PLANSKIP vma=%lx-%lx flags=%x: not anonymous private "
					  "writable",
					  (unsigned long)vmas[v].start, (unsigned long)vmas[v].end,
					  (unsigned)vmas[v].flags);
			continue;
		}
		/*
		 * UFFDIO_COPY allocates with the VMA's own policy before the
		 * worker's: a VMA the tenant bound elsewhere would be copied
		 * and zapped for nothing. Its pages stay, reported -EXDEV.
		 */
		if (vma_bound_elsewhere(j, vmas[v].start)) {
			for (uint64_t a = s; a < e; a += MIG__PAGE)
				flags[(a - start) / MIG__PAGE] = PF_DONE | PF_XDEV;
			continue;
		}
		/*
		 * Sorted and disjoint whatever order the VMAs came in (read one
		 * by one while the tenant changes them, they can overlap);
		 * never joined across a gap here, where a file VMA would make
		 * the REGISTER fail: past MIG__MAX_REGS a VMA is left out.
		 */
		if (!mig__regs_add(w, whole, false))
			continue;
		for (uint64_t a = s; a < e; a += MIG__PAGE)
			mig__bit_set(w->invma, (a - start) / MIG__PAGE);
	}
	/*
	 * The large folios the job's batch moved ahead by the kernel's
	 * migration (thp_batch: whole THPs, and mTHPs where the kernel makes
	 * them); the window's own fully covered mTHPs where no batch runs
	 * (thp_uffd).
	 */
	bool own = !kernel_batches(j) && !j->opts.no_collapse && kernel_has_mthp();

	if (w->nregs && (j->kb_bits || own)) {
		struct large_req q = { start, np, w->invma, 2, mig__pmd_order() - 1, &w->node, 1 };
		bool got = false;

		kmoved = calloc(MIG__BITMAP_WORDS(np), sizeof(uint64_t));
		if (kmoved) {
			/* The window's own mTHPs only where no batch took them. */
			got = batch_claim(j, w, kmoved);
			got = (own && large_move(j, &q, kmoved)) || got;
			for (size_t k = 0; got && k < MIG__BITMAP_WORDS(np); k++)
				w->invma[k] &= ~kmoved[k];
		}
		if (got) {
			bool left = false;

			for (size_t k = 0; k < MIG__BITMAP_WORDS(np) && !left; k++)
				left = w->invma[k] != 0;
			/* The kernel moved every page: nothing to register, no window to run. */
			if (!left)
				w->nregs = 0;
			else if (thp)
				thp = has_pmd_thp(j, start, end);
		}
	}
	if (w->nregs) {
		r = window_protocol(j, w, movefirst, thp);
		if (r == 0)
			r = mig__window_run(j, w);
	}
	for (size_t i = 0; i < np; i++) {
		uint8_t f = PF_DONE;

		/* Moved whole by the kernel (mthp_move): on the node, its window never saw it. */
		if (kmoved && mig__bit_test(kmoved, i)) {
			flags[i] = PF_DONE | PF_PRESENT | PF_FILLED;
			err[i] = 0;
			continue;
		}
		if (flags[i] & PF_XDEV) {
			err[i] = EXDEV;
			continue;
		}
		if (!mig__bit_test(w->invma, i)) {
			err[i] = EFAULT;
			flags[i] = f;
			continue;
		}
		if (mig__bit_test(w->present, i))
			f |= PF_PRESENT;
		if (mig__bit_test(w->skipped, i))
			f |= PF_SKIPPED;
		/* A page the tenant moved out of the range has left the job. */
		if (mig__bit_test(w->gone, i) || mig__bit_test(w->remapped, i))
			f |= PF_GONE;
		if (mig__bit_test(w->filled, i))
			f |= PF_FILLED;
		flags[i] = f;
		err[i] = w->err[i];
	}
	mig__window_free(w);
	job_win_pack(jw, err, flags);
	free(err);
	return r;
}

/*
 * Status of pages [i, e) of range rg whose windows were skipped as empty
 * (nothing present at planning): -ENOENT, as move_pages(2) says of an
 * absent page, or -EFAULT outside a writable anonymous private VMA.
 * status is the range's own (NULL: the caller asked for none).
 */
static void status_empty(const struct mig_range *rg, size_t i, size_t e, const struct mig_vma *vmas,
			 size_t nvmas, int32_t *status)
{
	uint64_t a = rg->start + i * MIG__PAGE, b = rg->start + e * MIG__PAGE;

	if (!status)
		return;
	for (size_t k = i; k < e; k++)
		status[k] = -EFAULT;
	for (size_t v = 0; v < nvmas; v++) {
		uint64_t s = MAX(a, vmas[v].start), t = MIN(b, vmas[v].end);

		if (s >= t || !mig_vma_is_anon_private(&vmas[v]) ||
		    !(vmas[v].flags & MIG_VMA_WRITE))
			continue;
		for (uint64_t x = s; x < t; x += MIG__PAGE)
			status[(x - rg->start) / MIG__PAGE] = -ENOENT;
	}
}

/*
 * Final placement of the pages of window jw, which starts at address
 * start; status: its entries in the result's (NULL: none asked for).
 */
static int verify_window(struct mig__job *j, uint64_t start, const struct job_win *jw,
			 int32_t *status, struct mig_migrate_result *res)
{
	_cleanup_free_ struct mig_pageinfo *pi = calloc(jw->np, sizeof(*pi)), *folios = NULL;
	const struct mig_pageinfo *fo = pi;
	int32_t none;
	size_t np = jw->np;
	int r;

	if (!pi)
		return -ENOMEM;
	/* One PAGEMAP_SCAN where the kernel has it (6.7+), else pagemap + kpageflags. */
	r = mig__scan_pages(j->pid, start, np, pi);
	/*
	 * PAGEMAP_SCAN sees only PMD-mapped THPs: the large folios per size
	 * (mTHPs, THPs mapped by PTEs) are read from kpageflags.
	 */
	if (r == 0) {
		folios = calloc(np, sizeof(*folios));
		if (!folios)
			return -ENOMEM;
		fo = mig__query_folios(j->pid, start, np, folios) == 0 ? folios : NULL;
	}
	if (r == 1)
		r = mig_query_pages(j->pid, start, np, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi);
	if (r == -ESRCH)
		return r;
	if (r < 0)
		for (size_t k = 0; k < np; k++)
			pi[k].node = r;
	/* Whole THPs on a target: the huge pages kept; large folios per size. */
	for (size_t k = 0; k < np; k++) {
		uint64_t a = start + k * MIG__PAGE;

		if (fo && r >= 0)
			mig__count_folio(&fo[k], res->large_after);
		if ((a & (MIG__PMD - 1)) == 0 && k + MIG__PMD / MIG__PAGE <= np &&
		    (pi[k].flags & MIG_PAGE_THP) && pi[k].node >= 0 &&
		    mig_nodes_test(&j->targets, (unsigned)pi[k].node))
			res->huge_kept++;
	}
	const struct job_run *run = job_win_runs(jw);
	size_t left = run->n;

	for (size_t k = 0; k < np; k++, left--) {
		if (!left)
			left = (++run)->n;
		uint8_t f = run->flags;
		int node = pi[k].node, err = run->err;
		bool on_target = node >= 0 && mig_nodes_test(&j->targets, (unsigned)node);
		int32_t *st = status ? &status[k] : &none;

		*st = node;
		if ((f & PF_XDEV) && node >= 0) {
			*st = -EXDEV;
			res->pages_present++;
			res->pages_failed++;
			add_errno(res, EXDEV);
			continue;
		}
		if (!(f & PF_PRESENT)) {
			res->pages_absent++;
			if (err == EFAULT)
				*st = -EFAULT;
			continue;
		}
		res->pages_present++;
		/*
		 * Gone is a page the tenant itself removed: an event said so
		 * during its window (PF_GONE), or it is absent now (-ENOENT)
		 * and not in swap or under migration, or no longer mapped or
		 * the zero page (-EFAULT). A page the kernel holds in a swap
		 * or migration entry is still the tenant's: not gone.
		 */
		if ((f & PF_GONE) || node == -EFAULT ||
		    (node == -ENOENT && !(pi[k].flags & MIG_PAGE_SWAPPED))) {
			res->pages_gone++;
		} else if (node == -ENOENT) {
			*st = -EBUSY;
			res->pages_failed++;
			add_errno(res, EBUSY);
		} else if ((f & (PF_SKIPPED | PF_FILLED)) && !err && node >= 0 && !on_target) {
			/*
			 * It was on a target when its window ended and is not now:
			 * the kernel moved it (NUMA balancing, compaction) or the
			 * tenant replaced it after its window (nothing tells which
			 * once the window is unregistered). Not moved, not gone.
			 */
			*st = -EAGAIN;
			res->pages_failed++;
			add_errno(res, EAGAIN);
		} else if (f & PF_SKIPPED) {
			res->pages_skipped++;
		} else if (!err && on_target && (f & PF_FILLED)) {
			res->pages_moved++;
		} else {
			if (!err)
				err = on_target || node < 0 ? EIO : EAGAIN;
			*st = -err;
			res->pages_failed++;
			add_errno(res, err);
		}
	}
	return 0;
}

/*
 * Final placement of every page, and the result. Only the windows that
 * ran are asked about: a sparse reservation's empty windows cost nothing.
 * Pages never planned (from jp->reached on: the job was cancelled or
 * failed first) are absent, -ECANCELED.
 */
static int verify(struct mig__job *j, const struct mig_range *ranges, size_t n,
		  struct job_pages *jp, struct mig_migrate_result *res)
{
	_cleanup_free_ struct mig_vma *vmas = NULL;
	size_t base = 0, nvmas = 0, wi = 0;
	int r;

	r = mig_read_vmas(j->pid, &vmas, &nvmas);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n; k++) {
		size_t np = (ranges[k].end - ranges[k].start) / MIG__PAGE;
		int32_t *status = res->status ? res->status + base : NULL;

		for (size_t i = 0, e; i < np; i = e) {
			const struct job_win *w = wi < jp->nwin ? &jp->win[wi] : NULL;

			if (w && w->base == base + i) {
				r = verify_window(j, ranges[k].start + i * MIG__PAGE, w,
						  status ? status + i : NULL, res);
				if (r < 0)
					return r;
				e = i + w->np;
				wi++;
				continue;
			}
			e = w && w->base < base + np ? w->base - base : np;
			if (base + i < jp->reached) {
				/* Windows with nothing present at planning. */
				e = MIN(e, jp->reached - base);
				status_empty(&ranges[k], i, e, vmas, nvmas, status);
			} else {
				for (size_t x = i; status && x < e; x++)
					status[x] = -ECANCELED;
			}
			res->pages_absent += e - i;
		}
		base += np;
	}
	return 0;
}

/*
 * Why the scratch area of len bytes could not be mapped (r), into
 * j->zap_fallback: a tenant whose RLIMIT_AS leaves less room than that
 * is the case met (a service run with `ulimit -v`), and it is named.
 */
static void scratch_why(struct mig__job *j, int r, uint64_t len)
{
	uint64_t lim, size;

	if (r == -ENOMEM && mig__proc_as_limit(j->pid, &lim, &size) == 1)
		snprintf(j->zap_fallback, sizeof(j->zap_fallback),
			 "no room in the tenant for the %llu KiB scratch area of the MOVE zap: "
			 "its address-space limit (RLIMIT_AS) is %llu KiB, %llu KiB in use",
			 (unsigned long long)len / 1024, (unsigned long long)lim / 1024,
			 (unsigned long long)size / 1024);
	else
		snprintf(j->zap_fallback, sizeof(j->zap_fallback),
			 "cannot map the %llu KiB scratch area of the MOVE zap in the tenant: %s",
			 (unsigned long long)len / 1024, strerror(-r));
}

/*
 * Set up the MOVE zap (docs/engine.md, "The zap"): an area inside the
 * tenant with one plain page for the ioctl's argument (written now, so it
 * is present before any window registers its VMA) and, 2 MiB aligned, a
 * window's worth registered with the job's uffd: UFFDIO_MOVE only moves
 * into a registered range. Returns 0, or -errno with the reason in
 * j->zap_fallback (the job then zaps with madvise unless MOVE was asked
 * for).
 */
static int scratch_setup(struct mig__job *j, uint64_t window)
{
	static const char zero[64];
	struct iovec local = { .iov_base = (void *)zero, .iov_len = sizeof(zero) };
	struct iovec remote;
	int r;

	/*
	 * Then, unregistered, a window's worth of huge staging slots
	 * (hugemove.c), unless the tenant has no room for them: then the
	 * area is asked for once more without.
	 */
	for (;;) {
		j->scratch_len = MIG__PAGE + (j->scratch_small ? 1 : 2) * window + MIG__PMD;
		r = mig_tenant_map_scratch(j->t, j->scratch_len, &j->scratch);
		if (r != -ENOMEM || j->scratch_small)
			break;
		MIG_TRACE("SCRATCH %lu bytes: -ENOMEM, again without the huge slots",
			  (unsigned long)j->scratch_len);
		j->scratch_small = true;
	}
	if (r < 0)
		goto why;
	j->arg_page = j->scratch;
	remote = (struct iovec){ .iov_base = (void *)(uintptr_t)j->arg_page,
				 .iov_len = sizeof(zero) };
	if (process_vm_writev(j->pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof(zero)) {
		r = -errno;
		goto fail;
	}
	j->scratch_dst = ALIGN_UP(j->scratch + MIG__PAGE, (uint64_t)MIG__PMD);
	j->scratch_dst_len = window;
	/*
	 * Known to the journal before it is registered: a restarted migd
	 * unregisters and unmaps it.
	 */
	mig__journal_scratch(j->journal, j->scratch, j->scratch_len, j->scratch_dst, window);
	r = mig__uffd_register(j->uffd, j->scratch_dst, window, UFFDIO_REGISTER_MODE_MISSING, NULL);
	if (r < 0)
		goto fail;
	/*
	 * Whole THPs are placed with a PMD move unless the job moves large
	 * folios as small pages. The slots must get THPs whatever the sysfs
	 * mode (madvise): a tenant VMA with THPs may have asked for them.
	 */
	if (!j->opts.no_collapse && !j->scratch_small &&
	    mig__tenant_advise(j->t, j->scratch_dst + window, window, MADV_HUGEPAGE) >= 0) {
		j->hscratch = j->scratch_dst + window;
		j->hscratch_len = window;
	}
	return 0;
fail:
	(void)!mig_tenant_unmap(j->t, j->scratch, j->scratch_len);
	j->scratch = 0;
why:
	if (r != -ESRCH)
		scratch_why(j, r, j->scratch_len);
	return r;
}

static void scratch_teardown(struct mig__job *j)
{
	if (!j->scratch)
		return;
	/* Unregistered first: the munmap then sends no UNMAP event. */
	(void)mig__uffd_unregister(j->uffd, j->scratch_dst, j->scratch_dst_len);
	/* A page a move-first window could not bring back: its only copy stays (-EIO). */
	if (!j->scratch_keep)
		(void)!mig_tenant_unmap(j->t, j->scratch, j->scratch_len);
	j->scratch_dirty = false;
	j->scratch_held = 0;
	memset(j->hslots, 0, sizeof(j->hslots));
	j->scratch = 0;
	j->hscratch = 0;
	j->hscratch_len = 0;
}

/*
 * A fresh scratch area before a window with THPs when 4 KiB pages went
 * through the old one (j->scratch_ptes). UFFDIO_MOVE moves a THP whole
 * only into an empty PMD, and MADV_DONTNEED, which empties the area after
 * each window, leaves the page tables of 4 KiB pages in place before
 * Linux 6.14 (no PT_RECLAIM): the THP moved out of the tenant was then
 * split on the way, its PMD kept a page table, and the new THP could not
 * be placed either (6.12 guest, proc_split edges: the THP inside a range
 * that starts with 4 KiB pages fell back in 3 of 3 runs). munmap frees
 * the page tables; the new area is set up like the first. Returns
 * scratch_setup's result (on failure the job zaps with madvise from now
 * on, as when the first setup fails).
 */
static int scratch_renew(struct mig__job *j, uint64_t window)
{
	int r;

	scratch_teardown(j);
	r = scratch_setup(j, window);
	__atomic_store_n(&j->scratch_ptes, false, __ATOMIC_RELAXED);
	if (r < 0)
		j->move_zap = false;
	return r;
}

static void pace(const struct mig_migrate_opts *o, uint64_t t0, uint64_t bytes)
{
	uint64_t want, now;

	if (!o->rate_limit)
		return;
	want = t0 + (uint64_t)((double)bytes / (double)o->rate_limit * 1e9);
	now = mig__now_ns();
	if (want > now) {
		struct timespec ts = { (time_t)((want - now) / 1000000000u),
				       (long)((want - now) % 1000000000u) };

		nanosleep(&ts, NULL);
	}
}

/*
 * Fill workers per target node when the caller leaves it to us: two for
 * move-first windows where this thread may run on two CPUs or more, else
 * one. A move-first window's fill (read its pages back from the scratch
 * area, then UFFDIO_COPY them into place) is more than half of its time,
 * and the job thread only waits for it meanwhile; two workers split it.
 * A classic window's fill is shorter (its staging is copied before the
 * zap), and its writers are held until it ends.
 */
static unsigned default_threads(const struct mig_migrate_opts *o)
{
	cpu_set_t set;

	if (o->protocol != MIG_WINDOW_MOVEFIRST || sched_getaffinity(0, sizeof(set), &set) < 0 ||
	    CPU_COUNT(&set) < 2)
		return 1;
	return 2;
}

/* The job proper: ranges sorted, disjoint, not adjacent (see mig_migrate). */
static int migrate_job(mig_tenant *t, const struct mig_range *ranges, size_t n,
		       const struct mig_nodes *targets, const struct mig_migrate_opts *opts,
		       mig_progress_fn progress, void *userdata,
		       struct mig_migrate_result *ret_result)
{
	struct mig_migrate_opts o = opts ? *opts : (struct mig_migrate_opts){ 0 };
	struct mig_migrate_result res = { 0 };
	struct job_pages jp = { 0 };
	struct mig__job j = { .epfd = -EBADF,
			      .stopfd = -EBADF,
			      .kickfd = -EBADF,
			      .staging = { .fd = -EBADF } };
	void **staging = NULL;
	uint64_t t0, bytes_total = 0, bytes_done = 0;
	size_t base = 0, nwin = 0;
	int r;

	if (!ret_result)
		return -EINVAL;
	r = check_args(t, ranges, n, targets, &o);
	if (r < 0)
		return r;
	if ((mig_tenant_features(t) & MIG__REQUIRED_FEATURES) != MIG__REQUIRED_FEATURES)
		return -EOPNOTSUPP;
	if (!o.window)
		o.window = MIG__PMD;
	o.window = ALIGN_UP(o.window, (uint64_t)MIG__PMD);
	if (!o.max_passes)
		o.max_passes = 10;
	if (!o.threads)
		o.threads = default_threads(&o);

	for (size_t k = 0; k < n; k++)
		jp.total += (ranges[k].end - ranges[k].start) / MIG__PAGE;
	bytes_total = jp.total * MIG__PAGE;
	/* The only array the span sizes, and only when asked for. */
	if (!o.no_status) {
		res.status = calloc(jp.total, sizeof(*res.status));
		res.nstatus = jp.total;
	}
	res.pages_total = jp.total;

	j.t = t;
	j.pid = mig_tenant_pid(t);
	j.uffd = mig_tenant_uffd(t);
	j.pidfd = mig_tenant_pidfd(t);
	j.targets = *targets;
	j.opts = o;
	j.engine = o.engine ? o.engine : mig_copy_engine_default();
	j.npools = mig_nodes_count(targets);
	j.pools = calloc(j.npools, sizeof(*j.pools));
	j.pool_nodes = calloc(j.npools, sizeof(*j.pool_nodes));
	j.node_free = calloc(j.npools, sizeof(*j.node_free));
	staging = calloc(j.npools, sizeof(*staging));
	mig__memcg_init(&j.memcg, j.pid);
	pthread_rwlockattr_t la;
	pthread_rwlockattr_init(&la);
	/* The fault thread must never starve behind a stream of fills. */
	pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&j.lock, &la);
	pthread_rwlockattr_destroy(&la);
	if ((!res.status && !o.no_status) || !j.pools || !j.pool_nodes || !j.node_free ||
	    !staging) {
		r = -ENOMEM;
		goto out;
	}
	/*
	 * The journal first: one left by a crash that was not recovered
	 * refuses the job before anything (its staging file above all) is
	 * touched.
	 */
	if (o.journal_dir) {
		r = mig__journal_open(o.journal_dir, t, o.window / MIG__PAGE, &j.journal);
		if (r < 0)
			goto out;
	}
	if (o.staging_dir) {
		r = mig__staging_file(o.staging_dir, j.pid, j.npools * o.window, &j.staging);
		if (r < 0) {
			mig__tenant_set_error("cannot create the staging file in %s: %s",
					      o.staging_dir, strerror(-r));
			goto out;
		}
		mig__journal_staging(j.journal, j.staging.path, j.staging.base, j.staging.len);
	}
	for (unsigned node = 0, k = 0; node < MIG_MAX_NODES && k < j.npools; node++) {
		if (!mig_nodes_test(targets, node))
			continue;
		j.pool_nodes[k] = (int)node;
		r = mig__pool_new((int)node, o.threads, &j.pools[k]);
		if (r < 0)
			goto out;
		if (j.staging.fd >= 0) {
			staging[k] = j.staging.base + k * o.window;
			mig__staging_place(staging[k], o.window, (int)node);
		} else {
			r = mig__staging_alloc((int)node, o.window, &staging[k]);
			if (r < 0)
				goto out;
		}
		k++;
	}
	/* A tenant without numa_maps (no NUMA in the kernel) has no VMA policies. */
	r = mig__vma_policies(j.pid, &j.pols, &j.npols);
	if (r == -ESRCH)
		goto out;
	/*
	 * The MOVE zap needs UFFDIO_MOVE, run inside the tenant (cross-mm
	 * moves are refused) while the job lock is held, by a thread that
	 * cannot fault meanwhile: the ptrace executor runs nothing but the
	 * ioctl. An agent's helper runs libc code around it, which reads
	 * libc's own data, pages a whole-process job may have just taken
	 * out: a fault there would wait for the fault thread, which waits
	 * for the lock. Agent tenants zap with madvise.
	 */
	/*
	 * The fault thread runs before anything is registered (the scratch
	 * area included) and stops only after everything is unregistered: a
	 * tenant event (a fork, a munmap) on a registered range waits until
	 * it is read, and with nobody reading the tenant would hang for good
	 * (found by stress_chaos's fork operation).
	 */
	r = mig__faults_start(&j);
	if (r < 0)
		goto out;
	if (o.zap != MIG_ZAP_MADVISE && (mig_tenant_features(t) & UFFD_FEATURE_MOVE) &&
	    t->method == MIG_ATTACH_PTRACE) {
		r = scratch_setup(&j, o.window);
		if (r == -ESRCH)
			goto out;
		j.move_zap = r >= 0;
		if (r < 0) {
			/* The madvise zap then, for MIG_ZAP_AUTO; the others refuse below. */
			MIG_TRACE("SCRATCH failed %d: %s", r, j.zap_fallback);
			r = 0;
		}
	}
	if (o.zap == MIG_ZAP_MOVE && !j.move_zap) {
		if (!(mig_tenant_features(t) & UFFD_FEATURE_MOVE))
			mig__tenant_set_error("MIG_ZAP_MOVE: the tenant's userfaultfd has no "
					      "UFFDIO_MOVE (Linux 6.8+)");
		else if (t->method != MIG_ATTACH_PTRACE)
			mig__tenant_set_error("MIG_ZAP_MOVE: a tenant attached through its agent "
					      "zaps with madvise (docs/engine.md, \"The zap\")");
		else
			mig__tenant_set_error("MIG_ZAP_MOVE: %s", j.zap_fallback);
		r = -EOPNOTSUPP;
		goto out;
	}
	if (o.protocol == MIG_WINDOW_MOVEFIRST && !j.move_zap) {
		if (j.zap_fallback[0])
			mig__tenant_set_error("MIG_WINDOW_MOVEFIRST needs the MOVE zap: %s",
					      j.zap_fallback);
		else
			mig__tenant_set_error(
				"MIG_WINDOW_MOVEFIRST needs the MOVE zap: UFFDIO_MOVE "
				"(Linux 6.8+) and a tenant attached with ptrace");
		r = -EOPNOTSUPP;
		goto out;
	}

	t0 = mig__now_ns();
	for (size_t k = 0; k < n && r >= 0; k++) {
		/* Split large folios the range edges cut; fully covered ones stay. */
		/* Best effort: an unsplit folio only wastes memory, never data. */
		int split = 0;

		if (ranges[k].start % MIG__PMD)
			split = mig_split_large_at(j.pid, j.pidfd, ranges[k].start);
		if (ranges[k].end % MIG__PMD)
			split = mig_split_large_at(j.pid, j.pidfd, ranges[k].end);
		(void)split;
		/*
		 * Windows with nothing present are never registered nor frozen:
		 * a sparse reservation of a JVM or Go heap or a sanitizer's
		 * shadow (64 GiB to TiB, mostly holes) would otherwise take
		 * millions of windows. A page that appears in such a window
		 * after this scan is left where the tenant put it.
		 */
		_cleanup_free_ struct mig_range *runs = NULL;
		size_t nruns = 0, ri = 0;

		r = mig__present_runs(j.pid, ranges[k].start, ranges[k].end, o.window, &runs,
				      &nruns);
		if (r < 0)
			break;
		for (uint64_t s = ranges[k].start; s < ranges[k].end;) {
			uint64_t e = MIN(ALIGN_DOWN(s, o.window) + o.window, ranges[k].end);
			size_t pool = nwin % j.npools;

			while (ri < nruns && runs[ri].end <= s)
				ri++;
			if (ri == nruns || runs[ri].start >= e) {
				uint64_t next =
					ri == nruns ? ranges[k].end
						    : MAX(e, ALIGN_DOWN(runs[ri].start, o.window));

				bytes_done += next - s;
				s = next;
				jp.reached = base + (s - ranges[k].start) / MIG__PAGE;
				continue;
			}

			if ((o.cancel && *o.cancel) ||
			    __atomic_load_n(&j.exited, __ATOMIC_ACQUIRE)) {
				r = j.exited ? -ESRCH : -ECANCELED;
				break;
			}
			/*
			 * Whole THPs by the kernel, a chunk of windows ahead
			 * (thp_batch); one window at a time under a rate limit,
			 * so that pace() spaces them as it spaces the copies.
			 */
			if (kernel_batches(&j) && (s < j.kb_start || s >= j.kb_end)) {
				uint64_t nw =
					o.rate_limit ? 1 : MAX(KBATCH / o.window, (uint64_t)1);

				thp_batch(&j, s,
					  MIN(ranges[k].end,
					      ALIGN_DOWN(s, o.window) + nw * o.window));
			}
			/*
			 * Move first where asked for, except for a window with
			 * a PMD-mapped THP the kernel did not move whole
			 * (run_window): whole THPs keep the classic window and
			 * move by PMD (docs/engine.md, "Move first"). After a
			 * window met MOVE's -EBUSY (a fork), the next ones
			 * begin classic.
			 */
			bool thp = (scratch_stale(&j) || o.protocol == MIG_WINDOW_MOVEFIRST) &&
				   has_pmd_thp(&j, s, e);
			bool movefirst = o.protocol == MIG_WINDOW_MOVEFIRST && j.move_zap &&
					 !j.movefirst_off;

			r = run_window(&j, &jp, base + (s - ranges[k].start) / MIG__PAGE, s, e,
				       j.pool_nodes[pool], staging[pool], movefirst, thp);
			if (r < 0 && __atomic_load_n(&j.exited, __ATOMIC_ACQUIRE)) {
				MIG_TRACE("JOB window %lx: %d, the tenant exited: -ESRCH",
					  (unsigned long)s, r);
				r = -ESRCH;
			}
			if (r < 0)
				break;
			jp.reached = base + (e - ranges[k].start) / MIG__PAGE;
			nwin++;
			bytes_done += e - s;
			pace(&o, t0, (j.copies + j.kmoved_pages) * MIG__PAGE);
			if (progress) {
				struct mig_migrate_progress p = {
					.bytes_done = bytes_done,
					.bytes_total = bytes_total,
					.windows = nwin,
				};

				/*
				 * Cancelled after this window: end the job here
				 * (the next window must not overwrite r).
				 */
				if (progress(&p, userdata)) {
					r = -ECANCELED;
					break;
				}
			}
			s = e;
		}
		base += (ranges[k].end - ranges[k].start) / MIG__PAGE;
	}
	scratch_teardown(&j);
	mig__faults_stop(&j);
	res.elapsed_ns = mig__now_ns() - t0;
	if (r == -ESRCH)
		goto out;
	{
		int q = verify(&j, ranges, n, &jp, &res);

		if (q < 0) {
			r = q;
			goto out;
		}
	}
	res.windows = nwin;
	res.passes = j.max_pass;
	res.faults = j.faults;
	res.events = j.events;
	res.pages_retried = j.retried;
	res.pages_copied = j.copies;
	res.max_stall_us = j.max_stall_ns / 1000;
	res.fault_rt = j.fault_rt;
	res.zaps_unstopped = j.unstopped_zaps;
	res.move_uncounted = j.move_uncounted;
	res.windows_movefirst = j.windows_movefirst;
	res.windows_switched = j.windows_switched;
	res.windows_memcg = j.windows_memcg;
	res.zap = nwin ? (j.move_zap ? MIG_ZAP_MOVE : MIG_ZAP_MADVISE) : MIG_ZAP_AUTO;
	memcpy(res.zap_fallback, j.zap_fallback, sizeof(res.zap_fallback));
	memcpy(res.large_before, j.large_before, sizeof(res.large_before));
	mig__folio_totals(res.large_before, &res.thp_before, &res.mthp_before);
	mig__folio_totals(res.large_after, &res.thp_after, &res.mthp_after);
	res.huge_moved = j.huge_moved;
	res.huge_collapsed = j.collapsed;
	res.huge_collapse_failed = j.collapse_failed;
	res.huge_fallback = j.huge_stage_failed + j.huge_place_failed;
	res.mthp_moved = j.mthp_moved;
	res.huge_kmoved = j.huge_kmoved;
	res.bytes_per_sec =
		res.elapsed_ns ? (double)res.pages_moved * MIG__PAGE * 1e9 / (double)res.elapsed_ns
			       : 0;
	if (r >= 0 || r == -ECANCELED) {
		*ret_result = res;
		res.status = NULL;
	}
out:
	scratch_teardown(&j);
	mig__faults_stop(&j);
	/* Every window undid what it did and every event was read: nothing is left to recover. */
	mig__journal_close(j.journal);
	for (size_t k = 0; j.pools && k < j.npools; k++) {
		mig__pool_free(j.pools[k]);
		if (staging && j.staging.fd < 0)
			mig__staging_free(staging[k], o.window);
	}
	mig__staging_file_close(&j.staging);
	pthread_rwlock_destroy(&j.lock);
	free(j.pols);
	free(j.kb_bits);
	free(j.pools);
	free(j.pool_nodes);
	free(j.node_free);
	mig__memcg_free(&j.memcg);
	free(staging);
	job_pages_free(&jp);
	free(res.status);
	return r;
}

static int range_cmp(const void *a, const void *b)
{
	const struct mig_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Sort and merge ranges: overlapping, repeated and adjacent ranges become
 * one, so that a page asked for twice is moved, counted and verified once.
 * *ret is malloc'd. Returns how many merged ranges, or -ENOMEM.
 */
static ssize_t merge_ranges(const struct mig_range *ranges, size_t n, struct mig_range **ret)
{
	struct mig_range *m = malloc(n * sizeof(*m));
	size_t k = 0;

	if (!m)
		return -ENOMEM;
	memcpy(m, ranges, n * sizeof(*m));
	qsort(m, n, sizeof(*m), range_cmp);
	for (size_t i = 1; i < n; i++) {
		if (m[i].start <= m[k].end)
			m[k].end = MAX(m[k].end, m[i].end);
		else
			m[++k] = m[i];
	}
	*ret = m;
	return (ssize_t)k + 1;
}

/* Index of page addr in the merged ranges m[nm] (it is in one of them). */
static size_t merged_index(const struct mig_range *m, size_t nm, const size_t *first, uint64_t addr)
{
	size_t lo = 0, hi = nm;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (m[mid].start <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return first[lo] + (addr - m[lo].start) / MIG__PAGE;
}

int mig_migrate(mig_tenant *t, const struct mig_range *ranges, size_t n,
		const struct mig_nodes *targets, const struct mig_migrate_opts *opts,
		mig_progress_fn progress, void *userdata, struct mig_migrate_result *ret_result)
{
	_cleanup_free_ struct mig_range *m = NULL;
	_cleanup_free_ size_t *first = NULL;
	struct mig_migrate_result res;
	size_t asked = 0, i = 0;
	int32_t *status;
	ssize_t nm;
	int r;

	if (!ret_result)
		return -EINVAL;
	r = check_args(t, ranges, n, targets, opts ? opts : &(struct mig_migrate_opts){ 0 });
	if (r < 0)
		return r;
	nm = merge_ranges(ranges, n, &m);
	if (nm < 0)
		return (int)nm;
	for (size_t k = 0; k < n; k++)
		asked += (ranges[k].end - ranges[k].start) / MIG__PAGE;
	{
		uint64_t merged = 0;

		for (size_t k = 0; k < (size_t)nm; k++)
			merged += (m[k].end - m[k].start) / MIG__PAGE;
		/*
		 * No page asked for twice: the ranges go to the job as they
		 * are (a whole-process job of a sparse 256 GiB reservation
		 * must not pay for a remapped copy of its status).
		 */
		if (merged == asked)
			return migrate_job(t, ranges, n, targets, opts, progress, userdata,
					   ret_result);
	}
	first = calloc((size_t)nm, sizeof(*first));
	if (!first)
		return -ENOMEM;
	for (size_t k = 0; k < (size_t)nm; k++)
		first[k] = k ? first[k - 1] + (m[k - 1].end - m[k - 1].start) / MIG__PAGE : 0;
	r = migrate_job(t, m, (size_t)nm, targets, opts, progress, userdata, &res);
	if (r < 0 && r != -ECANCELED)
		return r;
	if (!res.status) {
		/* No status asked for (opts->no_status): the counts are the merged ranges'. */
		*ret_result = res;
		return r;
	}
	/* The status follows the ranges as asked, repeats included. */
	status = calloc(asked, sizeof(*status));
	if (!status) {
		mig_migrate_result_free(&res);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++)
		for (uint64_t a = ranges[k].start; a < ranges[k].end; a += MIG__PAGE)
			status[i++] = res.status[merged_index(m, (size_t)nm, first, a)];
	free(res.status);
	res.status = status;
	res.nstatus = asked;
	*ret_result = res;
	return r;
}
