/*
 * engine.h - internal pieces of the migration engine shared by migrate.c
 * (the job), window.c (one window's state machine), faults.c (the fault
 * thread), workers.c (node-bound pools), staging.c and copy.c. See
 * docs/engine.md for how they fit together.
 */
#ifndef MIG_ENGINE_H
#define MIG_ENGINE_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mig.h"
#include "util.h"

#define MIG__PAGE 4096UL
#define MIG__PMD  (2UL << 20)

/* ---- workers.c: a pool of threads bound to one node ---------------- */

struct mig__pool;

/* Start nthreads threads with MPOL_BIND to node and CPU affinity to it. */
MIG_INTERNAL int mig__pool_new(int node, unsigned nthreads, struct mig__pool **ret);
MIG_INTERNAL void mig__pool_free(struct mig__pool *p);
MIG_INTERNAL unsigned mig__pool_size(const struct mig__pool *p);
MIG_INTERNAL int mig__pool_node(const struct mig__pool *p);
/*
 * Run fn(arg, i) for i in [0, n) on the pool's threads and wait. Returns
 * the first negative value fn returned, else 0.
 */
MIG_INTERNAL int mig__pool_run(struct mig__pool *p, int (*fn)(void *arg, size_t i), void *arg,
			       size_t n);
/* Bind the calling thread's memory to the set (MPOL_BIND). */
MIG_INTERNAL int mig__bind_thread(const struct mig_nodes *nodes);
/* Prefer node for the calling thread's allocations (MPOL_PREFERRED). */
MIG_INTERNAL int mig__prefer_thread(int node);

/* ---- numa.c: the edge to libnuma --------------------------------------- */

/*
 * The CPUs of node (numa_node_to_cpus). Returns 0, -ENOENT when the node
 * has none (a memory-only node), -ENODEV when it is not a node of this
 * host, -ENOMEM.
 */
MIG_INTERNAL int mig__node_cpus(int node, cpu_set_t *ret);

/* ---- staging.c ------------------------------------------------------- */

/* Page-aligned anonymous memory preferring node. Returns 0 or -errno. */
MIG_INTERNAL int mig__staging_alloc(int node, size_t len, void **ret);
MIG_INTERNAL void mig__staging_free(void *p, size_t len);
/* Prefer node for the staging memory [p, p + len) (also a shared file mapping). */
MIG_INTERNAL void mig__staging_place(void *p, size_t len, int node);

/* Staging in a file that outlives this process (docs/engine.md, "After a crash"). */
struct mig__staging {
	int fd;
	char path[512];
	char *base; /* len bytes, MAP_SHARED */
	size_t len;
};
/*
 * Create (or replace) dir/<pid>-<starttime> of len bytes and map it.
 * Returns 0 or -errno (-ESRCH: no such process).
 */
MIG_INTERNAL int mig__staging_file(const char *dir, pid_t pid, size_t len,
				   struct mig__staging *ret);
/* Unmap and remove it; fd < 0 is fine. */
MIG_INTERNAL void mig__staging_file_close(struct mig__staging *s);
/* Free bytes of node (numa_node_size64), or -errno. */
MIG_INTERNAL int64_t mig__node_free(int node);

/* ---- journal.c: crash recovery (docs/engine.md, "After a crash") ----- */

struct mig__journal;
struct mig__win;

/* Start time of pid (field 22 of /proc/PID/stat). Returns 0, -ESRCH, -errno. */
MIG_INTERNAL int mig__proc_starttime(pid_t pid, uint64_t *ret);
/*
 * Create dir/<pid>-<starttime>.journal for a job on t with windows of up
 * to max_pages pages. Returns 0, -EBUSY (a journal of an unrecovered
 * crash exists; the tenant's last error says so), or -errno.
 */
MIG_INTERNAL int mig__journal_open(const char *dir, mig_tenant *t, uint64_t max_pages,
				   struct mig__journal **ret);
/* The staging file the windows' content goes to (before the first window). */
MIG_INTERNAL void mig__journal_staging(struct mig__journal *jr, const char *path, const void *base,
				       uint64_t size);
