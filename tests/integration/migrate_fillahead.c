/*
 * migrate_fillahead.c - move first and a tenant that walks through its
 * memory while a window's pages are out. A fault on a page taken out is
 * served at once from the scratch area; the fault thread then also fills
 * the pages out after it at the following addresses (up to 32, libmig
 * faults.c fill_ahead), so a thread that reads its memory in order faults
 * about once per 33 pages instead of on every page while the window's
 * fill has not reached them.
 *
 * The hook after the first window's zap (nothing filled yet) has the idle
 * tenant read the first word of each of the window's 512 pages in address
 * order and waits for its answer: how many held their page's tag. Then the fill runs. The job may
 * serve at most 64 faults (without the fill ahead: 512), the sum must be right, every page must end
 * on the target and the tenant must find every page intact.
 */
#include "integration/migrate_common.h"

struct walk {
	struct wtenant *w;
	int done;
	char answer[512];
	uint64_t first, n;
};

static void hook(int phase, const struct mig_range *win, void *ud)
{
	struct walk *k = ud;
	char cmd[96];

	if (phase != MIG_PHASE_ZAPPED || k->done)
		return;
	k->done = 1;
	k->first = (win->start - k->w->addr) / 4096;
	k->n = (win->end - win->start) / 4096;
	snprintf(cmd, sizeof(cmd), "touch %llu %llu", (unsigned long long)(win->start - k->w->addr),
		 (unsigned long long)(win->end - win->start));
	snprintf(k->answer, sizeof(k->answer), "%s", wt_cmd(k->w, cmd));
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "8M", "--threads", "0", NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct mig_placement pl;
	struct wtenant w = { 0 };
	struct walk k = { .w = &w };
	uint64_t max_us = 0, p99_us = 0, on, got = 0;
	int r;

	(void)argc;
	pick_target_movefirst(&targets, &o);
	o.phase_hook = hook;
	o.hook_userdata = &k;
	wt_start_source(&w, argv[0], args);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0) {
		wt_kill(&w);
		FAIL("mig_migrate: %s", strerror(-r));
	}
	print_result(&res);
	if (!k.done)
		FAIL("no window reached the hook");
	printf("# the walk of pages %llu-%llu: '%s' (pages with their tag); %llu faults served\n",
	       (unsigned long long)k.first, (unsigned long long)(k.first + k.n - 1), k.answer,
	       (unsigned long long)res.faults);
	if (sscanf(k.answer, "OK %" SCNu64, &got) != 1 || got != k.n)
		FAIL("the walk read '%s': not every one of %" PRIu64 " pages had its tag", k.answer,
		     k.n);
	if (res.windows_movefirst == 0)
		FAIL("no window began move first");
	if (res.faults == 0 || res.faults > k.n / 8)
		FAIL("%" PRIu64 " faults served for a walk through %" PRIu64
		     " pages taken out (want 1 to %" PRIu64 ")",
		     res.faults, k.n, k.n / 8);
	on = placed_on(&w, &rg, &targets, &pl);
	printf("# placement after: %" PRIu64 " of %" PRIu64 " pages on the target, %" PRIu64
	       " absent\n",
	       on, pl.total, pl.absent);
	if (wt_stop(&w, &max_us, &p99_us) != 0)
		FAIL("the tenant found damaged pages");
	check_all_moved(&res, &pl, &targets);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
