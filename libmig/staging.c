/*
 * staging.c - staging memory on the target node, and the node's free
 * memory.
 *
 * Staging holds the content of a window between the batch copy and the
 * fill. It prefers the target node (MPOL_PREFERRED, not BIND: a full node
 * must slow staging down, never fail it or wake the OOM killer), and the
 * node-bound worker that first touches it places it there anyway.
 *
 * With a staging directory (on tmpfs: /run/migd/staging) staging is a
 * file there, <pid>-<starttime>, mapped MAP_SHARED: its pages are the
 * file's, so a zapped page's content outlives a migd that dies before
 * the fill, and the next migd refills from it (journal.c). The placement
 * is kept: mbind(MPOL_PREFERRED) on a shared tmpfs mapping sets the
 * file's shared policy for that range (shmem keeps per-file policies),
 * which every allocation of the file's pages follows, whoever touches
 * them first; a task policy would only apply where the file has none.
 * Without a directory staging is anonymous memory of this process: then
 * a crash loses the content of the pages zapped and not yet filled, and
 * no recovery is possible.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"

int mig__staging_alloc(int node, size_t len, void **ret)
{
	struct mig_nodes n = { 0 };
	void *p;

	if (node < 0 || node >= MIG_MAX_NODES || len == 0)
		return -EINVAL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	mig_nodes_set(&n, (unsigned)node);
	/* Placement is a matter of speed here; an mbind failure is not fatal. */
	(void)mbind(p, len, MPOL_PREFERRED, (const unsigned long *)n.bits, MIG_MAX_NODES + 1, 0);
	*ret = p;
	return 0;
}

void mig__staging_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

/* Prefer node for [p, p + len): a matter of speed, so failures are ignored. */
void mig__staging_place(void *p, size_t len, int node)
{
	struct mig_nodes n = { 0 };

	if (node < 0 || node >= MIG_MAX_NODES)
		return;
	mig_nodes_set(&n, (unsigned)node);
	(void)mbind(p, len, MPOL_PREFERRED, (const unsigned long *)n.bits, MIG_MAX_NODES + 1, 0);
}

int mig__staging_file(const char *dir, pid_t pid, size_t len, struct mig__staging *ret)
{
	struct mig__staging s = { .fd = -EBADF };
	uint64_t start;
	int r;

	if (!dir || len == 0)
		return -EINVAL;
	r = mig__proc_starttime(pid, &start);
	if (r < 0)
		return r;
	/* The runtime directory may be fresh (tmpfs after boot): make the level below it. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(s.path, sizeof(s.path), "%s/%d-%" PRIu64, dir, (int)pid, start) >=
	    sizeof(s.path))
		return -ENAMETOOLONG;
	/* A file left by a job whose journal is gone names nothing: replace it. */
	s.fd = open(s.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s.fd < 0)
		return -errno;
	if (ftruncate(s.fd, (off_t)len) < 0) {
		r = -errno;
		goto fail;
	}
	s.base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd, 0);
	if (s.base == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	s.len = len;
	*ret = s;
	return 0;
fail:
	unlink(s.path);
	safe_close(s.fd);
	return r;
}

void mig__staging_file_close(struct mig__staging *s)
{
	if (!s || s->fd < 0)
		return;
	munmap(s->base, s->len);
	unlink(s->path);
	s->fd = safe_close(s->fd);
}

int64_t mig__node_free(int node)
{
	long long free_bytes;

	if (node < 0 || node >= MIG_MAX_NODES)
		return -ENODEV;
	/* -1 (or a free figure of -1) when the node has no meminfo: not a node here. */
	if (numa_node_size64(node, &free_bytes) < 0 || free_bytes < 0)
		return -ENODEV;
	return (int64_t)free_bytes;
}
