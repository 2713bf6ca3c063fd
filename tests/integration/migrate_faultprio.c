/*
 * migrate_faultprio.c - mig_migrate_opts.fault_rt: the job's fault thread
 * runs SCHED_FIFO while a move-first window is out, and a normal thread
 * otherwise (libmig faults.c, mig__faults_priority; docs/engine.md, "The
 * fault thread").
 *
 * Three jobs on the same tenant, each with a hook inside every window
 * (MIG_PHASE_ZAPPED: the window's pages are out) that asks the kernel for
 * the scheduling policy of each of this process's threads:
 *  1. move first, fault_rt: a thread of ours is SCHED_FIFO in the windows,
 *     the result says fault_rt 1, and no thread is left real time after;
 *  2. classic windows, fault_rt: no thread is real time (a classic window
 *     holds its writers whatever the fault thread's priority), fault_rt 0;
 *  3. move first without fault_rt: none is, fault_rt 0.
 * Where real time is refused (no CAP_SYS_NICE, a cgroup without real-time
 * runtime) job 1 says so (fault_rt -EPERM) and the test skips with that
 * reason. Every job must move every page and the tenant find its data.
 */
#include <dirent.h>
#include <sched.h>

#include "integration/migrate_common.h"

struct seen {
	unsigned windows; /* hooks run */
	unsigned fifo;	  /* of them, with a SCHED_FIFO thread of ours */
};

/* How many threads of this process run SCHED_FIFO now. */
static unsigned fifo_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		FAIL("/proc/self/task: %s", strerror(errno));
	while ((e = readdir(d))) {
		int tid = atoi(e->d_name);
		int pol;

		if (tid <= 0)
			continue;
		pol = sched_getscheduler(tid);
		if (pol >= 0 && (pol & ~SCHED_RESET_ON_FORK) == SCHED_FIFO)
			n++;
	}
	closedir(d);
	return n;
}

static void hook(int phase, const struct mig_range *win, void *ud)
{
	struct seen *s = ud;

	(void)win;
	if (phase != MIG_PHASE_ZAPPED)
		return;
	s->windows++;
	s->fifo += fifo_threads() > 0;
}

static void job(struct wtenant *w, const struct mig_nodes *targets, struct mig_migrate_opts *o,
		struct seen *s, struct mig_migrate_result *res)
{
	struct mig_range rg = { w->addr, w->addr + w->len };
	struct mig_placement pl;
	int r;

	memset(s, 0, sizeof(*s));
	o->phase_hook = hook;
	o->hook_userdata = s;
	r = mig_migrate(w->t, &rg, 1, targets, o, NULL, NULL, res);
	if (r < 0) {
		wt_kill(w);
		FAIL("mig_migrate: %s", strerror(-r));
	}
	print_result(res);
	(void)placed_on(w, &rg, targets, &pl);
	check_all_moved(res, &pl, targets);
	printf("# %s windows, fault_rt %s: %u windows, %u with a SCHED_FIFO thread, result "
	       "fault_rt %d\n",
	       o->protocol == MIG_WINDOW_MOVEFIRST ? "move-first" : "classic",
	       o->fault_rt ? "asked" : "not asked", s->windows, s->fifo, res->fault_rt);
	if (s->windows == 0)
		FAIL("no window reached the hook");
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "8M", "--threads", "0", NULL };
	struct mig_migrate_opts o = { 0 }, base;
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	struct seen s;
	uint64_t max_us = 0, p99_us = 0;

	(void)argc;
	pick_target_movefirst(&targets, &o);
	/* Every job moves the pages again (on one node they are there already). */
	o.force = true;
	o.fault_rt = false; /* pick_target asks for it, as migd does: each job says */
	base = o;
	wt_start_source(&w, argv[0], args);

	/* 1. Move first, real time asked for. */
	o.fault_rt = true;
	job(&w, &targets, &o, &s, &res);
	if (res.fault_rt < 0) {
		int e = -res.fault_rt;

		mig_migrate_result_free(&res);
		(void)wt_stop(&w, &max_us, &p99_us);
		SKIP("SCHED_FIFO refused here: %s", strerror(e));
	}
	if (res.windows_movefirst == 0)
		FAIL("no window began move first");
	if (res.fault_rt != 1 || s.fifo == 0)
		FAIL("move first with fault_rt: result fault_rt %d, %u of %u windows with a "
		     "SCHED_FIFO thread",
		     res.fault_rt, s.fifo, s.windows);
	if (fifo_threads() != 0)
		FAIL("a thread of ours is still SCHED_FIFO after the job");
	mig_migrate_result_free(&res);

	/* 2. Classic windows, real time asked for: never used. */
	o = base;
	o.protocol = MIG_WINDOW_CLASSIC;
	o.fault_rt = true;
	job(&w, &targets, &o, &s, &res);
	if (res.fault_rt != 0 || s.fifo != 0)
		FAIL("classic windows: result fault_rt %d, %u windows with a SCHED_FIFO thread",
		     res.fault_rt, s.fifo);
	mig_migrate_result_free(&res);

	/* 3. Move first, real time not asked for. */
	o = base;
	job(&w, &targets, &o, &s, &res);
	if (res.fault_rt != 0 || s.fifo != 0)
		FAIL("fault_rt not asked: result fault_rt %d, %u windows with a SCHED_FIFO thread",
		     res.fault_rt, s.fifo);
	mig_migrate_result_free(&res);

	if (wt_stop(&w, &max_us, &p99_us) != 0)
		FAIL("the tenant found damaged pages");
	printf("PASS\n");
	return 0;
}