/* Remove the journal (the job ended and left nothing to undo); NULL is fine. */
MIG_INTERNAL void mig__journal_close(struct mig__journal *jr);
/* The MOVE zap's scratch area inside the tenant. NULL jr is fine. */
MIG_INTERNAL void mig__journal_scratch(struct mig__journal *jr, uint64_t scratch, uint64_t len,
				       uint64_t dst, uint64_t dst_len);
/*
 * Room in the journal for a window's addresses (npages words) and its
 * nbitmaps bitmaps, zeroed; the window keeps its state there, so the
 * journal is always current. Returns 0, or -ENOSPC (no journal, too big,
 * or a window still in flight): then allocate elsewhere.
 */
MIG_INTERNAL int mig__journal_window_mem(struct mig__journal *jr, size_t npages, size_t nbitmaps,
					 uint64_t **ret_addr, uint64_t **ret_bits);
/* Hooks: before the window's first registration, after its last unregistration. */
MIG_INTERNAL void mig__journal_window_begin(struct mig__journal *jr, const struct mig__win *w);
MIG_INTERNAL void mig__journal_window_protocol(struct mig__journal *jr, const struct mig__win *w);
MIG_INTERNAL void mig__journal_window_end(struct mig__journal *jr);

/* ---- copy.c ------------------------------------------------------------ */

/*
 * Stage pages with engine e: one batch, then page by page through the
 * same engine for every page the batch did not mark. Returns 0 or -errno
 * of the engine as a whole (pages then simply stay unmarked).
 */
MIG_INTERNAL int mig__copy_stage(const struct mig_copy_engine *e, const struct mig_copy_req *req);

/* ---- numamaps.c: VMA memory policies ------------------------------------ */

enum mig__mpol {
	MIG__MPOL_DEFAULT,
	MIG__MPOL_LOCAL,
	MIG__MPOL_BIND,
	MIG__MPOL_PREFER,     /* prefer:N and prefer (many):SET */
	MIG__MPOL_INTERLEAVE, /* interleave and weighted interleave */
};

struct mig__policy {
	enum mig__mpol mode;
	bool has_nodes;
	struct mig_nodes nodes;
};

struct mig__vma_policy {
	uint64_t start; /* the VMA's start address */
	struct mig__policy pol;
};

/*
 * Parse the policy field of a numa_maps line (what follows the address:
 * "default", "bind:0-1", "prefer=static:2", "interleave:0,2", "local",
 * "prefer (many):0-1", "weighted interleave:0-1", then more fields).
 * Returns 0 or -EINVAL; *ret untouched on failure.
 */
MIG_INTERNAL int mig__numa_policy_parse(const char *s, struct mig__policy *ret);
/* Would the kernel let UFFDIO_COPY by our node-bound workers place pages on targets? */
MIG_INTERNAL bool mig__policy_allows(const struct mig__policy *p, const struct mig_nodes *targets);
/* Every VMA's policy from /proc/PID/numa_maps, sorted by start. */
MIG_INTERNAL int mig__vma_policies(pid_t pid, struct mig__vma_policy **ret, size_t *ret_n);

/* ---- the job and its window ---------------------------------------------- */

#define MIG__MAX_REGS 16
/* Levels of the tenant's memory cgroups with a limit that a job watches (memcg.c). */
#define MIG__MEMCG_LEVELS 8
/* Huge staging slots at most: one per 2 MiB of the largest window (16 GiB). */
#define MIG__HSLOTS_MAX 8192
/* Room kept free under a tenant's memory limit beyond what a step needs. */
#define MIG__MEMCG_SLACK (4u << 20)

/* The tenant's memory cgroup levels that have a limit (memcg.c). */
struct mig__memcg {
	struct {
		uint64_t limit;
		char *dir; /* the cgroup's directory */
		bool v1;   /* cgroup v1: memory.usage_in_bytes, total_*_file */
	} level[MIG__MEMCG_LEVELS];
	size_t n;
};

