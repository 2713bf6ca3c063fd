/*
 * procfs.h - internal pieces of the /proc readers (maps.c, pagemap.c,
 * placement.c, split.c, procfs.c) that the unit tests and the other
 * readers need: the maps line parser, the pagemap entry layout, the
 * kpageflags bits, and the per-thread readers of procfs.c.
 * Not installed; the public interface is include/mig.h.
 */
#ifndef MIG_PROCFS_H
#define MIG_PROCFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "mig.h"
#include "util.h"

/*
 * /proc/PID/pagemap: one 64-bit entry per virtual page
 * (Documentation/admin-guide/mm/pagemap.rst). The kernel's uapi headers
 * do not carry these, so they live here.
 */
#define MIG__PM_PRESENT	   (UINT64_C(1) << 63)
#define MIG__PM_SWAPPED	   (UINT64_C(1) << 62)
#define MIG__PM_FILE	   (UINT64_C(1) << 61) /* file page or shared anon */
#define MIG__PM_UFFD_WP	   (UINT64_C(1) << 57)
#define MIG__PM_EXCLUSIVE  (UINT64_C(1) << 56)
#define MIG__PM_UFFD_WP	   (UINT64_C(1) << 57) /* uffd write-protected (5.19+) */
#define MIG__PM_SOFT_DIRTY (UINT64_C(1) << 55)
#define MIG__PM_PFN_MASK   ((UINT64_C(1) << 55) - 1)

/*
 * /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h). The
 * values are stable ABI; they are repeated here so that the readers do not
 * depend on which of them a given linux-libc-dev happens to carry.
 */
#define MIG__KPF_ANON	       12
#define MIG__KPF_COMPOUND_HEAD 15
#define MIG__KPF_COMPOUND_TAIL 16
#define MIG__KPF_HUGE	       17 /* hugetlbfs */
#define MIG__KPF_NOPAGE	       20
#define MIG__KPF_THP	       22
#define MIG__KPF_ZERO_PAGE     24
#define MIG__KPF(bit)	       (UINT64_C(1) << (bit))

/*
 * Parse one line of /proc/PID/maps (with or without its newline) into
 * *ret. Returns 0, or -EINVAL when the line is not in the kernel's format;
 * *ret is untouched on failure.
 */
MIG_INTERNAL int mig__parse_maps_line(const char *line, struct mig_vma *ret);

/*
 * An mmap hint for len bytes of ours inside the tenant: the middle of
 * the largest gap between its mappings (no hole it just made), or 0.
 */
MIG_INTERNAL uint64_t mig__far_hint(pid_t pid, uint64_t len);

/*
 * The VMAs of pid that overlap [start, end), whole, in address order, as
 * mig_read_vmas() gives them. With PROCMAP_QUERY (Linux 6.11+) one ioctl
 * a VMA; without, /proc/PID/maps read whole and filtered. *ret_vmas is
 * malloc'd (may be NULL with *ret_n 0). Returns 0, -ESRCH, -errno.
 */
MIG_INTERNAL int mig__read_vmas_range(pid_t pid, uint64_t start, uint64_t end,
				      struct mig_vma **ret_vmas, size_t *ret_n);
/*
 * For tests: -1 makes mig__read_vmas_range read the text, 0 asks the
 * kernel again (1 once it answered). Returns the previous setting.
 */
MIG_INTERNAL int mig__procmap_query_set(int ok);

/*
 * For tests: 0 makes pagemap.c read kpageflags for every page of a
 * PMD-mapped THP too (thp_block off), 1 is the default. Returns the
 * previous setting; *ret_blocks (if not NULL) gets how many THPs were
 * told without their kpageflags since the process started.
 */
MIG_INTERNAL int mig__thp_fast_set(int on, uint64_t *ret_blocks);

/*
 * Translate a pagemap entry and, when known, the kpageflags of its PFN
 * (kpf_known false: no kpageflags) into MIG_PAGE_* flags. The folio order
 * is not part of this: pagemap.c works it out from neighbouring PFNs.
 */
MIG_INTERNAL uint32_t mig__page_flags(uint64_t pm, uint64_t kpf, int kpf_known);

