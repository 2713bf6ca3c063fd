/*
 * migrate_uncounted.c - Linux 6.18's batched UFFDIO_MOVE can move a run
 * of pages and still answer -EEXIST, "nothing moved" (a stale -EAGAIN in
 * move_pages()'s loop; docs/engine.md, "Causes found under churn", 8).
 * Taken at its word, migd left those pages out of the fill, found them
 * absent and called them gone: the tenant read zeros (stress_chaos,
 * seven heap pages of a whole-process job). The kernel gives that answer
 * only now and then, under load; the fault point zap:uncounted gives it
 * for every MOVE step that moved its whole run, after the move really
 * happened, so every such run is found in the scratch slots instead.
 * A tenant with two writers must find every page intact, none gone or
 * absent, at least 99.9 % of the present pages on the target, and the
 * result must count the uncounted pages.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "2", NULL };
	struct mig_migrate_opts o = { .zap = MIG_ZAP_MOVE };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct mig_placement pl;
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99_us = 0, on;
	int r;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	if (!kernel_has_move())
		SKIP("this kernel has no UFFDIO_MOVE (Linux 6.8+)");
	/* Before the first libmig call: the points are read once. */
	setenv("MIG_CRASH_AT", "zap:uncounted:fault", 1);
	pick_target(&targets, &o);
	wt_start_source(&w, argv[0], args);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0) {
		wt_kill(&w);
		FAIL("mig_migrate: %s", strerror(-r));
	}
	print_result(&res);
	on = placed_on(&w, &rg, &targets, &pl);
	printf("# placement after: %" PRIu64 " of %" PRIu64 " pages on the target, %" PRIu64
	       " absent; %" PRIu64 " pages found in scratch uncounted\n",
	       on, pl.total, pl.absent, res.move_uncounted);
	if (wt_stop(&w, &max_us, &p99_us) != 0)
		FAIL("the tenant found damaged pages");
	if (res.move_uncounted == 0)
		FAIL("no MOVE step was answered the 6.18 way: the fault point did not act");
	check_all_moved(&res, &pl, &targets);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
