/*
 * mig.h - public interface of libmig, the engine behind migd.
 *
 * libmig moves the anonymous memory of running processes ("tenants")
 * between NUMA nodes from user space with userfaultfd. It is usable
 * without the daemon. Every fallible call returns an int: >= 0 on
 * success, -errno on failure. Output parameters are named ret_* and are
 * left untouched on failure. The library never logs above debug level.
 *
 * Sections: helpers (parsing, errno names) - tenants (attach, in-tenant
 * operations, detach) - placement and /proc readers - migration.
 * Each section is declared as the code behind it lands.
 */
#ifndef MIG_H
#define MIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIG_API __attribute__((visibility("default")))
#define MIG_WUR __attribute__((warn_unused_result))

#define MIG_VERSION "0.1.0"

/* ---------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------- */

/* Highest NUMA node number + 1 that libmig handles. */
#define MIG_MAX_NODES 1024

/* A half-open address range [start, end). */
struct mig_range {
	uint64_t start;
	uint64_t end;
};

/* A set of NUMA nodes. */
struct mig_nodes {
	uint64_t bits[MIG_MAX_NODES / 64];
};

/*
 * Parse a size: decimal or 0x-hex bytes with an optional binary suffix
 * K, M, G, T (also KiB/MiB/GiB/TiB and KB/MB/...; all powers of 1024).
 * Returns 0, -EINVAL on malformed input, -ERANGE on overflow.
 */
MIG_API MIG_WUR int mig_parse_size(const char *s, uint64_t *ret_size);

/*
 * Parse an address range "START-END" (END exclusive) or "START+LEN", each
 * number decimal or 0x-hex, LEN may carry a size suffix. Returns 0,
 * -EINVAL when malformed or empty (END <= START), -ERANGE on overflow.
 */
MIG_API MIG_WUR int mig_parse_range(const char *s, struct mig_range *ret_range);

/*
 * Parse a node list in numactl syntax: "0", "0-3", "0-1,3", "all" is not
 * accepted (the caller knows which nodes exist). Returns 0, -EINVAL when
 * malformed or empty, -ERANGE when a node is >= MIG_MAX_NODES.
 */
MIG_API MIG_WUR int mig_parse_nodes(const char *s, struct mig_nodes *ret_nodes);

/*
 * Format a node set back into numactl syntax ("0-1,3"). Writes at most
 * size bytes including the NUL. Returns the length it needed (like
 * snprintf), or -EINVAL.
 */
MIG_API int mig_format_nodes(const struct mig_nodes *nodes, char *buf, size_t size);

static inline void mig_nodes_set(struct mig_nodes *n, unsigned node)
{
	n->bits[node / 64] |= UINT64_C(1) << (node % 64);
}

static inline bool mig_nodes_test(const struct mig_nodes *n, unsigned node)
{
	return node < MIG_MAX_NODES && (n->bits[node / 64] >> (node % 64)) & 1;
}

/* The NUMA nodes of this host now (libnuma's view of sysfs). */
MIG_API void mig_nodes_online(struct mig_nodes *ret_nodes);

/* Number of nodes in the set. */
MIG_API unsigned mig_nodes_count(const struct mig_nodes *nodes);

/* Lowest node in the set, or -ENOENT when empty. */
MIG_API int mig_nodes_first(const struct mig_nodes *nodes);

/*
 * The symbolic name of an errno value, "ENOMEM" for ENOMEM (sign ignored).
 * Never NULL: unknown values give "E?".
 */
MIG_API const char *mig_errno_name(int err);

/* ---------------------------------------------------------------------
 * /proc readers and placement (libmig/maps.c, pagemap.c, placement.c)
 * ------------------------------------------------------------------- */

/* VMA flags, from /proc/PID/maps. */
#define MIG_VMA_READ	(1u << 0)
#define MIG_VMA_WRITE	(1u << 1)
#define MIG_VMA_EXEC	(1u << 2)
#define MIG_VMA_PRIVATE (1u << 3) /* 'p', not 's' */
#define MIG_VMA_ANON	(1u << 4) /* no backing file (inode 0) */
#define MIG_VMA_HEAP	(1u << 5) /* [heap] */
#define MIG_VMA_STACK	(1u << 6) /* [stack] or [stack:TID] */
#define MIG_VMA_SPECIAL (1u << 7) /* [vdso], [vvar], [vsyscall], ... never migratable */

struct mig_vma {
	uint64_t start, end; /* [start, end) */
	uint64_t offset;     /* file offset / pgoff * page size */
	unsigned flags;	     /* MIG_VMA_* */
	char name[64];	     /* "[heap]", "[anon:foo]", file path (truncated), "" */
};

/* True for a VMA migd may migrate: anonymous, private, not special. */
static inline bool mig_vma_is_anon_private(const struct mig_vma *v)
{
	return (v->flags & (MIG_VMA_ANON | MIG_VMA_PRIVATE)) == (MIG_VMA_ANON | MIG_VMA_PRIVATE) &&
	       !(v->flags & MIG_VMA_SPECIAL);
}

/*
 * Read /proc/PID/maps. *ret_vmas is malloc'd (free() it). Returns 0,
 * -ESRCH if the process is gone, -EACCES/-EPERM, -ENOMEM.
 */
MIG_API MIG_WUR int mig_read_vmas(pid_t pid, struct mig_vma **ret_vmas, size_t *ret_n);

