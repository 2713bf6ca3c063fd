/*
 * numa.c - the edge to libnuma: its error hooks, and the one question
 * about a node that needs more than a plain call (its CPUs).
 *
 * libmig asks libnuma for what it knows about nodes (numa_node_size64(),
 * numa_node_to_cpus()) and uses its system call wrappers from <numaif.h>
 * (set_mempolicy(), mbind(), numa_move_pages()), which return -1/errno
 * like libc and are converted to -errno at the call. What libnuma does
 * not return it reports through numa_error() and numa_warn(), which by
 * default print to stderr (and may exit with numa_exit_on_error). A
 * library must not print into its host's stderr, so both are overridden
 * here: they keep errno and say nothing; the caller sees the failure as
 * the return value of the call. The definitions must be visible to the
 * dynamic linker (libnuma calls them through its PLT), hence the
 * default visibility in a library built with -fvisibility=hidden.
 *
 * One thing the override cannot change: libnuma's numa_bitmask_alloc()
 * exits when malloc() of a few bytes fails. The masks libmig hands to
 * libnuma are therefore allocated here, never by libnuma's allocators.
 */
#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "engine.h"

__attribute__((visibility("default"))) void numa_error(char *where);
__attribute__((visibility("default"))) void numa_warn(int num, char *fmt, ...);

void numa_error(char *where)
{
	(void)where;
}

void numa_warn(int num, char *fmt, ...)
{
	(void)num;
	(void)fmt;
}

void mig_nodes_online(struct mig_nodes *ret)
{
	struct mig_nodes n = { { 0 } };

	for (unsigned i = 0; numa_nodes_ptr && i < MIG_MAX_NODES; i++)
		if (numa_bitmask_isbitset(numa_nodes_ptr, i))
			mig_nodes_set(&n, i);
	*ret = n;
}

/*
 * numa_node_to_cpus() fills a per-node cache without a lock (its own
 * comment calls the races "relatively harmless": leaked masks), and
 * workers of several pools may ask at the same time.
 */
static pthread_mutex_t node_cpus_lock = PTHREAD_MUTEX_INITIALIZER;

int mig__node_cpus(int node, cpu_set_t *ret)
{
	int ncpus = numa_num_possible_cpus();
	struct bitmask mask;
	bool any = false;
	cpu_set_t set;
	int r;

	if (node < 0 || ncpus <= 0)
		return -EINVAL;
	/* libnuma compares the size with its cached mask: it must be ncpus bits. */
	mask.size = (unsigned long)ncpus;
	mask.maskp = calloc(((size_t)ncpus + 63) / 64, sizeof(unsigned long));
	if (!mask.maskp)
		return -ENOMEM;
	pthread_mutex_lock(&node_cpus_lock);
	r = RET_NERRNO(numa_node_to_cpus(node, &mask));
	pthread_mutex_unlock(&node_cpus_lock);
	if (r < 0) {
		free(mask.maskp);
		/* ERANGE: not a node of this host. */
		return r == -ERANGE ? -ENODEV : r;
	}
	CPU_ZERO(&set);
	for (unsigned c = 0; c < (unsigned)ncpus && c < CPU_SETSIZE; c++)
		if (numa_bitmask_isbitset(&mask, c)) {
			CPU_SET(c, &set);
			any = true;
		}
	free(mask.maskp);
	/* A memory-only node (far memory, CXL) has no CPUs. */
	if (!any)
		return -ENOENT;
	*ret = set;
	return 0;
}
