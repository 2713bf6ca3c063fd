/*
 * migrate_full.c - the target node is full: a hog process bound to node
 * 1 takes all but ~80 MiB of it, then a tenant 48 MiB larger than what
 * is left (at least 64 MiB) on node 0 with
 * running writers is migrated to node 1. Windows that still fit move; the
 * rest stay on node 0 and are reported -ENOMEM, nothing is zapped that
 * cannot be put back, no OOM kill happens, and the tenant verifies every
 * page. Needs two nodes (the qemu guest); a one-node host cannot be made
 * "full" for one node without starving itself.
 */
#include <fcntl.h>

#include "integration/migrate_common.h"

static long long node_free_mib(int node)
{
	char path[96], buf[4096], *s;
	long long kb = -1;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	s = strstr(buf, "MemFree:");
	if (s)
		sscanf(s, "MemFree: %lld", &kb);
	return kb / 1024;
}

int main(int argc, char **argv)
{
	char tsize[32];
	const char *args[] = { "--size", tsize, "--threads", "2", "--node", "0", NULL };
	char hogsize[32];
	const char *hogargs[] = { "--size", hogsize, "--threads", "1", "--node", "1", NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 }, hog = { 0 };
	uint64_t enomem = 0;
	long long freemib;
	int r;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	if (count_nodes() < 2)
		SKIP("needs 2 NUMA nodes to fill the target (runs in the qemu guest)");
	pick_target(&targets, &o);
	freemib = node_free_mib(1);
	if (freemib < 128)
		SKIP("node 1 has only %lld MiB free", freemib);
	snprintf(hogsize, sizeof(hogsize), "%lldM", (freemib - 80) / 2 * 2);
	printf("# node 1: %lld MiB free, hog takes %s\n", freemib, hogsize);
	wt_start(&hog, argv[0], hogargs);
	/*
	 * What is left free on node 1 varies from boot to boot; the tenant is
	 * made larger than that, so the target is full before it is all moved.
	 */
	freemib = node_free_mib(1);
	snprintf(tsize, sizeof(tsize), "%lldM", freemib + 48 > 64 ? (freemib + 48) / 2 * 2 : 64LL);
	printf("# node 1 free with the hog: %lld MiB, tenant %s\n", freemib, tsize);
	wt_start(&w, argv[0], args);
	wt_attach(&w);
	usleep(100000);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	print_result(&res);
	check_status(&res, &targets);
	for (unsigned k = 0; k < res.nerrnos; k++)
		if (res.errnos[k].err == ENOMEM)
			enomem = res.errnos[k].pages;
	finish(&w);
	mig_migrate_result_free(&res);
	if (wt_stop(&hog, NULL, NULL) != 0)
		FAIL("the hog on node 1 lost data");
	if (enomem == 0)
		FAIL("no page reported -ENOMEM");
	if (res.pages_moved + res.pages_failed + res.pages_skipped + res.pages_gone !=
	    res.pages_present)
		FAIL("pages unaccounted for");
	printf("PASS\n");
	return 0;
}
