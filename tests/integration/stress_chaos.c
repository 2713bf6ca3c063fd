/*
 * stress_chaos.c - consecutive migrations of a tenant whose threads write,
 * read, DONTNEED, re-map, munmap, mprotect and mremap their own pages
 * without pause (tests/tenants/stress_tenant.c). Phase hooks add random
 * delays after the stage and after the zap, so the tenant's operations
 * land in every phase of a window. Every read in the tenant is checked
 * against its exact model at once and every page in full at the end; the
 * tenant must still make progress after each migration (nothing left
 * registered or write-protected without a reader).
 *
 *   STRESS_SEED=n   reproduce a run (the seed is printed)
 *   STRESS_SECS=n   start migrations for n s (default 6), at least two
 *   STRESS_DEADLINE_S=n  from n s on (default STRESS_SECS + 5) the job in
 *                   flight is cancelled (opts.cancel: no next pass of
 *                   its window; its progress callback: no next window)
 *                   and the run ends after its second job at least (a
 *                   second job past the deadline runs one pass of one
 *                   window): a default run ends in about 15 s on
 *                   an idle host (the before-stop hook gives it 20), and
 *                   a job cancelled under churn must leave the tenant
 *                   whole and its result's identity intact like any other
 *   STRESS_MIB=n, STRESS_THREADS=n   the tenant's size (16) and threads (4)
 *   STRESS_OPS=..   the tenant's operations (see the tenant)
 *   STRESS_THP=1    add 'h' to the default operations: the tenant keeps
 *                   collapsing its THP half into THPs (MADV_COLLAPSE), so
 *                   whole THPs are met and placed whole while it churns
 *   STRESS_ZAP=madvise|move   force the zap method (default: MOVE where
 *                   the kernel has UFFDIO_MOVE, else madvise)
 *   STRESS_WINDOW=movefirst   move-first windows (MIG_WINDOW_MOVEFIRST;
 *                   needs the MOVE zap: skips without UFFDIO_MOVE or
 *                   with STRESS_ZAP=madvise or agent tenants)
 *   STRESS_ATTACH=agent       attach through libmig-agent.so, not ptrace
 *                   (an agent tenant is zapped with madvise)
 *   MIG_TEST_FAULT_RT=0       the fault thread stays a normal thread (by
 *                   default it runs real time in move-first windows, as
 *                   migd's does: mig_migrate_opts.fault_rt)
 *   STRESS_HANG_S=n a job that reaches no window phase for n s (90) is
 *                   hung: the threads' kernel stacks, then FAIL (HUNG)
 *   STRESS_RANGES=data|random|whole   what each job asks for: the data
 *                   area (default), random pieces of it (edges cutting
 *                   THPs and windows, overlapping and repeated pieces),
 *                   or every writable anonymous VMA of the tenant (its
 *                   stack, heap, model arrays and spare slots too)
 *
 * The tenant does all of them, fork too ("wrdmupxygfk"), whatever the
 * zap; a tenant that does no operation for PROGRESS_S after a job fails
 * the run and shows where each of its threads waits. With the
 * madvise zap (older kernels, agent tenants, STRESS_ZAP=madvise) every
 * zap must have run with the tenant's other threads stopped
 * (zaps_unstopped 0): that stop is what makes a tenant DONTNEED or
 * mremap racing the zap safe (docs/engine.md, "The zap").
 */
#include <pthread.h>

#include "integration/stress_common.h"

/* A tenant that does no operation for this long after a job is stuck. */
#define PROGRESS_S 10
/*
 * A job with no window phase for this long is hung (STRESS_HANG_S). On a
 * host at load 76 a window took 3 s, so a slow job is not a hung one; the
 * run's own time limit (churn.sh) is far longer and only ends a run that
 * this did not catch.
 */
#define HANG_S 90

/* When the job last reached a window phase (ns, CLOCK_MONOTONIC); 0: no job. */
static uint64_t job_step_ns;
static int job_number;
static pid_t hang_tenant;
static uint64_t hang_seed;
/* STRESS_DEADLINE_S in ns (CLOCK_MONOTONIC); set when a job was cancelled there. */
static uint64_t deadline_ns;
static int deadline_hit;
/* opts.cancel of every job: set at the deadline, it also ends the window's passes. */
static volatile int cancel_flag;