struct mig__win {
	uint64_t start; /* address of page 0 when the window was planned */
	size_t npages;
	int node;	/* target node of this window */
	uint64_t *addr; /* current address of each page (REMAP moves them) */
	/* Page states; see docs/engine.md. */
	uint64_t *invma;	  /* inside an anonymous private VMA at plan time */
	uint64_t *sel;		  /* pages this pass works on */
	uint64_t *copied;	  /* staged intact (COPIED marker) */
	uint64_t *dirty;	  /* written during the pass: marker invalid */
	uint64_t *zap;		  /* the fixed zap set of this pass */
	uint64_t *filled;	  /* zapped and put back */
	uint64_t *gone;		  /* unmapped or removed by the tenant */
	uint64_t *thp;		  /* part of a PMD THP at scan */
	uint64_t *present;	  /* present at the first scan */
	uint64_t *skipped;	  /* already on a target at the first scan */
	uint64_t *remapped;	  /* moved out of its range by a tenant mremap */
	uint64_t *pend;		  /* in the zap set, not yet taken out (zap in flight) */
	uint64_t *fallback;	  /* UFFDIO_MOVE refused it: to be zapped with madvise */
	int32_t *err;		  /* positive errno of a page that could not move */
	uint64_t *held_ns;	  /* when a held WP fault on the page was read, 0 none */
	int32_t *held_tid;	  /* the thread held there: tid, 0 unknown, -1 several */
	char *staging;		  /* page i at staging + i * MIG__PAGE */
	bool zap_fixed;		  /* WP faults on zap pages wait for the fill */
	bool hold;		  /* this pass holds WP faults on sel pages */
	bool last_pass;		  /* this pass is the window's last (max_passes) */
	bool zapping;		  /* our own injected madvise is in flight */
	struct mig_range zap_run; /* while zapping: what it zaps (its REMOVE events are ours) */
	size_t zap_run_i;	  /* while zapping: its first page, by index (a FORK reads it) */
	/*
	 * The MOVE step in flight, from zap_next to zap_done: its pages, by
	 * index [inflight_i, inflight_i + inflight_n). A fault on one of them
	 * waits for the step's outcome (the pages may be out already while
	 * pend is still set). By index, not address: between the MOVE and
	 * zap_done the fault thread may read a tenant REMAP that moves the
	 * holes the MOVE left (found by stress_chaos: an address range missed
	 * them, and the fault thread put the zero page where they went).
	 */
	size_t inflight_i, inflight_n;
	struct mig_range regs[MIG__MAX_REGS]; /* registered, current addresses */
	size_t nregs;
	/*
	 * UNMAP and REMAP events applied to regs so far: unregister_all
	 * (window.c) goes round again when one came while it ran, even if
	 * the pieces ended where they were (a run moved away and back).
	 */
	uint64_t regs_events;
	bool in_journal; /* addr and the bitmaps are the journal's memory */
	/*
	 * Whole THPs placed with one PMD move (hugemove.c), one bit per 2 MiB
	 * block of the window (page i in block i / 512): hready, the block's
	 * staged content waits as a THP on the target in the tenant's huge
	 * staging slot; placed, it went into place whole (no collapse needed).
	 * reformed: re-formed with MADV_COLLAPSE already (window.c, collapse).
	 */
	uint64_t *hready;
	uint64_t *placed;
	uint64_t *reformed;
	/*
	 * Move first, copy after (docs/engine.md): the window's pages were
	 * moved into the scratch area without write protection; page i's
	 * content is at scratch_dst + i * 4 KiB until it is filled. pulled:
	 * staging slot i holds a copy of that scratch page (not journalled:
	 * recovery reads the scratch area itself).
	 */
	bool movefirst;
	uint64_t *pulled;
	/*
	 * Move first: pages MOVE refused -EBUSY in this pass (shared with a
	 * fork child, or pinned). The next passes then run classic (passes).
	 */
	unsigned mf_busy;
	bool switched; /* began move first, went on classic */
	/*
	 * filled as it was when the fault thread last read the uffd. A FORK
	 * skips the pages filled before the read that returned it (the fork
	 * copied its page tables after them); the fault thread's own fills
	 * while it handles that read's earlier messages came after the fork.
	 */
	uint64_t *filled_read;
};

