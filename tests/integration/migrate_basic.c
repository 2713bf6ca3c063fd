/*
 * migrate_basic.c - migrate a tenant whose writer threads keep writing
 * (4 KiB pages and THPs): to node 1 where there are two nodes, else to
 * node 0 with force, which still runs every step. At least 99.9% of the
 * present pages must end on the target, the tenant must find every page
 * intact, and the VMA layout must be as before.
 */
#include "integration/migrate_common.h"

static size_t maps_lines(pid_t pid, char *buf, size_t size)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, size - 1, f);
	buf[n] = 0;
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	const char *size = getenv("MIG_TEST_SIZE") ? getenv("MIG_TEST_SIZE") : "256M";
	const char *args[] = { "--size", size, "--threads", "2", "--thp-half", NULL, NULL, NULL };
	static char before[1 << 16], after[1 << 16];
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99_us = 0, base;
	double pct;
	int r;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	pick_target(&targets, &o);
	if (count_nodes() >= 2) {
		args[5] = "--node";
		args[6] = "0";
	}
	wt_start(&w, argv[0], args);
	wt_attach(&w);
	usleep(200000); /* let the writers run before we start */
	maps_lines(w.pid, before, sizeof(before));

	struct mig_range rg = { w.addr, w.addr + w.len };
	/* A fill method that does not exist: refused, nothing touched. */
	o.fill = (enum mig_fill_method)7;
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r != -EINVAL) {
		wt_kill(&w);
		FAIL("fill method 7: want -EINVAL, got %d", r);
	}
	o.fill = MIG_FILL_AUTO;
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0) {
		wt_kill(&w);
		FAIL("mig_migrate: %s", strerror(-r));
	}
	print_result(&res);
	maps_lines(w.pid, after, sizeof(after));
	{
		/*
		 * The writers rewrite whole pages and never unmap anything:
		 * no page is gone, placement finds every page (none absent
		 * that the tenant still has) and agrees with pages_moved.
		 */
		struct mig_placement pl;
		uint64_t on = placed_on(&w, &rg, &targets, &pl);

		printf("# placement after: %" PRIu64 " of %" PRIu64 " pages on the target, %" PRIu64
		       " absent, %" PRIu64 " in large folios\n",
		       on, pl.total, pl.absent, pl.huge);
		if (res.pages_gone) {
			wt_kill(&w);
			FAIL("%" PRIu64 " pages gone, but the tenant removed none", res.pages_gone);
		}
		if (pl.absent) {
			wt_kill(&w);
			FAIL("placement says %" PRIu64 " pages absent, the tenant has them all",
			     pl.absent);
		}
		if (on < res.pages_moved + res.pages_skipped || on * 1000 < pl.total * 999) {
			wt_kill(&w);
			FAIL("placement: %" PRIu64 " on the target, the job moved %" PRIu64
			     " and skipped %" PRIu64 " of %" PRIu64,
			     on, res.pages_moved, res.pages_skipped, pl.total);
		}
	}
	r = mig_tenant_detach(w.t);
	if (r < 0)
		printf("detach: %s\n", strerror(-r));
	if (wt_stop(&w, &max_us, &p99_us) != 0)
		FAIL("the tenant found damaged pages");
	printf("# tenant longest write stall: %.3f ms, p99 %" PRIu64 " us\n", max_us / 1000.0,
	       p99_us);
	base = res.pages_present - res.pages_gone - res.pages_skipped;
	pct = base ? 100.0 * res.pages_moved / base : 0;
	printf("# %.3f%% of %" PRIu64 " present pages on the target (goal >= 99.9%%)\n", pct, base);
	check_status(&res, &targets);
	if (strcmp(before, after))
		FAIL("VMA layout changed:\n%s\n---\n%s", before, after);
	if (res.pages_present < w.len / 4096 * 99 / 100)
		FAIL("only %" PRIu64 " pages present", res.pages_present);
	if (pct < 99.9)
		FAIL("too few pages moved");
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
