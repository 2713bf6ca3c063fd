/*
 * procfs.h - internal pieces of the /proc readers (maps.c, pagemap.c,
 * placement.c, split.c) that the unit tests and the other readers need:
 * the maps line parser, the pagemap entry layout and the kpageflags bits.
 * Not installed; the public interface is include/mig.h.
 */
#ifndef MIG_PROCFS_H
#define MIG_PROCFS_H

#include <stdint.h>
#include <sys/types.h>

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
 * The stretches of [start, end) of pid that hold present pages, sorted,
 * stretches less than gap bytes apart merged (*ret malloc'd, may be NULL
 * when there are none). PAGEMAP_SCAN (6.7+) skips holes without a look at
 * them; older kernels read pagemap. Returns 0 or -errno (-ESRCH: gone).
 */
MIG_INTERNAL int mig__present_runs(pid_t pid, uint64_t start, uint64_t end, uint64_t gap,
				   struct mig_range **ret, size_t *ret_n);

/* Order of a PMD-sized THP on this machine (9 on x86_64 with 4 KiB pages). */
MIG_INTERNAL unsigned mig__pmd_order(void);

#endif /* MIG_PROCFS_H */
