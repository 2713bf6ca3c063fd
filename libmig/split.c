/*
 * split.c - large folios at range edges: split the one a window edge cuts,
 * re-form THPs after a 4 KiB fill.
 *
 * A migration window must not cut a large folio (THP or mTHP): the pages
 * outside the window would move with it, or a partly mapped large folio
 * would be left behind. From outside the tenant the only lever is
 * process_madvise(2), which accepts COLD, PAGEOUT, WILLNEED and COLLAPSE.
 * MADV_COLD on one page of a large folio splits it; what the kernel does
 * (mm/madvise.c, madvise_cold_or_pageout_pte_range(), 6.1 and 6.18):
 *
 *  - PMD-mapped THP: when the advised range covers only part of the PMD
 *    (next - addr != HPAGE_PMD_SIZE) it calls split_folio(), which splits
 *    the PMD mapping and the folio to order 0, then treats the pages as
 *    small ones. A fully covered PMD is only deactivated, never split.
 *  - PTE-mapped large folio (mTHP, or a THP already PTE-mapped): 6.18
 *    batches the PTEs of the folio inside the range and splits the folio
 *    only when fewer than folio_nr_pages() are covered; 6.1 (no mTHP)
 *    splits any PTE-mapped large folio it meets.
 *  - Both skip a folio mapped by more than one process (after fork), and
 *    the PTE path gives up quietly when folio_trylock() fails; a VMA that
 *    is mlocked, hugetlb or PFN-mapped is refused (-EINVAL).
 *
 * Splitting keeps every page's content and node: it only rewrites the
 * folio metadata and page tables. Because the kernel can skip a folio
 * without an error, the result is checked through kpageflags and retried.
 * The side effect of MADV_COLD - the page moves to the inactive LRU list -
 * touches one page only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "mig.h"
#include "procfs.h"
#include "util.h"

#define SPLIT_TRIES 5

static int remote_madvise(int pidfd, uint64_t addr, uint64_t len, int advice)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)addr, .iov_len = (size_t)len };
	long r = syscall(SYS_process_madvise, pidfd, &iov, 1UL, advice, 0U);

	return r < 0 ? -errno : 0;
}

/*
 * Which side of the boundary at addr lies in a large folio that crosses
 * it: *ret_before when the page before addr is in a large folio that goes
 * on past it, *ret_after when the page at addr is a tail page (its folio
 * began before it).
 */
static int boundary_state(pid_t pid, int kpf_fd, uint64_t addr, bool *ret_before, bool *ret_after)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
	struct mig_pageinfo pi[2];
	bool before = false, after = false;
	int r;

	r = mig_query_pages(pid, addr - ps, 2, MIG_QUERY_PAGEMAP, pi);
	if (r < 0)
		return r;
	for (int i = 0; i < 2; i++)
		if ((pi[i].flags & MIG_PAGE_PRESENT) && pi[i].pfn == 0)
			return -EPERM; /* no PFNs: we cannot see folios */

	if ((pi[1].flags & MIG_PAGE_LARGE) && !(pi[1].flags & MIG_PAGE_HEAD))
		after = true;
	if (pi[0].flags & MIG_PAGE_LARGE) {
		uint64_t next;

		r = mig__kpageflags(kpf_fd, pi[0].pfn + 1, &next);
		if (r < 0)
			return r;
		before = (next & MIG__KPF(MIG__KPF_COMPOUND_TAIL)) != 0;
	}
	*ret_before = before;
	*ret_after = after;
	return 0;
}

int mig_split_large_at(pid_t pid, int pidfd, uint64_t addr)
{
	int kpf_fd;
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
	bool before, after;
	int r;

	if (pid <= 0 || pidfd < 0 || addr < ps || addr % ps)
		return -EINVAL;
	kpf_fd = mig__kpageflags_fd();
	if (kpf_fd < 0)
		return kpf_fd == -EACCES ? -EPERM : kpf_fd;

	r = boundary_state(pid, kpf_fd, addr, &before, &after);
	if (r < 0)
		return r;
	if (!before && !after)
		return 0;

	for (int i = 0; i < SPLIT_TRIES; i++) {
		/* Advise the page whose folio crosses; usually both sides are the same folio. */
		r = remote_madvise(pidfd, after ? addr : addr - ps, ps, MADV_COLD);
		if (r < 0)
			return r == -EINVAL ? -EBUSY : r;
		r = boundary_state(pid, kpf_fd, addr, &before, &after);
		if (r < 0)
			return r;
		if (!before && !after)
			return 1;
		/* A locked folio is skipped without an error: give its holder a moment. */
		nanosleep(&(struct timespec){ .tv_nsec = 1000000L << i }, NULL);
	}
	return -EBUSY;
}

int mig_collapse(int pidfd, const struct mig_range *range)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);

	if (pidfd < 0 || !range || range->end <= range->start || range->start % ps ||
	    range->end % ps)
		return -EINVAL;
	return remote_madvise(pidfd, range->start, range->end - range->start, MADV_COLLAPSE);
}
