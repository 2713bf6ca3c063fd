/*
 * pfnnode.c - the node of a physical page, from the memory blocks sysfs
 * lists under each node (/sys/devices/system/node/nodeN/memoryM: block M
 * holds the PFNs [M, M + 1) x block_size_bytes / page size).
 *
 * A window's scan asked move_pages(2) for the node of every present
 * page, once per folio: 11 % of migd's CPU in an idle move-first job
 * (issue 16, perf, host 6.18). pagemap has given each page's PFN already
 * (with CAP_SYS_ADMIN), and a PFN's block says its node.
 *
 * What the table answers for, and what it leaves to move_pages:
 *  - Only pages pagemap calls present and mapped exclusively
 *    (PM_MMAP_EXCLUSIVE) with a PFN: that leaves out the zero page and
 *    the huge zero page (no mapcount: never exclusive), whose node
 *    move_pages does not give (-EFAULT), and pages shared after a fork.
 *  - A block sysfs lists under two nodes (a block across a node boundary)
 *    or under none (hot-added since the table was read) answers -1: the
 *    page is asked as before.
 *  - Memory is added and removed while a host runs (hot-plug, dax kmem):
 *    the table is read again when it is older than TABLE_NS, so it is
 *    never staler than a second.
 * Both answers are a look at one moment: a page may move just after
 * either.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "procfs.h"

#define TABLE_NS    UINT64_C(1000000000)
#define BLOCK_AMBIG (-2)
#define MAX_BLOCKS  (1u << 24) /* 2 PiB of 128 MiB blocks */

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static int16_t *table;		/* node per block, -1 none, BLOCK_AMBIG two */
static size_t nblocks;		/* entries in table */
static uint64_t pfns_per_block; /* 0: no table (no sysfs, or it failed) */
static uint64_t built_ns;	/* when it was read, 0: never */
static int disabled;		/* mig__pfn_node_set(0): tests compare with move_pages */

int mig__pfn_node_set(int on)
{
	return __atomic_exchange_n(&disabled, !on, __ATOMIC_RELAXED) ? 0 : 1;
}

static int read_block_size(uint64_t *ret)
{
	char buf[64] = "";
	FILE *f = fopen("/sys/devices/system/memory/block_size_bytes", "re");
	bool ok;

	if (!f)
		return -errno;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return -EIO;
	*ret = strtoull(buf, NULL, 16);
	return *ret ? 0 : -EIO;
}

/* Add node's memory blocks to t (grown as needed). */
static int read_node(int node, int16_t **t, size_t *n)
{
	char path[64];
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		char *end;
		unsigned long b;

		if (strncmp(d->d_name, "memory", 6) != 0 || d->d_name[6] < '0' ||
		    d->d_name[6] > '9')
			continue;
		b = strtoul(d->d_name + 6, &end, 10);
		if (*end || b >= MAX_BLOCKS)
			continue;
		if (b >= *n) {
			size_t m = MAX((size_t)b + 1, *n * 2);
			int16_t *g = realloc(*t, m * sizeof(**t));

			if (!g) {
				closedir(dir);
				return -ENOMEM;
			}
			for (size_t k = *n; k < m; k++)
				g[k] = -1;
			*t = g;
			*n = m;
		}
		(*t)[b] = (*t)[b] == -1 ? (int16_t)node : BLOCK_AMBIG;
	}
	closedir(dir);
	return 0;
}

/* Read the table again (write lock held). On failure there is none. */
static void build(void)
{
	struct mig_nodes online;
	int16_t *t = NULL;
	size_t n = 0;
	uint64_t bs = 0;
	long ps = sysconf(_SC_PAGESIZE);
	int r = read_block_size(&bs);

	built_ns = mig__now_ns();
	mig_nodes_online(&online);
	for (int node = 0; r == 0 && node < MIG_MAX_NODES; node++)
		if (mig_nodes_test(&online, (unsigned)node))
			r = read_node(node, &t, &n);
	free(table);
	table = NULL;
	nblocks = 0;
	pfns_per_block = 0;
	if (r < 0 || n == 0 || ps <= 0 || bs % (uint64_t)ps) {
		free(t);
		return;
	}
	table = t;
	nblocks = n;
	pfns_per_block = bs / (uint64_t)ps;
}

/* Fresh enough a table, read locked; false: none (the lock is not held then). */
static bool table_get(void)
{
	uint64_t now = mig__now_ns();

	pthread_rwlock_rdlock(&lock);
	if (!built_ns || now - built_ns >= TABLE_NS) {
		pthread_rwlock_unlock(&lock);
		pthread_rwlock_wrlock(&lock);
		if (!built_ns || now - built_ns >= TABLE_NS)
			build();
		pthread_rwlock_unlock(&lock);
		pthread_rwlock_rdlock(&lock);
	}
	if (pfns_per_block)
		return true;
	pthread_rwlock_unlock(&lock);
	return false;
}

size_t mig__pfn_nodes(struct mig_pageinfo *pi, size_t n)
{
	size_t known = 0;

	if (__atomic_load_n(&disabled, __ATOMIC_RELAXED) || !table_get())
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t b;

		if ((pi[i].flags & (MIG_PAGE_PRESENT | MIG_PAGE_EXCLUSIVE)) !=
			    (MIG_PAGE_PRESENT | MIG_PAGE_EXCLUSIVE) ||
		    (pi[i].flags & MIG_PAGE_ZERO) || pi[i].pfn == 0)
			continue;
		b = pi[i].pfn / pfns_per_block;
		if (b < nblocks && table[b] >= 0) {
			pi[i].node = table[b];
			known++;
		}
	}
	pthread_rwlock_unlock(&lock);
	return known;
}
