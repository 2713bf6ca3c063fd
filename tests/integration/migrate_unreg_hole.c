/*
 * migrate_unreg_hole.c - move first and a VMA the tenant puts, not
 * registered, into a hole of a window's registered piece (zap.c rule 10).
 * Between the window's planning and its registration the tenant moves a
 * 64 KiB run away (mremap: nothing registered yet, no event), leaving a
 * hole that the registration skips; right after, it moves the run back
 * (no event either: its VMA was never registered). The run's pages lie in
 * the window's piece, present, in a VMA that is not registered: no MOVE
 * may take them out (a fill would meet -ENOENT and the tenant's faults
 * there never reach us: it would read zeros).
 *
 * The fault point zap:probe-again answers every other "not registered" of
 * the kernel with -EAGAIN, as the kernel does while the thread behind an event we
 * already read has not run yet. migd used to take that -EAGAIN for
 * "registered" and ran the MOVE: the 6.12 guest's move-first losses
 * (sessions 17 and 18). Now no MOVE runs on -EAGAIN: the run is asked
 * again, gets its answer and leaves the run where it is (UNREG, EBUSY).
 * The job must succeed, the trace must show both answers and no page
 * taken out of that VMA (FILLNOENT), and the tenant checks every page.
 */
#include "integration/migrate_common.h"

struct hole {
	struct wtenant *w;
	uint64_t off;
	int planned, back;
	char away[512], answer[512];
};

static void hook(int phase, const struct mig_range *win, void *ud)
{
	struct hole *h = ud;
	char cmd[96];

	if (phase == MIG_PHASE_PLANNED && !h->planned) {
		/* A run in the middle of the first window. */
		h->planned = 1;
		h->off = win->start - h->w->addr + (win->end - win->start) / 2;
		h->off -= h->off % 4096;
		snprintf(cmd, sizeof(cmd), "away %llu %u", (unsigned long long)h->off, 64U << 10);
		snprintf(h->away, sizeof(h->away), "%s", wt_cmd(h->w, cmd));
	} else if (phase == MIG_PHASE_REGISTERED && h->planned && !h->back) {
		h->back = 1;
		snprintf(h->answer, sizeof(h->answer), "%s", wt_cmd(h->w, "back"));
	}
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "8M", "--threads", "2", NULL };
	char trace[] = "/tmp/migrate_unreg_hole.trace.XXXXXX", line[512];
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	struct hole h = { .w = &w };
	int r, fd, again = 0, unreg = 0, noent = 0;
	FILE *f;

	(void)argc;
	pick_target_movefirst(&targets, &o);
	fd = mkstemp(trace);
	if (fd < 0)
		FAIL("mkstemp: %s", strerror(errno));
	close(fd);
	setenv("MIG_TRACE", trace, 1);
	setenv("MIG_CRASH_AT", "zap:probe-again:fault", 1);
	o.phase_hook = hook;
	o.hook_userdata = &h;
	wt_start_source(&w, argv[0], args);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	printf("# tenant: away '%s', back '%s' (run at offset %llu)\n", h.away, h.answer,
	       (unsigned long long)h.off);
	if (r < 0) {
		wt_kill(&w);
		FAIL("mig_migrate: %s (a MOVE took pages out of the unregistered VMA?)",
		     strerror(-r));
	}
	print_result(&res);
	if (strncmp(h.away, "OK", 2) || strncmp(h.answer, "OK", 2))
		FAIL("the tenant did not move its run away and back");
	f = fopen(trace, "re");
	while (f && fgets(line, sizeof(line), f)) {
		again += strstr(line, " PROBEAGAIN ") != NULL;
		unreg += strstr(line, " UNREG ") != NULL;
		noent += strstr(line, " FILLNOENT ") != NULL;
	}
	if (f)
		fclose(f);
	unlink(trace);
	printf("# trace: %d probes without an answer, %d runs not registered, %d FILLNOENT\n",
	       again, unreg, noent);
	if (again == 0 || unreg == 0)
		FAIL("the probe was never refused, or never said 'not registered': the test "
		     "did not reach its point");
	if (noent)
		FAIL("a page was taken out of the unregistered VMA");
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("the tenant found damaged pages");
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