/*
 * Per-page flags. Which large folio a page belongs to comes from
 * /proc/kpageflags and needs CAP_SYS_ADMIN (without it pagemap gives no
 * PFN, and only PRESENT, SWAPPED and EXCLUSIVE are known). The kernel's
 * KPF_THP is set for any anonymous large folio - PMD-sized THPs and mTHPs
 * alike (6.8+ "we indicate any THPs here, not just PMD-sized ones"; 6.1
 * has no mTHP) - so libmig tells the two apart by the folio's order, which
 * it reads from the compound head/tail flags of the neighbouring PFNs.
 */
#define MIG_PAGE_PRESENT (1u << 0)
#define MIG_PAGE_SWAPPED (1u << 1)
/* Part of a PMD-sized THP (order == PMD order); it may be PTE-mapped. */
#define MIG_PAGE_THP	   (1u << 2)
#define MIG_PAGE_LARGE	   (1u << 3) /* part of any large anon folio: PMD THP or mTHP */
#define MIG_PAGE_HEAD	   (1u << 4) /* head page of a large folio */
#define MIG_PAGE_ZERO	   (1u << 5) /* the shared zero page (or huge zero page) */
#define MIG_PAGE_EXCLUSIVE (1u << 6) /* pagemap "exclusively mapped" */
#define MIG_PAGE_UFFD_WP   (1u << 7) /* write-protected with userfaultfd */

/*
 * Folio orders counted per size in the results (large_before[] and
 * large_after[] of mig_migrate and mig_relocate): index o is a folio of
 * 2^o pages. Anonymous large folios have order 2 (16 KiB mTHP) up to the
 * PMD order (9 with 4 KiB pages, 13 with arm64's 64 KiB pages); a larger
 * order is counted in the last entry.
 */
#define MIG_FOLIO_ORDERS 16

struct mig_pageinfo {
	uint64_t pfn;	/* 0 when unknown (no CAP_SYS_ADMIN) or not present */
	uint32_t flags; /* MIG_PAGE_* */
	int32_t node;	/* NUMA node, or -errno from move_pages (-ENOENT absent) */
	/* Folio order of a LARGE page (4 = 64 KiB, 9 = 2 MiB); 0 small or unknown. */
	uint8_t order;
};

#define MIG_QUERY_PAGEMAP (1u << 0) /* present/swapped/pfn (+ kpageflags when readable) */
#define MIG_QUERY_NODE	  (1u << 1) /* node of each page via move_pages(2) */

/*
 * Describe npages pages of pid starting at start (page aligned) into
 * out[npages]. what is a mask of MIG_QUERY_*; without MIG_QUERY_NODE node
 * is -ENODATA, without MIG_QUERY_PAGEMAP pfn, flags and order are 0.
 * Nothing is faulted in: pages reported absent stay absent. Returns 0,
 * -ESRCH (no such process), -EINVAL (unaligned start, npages 0, overflow,
 * unknown what bits), -EPERM/-EACCES (not allowed to read its pagemap or
 * ask move_pages), -ENOMEM. out may be partly written on failure.
 */
MIG_API MIG_WUR int mig_query_pages(pid_t pid, uint64_t start, size_t npages, unsigned what,
				    struct mig_pageinfo *out);

struct mig_placement {
	uint64_t node_pages[MIG_MAX_NODES]; /* present pages per node */
	uint64_t absent;		    /* pages of the ranges not present */
	uint64_t huge;			    /* present pages that belong to a large folio */
	uint64_t total;			    /* pages looked at */
};

/*
 * Placement of the anonymous private memory of pid inside the given ranges
 * (n == 0: every anonymous private VMA). The ranges (page aligned, not
 * overlapping) are intersected with the anonymous private VMAs; pages that
 * are not present, swapped out or the zero page count as absent. Reading
 * 1 GiB takes about 0.1 s (tests/bench/placement). Returns 0, -ESRCH,
 * -EPERM/-EACCES, -EINVAL (unaligned or empty range), -ENOMEM; *ret is
 * untouched on failure.
 */
MIG_API MIG_WUR int mig_placement(pid_t pid, const struct mig_range *ranges, size_t n,
				  struct mig_placement *ret);

/*
 * Split the large folio (PMD THP or mTHP) that straddles the page boundary
 * at addr - the folio holding both the page before addr and the page at
 * addr - so that a range starting or ending at addr cuts no large folio.
 * It uses a remote process_madvise(pidfd, one page, MADV_COLD), which
 * splits a partly covered large folio and leaves content and node as they
 * are (docs/large-folios.md), then checks through kpageflags that the
 * boundary is clean. A folio that does not straddle addr is left alone, so
 * fully covered THPs stay huge. Needs CAP_SYS_ADMIN (PFNs, kpageflags).
 * Returns 1 when a folio was split, 0 when there was nothing to split;
 * -EINVAL (addr not page aligned, bad pidfd), -ESRCH, -EPERM (no PFNs),
 * -EBUSY (the kernel left the folio whole: shared after fork, locked, or
 * the VMA is mlocked), or process_madvise's -errno.
 */
MIG_API MIG_WUR int mig_split_large_at(pid_t pid, int pidfd, uint64_t addr);

/*
 * Re-form THPs in range with a remote process_madvise(MADV_COLLAPSE), e.g.
 * after a UFFDIO_COPY fill that left 4 KiB pages. The range should cover
 * whole PMD-aligned blocks. Returns 0; -EINVAL (bad range, or the kernel
 * has no MADV_COLLAPSE), -EAGAIN, -ENOMEM (no huge page to collapse into),
 * -ESRCH, or another -errno from process_madvise.
 */
MIG_API MIG_WUR int mig_collapse(int pidfd, const struct mig_range *range);