struct mig__job {
	mig_tenant *t;
	pid_t pid;
	int uffd;
	int pidfd;
	struct mig_nodes targets;
	struct mig_migrate_opts opts;
	const struct mig_copy_engine *engine;
	struct mig__pool **pools; /* one per target, in targets order */
	int *pool_nodes;
	size_t npools;
	/*
	 * The target-full check's figure per target (pools order): the node's
	 * free memory as last read, when, and what the job's passes may have
	 * taken since (window.c, target_room).
	 */
	struct mig__node_free {
		int64_t bytes;
		uint64_t read_ns, used;
	} * node_free;
	/* VMA policies read at planning (numa_maps); VMAs they bind elsewhere are skipped. */
	struct mig__vma_policy *pols;
	size_t npols;

	/*
	 * The fault thread takes it for writing around every read and message;
	 * fill workers take it for reading around each UFFDIO_COPY, so that a
	 * tenant REMOVE is never read between a worker's check and its copy.
	 */
	pthread_rwlock_t lock;
	struct mig__win *win; /* window in flight, or NULL */

	/*
	 * The threads that run our zaps inside the tenant (the zap protocol,
	 * docs/engine.md). While exec_preparing their WP faults are never
	 * held, nor any fault whose thread is unknown.
	 */
	pid_t exec_tids[8];
	size_t nexec;
	bool exec_preparing;
	/* The tenant's threads are being stopped for madvise steps: hold none. */
	bool exec_all;
	/* Zaps whose madvise steps ran with the tenant's threads running. */
	unsigned unstopped_zaps;
	uint64_t move_uncounted;    /* pages a MOVE step took out uncounted (zap.c) */
	uint64_t windows_movefirst; /* windows begun move first */
	uint64_t windows_switched;  /* of them, went on classic (MOVE refused -EBUSY) */
	bool movefirst_off;	    /* a window switched: the next ones begin classic */
	/*
	 * The tenant's memory cgroup levels with a limit (memcg.c), and the
	 * windows whose plan they changed: run classic instead of move
	 * first, THPs not staged for the PMD move, or pages left -EDQUOT,
	 * for want of room.
	 */
	struct mig__memcg memcg;
	uint64_t windows_memcg;
	uint64_t memcg_win; /* the last window counted there: its start + 1 */

	/*
	 * The MOVE zap (docs/engine.md, "The zap"): pages are moved with
	 * UFFDIO_MOVE into scratch_dst + page index * 4 KiB, a registered
	 * part of an area mapped inside the tenant for the job, whose first
	 * page (arg_page) holds the ioctl's argument.
	 */
	bool move_zap;
	uint64_t scratch, scratch_len;
	uint64_t scratch_dst, scratch_dst_len;
	uint64_t arg_page;
	/*
	 * Huge staging (hugemove.c): 2 MiB aligned, one 2 MiB slot per block
	 * of a window, inside the scratch area but not registered; 0 when
	 * whole THPs are not placed with a PMD move (no MOVE zap, or
	 * opts.no_collapse).
	 */
	uint64_t hscratch, hscratch_len;
	/*
	 * The scratch area leaves the huge slots out: the tenant had no room
	 * for them (its RLIMIT_AS), and whole THPs take the copy path.
	 */
	bool scratch_small;
	/*
	 * Why MIG_ZAP_AUTO zaps with madvise although the tenant's uffd has
	 * UFFDIO_MOVE ("" if it does not): the scratch area could not be mapped.
	 */
	char zap_fallback[MIG_ZAP_FALLBACK_MAX];
	/*
	 * 4 KiB pages went through the scratch area (a MOVE zap of a run
	 * that is no whole THP, or a slot that did not become a THP): their
	 * page tables stay after the DONTNEED that empties it (Linux before
	 * 6.14 frees none), and a THP moved into such a PMD is split. A
	 * window with THPs then gets a fresh area first (migrate.c).
	 */
	bool scratch_ptes;
	/*
	 * The scratch area's registered part may hold pages (a move-first
	 * window keeps them there until filled): the next zap session drops
	 * them first, before its zap set is taken out.
	 */
	bool scratch_dirty;
	/*
	 * What move-first sessions put there since it was last dropped:
	 * charged to the tenant, and freed by the next session before it
	 * takes anything out (the memory limit's room counts it, window.c).
	 */
	uint64_t scratch_held;
	/*
	 * The huge staging slots written since the area was last dropped
	 * (hugemove.c): charged to the tenant until a classic session's end
	 * drops them, before its fill (the memory limit's room counts them).
	 */
	uint64_t hslots[MIG__HSLOTS_MAX / 64];
	/*
	 * A move-first window could bring a page back neither by a fill nor
	 * by a MOVE: its content stays in the scratch area, which is then
	 * never dropped nor unmapped (the job fails with -EIO).
	 */
	bool scratch_keep;
	/*
	 * MISSING faults the fault thread answered in the scratch area's
	 * registered part: only a read of ours meets a hole there (the
	 * tenant never touches the area), so a pull that saw this change
	 * may have read a zero page instead of a moved one (window.c).
	 */
	uint64_t scratch_faults;

