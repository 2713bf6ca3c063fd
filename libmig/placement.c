/*
 * placement.c - where a tenant's anonymous memory lives: pages per NUMA
 * node, absent pages and pages in large folios, over chosen ranges or the
 * whole process. It is what `migctl placement` shows and what the engine
 * scans before it plans a migration.
 *
 * Only anonymous private VMAs count (what migd can move): the given ranges
 * are intersected with them. The pages are read in slices, so that memory
 * use stays small for tenants of any size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "compat.h"
#include "mig.h"
#include "procfs.h"
#include "util.h"

/* Pages per mig_query_pages call: 64 Ki pages (256 MiB) use 1.5 MiB here. */
#define PLACEMENT_SLICE 65536
/* Regions per PAGEMAP_SCAN call. */
#define SCAN_REGIONS 512

/* Count the pages of [start, end) that sit on a node. */
static int account_pages(pid_t pid, uint64_t start, uint64_t end, struct mig_pageinfo *buf,
			 struct mig_placement *p)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);

	while (start < end) {
		size_t n = (size_t)MIN((end - start) / ps, (uint64_t)PLACEMENT_SLICE);
		int r = mig_query_pages(pid, start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, buf);

		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			/* The zero page and swapped pages hold nothing on a node to move. */
			if (buf[i].node < 0 || buf[i].node >= MIG_MAX_NODES ||
			    (buf[i].flags & MIG_PAGE_ZERO))
				continue;
			p->node_pages[buf[i].node]++;
			if (buf[i].flags & MIG_PAGE_LARGE)
				p->huge++;
		}
		start += (uint64_t)n * ps;
	}
	return 0;
}

/*
 * Count [start, end). Where the kernel has PAGEMAP_SCAN (6.7+) it first
 * finds the present stretches, so that a huge sparse reservation (a
 * sanitizer's shadow, a runtime's heap arena) costs nothing for its holes;
 * reading pagemap for every page of a 16 TiB VMA would take minutes.
 * *scan_ok is cleared when the kernel refuses the ioctl.
 */
static int account(pid_t pid, int pm_fd, bool *scan_ok, uint64_t start, uint64_t end,
		   struct mig_pageinfo *buf, struct page_region *vec, struct mig_placement *p)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);

	p->total += (end - start) / ps;
	while (*scan_ok && start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = start,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = SCAN_REGIONS,
			.category_anyof_mask = PAGE_IS_PRESENT,
			.return_mask = PAGE_IS_PRESENT,
		};
		int n = ioctl(pm_fd, PAGEMAP_SCAN, &arg);

		if (n < 0) {
			if (errno != ENOTTY && errno != EINVAL)
				return errno == ENOENT ? -ESRCH : -errno;
			*scan_ok = false;
			break;
		}
		for (int i = 0; i < n; i++) {
			int r = account_pages(pid, vec[i].start, vec[i].end, buf, p);

			if (r < 0)
				return r;
		}
		if (arg.walk_end <= start)
			return -EIO;
		start = arg.walk_end;
	}
	if (start < end)
		return account_pages(pid, start, end, buf, p);
	return 0;
}

int mig_placement(pid_t pid, const struct mig_range *ranges, size_t n, struct mig_placement *ret)
{
	_cleanup_free_ struct mig_vma *vmas = NULL;
	_cleanup_free_ struct mig_pageinfo *buf = NULL;
	_cleanup_free_ struct mig_placement *p = NULL;
	_cleanup_free_ struct page_region *vec = NULL;
	_cleanup_close_ int pm_fd = -EBADF;
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE), on_nodes = 0;
	bool scan_ok = true;
	char path[64];
	size_t nvmas = 0;
	int r;

	if (pid <= 0 || !ret || (n > 0 && !ranges))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ranges[i].end <= ranges[i].start || ranges[i].start % ps || ranges[i].end % ps)
			return -EINVAL;

	r = mig_read_vmas(pid, &vmas, &nvmas);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	buf = malloc(PLACEMENT_SLICE * sizeof(*buf));
	vec = malloc(SCAN_REGIONS * sizeof(*vec));
	if (!p || !buf || !vec)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm_fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;

	for (size_t v = 0; v < nvmas; v++) {
		if (!mig_vma_is_anon_private(&vmas[v]))
			continue;
		if (n == 0) {
			r = account(pid, pm_fd, &scan_ok, vmas[v].start, vmas[v].end, buf, vec, p);
			if (r < 0)
				return r;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t s = MAX(ranges[i].start, vmas[v].start);
			uint64_t e = MIN(ranges[i].end, vmas[v].end);

			if (s >= e)
				continue;
			r = account(pid, pm_fd, &scan_ok, s, e, buf, vec, p);
			if (r < 0)
				return r;
		}
	}

	for (size_t i = 0; i < MIG_MAX_NODES; i++)
		on_nodes += p->node_pages[i];
	p->absent = p->total - on_nodes;
	memcpy(ret, p, sizeof(*p));
	return 0;
}