/*
 * The parts of ranges[n] (page aligned) of pid that hold no page of a
 * large folio (PMD THP or mTHP), for a migration that must leave large
 * folios where they are (huge_pages = skip). Parts outside anonymous
 * private VMAs pass through unchanged. *ret_ranges is malloc'd (free it;
 * NULL when nothing is left), *ret_skipped gets the pages left out and,
 * unless ret_folios is NULL, ret_folios[MIG_FOLIO_ORDERS] the large
 * folios they belong to per order (as large_before[]: a folio a range
 * edge cuts counts once, for its pages inside; a folio whose order cannot
 * be told is in *ret_skipped only). Returns 0; -EINVAL (bad ranges),
 * -EPERM (no CAP_SYS_ADMIN: folios cannot be seen), -ESRCH, -ENOMEM.
 */
MIG_API MIG_WUR int mig_ranges_without_large(pid_t pid, const struct mig_range *ranges, size_t n,
					     struct mig_range **ret_ranges, size_t *ret_n,
					     uint64_t *ret_skipped, uint64_t *ret_folios);

/* ---------------------------------------------------------------------
 * Tenants (libmig/tenant.c, backend_ptrace.c, agentconn.c, uffd.c)
 * ------------------------------------------------------------------- */

typedef struct mig_tenant mig_tenant;

enum mig_attach_method {
	MIG_ATTACH_AUTO = 0, /* agent if one is connected, else ptrace */
	MIG_ATTACH_PTRACE,
	MIG_ATTACH_AGENT,
};

struct mig_attach_opts {
	enum mig_attach_method method;
	int agent_fd; /* MIG_ATTACH_AGENT/AUTO: connected agent socket, or -1 */
	/*
	 * Never hand /dev/userfaultfd to the tenant (ptrace recvmsg or the
	 * agent's CREATE): a tenant whose own userfaultfd(2) is refused then
	 * cannot be attached (-EPERM with the reason).
	 */
	bool no_device;
};

/*
 * Attach to a running process: create a full-mode userfaultfd inside it
 * (never UFFD_USER_MODE_ONLY), keep the tenant's copy at a high
 * close-on-exec fd, copy it here with pidfd_getfd, UFFDIO_API with the
 * features migd needs. Returns 0; -ESRCH (no such process / exited),
 * -EPERM/-EACCES (not allowed), -EBUSY (already traced), -EOPNOTSUPP
 * (architecture or kernel lacks what is needed), -ENOMEM.
 * A tenant in a job-control stop stays stopped: ptrace attach works on it;
 * the agent cannot answer, so agent attach gives -EAGAIN at once. If the
 * main thread has exited, ptrace works through another live thread
 * (copying the uffd out then needs PIDFD_THREAD, Linux 6.9; older kernels
 * give -EOPNOTSUPP). A uffd the agent kept across a migd restart is reused
 * with the features it had (read from fdinfo), without a second UFFDIO_API.
 */
MIG_API MIG_WUR int mig_tenant_attach(pid_t pid, const struct mig_attach_opts *opts,
				      mig_tenant **ret_tenant);

/*
 * Unregister every range migd registered, close the tenant's fd, free t.
 * Afterwards the tenant's maps and fd table are as before attach.
 * Returns 0 or the first -errno met (t is freed in every case; NULL is ok).
 */
MIG_API int mig_tenant_detach(mig_tenant *t);

MIG_API pid_t mig_tenant_pid(const mig_tenant *t);
MIG_API int mig_tenant_pidfd(const mig_tenant *t);
/* migd's copy of the tenant's userfaultfd. */
MIG_API int mig_tenant_uffd(const mig_tenant *t);
/* UFFD_FEATURE_* the kernel granted at UFFDIO_API. */
MIG_API uint64_t mig_tenant_features(const mig_tenant *t);
MIG_API enum mig_attach_method mig_tenant_method(const mig_tenant *t);

/* In-tenant operations (ptrace injection or agent, same semantics). */
/* madvise(MADV_DONTNEED) each run inside the tenant. Returns 0 or -errno. */
MIG_API MIG_WUR int mig_tenant_zap(mig_tenant *t, const struct mig_range *runs, size_t n);
/* mmap an anonymous private read-write area inside the tenant. */
MIG_API MIG_WUR int mig_tenant_map_scratch(mig_tenant *t, size_t len, uint64_t *ret_addr);
MIG_API MIG_WUR int mig_tenant_unmap(mig_tenant *t, uint64_t addr, size_t len);
/*
 * UFFDIO_MOVE inside the tenant (the kernel refuses it from another mm).
 * *ret_moved gets the bytes moved, also on partial failure. Returns 0,
 * -EOPNOTSUPP (no UFFD_FEATURE_MOVE), or the ioctl's -errno.
 */
MIG_API MIG_WUR int mig_tenant_move(mig_tenant *t, uint64_t dst, uint64_t src, uint64_t len,
				    uint64_t mode, uint64_t *ret_moved);

/*
 * Register [start, start+len) (page aligned) on the tenant's uffd with
 * UFFDIO_REGISTER_MODE_* and record it, so detach unregisters it.
 * *ret_ioctls (may be NULL) gets the ioctls allowed on it. Returns 0 or
 * the ioctl's -errno (-EINVAL: not a whole VMA range / unaligned, -EBUSY).
 */
MIG_API MIG_WUR int mig_tenant_register(mig_tenant *t, uint64_t start, uint64_t len, uint64_t mode,
					uint64_t *ret_ioctls);