	/* Crash recovery: the journal (NULL: none) and the staging file (fd < 0: none). */
	struct mig__journal *journal;
	struct mig__staging staging;

	pthread_t fault_thread;
	bool fault_thread_started;
	pid_t fault_tid; /* set by the fault thread when it starts */
	/*
	 * opts.fault_rt (mig__faults_priority): 1 the fault thread ran
	 * SCHED_FIFO, -errno it was refused; fault_rt_now: it runs so now.
	 */
	int fault_rt;
	bool fault_rt_now;
	int epfd;
	int stopfd;	     /* eventfd that ends the fault thread */
	int kickfd;	     /* eventfd: retry the waiting faults now (mig__faults_kick) */
	bool faults_waiting; /* the fault thread has faults to retry (atomic) */
	volatile int exited; /* the tenant exited */

	/* Statistics, under lock or atomic. */
	uint64_t faults;
	uint64_t events;
	uint64_t max_stall_ns;
	uint64_t copies;
	uint64_t retried;
	uint64_t max_pass;
	uint64_t collapse_failed;
	uint64_t collapsed;	    /* THPs re-formed with MADV_COLLAPSE */
	uint64_t huge_moved;	    /* THPs placed whole with one PMD move */
	uint64_t huge_stage_failed; /* blocks whose huge staging gave no THP on the target */
	uint64_t huge_place_failed; /* blocks whose PMD move was refused or split */
	uint64_t mthp_moved;	    /* mTHPs moved whole with move_pages(2) */
	uint64_t huge_kmoved;	    /* THPs moved whole with move_pages(2) */
	/* The THP batch (thp_batch, migrate.c): its chunk and the pages it moved. */
	uint64_t kb_start, kb_end;
	uint64_t kmoved_pages; /* pages the kernel's migration moved (a rate limit counts them) */
	uint64_t *kb_bits;
	uint64_t
		large_before[MIG_FOLIO_ORDERS]; /* large folio heads per order at the first scans */
};

MIG_INTERNAL uint64_t mig__now_ns(void);
MIG_INTERNAL void mig__job_stall(struct mig__job *j, uint64_t since_ns);
/*
 * mig_migrate_opts.fault_rt: the fault thread SCHED_FIFO (rt) or a normal
 * thread again. The job thread asks for real time while a move-first
 * window is published: there a fault on a page out is served at once,
 * from its slot, and what a faulting tenant thread waited for on busy
 * CPUs was the fault thread's turn. A classic window holds its writers
 * until its zap ends whatever the fault thread's priority, and there
 * real time measured slower with no shorter holds (docs/engine.md, "The
 * fault thread"). Once refused, not asked again (j->fault_rt -errno).
 */
MIG_INTERNAL void mig__faults_priority(struct mig__job *j, bool rt);
/*
 * A fault the fault thread could not serve yet (-EAGAIN: a tenant event
 * unread, or its page in the MOVE step in flight) waits in its list and
 * is tried again after the next read, or a millisecond later. The job
 * thread calls this when what such a fault waits for is over (a zap step
 * applied, a session ended): the list is tried at once. A fault on a
 * page of the MOVE step in flight waited the whole millisecond for the
 * next try, which was most of migd's longest held writes of move-first
 * windows (docs/engine.md, "The fault thread").
 */