/* Past the deadline? Then cancel the job in flight, both ways. */
static bool past_deadline(uint64_t now)
{
	if (now <= deadline_ns)
		return false;
	__atomic_store_n(&deadline_hit, 1, __ATOMIC_RELEASE);
	cancel_flag = 1;
	return true;
}

/* now_s() in ns: 0 stays "no job". */
static uint64_t mono_ns(void)
{
	return (uint64_t)(now_s() * 1e9);
}

/*
 * The watchdog: a job that reaches no window phase for HANG_S shows where
 * the tenant's threads and ours wait (kernel stacks), and fails the run as
 * HUNG, so a hang is told apart from a slow run on a loaded host.
 */
static void *hang_watch(void *arg)
{
	const char *env = getenv("STRESS_HANG_S");
	uint64_t limit = (env && atoi(env) > 0 ? (uint64_t)atoi(env) : HANG_S) * 1000000000u;

	(void)arg;
	for (;;) {
		uint64_t at = __atomic_load_n(&job_step_ns, __ATOMIC_ACQUIRE);

		if (at && mono_ns() - at > limit) {
			printf("HUNG: migration %d reached no window phase for %" PRIu64
			       " s (seed %" PRIu64 ")\n",
			       job_number, limit / 1000000000u, hang_seed);
			wt_dump_threads(hang_tenant, "HUNG tenant", 0);
			wt_dump_threads(getpid(), "HUNG migrator", 0);
			(void)wt_registered(hang_tenant, "HUNG tenant", 0, UINT64_MAX, 0);
			fflush(stdout);
			kill(hang_tenant, SIGKILL);
			_exit(1);
		}
		sleep_ms(500);
	}
	return NULL;
}

static int progress(const struct mig_migrate_progress *p, void *ud)
{
	uint64_t now = mono_ns();

	(void)p;
	(void)ud;
	__atomic_store_n(&job_step_ns, now, __ATOMIC_RELEASE);
	/* Called after each window: a cancelled job has run one at least. */
	return past_deadline(now) ? 1 : 0;
}

struct hookctx {
	uint64_t seed;
	unsigned max_staged_us, max_zapped_us;
};

/*
 * The ranges of one job. data: the data area. random: 1-4 pieces of it,
 * page aligned anywhere (cutting THPs and windows), sometimes repeated or
 * overlapping: the job must merge them and count each page once. whole:
 * every writable anonymous private VMA now (they change under our feet:
 * the tenant remaps its own pages without pause).
 */
static size_t job_ranges(const char *mode, const struct wtenant *w, uint64_t *s,
			 struct mig_range *rg, size_t max)
{
	size_t n = 0;

	if (mode && !strcmp(mode, "random")) {
		uint64_t pages = w->len / 4096;
		size_t want = 1 + st_rnd(s) % 4;

		for (; n < want && n < max; n++) {
			uint64_t a = st_rnd(s) % pages, len = 1 + st_rnd(s) % (pages - a);

			if (n > 0 && st_rnd(s) % 4 == 0) {
				rg[n] = rg[n - 1]; /* the same piece twice */
				continue;
			}
			rg[n] = (struct mig_range){ w->addr + a * 4096,
						    w->addr + (a + len) * 4096 };
		}
		return n;
	}
	if (mode && !strcmp(mode, "whole")) {
		struct mig_vma *v = NULL;
		size_t nv = 0;

		if (mig_read_vmas(w->pid, &v, &nv) < 0)
			FAIL("mig_read_vmas(%d)", w->pid);
		for (size_t k = 0; k < nv && n < max; k++)
			if (mig_vma_is_anon_private(&v[k]) && (v[k].flags & MIG_VMA_WRITE) &&
			    v[k].end - v[k].start <= (UINT64_C(1) << 30))
				rg[n++] = (struct mig_range){ v[k].start, v[k].end };
		free(v);
		return n;
	}
	rg[0] = (struct mig_range){ w->addr, w->addr + w->len };
	return 1;
}

