/*
 * migrate.c (bench) - migrate a range of a tenant whose writer threads keep
 * writing, and print the figures: GB/s, pages/s, the tenant's max and p99
 * write stall, migd's peak RSS.
 *
 * On a one-node host: 1 GiB forced to node 0, plus the single-thread
 * memcpy bandwidth measured in the same run and the ratio to it. With two
 * or more nodes (the qemu guest): 256 MiB from node 0 to node 1, and
 * move_pages(2) and migrate_pages(2) timed on fresh tenants of the same
 * kind in the same run, with the ratios. MIG_BENCH_SIZE overrides the size,
 * MIG_BENCH_WINDOW the window (MiB).
 */
#include <numaif.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "integration/migrate_common.h"

static double memcpy_gbs(size_t len)
{
	char *a = malloc(len), *b = malloc(len);
	double best = 0;

	if (!a || !b)
		return 0;
	memset(a, 1, len);
	memset(b, 2, len);
	for (int k = 0; k < 5; k++) {
		double t0 = now_s();

		memcpy(b, a, len);
		__asm__ volatile("" ::"r"(b) : "memory");
		double gbs = len / (now_s() - t0) / 1e9;
		if (gbs > best)
			best = gbs;
	}
	free(a);
	free(b);
	return best;
}

static long vm_hwm_kib(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* Time move_pages(2) of every page of a fresh writer tenant to node 1. */
static double time_move_pages(const char *self, const char *size)
{
	const char *args[] = {
		"--size", size, "--threads", "2", "--thp-half", "--node", "0", NULL
	};
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99 = 0;
	size_t n;
	void **pages;
	int *nodes, *status;
	double t;
	long r;

	wt_start(&w, self, args);
	n = w.len / 4096;
	pages = calloc(n, sizeof(*pages));
	nodes = calloc(n, sizeof(*nodes));
	status = calloc(n, sizeof(*status));
	for (size_t i = 0; i < n; i++) {
		pages[i] = (void *)(uintptr_t)(w.addr + i * 4096);
		nodes[i] = 1;
	}
	t = now_s();
	r = move_pages(w.pid, n, pages, nodes, status, MPOL_MF_MOVE);
	t = now_s() - t;
	if (wt_stop(&w, &max_us, &p99) != 0)
		printf("move_pages tenant: verify failed\n");
	printf("# bench: move_pages(2): %.3f s for %zu pages (returned %ld), %.2f GB/s, tenant max "
	       "stall %.3f ms, p99 %" PRIu64 " us\n",
	       t, n, r, n * 4096.0 / t / 1e9, max_us / 1000.0, p99);
	free(pages);
	free(nodes);
	free(status);
	return t;
}

static double time_migrate_pages(const char *self, const char *size)
{
	const char *args[] = {
		"--size", size, "--threads", "2", "--thp-half", "--node", "0", NULL
	};
	unsigned long from[16] = { 1 }, to[16] = { 2 };
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99 = 0;
	double t;
	long r;

	wt_start(&w, self, args);
	t = now_s();
	r = migrate_pages(w.pid, 1024 + 1, from, to);
	t = now_s() - t;
	if (wt_stop(&w, &max_us, &p99) != 0)
		printf("migrate_pages tenant: verify failed\n");
	printf("# bench: migrate_pages(2): %.3f s for the whole tenant (returned %ld), %.2f GB/s, "
	       "tenant max stall %.3f ms, p99 %" PRIu64 " us\n",
	       t, r, w.len / t / 1e9, max_us / 1000.0, p99);
	return t;
}

int main(int argc, char **argv)
{
	int nodes = count_nodes();
	const char *size = getenv("MIG_BENCH_SIZE") ? getenv("MIG_BENCH_SIZE")
			   : nodes >= 2		    ? "256M"
						    : "1G";
	const char *args[] = { "--size", size, "--threads", "2", "--thp-half", NULL, NULL, NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99 = 0;
	double secs;
	int r;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	pick_target(&targets, &o);
	if (nodes >= 2) {
		args[5] = "--node";
		args[6] = "0";
	}
	if (getenv("MIG_BENCH_ZAP"))
		o.zap = !strcmp(getenv("MIG_BENCH_ZAP"), "madvise") ? MIG_ZAP_MADVISE
								    : MIG_ZAP_MOVE;
	if (getenv("MIG_BENCH_WINDOW"))
		o.window = strtoull(getenv("MIG_BENCH_WINDOW"), NULL, 0) << 20;
	wt_start(&w, argv[0], args);
	wt_attach(&w);
	usleep(200000);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	(void)mig_tenant_detach(w.t);
	if (wt_stop(&w, &max_us, &p99) != 0)
		FAIL("the tenant found damaged pages");
	secs = res.elapsed_ns / 1e9;
	printf("# bench: migrated %s with writers running: %.3f s, %.3f GB/s, %.0f pages/s\n", size,
	       secs, res.bytes_per_sec / 1e9, res.pages_moved / secs);
	printf("# bench: moved %" PRIu64 "/%" PRIu64 " present pages, retried %" PRIu64
	       ", huge kept %" PRIu64 "\n",
	       res.pages_moved, res.pages_present, res.pages_retried, res.huge_kept);
	printf("# bench: tenant max stall %.3f ms, p99 %" PRIu64 " us; migd-side max stall %" PRIu64
	       " us\n",
	       max_us / 1000.0, p99, res.max_stall_us);
	printf("# bench: migd peak RSS (VmHWM) %ld KiB\n", vm_hwm_kib());
	if (nodes >= 2) {
		double mp = time_move_pages(argv[0], size);
		double mg = time_migrate_pages(argv[0], size);

		printf("# bench: ratio migd/move_pages %.2f, migd/migrate_pages %.2f (time)\n",
		       secs / mp, secs / mg);
	} else {
		double m = memcpy_gbs(256UL << 20);

		printf("# bench: single-thread memcpy %.2f GB/s; migd at %.1f%% of it\n", m,
		       m ? 100 * res.bytes_per_sec / 1e9 / m : 0);
	}
	mig_migrate_result_free(&res);
	return 0;
}