MIG_INTERNAL void mig__faults_kick(struct mig__job *j);

/* faults.c */
/* May a WP fault of thread tid (0: unknown) be held now? Caller holds j->lock. */
MIG_INTERNAL bool mig__may_hold(const struct mig__job *j, pid_t tid);
MIG_INTERNAL int mig__faults_start(struct mig__job *j);
MIG_INTERNAL void mig__faults_stop(struct mig__job *j);
/*
 * Fill page i of w into the tenant from staging through uffd (the
 * tenant's, or a forked child's). Caller holds j->lock. When the target
 * is full the page goes wherever the kernel can put it, and the thread's
 * policy is then set back to MPOL_BIND restore. Returns 0 (filled
 * now), 1 (was already there: woken), or -errno (-EAGAIN: retry later).
 */
MIG_INTERNAL int mig__fill_page_locked(struct mig__job *j, struct mig__win *w, int uffd, size_t i,
				       const struct mig_nodes *restore);

/*
 * Move first (caller holds j->lock): copy page i's content from the
 * scratch area into its staging slot, once (w->pulled). Only a scratch
 * page that is present is read: a hole there is registered with our own
 * uffd, and reading it would wait for the fault thread. slot: the
 * slot's pagemap word when the caller read it already (NULL: read now).
 * Returns 0 or -errno (-ENODATA: the slot is empty).
 */
MIG_INTERNAL int mig__movefirst_pull_locked(struct mig__job *j, struct mig__win *w, size_t i,
					    const struct mig_pageinfo *slot);

/* window.c: run one window through all its passes. */
MIG_INTERNAL int mig__window_run(struct mig__job *j, struct mig__win *w);
/* window.c, trace only: a LEFTOVER line for each VMA still registered (when: "job's end"). */
MIG_INTERNAL void mig__trace_leftovers(const struct mig__job *j, const char *when);
/* Contiguous runs (by current address) of the pages set in bits, up to max. */
MIG_INTERNAL size_t mig__runs_of(const struct mig__win *w, const uint64_t *bits,
				 struct mig_range *out, size_t max);
/* UFFDIO_WRITEPROTECT, retried while an event makes the mm "changing". */
MIG_INTERNAL int mig__wp_range(struct mig__job *j, uint64_t start, uint64_t len, bool wp);
/*
 * ZAP: take the pass's zap set out of the tenant (zap.c; the rules are
 * stated there). Returns 0, -ESRCH (tenant gone) or -errno; pages not
 * taken out leave the zap set as written (DIRTY).
 */
MIG_INTERNAL int mig__window_zap(struct mig__job *j, struct mig__win *w);
/*
 * Move first: MOVE the pages taken out and not filled (nor gone) back
 * from the scratch area to their current addresses, one injected MOVE a
 * page (zap.c). Pages that came back are filled. Returns 0 or -errno.
 */
MIG_INTERNAL int mig__window_move_back(struct mig__job *j, struct mig__win *w);
/*
 * Run fn(arg) with every thread of the tenant stopped but an agent's
 * helpers, through the backend (stop_others, as the madvise zap does;
 * zap.c, under the tenant's op_lock): a starved fill (window.c). Where the
 * stop fails (a thread traced by someone else) fn runs all the same;
 * *ret_stop is the stop's 0 or -errno. Returns fn's result, or -ESRCH when
 * the tenant is gone.
 */
MIG_INTERNAL int mig__window_stopped(struct mig__job *j, struct mig__win *w, int (*fn)(void *arg),
				     void *arg, int *ret_stop);
/* addr and the page states go into jr's memory when there is one (jr may be NULL). */
MIG_INTERNAL int mig__window_alloc(struct mig__journal *jr, size_t npages, struct mig__win **ret);
MIG_INTERNAL void mig__window_free(struct mig__win *w);

/* ---- hugemove.c: whole THPs placed with one PMD-sized UFFDIO_MOVE ---- */

#define MIG__PMD_PAGES (MIG__PMD / MIG__PAGE)