/* Unregister and forget [start, start+len). Returns 0 or -errno. */
MIG_API MIG_WUR int mig_tenant_unregister(mig_tenant *t, uint64_t start, uint64_t len);

/* The uffd's fd number inside the tenant (high, close-on-exec). */
MIG_API int mig_tenant_fd_in_tenant(const mig_tenant *t);
/* UFFDIO_API ioctls mask. */
MIG_API uint64_t mig_tenant_ioctls(const mig_tenant *t);
/*
 * Total nanoseconds the tenant's threads were held stopped by ptrace since
 * attach; *ret_max_ns (may be NULL) gets the longest single stop. With the
 * agent 0, unless the agent could not stop the threads for a zap (one
 * blocks its signal, or the host has its own handler for it) and ptrace
 * did (tests/integration/migrate_agent_stop.c).
 */
MIG_API uint64_t mig_tenant_stop_ns(const mig_tenant *t, uint64_t *ret_max_ns);

/*
 * A sentence saying why the calling thread's last mig_tenant_* call
 * failed ("pid 42 is already traced by pid 40 ..."), or "" . Thread-local;
 * valid until the next call on this thread.
 */
MIG_API const char *mig_tenant_last_error(void);

/*
 * Threads: in-tenant operations are serialised per tenant and may be
 * called from any thread, while another thread reads the uffd. They MUST
 * be: a zap or unmap of a range registered on this uffd raises a REMOVE or
 * UNMAP event, and the tenant (and so the call) blocks until that event
 * is read from mig_tenant_uffd().
 */

/*
 * The agent (libmig-agent.so, LD_PRELOAD or linked into the tenant)
 * connects to a unix socket (env MIGD_AGENT_SOCKET, default
 * MIG_AGENT_SOCKET_DEFAULT). mig_agent_listen creates that socket
 * (SOCK_SEQPACKET, mode 0666, a stale socket file is replaced) and
 * returns its listening fd. Returns 0 or -errno.
 */
#define MIG_AGENT_SOCKET_DEFAULT "/run/migd/agent.sock"
MIG_API MIG_WUR int mig_agent_listen(const char *path, int *ret_fd);

/*
 * Accept one agent connection and read its hello (waits up to timeout_ms
 * for it). *ret_pid gets the agent's process (from SO_PEERCRED, in our pid
 * namespace), *ret_conn_fd the connection to put in
 * mig_attach_opts.agent_fd. Attach borrows that fd (it keeps its own dup):
 * close it when done. Returns 0, -EAGAIN (no connection pending on a
 * non-blocking listen fd), -ETIMEDOUT, -EPROTO (not an agent),
 * -EPROTONOSUPPORT (an agent of another version), -errno.
 */
MIG_API MIG_WUR int mig_agent_accept(int listen_fd, int timeout_ms, pid_t *ret_pid,
				     int *ret_conn_fd);

/*
 * Read the hello of an agent connection accepted by the caller (for an
 * event loop: call it when conn_fd is readable; it never blocks).
 * *ret_pid gets the agent's process from SO_PEERCRED (in our pid
 * namespace; the pid the agent writes is not trusted). Returns 0,
 * -EAGAIN (nothing to read yet), -EPROTO (not an agent's hello),
 * -EPROTONOSUPPORT (an agent of another protocol version, typically an
 * older libmig-agent.so a tenant loaded before an upgrade: *ret_pid is set,
 * the connection must not be used), -errno.
 */
MIG_API MIG_WUR int mig_agent_read_hello(int conn_fd, pid_t *ret_pid);

/* ---------------------------------------------------------------------
 * Migration (libmig/migrate.c, window.c, faults.c, workers.c, copy.c,
 * staging.c; see docs/engine.md)
 * ------------------------------------------------------------------- */

/* How staged content is put back into the tenant. */
enum mig_fill_method {
	MIG_FILL_AUTO = 0, /* COPY */
	MIG_FILL_COPY,	   /* UFFDIO_COPY by workers bound to the target node */
			   /*
			    * No UFFDIO_MOVE fill: it would cost the same two copies of each page
			    * plus an injected ioctl per run (docs/engine.md, "UFFDIO_MOVE fill").
			    */
};

/*
 * The copy-engine seam. An engine copies npages tenant pages (src[i], page
 * aligned, in the tenant pid) into staging (dst[i]) and sets bit i of
 * copied[] for exactly the pages it copied intact; for a page it could not
 * copy it may store a positive errno in err[i] (err may be NULL). It
 * returns 0 or -errno for a failure of the engine as a whole. Pages a
 * batch left without their bit are asked for again one at a time from the
 * same engine; a page still unmarked then stays where it is, so an engine
 * never needs to be complete and a failed copy never loses data. Engines
 * run on the job's thread (staging prefers the target node); an engine
 * may split a batch across req->pool, the target node's workers.
 */
struct mig_copy_req {
	pid_t pid;
	size_t npages;
	const uint64_t *src;
	void *const *dst;
	uint64_t *copied; /* bitmap, (npages + 63) / 64 words */
	int *err;	  /* per page, or NULL */
	void *pool;	  /* the target node's worker pool (opaque), for engines that split */
};

struct mig_copy_engine {
	const char *name;
	int (*copy)(const struct mig_copy_engine *e, const struct mig_copy_req *req);
	void *userdata;
};

/* process_vm_readv with many iovecs (the default). */
MIG_API const struct mig_copy_engine *mig_copy_engine_default(void);
/* Splits a batch across the target node's worker threads. */
MIG_API const struct mig_copy_engine *mig_copy_engine_threaded(void);

