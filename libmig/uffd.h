/*
 * uffd.h - thin userfaultfd wrappers and the record of registered ranges.
 *
 * Every wrapper returns >= 0 on success or -errno. The expected outcomes of
 * fills are passed through unchanged so callers can switch on them:
 * -EEXIST (page already there), -EAGAIN (the mm is changing: read events
 * and retry), -ENOENT (range gone, e.g. after an UNMAP event). Partial
 * progress of COPY/ZEROPAGE is stored in *ret_done also on failure.
 *
 * All of these work on any fd of the uffd: the kernel binds a uffd to the
 * mm that created it, so migd's copy acts on the tenant's memory. The one
 * exception, UFFDIO_MOVE, lives in the tenant backends (tenant.h).
 */
#ifndef MIG_UFFD_H
#define MIG_UFFD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "compat.h"
#include "mig.h"
#include "util.h"

/* The features migd must get, and the ones it takes when offered. */
#define MIG__UFFD_FEATURES_REQUIRED                                                       \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | \
	 UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_PAGEFAULT_FLAG_WP)
#define MIG__UFFD_FEATURES_OPTIONAL (UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_MOVE)

/*
 * The features and ioctls the running kernel offers, probed once on a
 * throwaway uffd created in this process (UFFDIO_API with features 0
 * reports everything). Returns 0 or -errno (-EOPNOTSUPP: no userfaultfd).
 */
MIG_INTERNAL int mig__uffd_probe(uint64_t *ret_features, uint64_t *ret_ioctls);

/* UFFDIO_API with exactly these features. Returns 0 or -errno. */
MIG_INTERNAL int mig__uffd_api(int uffd, uint64_t features, uint64_t *ret_features,
			       uint64_t *ret_ioctls);

/*
 * UFFDIO_REGISTER [start, start+len) with mode UFFDIO_REGISTER_MODE_*.
 * *ret_ioctls (may be NULL) gets the ioctls allowed on the range.
 */
MIG_INTERNAL int mig__uffd_register(int uffd, uint64_t start, uint64_t len, uint64_t mode,
				    uint64_t *ret_ioctls);
MIG_INTERNAL int mig__uffd_unregister(int uffd, uint64_t start, uint64_t len);
/*
 * Unregister a range that may span VMAs userfaultfd refuses (file
 * mappings, another uffd's): the whole range first, then VMA by VMA
 * (pid's maps).
 */
MIG_INTERNAL int mig__uffd_unregister_piece(int uffd, pid_t pid, uint64_t start, uint64_t len);

/* UFFDIO_COPY len bytes from our src to the tenant's dst. */
MIG_INTERNAL int mig__uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len,
				uint64_t mode, uint64_t *ret_done);
MIG_INTERNAL int mig__uffd_zeropage(int uffd, uint64_t dst, uint64_t len, uint64_t mode,
				    uint64_t *ret_done);
/* Set (wp = true) or clear write protection; dontwake only when clearing. */
MIG_INTERNAL int mig__uffd_writeprotect(int uffd, uint64_t start, uint64_t len, bool wp,
					bool dontwake);
MIG_INTERNAL int mig__uffd_wake(int uffd, uint64_t start, uint64_t len);

/*
 * Read up to n messages without blocking (the uffd is O_NONBLOCK).
 * Returns the number read (>= 1), -EAGAIN when none is pending, or -errno.
 */
MIG_INTERNAL int mig__uffd_read(int uffd, struct uffd_msg *msgs, size_t n);

/*
 * Is an event of this uffd on its way (1) or not (0)? The kernel raises
 * the uffd's mmap_changing when a tenant thread prepares an event (fork,
 * mremap, munmap, DONTNEED of a registered VMA: under its mmap lock) and
 * lowers it only once the event has been read; every fill and protection
 * ioctl fails with -EAGAIN meanwhile. Un-protecting the last page below
 * the user address space, where nothing is mapped, asks just that: -EAGAIN
 * while an event is on its way, another error (or 0) when none is. Checked
 * on 6.1, 6.12 and 6.18 (test_uffd).
 */
MIG_INTERNAL int mig__uffd_events_pending(int uffd);

/*
 * Call fn on every VMA of pid whose smaps VmFlags name a userfaultfd
 * registration (um/uw/ui, any uffd). Returns the sum of fn's results, or
 * -errno (-ESRCH: pid is gone).
 */
MIG_INTERNAL int
mig__uffd_each_flagged(pid_t pid, int (*fn)(uint64_t start, uint64_t end, void *arg), void *arg);

/*
 * Unregister every VMA of pid that is still registered on this uffd (its
 * VmFlags in smaps show um/uw/ui and registering it on this uffd succeeds;
 * a VMA of another uffd, the tenant's own, refuses with -EBUSY and is left
 * alone). Returns how many were, or -errno (-ESRCH: pid is gone).
 */
MIG_INTERNAL int mig__uffd_unregister_ours(int uffd, pid_t pid);

/*
 * The ranges migd registered on one uffd, so detach can unregister them
 * all. Registering an overlapping range merges; unregistering trims or
 * splits. Protected by its own lock: engine threads register while the
 * fault thread reads.
 */
struct mig__uffd_regs {
	pthread_mutex_t lock;
	struct mig_range *v;
	size_t n, cap;
};

MIG_INTERNAL void mig__uffd_regs_init(struct mig__uffd_regs *r);
MIG_INTERNAL void mig__uffd_regs_free(struct mig__uffd_regs *r);
MIG_INTERNAL int mig__uffd_regs_add(struct mig__uffd_regs *r, uint64_t start, uint64_t end);
MIG_INTERNAL int mig__uffd_regs_remove(struct mig__uffd_regs *r, uint64_t start, uint64_t end);
/* Copy of the current set (malloc'd; free it). */
MIG_INTERNAL int mig__uffd_regs_snapshot(struct mig__uffd_regs *r, struct mig_range **ret_v,
					 size_t *ret_n);

#endif /* MIG_UFFD_H */