/*
 * After STAGE: write the staged content of every block that can be placed
 * whole (all its pages a THP at scan, staged, not written since, at their
 * PMD-aligned addresses) into its huge staging slot, from the target
 * pool's threads so that the kernel allocates a THP on the target; mark
 * the blocks whose slot holds one (w->hready). Best effort: the other
 * blocks are filled with UFFDIO_COPY as before.
 */
MIG_INTERNAL void mig__huge_stage(struct mig__job *j, struct mig__win *w, struct mig__pool *pool);

/*
 * faults.c: add r to the window's registered pieces (w->regs), kept
 * sorted and disjoint. When they are full: may_join joins the two
 * neighbours with the smallest gap (returns true), else r is left out
 * (false).
 */
MIG_INTERNAL bool mig__regs_add(struct mig__win *w, struct mig_range r, bool may_join);

/*
 * memcg.c: the tenant's memory cgroup limits, read once a job (init; the
 * levels from its cgroup up that have one), and the room left under the
 * tightest now (UINT64_MAX: no limit, or no cgroup found; 0 when a
 * level's usage cannot be read). A level with less than need left counts
 * its file pages as room too (reclaim frees them before any OOM kill).
 */
MIG_INTERNAL void mig__memcg_init(struct mig__memcg *m, pid_t pid);
MIG_INTERNAL void mig__memcg_free(struct mig__memcg *m);
MIG_INTERNAL uint64_t mig__memcg_room(const struct mig__memcg *m, uint64_t need);
/*
 * Whether the job's tenant has room for a pass that takes out len bytes
 * (move first: twice, its old pages stay in the scratch area until
 * filled) and MIG__MEMCG_SLACK, counting as room what the job holds in
 * the tenant and frees before that pass charges anything. True when no
 * level has a limit.
 */
MIG_INTERNAL bool mig__memcg_fits(const struct mig__job *j, uint64_t len, bool movefirst);
/* A window whose plan the limit changed: counted once in j->windows_memcg. */
MIG_INTERNAL void mig__memcg_held_back(struct mig__job *j, uint64_t win_start);
/*
 * Before the first FREEZE of a window: mark the pages mapped by a PMD now
 * in w->thp (the first scan, after the FREEZE, then says what they are).
 * A write between the FREEZE and that scan then un-protects its whole
 * block: un-protecting 4 KiB of a PMD would split it, and the THP could
 * no longer be placed whole.
 */
MIG_INTERNAL void mig__huge_hint(struct mig__job *j, struct mig__win *w);
/*
 * When the zap set is fixed (caller holds j->lock for writing): a whole
 * THP is taken out whole or not at all. A THP block some of whose pages
 * were written since they were staged leaves the zap set whole, all its
 * pages written (next pass), unless this is the last pass: zapping the
 * rest would fill it with 4 KiB copies and need MADV_COLLAPSE.
 */
MIG_INTERNAL void mig__huge_whole_or_none(struct mig__job *j, struct mig__win *w);
/*
 * A write fault on page i that is not held (caller holds j->lock for
 * writing): mark what counts as written and return the range to
 * un-protect - the page, or the whole THP block it lies in when the job
 * places THPs whole and no page of the block is in the zap set.
 */
MIG_INTERNAL void mig__huge_written(struct mig__job *j, struct mig__win *w, size_t i,
				    uint64_t *ret_start, uint64_t *ret_len);
/*
 * May the block at page i be placed now (caller holds j->lock): its slot
 * is ready, and every page was taken out by us, is not filled, not gone,
 * at its PMD-aligned address. *ret_src gets the slot.
 */
MIG_INTERNAL bool mig__huge_placeable(const struct mig__job *j, const struct mig__win *w, size_t i,
				      uint64_t *ret_src);
/*
 * The PMD move of the block at page i returned ret and moved bytes: its
 * pages that are back are filled, the block counts as placed when it is a
 * THP now. Caller holds j->lock for writing.
 */
MIG_INTERNAL void mig__huge_placed(struct mig__job *j, struct mig__win *w, size_t i, int64_t ret,
				   uint64_t moved);

/* Index of the page of w now at addr, or -1. */
MIG_INTERNAL ssize_t mig__window_find(const struct mig__win *w, uint64_t addr);

#endif /* MIG_ENGINE_H */