/*
 * A job that ended "no such process": say whether the tenant is really
 * gone, and how, before the run fails. The agent's connection closes
 * while the process exits, a little before it becomes a zombie, so wait
 * up to 2 s for that. waitid(WNOWAIT) leaves the zombie for wt_stop's
 * waitpid (the only other wait on it, in this same thread).
 */
static void tell_tenant_state(pid_t pid)
{
	siginfo_t si;
	char path[64], buf[512] = "", *p;
	int fd, n;

	for (int k = 0; k < 200; k++) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == pid) {
			if (si.si_code == CLD_EXITED)
				printf("# tenant %d exited with status %d (stress_tenant: 2 a "
				       "failed call, 3 SIGSEGV/SIGBUS; its stderr says where)\n",
				       pid, si.si_status);
			else
				printf("# tenant %d was killed by signal %d (%s)%s\n", pid,
				       si.si_status, strsignal(si.si_status),
				       si.si_code == CLD_DUMPED ? ", core dumped" : "");
			return;
		}
		sleep_ms(10);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? (int)read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	p = strrchr(buf, ')');
	printf("# tenant %d has not exited after 2 s: kill(0) %s, state %c\n", pid,
	       kill(pid, 0) == 0 ? "ok" : strerror(errno), p && p[1] ? p[2] : '?');
	wt_dump_threads(pid, "ESRCH tenant", 0);
}

static void hook(int phase, const struct mig_range *win, void *ud)
{
	struct hookctx *h = ud;
	unsigned max = phase == MIG_PHASE_STAGED ? h->max_staged_us : h->max_zapped_us;

	(void)win;
	__atomic_store_n(&job_step_ns, mono_ns(), __ATOMIC_RELEASE);
	/* Within a window (a pass under fork churn can take seconds): no next pass. */
	(void)past_deadline(mono_ns());
	if (max)
		usleep((useconds_t)(st_rnd(&h->seed) % max));
}

