/*
 * staging.c - staging memory on the target node, and the node's free
 * memory.
 *
 * Staging holds the content of a window between the batch copy and the
 * fill. It prefers the target node (MPOL_PREFERRED, not BIND: a full node
 * must slow staging down, never fail it or wake the OOM killer), and the
 * node-bound worker that first touches it places it there anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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
	(void)syscall(SYS_mbind, p, len, MPOL_PREFERRED, n.bits, MIG_MAX_NODES + 1, 0);
	*ret = p;
	return 0;
}

void mig__staging_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

int64_t mig__node_free(int node)
{
	char path[96], buf[4096], *s;
	unsigned long long kb;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENODEV : -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	safe_close(fd);
	if (len < 0)
		return -errno;
	buf[len] = 0;
	s = strstr(buf, "MemFree:");
	if (!s || sscanf(s, "MemFree: %llu kB", &kb) != 1)
		return -EIO;
	return (int64_t)(kb * 1024);
}
