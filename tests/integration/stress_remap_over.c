/*
 * stress_remap_over.c - deterministic reproducer: after a window's zap and
 * before its fill, the tenant (no threads, tests/tenants/stress_tenant
 * --threads 0) mremaps 16 zapped pages over 16 other zapped pages of the
 * same window (MREMAP_FIXED), then reads the destination. It must read
 * the moved content; it reads zero when the fault thread looks the
 * faulting address up as the old, unmapped page of that address.
 *
 * The fault thread now prefers the live page of an address over a gone
 * one (faults.c mig__window_find), so this runs by default.
 */
#include "integration/stress_common.h"

struct ctx {
	struct wtenant *w;
	int done;
	char answer[512], checked[512];
};

static void hook(int phase, const struct mig_range *win, void *ud)
{
	struct ctx *c = ud;

	if (phase != MIG_PHASE_ZAPPED || c->done || win->start != c->w->addr)
		return;
	c->done = 1;
	/* Pages 0..15 over pages 256..271, both zapped, neither filled yet. */
	snprintf(c->answer, sizeof(c->answer), "%s", wt_cmd(c->w, "y 0 256 16"));
	snprintf(c->checked, sizeof(c->checked), "%s", wt_cmd(c->w, "check 256 16"));
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "4", "--threads", "0", NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct wtenant w = { 0 };
	struct mig_nodes targets;
	struct ctx c = { .w = &w };
	int r;

	(void)argc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	st_start(&w, argv[0], "stress_tenant", args);
	wt_attach(&w);
	pick_target(&targets, &o);
	o.phase_hook = hook;
	o.hook_userdata = &c;
	o.no_collapse = true;
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	printf("mig_migrate: %d; tenant: '%s', '%s'\n", r, c.answer, c.checked);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	print_result(&res);
	mig_migrate_result_free(&res);
	(void)mig_tenant_detach(w.t);
	if (!c.done || strcmp(c.answer, "OK"))
		FAIL("the tenant did not mremap: %s", c.answer);
	if (strcmp(c.checked, "CHECKED 16/16"))
		FAIL("moved pages read wrong right after the mremap: %s", c.checked);
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("the tenant found damaged pages");
	printf("PASS\n");
	return 0;
}
