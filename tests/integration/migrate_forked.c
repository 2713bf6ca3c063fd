/*
 * migrate_forked.c - move first and a tenant that has forked. The kernel
 * refuses to UFFDIO_MOVE a page shared with a fork child (-EBUSY: not
 * AnonExclusive) until the tenant writes it, and move first never takes a
 * page out any other way: such a job used to move almost nothing (churn
 * seeds 1883691796553322 and 1883692690901344: 1 and 9 pages). A window
 * that meets -EBUSY now goes on with classic passes (staged, taken out
 * with madvise), and the job's next windows begin classic.
 *
 * The tenant forks a child that shares all its pages and waits; two
 * writers then write the first half of them (those become the tenant's
 * own again), the second half stays shared. With move-first windows asked for, at
 * least one window must have gone on classic, at least 99.9 % of the
 * present pages must be on the target, none gone or absent, and the
 * tenant (and the child's pages, which it never checks: they are its
 * own) must find every page intact.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "2", "--fork-child", NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct mig_placement pl;
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99_us = 0, on;
	int r;

	(void)argc;
	pick_target_movefirst(&targets, &o);
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
	       " absent\n",
	       on, pl.total, pl.absent);
	if (wt_stop(&w, &max_us, &p99_us) != 0)
		FAIL("the tenant found damaged pages");
	if (res.windows_movefirst == 0)
		FAIL("no window began move first");
	if (res.windows_switched == 0)
		FAIL("no window went on classic: MOVE refused nothing, or the switch did not act");
	check_all_moved(&res, &pl, &targets);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
