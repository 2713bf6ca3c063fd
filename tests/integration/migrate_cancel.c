/*
 * migrate_cancel.c - a job cancelled after its first window, once by its
 * progress callback returning nonzero and once through opts.cancel: the
 * job ends at once with -ECANCELED and a result (the pages not reached
 * are absent with status -ECANCELED, the identity holds), the writers
 * keep writing, and the tenant finds every page intact. Before the fix a
 * progress callback's cancel was overwritten by the next window and the
 * job ran to its end.
 */
#include "integration/migrate_common.h"

struct cancel_ctx {
	unsigned windows;   /* progress calls seen */
	volatile int *flag; /* NULL: cancel by returning nonzero */
};

static int on_progress(const struct mig_migrate_progress *p, void *ud)
{
	struct cancel_ctx *c = ud;

	(void)p;
	c->windows++;
	if (c->flag) {
		*c->flag = 1;
		return 0;
	}
	return 1;
}

static void one(struct wtenant *w, const struct mig_nodes *targets, struct mig_migrate_opts o,
		const char *how, volatile int *flag)
{
	struct cancel_ctx c = { .flag = flag };
	struct mig_range rg = { w->addr, w->addr + w->len };
	struct mig_migrate_result res;
	uint64_t cancelled = 0, windows = w->len / o.window;
	int r;

	o.cancel = flag;
	r = mig_migrate(w->t, &rg, 1, targets, &o, on_progress, &c, &res);
	if (r != -ECANCELED) {
		wt_kill(w);
		FAIL("%s: want -ECANCELED, got %d (%s)", how, r, strerror(-r));
	}
	print_result(&res);
	check_status(&res, targets);
	for (size_t i = 0; i < res.nstatus; i++)
		cancelled += res.status[i] == -ECANCELED;
	printf("# %s: %u window(s) ran of %" PRIu64 ", %" PRIu64 " pages not reached\n", how,
	       c.windows, windows, cancelled);
	/* One window ran (the one in flight when the cancel came), no more. */
	if (res.windows > 1 || c.windows != 1) {
		wt_kill(w);
		FAIL("%s: the job went on after the cancel: %" PRIu64 " windows, %u progress calls",
		     how, res.windows, c.windows);
	}
	if (cancelled < (windows - 1) * (o.window / 4096)) {
		wt_kill(w);
		FAIL("%s: %" PRIu64 " pages with status -ECANCELED, want at least %" PRIu64, how,
		     cancelled, (windows - 1) * (o.window / 4096));
	}
	mig_migrate_result_free(&res);
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "2", NULL, NULL, NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	volatile int flag = 0;
	uint64_t a[2] = { 0 }, b[2] = { 0 };

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	pick_target(&targets, &o);
	if (count_nodes() >= 2) {
		args[4] = "--node";
		args[5] = "0";
	}
	wt_start(&w, argv[0], args);
	wt_attach(&w);
	usleep(100000);
	o.window = 2 << 20;
	one(&w, &targets, o, "progress returns 1", NULL);
	one(&w, &targets, o, "opts.cancel", &flag);
	/* Both writers go on: nothing was left registered or frozen. */
	if (sscanf(wt_cmd(&w, "progress"), "PROGRESS %" SCNu64 " %" SCNu64, &a[0], &a[1]) != 2) {
		wt_kill(&w);
		FAIL("the tenant does not answer progress");
	}
	for (int i = 0; i < 100 && (b[0] <= a[0] || b[1] <= a[1]); i++) {
		usleep(50000);
		(void)sscanf(wt_cmd(&w, "progress"), "PROGRESS %" SCNu64 " %" SCNu64, &b[0], &b[1]);
	}
	if (b[0] <= a[0] || b[1] <= a[1]) {
		wt_kill(&w);
		FAIL("a writer made no progress in 5 s after the cancelled jobs");
	}
	(void)mig_tenant_detach(w.t);
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("the tenant found damaged pages");
	printf("PASS\n");
	return 0;
}
