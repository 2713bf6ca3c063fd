/*
 * migrate_mremap_unread.c - the tenant mremaps a window's pages away right
 * after its zap, and the fill runs before the fault thread has read the
 * REMAP. Since Linux 6.9 UFFDIO_COPY (and UFFDIO_MOVE) look the VMA up
 * before they check for an unread event (mmap_changing): at the old
 * address they say -ENOENT, not -EAGAIN. The fill used to take that for a
 * page the tenant had dropped, called the pages gone and left them out:
 * the tenant read zeros at their new address (stress_churn's madvise kind
 * in stop 25's CI, 'x(away)'). Now -ENOENT with an event unread is retried
 * once the event is read, at the pages' new address.
 *
 * The fault thread is slowed down (MIG_CRASH_AT=faults:drain:pause200:
 * each read of the uffd waits 200 ms), the tenant is idle and runs the
 * mremap from the hook after the zap without waiting for its answer (its
 * mremap returns only once the event is read), and the hook returns once
 * the old range is unmapped: the fill then meets the unread event. The
 * tenant checks every page at the end.
 */
#include "integration/migrate_common.h"

struct unread {
	struct wtenant *w;
	uint64_t off, len;
	int done;
};

/* Is any of [start, end) of pid mapped? */
static bool mapped_in(pid_t pid, uint64_t start, uint64_t end)
{
	char path[64], line[512];
	bool any = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	while (f && !any && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			any = lo < end && start < hi;
	}
	if (f)
		fclose(f);
	return any;
}

static void hook(int phase, const struct mig_range *win, void *ud)
{
	struct unread *u = ud;
	uint64_t off = win->start - u->w->addr;
	double t0 = now_s() * 1000;

	if (phase != MIG_PHASE_ZAPPED || u->done || off < u->w->len / 4)
		return;
	u->done = 1;
	u->off = off;
	u->len = win->end - win->start;
	/* The answer comes only once the REMAP is read: not waited for here. */
	fprintf(u->w->in, "mremap %llu %llu\n", (unsigned long long)off,
		(unsigned long long)u->len);
	fflush(u->w->in);
	while (mapped_in(u->w->pid, win->start, win->end) && now_s() * 1000 - t0 < 10000)
		usleep(100);
	printf("# hook: the tenant's mremap of %llu KiB at offset %llu %s after %.1f ms\n",
	       (unsigned long long)(u->len >> 10), (unsigned long long)off,
	       mapped_in(u->w->pid, win->start, win->end) ? "NOT done" : "done",
	       now_s() * 1000 - t0);
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "0", NULL };
	struct mig_migrate_result res;
	struct mig_migrate_opts o = { 0 };
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	struct unread u = { .w = &w };
	char line[512];
	int r;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	setenv("MIG_CRASH_AT", "faults:drain:pause200,fill:noent:fault", 1);
	pick_target(&targets, &o);
	wt_start_source(&w, argv[0], args);
	o.phase_hook = hook;
	o.hook_userdata = &u;
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	printf("mig_migrate: %d (%s)\n", r, r < 0 ? strerror(-r) : "ok");
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	if (!u.done)
		FAIL("no window reached the hook");
	if (!fgets(line, sizeof(line), w.out))
		FAIL("the tenant did not answer its mremap");
	line[strcspn(line, "\n")] = 0;
	printf("tenant after 'mremap': %s\n", line);
	if (strncmp(line, "OK", 2))
		FAIL("tenant after 'mremap': %s", line);
	print_result(&res);
	check_status(&res, &targets);
	if (res.pages_failed)
		FAIL("%" PRIu64 " pages failed", res.pages_failed);
	/* The tenant checks every page, those it moved at their new address. */
	event_test_done(&w, &res);
	return 0;
}