/*
 * Read the kpageflags of one PFN. fd is an open /proc/kpageflags.
 * Returns 0, or -errno.
 */
MIG_INTERNAL int mig__kpageflags(int fd, uint64_t pfn, uint64_t *ret_flags);
/*
 * /proc/kpageflags, opened once a process and kept (it describes every
 * page of the machine, whoever asks): the fd, not to be closed, or
 * -errno (-EACCES without CAP_SYS_ADMIN; asked again next time). A
 * window opened it up to 7 times (issue 16).
 */
MIG_INTERNAL int mig__kpageflags_fd(void);

/*
 * The stretches of [start, end) of pid that hold present pages, sorted,
 * stretches less than gap bytes apart merged (*ret malloc'd, may be NULL
 * when there are none). PAGEMAP_SCAN (6.7+) skips holes without a look at
 * them; older kernels read pagemap. Returns 0 or -errno (-ESRCH: gone).
 */
MIG_INTERNAL int mig__present_runs(pid_t pid, uint64_t start, uint64_t end, uint64_t gap,
				   struct mig_range **ret, size_t *ret_n);

/*
 * A window scan's question about pages [start, start + npages * 4 KiB):
 * present, swapped, the zero page, uffd write-protected, PMD THP, and the
 * node, in out[] as mig_query_pages(MIG_QUERY_PAGEMAP | MIG_QUERY_NODE)
 * gives them (pfn, order, LARGE/HEAD/EXCLUSIVE only for PMD-mapped THPs).
 * One PAGEMAP_SCAN (6.7+) instead of a pagemap read and a kpageflags read
 * per run of PFNs; PMD-mapped blocks are asked the old way, which tells
 * the huge zero page. Returns 0, 1 when the kernel has no PAGEMAP_SCAN
 * (nothing filled: ask mig_query_pages), or -errno.
 */
MIG_INTERNAL int mig__scan_pages(pid_t pid, uint64_t start, size_t npages,
				 struct mig_pageinfo *out);

/*
 * Which pages of [start, start + npages * 4 KiB) of pid are mapped by a
 * PMD (present, PAGE_IS_HUGE): bit bit0 + i of bits set for page i, the
 * other bits left alone. One PAGEMAP_SCAN; nothing else is asked. Returns 0, 1
 * when the kernel has no PAGEMAP_SCAN, or -errno.
 */
MIG_INTERNAL int mig__pmd_mapped(pid_t pid, uint64_t start, size_t npages, uint64_t *bits,
				 size_t bit0);

/* Order of a PMD-sized THP on this machine (9 on x86_64 with 4 KiB pages). */
MIG_INTERNAL unsigned mig__pmd_order(void);

/*
 * The large folios of [start, start + npages pages) of pid, for counting
 * them per size: out[] as mig_query_pages(MIG_QUERY_PAGEMAP) fills it
 * (no node), but kpageflags is read only for runs of 4 or more pages
 * whose PFNs follow each other, the least a 16 KiB folio mapped whole
 * takes; the pages of shorter runs carry the pagemap flags alone (never
 * LARGE, ZERO unknown). For 4 KiB memory that is a pagemap read and a few
 * kpageflags reads instead of one per page (~0.5-1 ms per 2 MiB window,
 * host). A large folio with fewer than 4 pages mapped here in PFN order
 * (partly unmapped) is not seen. Returns 0, -EINVAL, -ESRCH, -errno.
 */
MIG_INTERNAL int mig__query_folios(pid_t pid, uint64_t start, size_t npages,
				   struct mig_pageinfo *out);

/*
 * Count page p as a large folio of its order in counts[MIG_FOLIO_ORDERS]
 * when it is the head of one (LARGE and HEAD, as mig_query_pages tells).
 * The order is the one kpageflags gave; 0 (unknown: the folio did not fit
 * the PFNs read) counts as the PMD order when the page is MIG_PAGE_THP,
 * else it is not counted.
 */
MIG_INTERNAL void mig__count_folio(const struct mig_pageinfo *p, uint64_t *counts);

/* The PMD-order entry of counts, and the smaller orders summed. */
MIG_INTERNAL void mig__folio_totals(const uint64_t *counts, uint64_t *ret_thp, uint64_t *ret_mthp);

