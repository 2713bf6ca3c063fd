/*
 * staging_place.c - where the pages of a staging file land (libmig
 * staging.c): the file is on tmpfs and mapped shared, so its pages are
 * shmem pages, and the engine's placement must still hold for them.
 * Needs nodes 0 and 1 (the qemu guests; one node: skip).
 *
 * Two slices of one staging file are placed with mig__staging_place
 * (mbind MPOL_PREFERRED, node 1 then node 0) and first touched by this
 * thread with no policy of its own: each slice must be on its node. Then
 * a second file without mbind is touched by a thread under
 * set_mempolicy(MPOL_BIND, node 1): tmpfs follows the task policy where
 * the file has none, so it must be on node 1 too. The figures are
 * printed; docs/engine.md ("After a crash") relies on the first case.
 */
#include <errno.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "mig.h"

#define SLICE (4UL << 20)

static int on_node(char *p, size_t len, int node)
{
	size_t n = len / 4096, hit = 0;
	void **pages = calloc(n, sizeof(*pages));
	int *status = calloc(n, sizeof(*status));

	if (!pages || !status)
		exit(1);
	for (size_t i = 0; i < n; i++)
		pages[i] = p + i * 4096;
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0) < 0) {
		perror("move_pages");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		hit += status[i] == node;
	free(pages);
	free(status);
	return (int)(hit * 100 / n);
}

int main(void)
{
	char dir[] = "/tmp/migd-staging.XXXXXX";
	struct mig__staging s, t;
	unsigned long mask = 2;
	int a, b, c, r;

	if (access("/sys/devices/system/node/node1", F_OK) != 0) {
		printf("SKIP: needs NUMA nodes 0 and 1 (the qemu guests)\n");
		return 77;
	}
	if (!mkdtemp(dir))
		return 1;
	r = mig__staging_file(dir, getpid(), 2 * SLICE, &s);
	if (r < 0) {
		fprintf(stderr, "mig__staging_file: %s\n", strerror(-r));
		return 1;
	}
	mig__staging_place(s.base, SLICE, 1);
	mig__staging_place(s.base + SLICE, SLICE, 0);
	memset(s.base, 0x5a, 2 * SLICE);
	a = on_node(s.base, SLICE, 1);
	b = on_node(s.base + SLICE, SLICE, 0);
	printf("# staging file, mbind preferred: slice for node 1 %d%% there, for node 0 %d%% "
	       "there\n",
	       a, b);
	mig__staging_file_close(&s);

	r = mig__staging_file(dir, getpid(), SLICE, &t);
	if (r < 0)
		return 1;
	if (syscall(SYS_set_mempolicy, MPOL_BIND, &mask, 64) < 0) {
		perror("set_mempolicy");
		return 1;
	}
	memset(t.base, 0xa5, SLICE);
	(void)syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0);
	c = on_node(t.base, SLICE, 1);
	printf("# staging file, no mbind, writer under MPOL_BIND node 1: %d%% on node 1\n", c);
	mig__staging_file_close(&t);
	rmdir(dir);
	if (a < 99 || b < 99 || c < 99) {
		printf("FAIL: staging pages not where placed\n");
		return 1;
	}
	printf("PASS\n");
	return 0;
}