/* Room for mig_migrate_result.zap_fallback. */
#define MIG_ZAP_FALLBACK_MAX 224

/*
 * How a window's pages are taken out of the tenant before the fill
 * (docs/engine.md, "The zap").
 */
enum mig_zap_method {
	/* MOVE where the tenant's uffd has UFFDIO_MOVE (Linux 6.8+), else MADVISE. */
	MIG_ZAP_AUTO = 0,
	/*
	 * madvise(MADV_DONTNEED) run inside the tenant. Its REMOVE events
	 * cannot be told from the tenant's own, so a tenant DONTNEED racing
	 * the zap of the same pages may read the old content, not zeros.
	 */
	MIG_ZAP_MADVISE,
	/*
	 * UFFDIO_MOVE of the pages into a scratch area inside the tenant,
	 * under the job lock (no event; refused by the kernel while a tenant
	 * event is unread). -EOPNOTSUPP without UFFDIO_MOVE.
	 */
	MIG_ZAP_MOVE,
};

/*
 * The protocol of a window (docs/engine.md, "Move first, copy after").
 */
enum mig_window_protocol {
	/* Write-protect, stage, zap, fill, passes for what was written. */
	MIG_WINDOW_CLASSIC = 0,
	/*
	 * UFFDIO_MOVE the window's pages into the tenant's scratch area
	 * first (no write protection, no held writers), serve faults and
	 * fill from there. Needs the MOVE zap (Linux 6.8+, ptrace tenants):
	 * else -EOPNOTSUPP. Windows with a PMD-mapped THP the kernel did not
	 * migrate whole (huge_kmoved) keep the classic protocol (whole THPs
	 * move by PMD there).
	 */
	MIG_WINDOW_MOVEFIRST,
};

struct mig_migrate_opts {
	uint64_t window;  /* bytes, 0: 2 MiB; rounded up to a multiple of 2 MiB */
	bool force;	  /* also move pages already on a target node */
	bool no_collapse; /* THPs move as 4 KiB pages: not placed whole, not re-formed */
	/*
	 * Whole THPs by userfaultfd only: staged into a huge slot on the
	 * target and placed by a PMD-sized UFFDIO_MOVE (or copied and
	 * re-formed), not migrated by the kernel (move_pages(2) of the
	 * head, the default: one copy, no held writers; huge_kmoved).
	 */
	bool thp_uffd;
	/*
	 * While a move-first window is out, the job's fault thread runs
	 * SCHED_FIFO at priority 1 (with SCHED_RESET_ON_FORK), where the
	 * caller may (CAP_SYS_NICE or RLIMIT_RTPRIO; a cgroup with
	 * real-time group scheduling and no runtime refuses): a tenant
	 * fault on a page the job took out is then served when it comes,
	 * not after the tenant's own threads and the job's have had their
	 * turn on busy CPUs. In classic windows, and between windows, it is
	 * a normal thread (a classic window holds its writers until its
	 * zap ends anyway). Its work is bounded by the job's faults and
	 * events; a thread that waits on the job sleeps. Refused, it runs
	 * as before (fault_rt in the result says which). migd asks for it
	 * unless its configuration says fault_priority = normal.
	 */
	bool fault_rt;
	unsigned max_passes; /* 0: 10; dirty pages left after that are -EAGAIN */
	unsigned threads; /* fill workers per target node; 0: 2 for move-first windows on 2+ CPUs,
			     else 1 */
	enum mig_fill_method fill;
	const volatile int *cancel; /* non-NULL and nonzero: stop after the current window */
	uint64_t rate_limit;	    /* bytes/s copied, 0: unlimited */
	const struct mig_copy_engine *engine; /* NULL: mig_copy_engine_default() */
	/*
	 * For tests: called on the job's thread inside each window, at
	 * MIG_PHASE_PLANNED (its VMAs read, nothing registered yet),
	 * MIG_PHASE_REGISTERED (its ranges registered, nothing protected
	 * nor staged yet), MIG_PHASE_STAGED (content staged, nothing zapped yet) and
	 * MIG_PHASE_ZAPPED (zapped, not yet filled: the tenant's faults are
	 * being served from staging). May block; the fault thread runs on.
	 */
	void (*phase_hook)(int phase, const struct mig_range *window, void *userdata);
	void *hook_userdata;
	enum mig_zap_method zap;
	/*
	 * Crash recovery (docs/engine.md, "After a crash"). staging_dir: a
	 * directory on tmpfs where staging is a file (<pid>-<starttime>,
	 * mapped shared, so it outlives this process). journal_dir: where the
	 * job keeps <pid>-<starttime>.journal, which mig_recover() uses to
	 * put a tenant right after this process died mid-window. NULL:
	 * anonymous staging and no journal; a process that dies mid-window
	 * then leaves the tenant blocked for good, and with the madvise zap
	 * the content of the pages taken out is lost. A journal left by a
	 * crash that was not recovered makes mig_migrate fail with -EBUSY.
	 */
	const char *staging_dir;
	const char *journal_dir;
	/*
	 * No per-page status in the result (status NULL, nstatus 0): the
	 * status is the one part of a job's memory the span of the ranges
	 * sizes (4 bytes a page: 1 GiB for a 1 TiB range), everything else
	 * follows the windows that hold pages. The counts are the same.
	 */
	bool no_status;
	enum mig_window_protocol protocol;
};

#define MIG_PHASE_STAGED     1
#define MIG_PHASE_ZAPPED     2
#define MIG_PHASE_REGISTERED 3
#define MIG_PHASE_PLANNED    4

