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
#include <string.h>
#include <unistd.h>

#include "mig.h"
#include "procfs.h"
#include "util.h"

/* Pages per mig_query_pages call: 64 Ki pages (256 MiB) use 1.5 MiB here. */
#define PLACEMENT_SLICE 65536

static int account(pid_t pid, uint64_t start, uint64_t end, struct mig_pageinfo *buf,
		   struct mig_placement *p)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);

	while (start < end) {
		size_t n = (size_t)MIN((end - start) / ps, (uint64_t)PLACEMENT_SLICE);
		int r = mig_query_pages(pid, start, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, buf);

		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			p->total++;
			/* The zero page and swapped pages hold nothing on a node to move. */
			if (buf[i].node < 0 || buf[i].node >= MIG_MAX_NODES ||
			    (buf[i].flags & MIG_PAGE_ZERO)) {
				p->absent++;
				continue;
			}
			p->node_pages[buf[i].node]++;
			if (buf[i].flags & MIG_PAGE_LARGE)
				p->huge++;
		}
		start += (uint64_t)n * ps;
	}
	return 0;
}

int mig_placement(pid_t pid, const struct mig_range *ranges, size_t n, struct mig_placement *ret)
{
	_cleanup_free_ struct mig_vma *vmas = NULL;
	_cleanup_free_ struct mig_pageinfo *buf = NULL;
	_cleanup_free_ struct mig_placement *p = NULL;
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
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
	if (!p || !buf)
		return -ENOMEM;

	for (size_t v = 0; v < nvmas; v++) {
		if (!mig_vma_is_anon_private(&vmas[v]))
			continue;
		if (n == 0) {
			r = account(pid, vmas[v].start, vmas[v].end, buf, p);
			if (r < 0)
				return r;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t s = MAX(ranges[i].start, vmas[v].start);
			uint64_t e = MIN(ranges[i].end, vmas[v].end);

			if (s >= e)
				continue;
			r = account(pid, s, e, buf, p);
			if (r < 0)
				return r;
		}
	}

	memcpy(ret, p, sizeof(*p));
	return 0;
}