int main(int argc, char **argv)
{
	uint64_t seed = st_seed(), s, ops0 = 0, ops1 = 0, bad = 0, moved = 0, gone = 0, failed = 0;
	uint64_t huge_moved = 0, huge_collapsed = 0, huge_kmoved = 0, mthp_moved = 0;
	uint64_t mf_windows = 0, mf_switched = 0;
	const char *secs_env = getenv("STRESS_SECS"), *ops = getenv("STRESS_OPS");
	const char *deadline_env = getenv("STRESS_DEADLINE_S");
	const char *zap_env = getenv("STRESS_ZAP"), *attach_env = getenv("STRESS_ATTACH");
	const char *ranges_env = getenv("STRESS_RANGES");
	const char *window_env = getenv("STRESS_WINDOW");
	bool movefirst = window_env && !strcmp(window_env, "movefirst");
	bool move_zap = kernel_has_move() && !(zap_env && !strcmp(zap_env, "madvise")) &&
			!(attach_env && !strcmp(attach_env, "agent"));
	char sock[108] = "";
	int lfd = -1, conn = -1;
	double secs = secs_env ? atof(secs_env) : 6, t0;
	double deadline = deadline_env ? atof(deadline_env) : secs + 5;
	char seedarg[32];
	const char *mib = getenv("STRESS_MIB"), *threads = getenv("STRESS_THREADS");
	bool thp = getenv("STRESS_THP") && !strcmp(getenv("STRESS_THP"), "1");
	const char *args[] = {
		"--size",    mib && *mib ? mib : "16",
		"--threads", threads && *threads ? threads : "4",
		"--seed",    seedarg,
		"--ops",     ops && *ops ? ops : thp ? "wrdmupxygfkh" : "wrdmupxygfk",
		NULL
	};
	struct wtenant w = { 0 };
	struct mig_nodes targets;
	struct hookctx hc;
	int runs = 0, r;

	(void)argc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	if (movefirst && !move_zap)
		SKIP("STRESS_WINDOW=movefirst needs the MOVE zap (UFFDIO_MOVE, ptrace tenant)");
	printf("# seed %" PRIu64 " (STRESS_SEED=%" PRIu64 " to repeat), tenant ops %s, %s zap, "
	       "ranges %s, %s windows\n",
	       seed, seed, args[7], move_zap ? "UFFDIO_MOVE" : "madvise",
	       ranges_env ? ranges_env : "data", movefirst ? "move-first" : "classic");
	s = seed;
	hc.seed = seed ^ 0x1234;
	snprintf(seedarg, sizeof(seedarg), "%" PRIu64, seed);
	if (attach_env && !strcmp(attach_env, "agent")) {
		/* The tenant runs libmig-agent.so and is attached through it. */
		agent_preload(argv[0], sock, sizeof(sock), &lfd);
		st_start(&w, argv[0], "stress_tenant", args);
		agent_attach(&w, lfd, &conn);
		printf("# tenant pid %d, attached through its agent\n", w.pid);
	} else {
		st_start(&w, argv[0], "stress_tenant", args);
		printf("# tenant pid %d\n", w.pid);
		wt_attach(&w);
	}
	hang_tenant = w.pid;
	hang_seed = seed;
	{
		pthread_t wd;

		if (pthread_create(&wd, NULL, hang_watch, NULL) != 0)
			FAIL("pthread_create (watchdog)");
		pthread_detach(wd);
	}
	t0 = now_s();
	deadline_ns = (uint64_t)((t0 + deadline) * 1e9);
	/*
	 * At least two migrations, however loaded the machine: a job under
	 * heavy churn on a busy host can take most of STRESS_SECS. Either
	 * may end cancelled at the deadline (STRESS_DEADLINE_S); the second
	 * starts all the same.
	 */
	while ((now_s() - t0 < secs && !__atomic_load_n(&deadline_hit, __ATOMIC_ACQUIRE)) ||
	       runs < 2) {
		struct mig_migrate_opts o = { 0 };
		struct mig_migrate_result res;
		struct mig_range rg[256];
		size_t nrg = job_ranges(ranges_env, &w, &s, rg, 256);
		uint64_t ops_before = 0, ops_after = 0;

		pick_target(&targets, &o);
		if (count_nodes() >= 2) {
			/* Back and forth: node 1, node 0, node 1, ... */
			memset(&targets, 0, sizeof(targets));
			mig_nodes_set(&targets, runs % 2 ? 0 : 1);
		}
		o.window = (1 + st_rnd(&s) % 2) << 21;
		o.max_passes = 1 + st_rnd(&s) % 10;
		o.threads = 1 + st_rnd(&s) % 2;
		o.engine = st_rnd(&s) & 1 ? mig_copy_engine_threaded() : NULL;
		o.no_collapse = st_rnd(&s) & 1;
		hc.max_staged_us = st_rnd(&s) % 3 ? 2000 : 0;
		hc.max_zapped_us = st_rnd(&s) % 3 ? 5000 : 0;
		o.zap = zap_env && !strcmp(zap_env, "madvise") ? MIG_ZAP_MADVISE
			: zap_env && !strcmp(zap_env, "move")  ? MIG_ZAP_MOVE
							       : MIG_ZAP_AUTO;
		o.protocol = movefirst ? MIG_WINDOW_MOVEFIRST : MIG_WINDOW_CLASSIC;
		/* MIG_TEST_THP=uffd: whole THPs by userfaultfd, not the kernel's migration. */
		o.thp_uffd = getenv("MIG_TEST_THP") && !strcmp(getenv("MIG_TEST_THP"), "uffd");
		o.fault_rt = test_fault_rt(); /* as migd's (MIG_TEST_FAULT_RT=0: not) */
		o.phase_hook = hook;
		/*
		 * Past the deadline already (the first job was cancelled):
		 * the second still runs one pass of one window, a job after
		 * a cancelled one on the same tenant.
		 */
		cancel_flag = 0;
		o.cancel = &cancel_flag;
		o.hook_userdata = &hc;
		job_number = runs;
		__atomic_store_n(&job_step_ns, mono_ns(), __ATOMIC_RELEASE);
		r = mig_migrate(w.t, rg, nrg, &targets, &o, progress, NULL, &res);
		__atomic_store_n(&job_step_ns, 0, __ATOMIC_RELEASE);
		if (r == -ECANCELED && __atomic_load_n(&deadline_hit, __ATOMIC_ACQUIRE))
			printf("# deadline: migration %d cancelled at %.1f s (STRESS_DEADLINE_S)\n",
			       runs, now_s() - t0);
		else if (r < 0) {
			if (r == -ESRCH)
				tell_tenant_state(w.pid);
			FAIL("migration %d: mig_migrate: %s (seed %" PRIu64 ")", runs, strerror(-r),
			     seed);
		}
		print_result(&res);
		st_check_result(&res, &targets);
		if (res.zaps_unstopped)
			FAIL("migration %d: %" PRIu64 " zaps ran with the tenant's threads running "
			     "(seed %" PRIu64 ")",
			     runs, res.zaps_unstopped, seed);
		moved += res.pages_moved;
		huge_moved += res.huge_moved;
		huge_collapsed += res.huge_collapsed;
		huge_kmoved += res.huge_kmoved;
		mthp_moved += res.mthp_moved;
		mf_windows += res.windows_movefirst;
		mf_switched += res.windows_switched;
		gone += res.pages_gone;
		failed += res.pages_failed;
		mig_migrate_result_free(&res);
		runs++;
		/* The tenant goes on after the job: nothing left for a reader that is gone. */
		if (st_progress(&w, &ops_before, &bad) < 0)
			FAIL("tenant does not answer after migration %d", runs);
		/*
		 * Progress within PROGRESS_S: on a loaded host (2 CPUs, load
		 * 15) a tenant whose threads all fork, check and wait can do
		 * no operation in 200 ms without being blocked by anyone; a
		 * tenant left blocked by us makes none at all. A slow one is
		 * named, a stopped one shows where its threads wait.
		 */
		ops_after = ops_before;
		for (double tp = now_s(); ops_after == ops_before;) {
			sleep_ms(200);
			if (st_progress(&w, &ops_after, &bad) < 0)
				FAIL("tenant does not answer after migration %d", runs);
			if (ops_after != ops_before && now_s() - tp > 1)
				printf("# slow: the tenant's first operation after migration %d "
				       "took %.1f s\n",
				       runs, now_s() - tp);
			if (ops_after == ops_before && now_s() - tp > PROGRESS_S) {
				wt_dump_threads(w.pid, "STUCK tenant", 0);
				wt_dump_threads(getpid(), "STUCK migrator", 0);
				fprintf(stderr, "STUCK tenant %d: %d VMAs registered\n", (int)w.pid,
					wt_registered(w.pid, "STUCK tenant", 0, UINT64_MAX, 0));
				FAIL("tenant threads stopped making progress after migration %d "
				     "(%" PRIu64 " ops, none in %d s; seed %" PRIu64 ")",
				     runs, ops_after, PROGRESS_S, seed);
			}
		}
		if (bad)
			FAIL("tenant saw %" PRIu64 " bad reads by migration %d (seed %" PRIu64
			     ", its stderr names them)",
			     bad, runs, seed);
		if (!ops0)
			ops0 = ops_before;
		ops1 = ops_after;
	}
	printf("# %d migrations in %.1f s: moved %" PRIu64 ", gone %" PRIu64 ", failed %" PRIu64
	       ", tenant ops %" PRIu64 ", THPs placed whole %" PRIu64 ", collapsed %" PRIu64
	       ", moved by the kernel %" PRIu64 " (mTHPs %" PRIu64 ")\n",
	       runs, now_s() - t0, moved, gone, failed, ops1 - ops0, huge_moved, huge_collapsed,
	       huge_kmoved, mthp_moved);
	if (movefirst)
		printf("# move-first windows %" PRIu64 ", went on classic (MOVE -EBUSY) %" PRIu64
		       "\n",
		       mf_windows, mf_switched);
	(void)mig_tenant_detach(w.t);
	if (conn >= 0)
		close(conn);
	if (lfd >= 0) {
		close(lfd);
		unlink(sock);
	}
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("the tenant found damaged pages (seed %" PRIu64 ")", seed);
	printf("PASS\n");
	return 0;
}