struct mig_migrate_progress {
	uint64_t bytes_done;  /* of the ranges, windows finished */
	uint64_t bytes_total; /* of the ranges */
	uint64_t pages_moved;
	uint64_t windows;
};

/* Return nonzero to cancel the job after the current window. */
typedef int (*mig_progress_fn)(const struct mig_migrate_progress *p, void *userdata);

#define MIG_MIGRATE_MAX_ERRNOS 16

struct mig_migrate_result {
	/*
	 * Every page of the ranges, counted once (overlapping and repeated
	 * ranges are merged before the job starts), is in exactly one of:
	 * pages_total = pages_present + pages_absent, and
	 * pages_present = pages_moved + pages_skipped + pages_failed + pages_gone.
	 */
	uint64_t pages_total;	/* distinct pages in the ranges */
	uint64_t pages_absent;	/* never present while the job looked, or not anonymous */
	uint64_t pages_present; /* present when their window was scanned */
	uint64_t pages_moved;	/* now on a target node, put there by this job */
	uint64_t pages_skipped; /* already on a target node (not forced) */
	uint64_t pages_failed;	/* present, not moved: see errnos[] */
	uint64_t pages_gone;	/* unmapped or removed by the tenant meanwhile */
	uint64_t pages_retried; /* copied again because written during their window */
	uint64_t pages_copied;	/* page copies into staging, all passes */
	uint64_t huge_kept;	/* 2 MiB THPs present on a target node afterwards */
	/*
	 * Large folios (heads) per size in the windows that ran: before (at
	 * each window's first look, after the edge splits) and afterwards,
	 * on any node, PMD-mapped or not (kpageflags). large_*[o] counts the
	 * folios of order o (2^o pages: 2 = 16 KiB ... 9 = 2 MiB with 4 KiB
	 * pages); thp_* is the PMD order's entry, mthp_* the smaller orders
	 * summed.
	 */
	uint64_t thp_before, thp_after;
	uint64_t mthp_before, mthp_after;
	uint64_t large_before[MIG_FOLIO_ORDERS], large_after[MIG_FOLIO_ORDERS];
	/*
	 * How the fully covered THPs got back to being THPs: huge_moved
	 * placed whole with one PMD-sized UFFDIO_MOVE of a THP staged on the
	 * target (Linux 6.8+, ptrace tenants; no 4 KiB copies, no collapse);
	 * huge_collapsed filled with 4 KiB copies and re-formed with
	 * MADV_COLLAPSE (the path without UFFDIO_MOVE), huge_collapse_failed
	 * where that collapse failed (the pages stay small, their content
	 * right). huge_fallback: THPs that were to be placed whole and took
	 * the copy path (no THP free on the target, the move refused).
	 */
	uint64_t huge_moved;
	uint64_t huge_collapsed;
	uint64_t huge_collapse_failed;
	uint64_t huge_fallback;
	/*
	 * mTHPs (large folios smaller than a PMD) a range covers fully that
	 * went to the target whole, by the kernel's own migration
	 * (move_pages(2) of the folio's head: the kernel allocates a folio
	 * of the same order there and copies it). Only unless
	 * no_collapse, and only mTHPs not on a target already (with force
	 * those move as 4 KiB pages). UFFDIO_MOVE and UFFDIO_COPY can only
	 * move them as 4 KiB pages (docs/large-folios.md).
	 */
	uint64_t mthp_moved;
	/*
	 * Fully covered THPs not on a target yet that the kernel migrated
	 * whole (move_pages(2) of the head, unless thp_uffd or no_collapse):
	 * a THP of the same order there, one copy, the tenant's accesses to
	 * it waiting on a migration entry meanwhile. The rest take the
	 * window's path (huge_moved, huge_collapsed, huge_fallback).
	 */
	uint64_t huge_kmoved;
	uint64_t windows;
	uint64_t passes;       /* highest pass any window needed */
	uint64_t faults;       /* tenant faults served by the fault thread */
	uint64_t events;       /* UNMAP, REMOVE, REMAP, FORK events read */
	uint64_t max_stall_us; /* longest a tenant fault waited for migd */
	/*
	 * opts.fault_rt: 1 the fault thread ran SCHED_FIFO (in a move-first
	 * window), -errno real time was refused, 0 never asked for (not
	 * asked, or no move-first window ran).
	 */
	int fault_rt;
	/*
	 * madvise zaps that ran while the tenant's other threads ran (they
	 * could not be stopped: ptrace refused). 0 unless something is off;
	 * see docs/engine.md, "The zap".
	 */
	uint64_t zaps_unstopped;
	/*
	 * Pages a UFFDIO_MOVE step took out although the kernel said it had
	 * not (Linux 6.18 can answer -EEXIST after moving a batch): found in
	 * the scratch area and filled like the others. Counted for the
	 * record; see docs/engine.md, "Causes found under churn", 8.
	 */
	uint64_t move_uncounted;
	/*
	 * Windows begun move first (MIG_WINDOW_MOVEFIRST), and of them those
	 * that went on classic because MOVE refused pages shared with a fork
	 * child (-EBUSY); after such a window the job's next ones are
	 * classic. See docs/engine.md, "Move first, copy after".
	 */
	uint64_t windows_movefirst, windows_switched;
	/*
	 * Windows whose plan the tenant's memory cgroup limit changed: run
	 * classic rather than move first, whole THPs not staged for the PMD
	 * move (taking the copy path), or pages left in place and failed
	 * -EDQUOT, because the pages a step holds twice would not fit under
	 * the limit and a charge over it wakes the memcg OOM killer in the
	 * tenant (docs/engine.md, "A tenant at its memory limit").
	 */
	uint64_t windows_memcg;
	/*
	 * The zap that ran (MIG_ZAP_MOVE or MIG_ZAP_MADVISE; MIG_ZAP_AUTO if
	 * no window ran), and why MIG_ZAP_AUTO took madvise on a kernel
	 * with UFFDIO_MOVE ("" otherwise): the tenant had no room for the
	 * job's scratch area, e.g. under its RLIMIT_AS (docs/engine.md,
	 * "The zap").
	 */
	int zap; /* enum mig_zap_method */
	char zap_fallback[MIG_ZAP_FALLBACK_MAX];
	uint64_t elapsed_ns;
	double bytes_per_sec; /* bytes moved / elapsed */
	struct {
		int err; /* positive errno */
		uint64_t pages;
	} errnos[MIG_MIGRATE_MAX_ERRNOS];
	unsigned nerrnos;
	/*
	 * Per page of the ranges as given, in order, repeats included (so
	 * nstatus can exceed pages_total; like move_pages(2) status): the
	 * node the page is on afterwards, or -errno: -ENOENT not present,
	 * -EFAULT unmapped, -EAGAIN still being written after max_passes,
	 * -ENOMEM target full, -EDQUOT no room under the tenant's memory cgroup
	 * limit (windows_memcg), -EXDEV the tenant's own memory policy binds
	 * this VMA elsewhere (left out before any work), -ECANCELED never
	 * reached (cancelled), or the copy's errno. malloc'd; NULL with
	 * opts->no_status.
	 */
	int32_t *status;
	size_t nstatus;
};