/*
 * Threads (procfs.c). The integer after "KEY:" in the status file of
 * thread tid of pid (tid 0: of pid): 0 with *ret_val, or -errno.
 */
MIG_INTERNAL int mig__proc_status_int(pid_t pid, pid_t tid, const char *key, int *ret_val);
/* TracerPid of pid: 0 when untraced, or -errno. */
MIG_INTERNAL int mig__proc_tracer_pid(pid_t pid);

/* Parent pid of pid from /proc/PID/stat, or -errno. */
MIG_INTERNAL int mig__proc_parent_pid(pid_t pid);

/* Soft RLIMIT_AS and VmSize of pid: 1 limited, 0 unlimited, -errno. */
MIG_INTERNAL int mig__proc_as_limit(pid_t pid, uint64_t *ret_limit, uint64_t *ret_size);

/* The state letter of thread tid of pid (R, S, D, T, t, Z, X...), or 0. */
MIG_INTERNAL char mig__proc_thread_state(pid_t pid, pid_t tid);

/* True while thread tid of pid exists and is neither zombie nor dead. */
MIG_INTERNAL bool mig__proc_thread_live(pid_t pid, pid_t tid);

/*
 * The thread to act through: the main thread, or, when it has exited
 * (pthread_exit in main while other threads run: it stays a zombie that
 * cannot be traced and has no mm or files), the first live thread from
 * /proc/PID/task. Returns a tid or -ESRCH.
 */
MIG_INTERNAL pid_t mig__proc_live_thread(pid_t pid);

/*
 * True when thread tid of pid is asleep in a syscall (state S, and
 * /proc/PID/task/TID/syscall names one) but not in a userfaultfd fault
 * (wchan), and has no seccomp filter and no tracer: a thread an injection
 * may stop without taking a CPU's work from the tenant, and that may run
 * any syscall.
 */
MIG_INTERNAL bool mig__proc_thread_idle(pid_t pid, pid_t tid);

/* CPU time thread tid of pid has run (ns, /proc/PID/task/TID/schedstat), or 0. */
MIG_INTERNAL uint64_t mig__proc_thread_runtime(pid_t pid, pid_t tid);

/*
 * The first thread of pid (among the first max of /proc/PID/task) that
 * mig__proc_thread_idle() accepts, other than skip; or -ESRCH.
 */
MIG_INTERNAL pid_t mig__proc_idle_thread(pid_t pid, pid_t skip, size_t max);

/* True when a signal the thread does not block is pending for it or its process. */
MIG_INTERNAL bool mig__proc_signal_pending(pid_t tid);

/*
 * process_vm_readv(pid, l, n, r, n) for pairs of equal lengths, read
 * through /proc/PID/mem instead. A page missing in a range registered
 * with a userfaultfd makes this read fail at once (EIO), where
 * process_vm_readv waits until the uffd's reader serves the fault: its
 * page pinning may retry, so handle_userfault() waits, and the pinning
 * behind /proc/PID/mem may not, so the fault ends in SIGBUS (Linux 6.1
 * and 6.18, test_mem_readv). For the threads that serve the tenant's
 * faults, or hold the job lock their server waits for: there a read
 * that faulted would never end (a move-first run hung that way, issue
 * 16). Returns the bytes read before the first failure or short read,
 * or -1 with errno when the first fails.
 */
MIG_INTERNAL ssize_t mig__mem_readv(pid_t pid, const struct iovec *l, const struct iovec *r,
				    size_t n);

/* ---- pfnnode.c: a physical page's node from its memory block ----------- */

/*
 * Set pi[k].node for the pages of pi[0..n) that pagemap calls present and
 * exclusively mapped, with a PFN, whose memory block belongs to one node;
 * the others are left as they are. Returns how many it set.
 */
MIG_INTERNAL size_t mig__pfn_nodes(struct mig_pageinfo *pi, size_t n);
/* Tests: off (0) or on (1, the default); returns the previous setting. */
MIG_INTERNAL int mig__pfn_node_set(int on);

#endif /* MIG_PROCFS_H */
