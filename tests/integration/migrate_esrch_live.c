/*
 * migrate_esrch_live.c - a backend can answer -ESRCH while the tenant
 * lives: an agent's connection that closed, an injection that failed. A
 * window whose zap session ended so used to skip its fill, as if the
 * tenant had exited, and the pages that session took out stayed out: the
 * tenant would read zeros. The fault point zap:esrch ends the first zap
 * session that way, after its steps ran. The job must end with that
 * error, and the tenant, alive, must find every page intact and none
 * absent.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "2", NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct mig_placement pl;
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99_us = 0;
	int r;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	/* Before the first libmig call: the points are read once. */
	setenv("MIG_CRASH_AT", "zap:esrch:fault", 1);
	pick_target(&targets, &o);
	wt_start_source(&w, argv[0], args);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	printf("# mig_migrate: %d (%s)\n", r, r < 0 ? strerror(-r) : "ok");
	if (r != -ESRCH) {
		wt_kill(&w);
		FAIL("mig_migrate gave %d, not the -ESRCH the fault point makes", r);
	}
	(void)placed_on(&w, &rg, &targets, &pl);
	printf("# placement after: %" PRIu64 " pages, %" PRIu64 " absent\n", pl.total, pl.absent);
	if (wt_stop(&w, &max_us, &p99_us) != 0)
		FAIL("the tenant found damaged pages");
	if (pl.absent)
		FAIL("%" PRIu64 " pages absent: taken out and never put back", pl.absent);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