/* Free what mig_migrate put into *r (not r itself). NULL is fine. */
MIG_API void mig_migrate_result_free(struct mig_migrate_result *r);

/*
 * Move the anonymous private memory of t inside ranges[n] (page aligned;
 * non-anonymous parts are reported -EFAULT) to the target nodes, while
 * the tenant keeps running. opts and progress may be NULL. On success
 * *ret_result is filled (free with mig_migrate_result_free); pages that
 * could not be moved are not an error of the call, they are counted in
 * the result. Returns 0; -EINVAL (bad ranges, nodes or options), -ENODEV
 * (a target node has no memory), -ESRCH (the tenant exited; its pages
 * are then of no concern), -ECANCELED (cancelled: *ret_result still
 * filled), -EOPNOTSUPP (the uffd lacks WP or a needed event), -ENOMEM.
 */
MIG_API MIG_WUR int mig_migrate(mig_tenant *t, const struct mig_range *ranges, size_t n,
				const struct mig_nodes *targets,
				const struct mig_migrate_opts *opts, mig_progress_fn progress,
				void *userdata, struct mig_migrate_result *ret_result);

/* ---------------------------------------------------------------------
 * Relocation and compaction (libmig/relocate.c; docs/relocate.md)
 * ------------------------------------------------------------------- */

/* How the pages of one run reached their new address. */
enum mig_relocate_path {
	/* UFFDIO_MOVE inside the tenant: the same physical pages, THPs whole where aligned. */
	MIG_RELOCATE_MOVE = 1,
	/* UFFDIO_COPY by a thread bound to the node each page was on (no MOVE, or refused). */
	MIG_RELOCATE_COPY,
	/*
	 * mremap of the run: the same physical pages, but the run keeps its old
	 * anon_vma and index, so it does not merge. The last resort, taken for
	 * pages neither MOVE nor COPY may take (pinned pages MOVE refuses).
	 */
	MIG_RELOCATE_REMAP,
};

/* The name of a path: "move", "copy", "remap"; "?" otherwise. */
MIG_API const char *mig_relocate_path_name(int path);

/* A run of pages at their new addresses [start, end) and how they got there. */
struct mig_relocate_run {
	uint64_t start, end;
	int path; /* enum mig_relocate_path */
};

struct mig_relocate_result {
	uint64_t pages;		 /* pages in the ranges relocated */
	uint64_t pages_moved;	 /* by UFFDIO_MOVE */
	uint64_t pages_copied;	 /* by UFFDIO_COPY */
	uint64_t pages_remapped; /* by mremap (not merge-correct) */
	uint64_t pages_absent;	 /* holes and zero pages: read as zero before and after */
	/*
	 * Large folios (heads) in the source before and at the destination
	 * after: per order (large_*[o]: 2^o pages) and summed.
	 */
	uint64_t thp_before, thp_after;	  /* PMD-sized */
	uint64_t mthp_before, mthp_after; /* smaller than a PMD (mTHP) */
	uint64_t large_before[MIG_FOLIO_ORDERS], large_after[MIG_FOLIO_ORDERS];
	uint64_t collapsed; /* THPs re-formed with MADV_COLLAPSE afterwards */
	/*
	 * THP blocks whose MADV_COLLAPSE failed after its tries (the pages
	 * stay small, their content right), and the last answer (-errno).
	 */
	uint64_t collapse_failed;
	int collapse_err;
	/*
	 * VMAs before and after: for mig_relocate the VMAs of the whole
	 * process; for mig_compact the anonymous private VMAs in its range.
	 */
	uint64_t vmas_before, vmas_after;
	uint64_t merged;     /* mig_compact: VMAs merged into their left neighbour */
	uint64_t left;	     /* mig_compact: unmerged neighbours left alone (see last error) */
	uint64_t stopped_ns; /* how long the tenant's threads were held stopped */
	uint64_t elapsed_ns;
	/* Of pages_moved: moved by a MOVE whose answer did not count them (Linux 6.18). */
	uint64_t moved_uncounted;
	struct mig_relocate_run *runs; /* malloc'd, nruns entries, in address order per call */
	size_t nruns;
};

