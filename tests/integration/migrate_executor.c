/*
 * migrate_executor.c - the zap session's executor is a thread asleep in a
 * syscall when the tenant has one (libmig ptrace.c,
 * mig__inject_idle_thread), not a busy main thread.
 *
 * A writer whose main thread spins (--busy-main: an event loop always at
 * work, never touching the data) and whose commands are read by another
 * thread, asleep in read(2), plus one writer thread, is migrated whole
 * with the MOVE zap, once with classic windows and once with move-first
 * windows (UFFDIO_MOVE: Linux 6.8+; the madvise zap stops every thread
 * anyway; with two nodes the second job brings the pages back to node 0).
 * Every ptrace stop of a thread is one voluntary
 * context switch of it (a session makes several: the interrupt, each
 * syscall's entry and exit), and a spinning thread makes none of its own.
 * With the main thread as every session's executor its count
 * (/proc/PID/task/PID/status) grew by 183 in the classic job, 11 a
 * window. Now it may grow by the odd session that found the other thread
 * on a CPU (at the job's start it has just answered "mainstat"), but by
 * no more than one a window, while the tenant's other threads together
 * took at least one stop a window. The main thread must have gone on spinning throughout, every
 * page must have moved and the tenant must find its data intact.
 */
#include "integration/migrate_common.h"

static unsigned long long vcsw(pid_t pid, pid_t tid)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(path, "re");
	if (!f) {
		FAIL("%s: %s", path, strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Adds up the stops of the tenant's threads other than the main one. */
static void add_other(pid_t pid, const char *tid, void *ud)
{
	unsigned long long *others = ud;

	if (atoi(tid) != pid)
		*others += vcsw(pid, (pid_t)atoi(tid));
}

static unsigned long long spins(struct wtenant *w)
{
	unsigned long long n = 0;
	const char *a = wt_cmd(w, "mainstat");

	if (sscanf(a, "MAINSTAT spins=%llu", &n) != 1)
		FAIL("mainstat: %s", a);
	return n;
}

static void job(struct wtenant *w, bool movefirst)
{
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct mig_range rg = { w->addr, w->addr + w->len };
	unsigned long long m0, m1, sp0, sp1, o0 = 0, o1 = 0;
	int r;

	pick_target(&targets, &o);
	/* Two nodes: the first job took the pages to node 1, the second brings them back. */
	if (movefirst && count_nodes() >= 2) {
		memset(&targets, 0, sizeof(targets));
		mig_nodes_set(&targets, 0);
		printf("# move first: back to node 0\n");
	}
	o.protocol = movefirst ? MIG_WINDOW_MOVEFIRST : MIG_WINDOW_CLASSIC;
	o.zap = MIG_ZAP_MOVE;
	sp0 = spins(w);
	m0 = vcsw(w->pid, w->pid);
	wt_each_thread(w->pid, add_other, &o0);
	r = mig_migrate(w->t, &rg, 1, &targets, &o, NULL, NULL, &res);
	m1 = vcsw(w->pid, w->pid);
	wt_each_thread(w->pid, add_other, &o1);
	sp1 = spins(w);
	if (r < 0) {
		wt_kill(w);
		FAIL("mig_migrate (%s): %s", movefirst ? "move first" : "classic", strerror(-r));
	}
	print_result(&res);
	printf("# %s: %" PRIu64 " windows; main thread stopped %llu times, the others %llu; "
	       "main spun %llu times meanwhile\n",
	       movefirst ? "move first" : "classic", res.windows, m1 - m0, o1 - o0, sp1 - sp0);
	if (res.windows < 8) {
		wt_kill(w);
		FAIL("only %" PRIu64 " windows ran: too few to tell", res.windows);
	}
	if (m1 - m0 > res.windows) {
		wt_kill(w);
		FAIL("%s: the busy main thread was stopped %llu times in %" PRIu64
		     " windows: it ran the zap sessions",
		     movefirst ? "move first" : "classic", m1 - m0, res.windows);
	}
	if (o1 - o0 < res.windows) {
		wt_kill(w);
		FAIL("%s: the other threads were stopped %llu times in %" PRIu64
		     " windows: who ran the zap sessions?",
		     movefirst ? "move first" : "classic", o1 - o0, res.windows);
	}
	if (sp1 <= sp0) {
		wt_kill(w);
		FAIL("the main thread did not spin during the job");
	}
	check_status(&res, &targets);
	if (res.pages_moved * 1000 < (res.pages_total - res.pages_absent) * 999) {
		wt_kill(w);
		FAIL("%s: only %" PRIu64 " of %" PRIu64 " present pages moved",
		     movefirst ? "move first" : "classic", res.pages_moved,
		     res.pages_total - res.pages_absent);
	}
	mig_migrate_result_free(&res);
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "1", "--busy-main", NULL };
	struct wtenant w = { 0 };
	uint64_t max_us = 0, p99_us = 0;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach)");
	/*
	 * The madvise zap (all 6.1 has) stops every thread of the tenant for
	 * its session (zap.c, MIG__ZAP_STOP): which one runs it is moot.
	 */
	if (!kernel_has_move())
		SKIP("this kernel has no UFFDIO_MOVE (Linux 6.8+): its zap stops every thread");
	wt_start_source(&w, argv[0], args);
	if (mig_tenant_method(w.t) != MIG_ATTACH_PTRACE) {
		wt_kill(&w);
		SKIP("the tenant is not attached with ptrace: no injection");
	}
	job(&w, false);
	job(&w, true);
	if (wt_stop(&w, &max_us, &p99_us) != 0)
		FAIL("the tenant found damaged pages");
	printf("PASS\n");
	return 0;
}