/* Free what a relocation put into *r (not r itself). NULL is fine. */
MIG_API void mig_relocate_result_free(struct mig_relocate_result *r);

/* dst may replace mappings that are there (like MREMAP_FIXED); default: -EEXIST. */
#define MIG_RELOCATE_REPLACE (1u << 0)
/* Take the copy path even where UFFDIO_MOVE exists (tests, comparisons). */
#define MIG_RELOCATE_NO_MOVE (1u << 1)

/*
 * Move the anonymous private pages of [src, src + len) of t to
 * [dst, dst + len), like mremap(MREMAP_MAYMOVE | MREMAP_FIXED) - afterwards
 * src is unmapped - but so that the pages take the destination VMA's
 * anon_vma and index: the result merges with its neighbours. The
 * destination is the left neighbour of dst grown in place when that is an
 * anonymous VMA with src's flags, name and memory policy, else a new
 * mapping with src's protection (and THP advice) that merges with any
 * neighbour whose index continues. All of the tenant's threads are held
 * stopped while it runs (no thread can see a page in flight); a tenant
 * pointer into src is the caller's business, as with mremap. Pages move
 * with UFFDIO_MOVE (6.8+; no copy, same node, a fully covered THP stays
 * a THP when src and dst are aligned alike); without it, or for pages it
 * refuses (shared after fork, the zero page...), they are copied by a
 * thread bound to their node; pages neither can take are mremapped. The
 * result names the path of every run. src must lie in one anonymous
 * private VMA; src, dst, len page aligned; the ranges must not overlap.
 * The tenant must be attached with ptrace and not be migrated meanwhile.
 * Returns 0 (*ret_result filled; free with mig_relocate_result_free);
 * -EINVAL (bad ranges: reason in mig_tenant_last_error), -EEXIST (dst is
 * mapped and no MIG_RELOCATE_REPLACE), -EOPNOTSUPP (agent tenant; a src
 * VMA policy a new mapping cannot carry), -ESRCH, -ENOMEM, or another
 * -errno of an injected syscall. On an error after pages were taken, every
 * page is still at src or at dst, never lost (see the last error).
 */
MIG_API MIG_WUR int mig_relocate(mig_tenant *t, uint64_t src, uint64_t len, uint64_t dst,
				 unsigned flags, struct mig_relocate_result *ret_result);

/*
 * Merge neighbouring anonymous private VMAs of t inside range (NULL: the
 * whole process) that have the same flags, name and memory policy but
 * did not merge (their anon_vma or index differ, typically after the
 * tenant's mremap): each such VMA is relocated in place onto its left
 * neighbour grown over it, so both become one. VMAs registered with a
 * userfaultfd, mlocked ones, [heap] and [stack] are left alone. Counts and
 * paths go into *ret_result (vmas_before, vmas_after, merged, left, runs).
 * flags: MIG_RELOCATE_NO_MOVE. Returns 0, or -errno as mig_relocate.
 */
MIG_API MIG_WUR int mig_compact(mig_tenant *t, const struct mig_range *range, unsigned flags,
				struct mig_relocate_result *ret_result);

/* ---------------------------------------------------------------------
 * Crash recovery (libmig/journal.c; docs/engine.md, "After a crash")
 * ------------------------------------------------------------------- */

struct mig_recover_info {
	pid_t pid;		 /* the tenant the journal names */
	uint64_t starttime;	 /* its /proc/PID/stat start time */
	int tenant_fd;		 /* its uffd's fd number inside the tenant */
	uint64_t pages_refilled; /* zapped pages put back from staging or scratch */
	uint64_t pages_gone;	 /* dropped or unmapped by the tenant meanwhile: left so */
	uint64_t pages_lost;	 /* content found nowhere: the tenant stays blocked */
	bool fd_closed;		 /* the tenant's uffd was closed inside it */
	uint64_t elapsed_ns;
	char reason[256]; /* why it was dropped or not recovered, or a warning */
	/* Where elapsed_ns went: */
	uint64_t refill_ns;  /* reading the events, putting pages back */
	uint64_t settle_ns;  /* un-protecting, unregistering, the events on their way */
	uint64_t release_ns; /* the ptrace session closing the uffd in the tenant */
};

/*
 * Finish what a dead process left in the journal at path (a
 * mig_migrate_opts.journal_dir file): take the tenant's uffd back with
 * pidfd_getfd, apply the events queued meanwhile, put back every page
 * that was taken out and not filled (from the staging file, or the MOVE
 * zap's scratch area), un-protect, unregister, close the tenant's uffd
 * inside it (ptrace tenants; an agent keeps its own), then remove the
 * journal and the staging file. Returns 0 (recovered), 1 (nothing to do:
 * the tenant exited, its pid is another process now, the journal is from
 * another boot or incomplete; removed), or -errno with the journal kept
 * and ret_info->reason saying why: -EBUSY (in use by a running job),
 * -ENODATA (content of taken-out pages found nowhere: the tenant stays
 * blocked on them rather than read zero), -EPERM, -EBADF (the tenant
 * closed its uffd), -EPROTO (a journal this version cannot read).
 * *ret_info is always filled.
 */
MIG_API MIG_WUR int mig_recover(const char *path, struct mig_recover_info *ret_info);

#ifdef __cplusplus
}
#endif

#endif /* MIG_H */
