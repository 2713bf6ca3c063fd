/*
 * migrate_agent_stop.c - who stops an agent tenant's threads for a zap.
 * libmig-agent.so stops its host's other threads with a real-time signal
 * (libmig/agent/stop.c); where it cannot, migd stops them with ptrace
 * (libmig/agentconn.c, op_stop_others). Each case migrates the writer
 * tenant (tests/tenants/writer.c) through its agent while its writers
 * run; the job must succeed, its result add up and the tenant verify
 * every page afterwards. Who stopped the threads is told by
 * mig_tenant_stop_ns() (time the tenant spent stopped by ptrace: 0 when
 * the agent stopped them) and by the threads' TracerPid, sampled while
 * the job runs (with one thread blocking the signal, none is traced in
 * the agent's first second):
 *   agent         no thread blocks the signal: the agent stops them, no
 *                 thread is ever traced (stop_ns 0, TracerPid 0);
 *   one-blocked   one writer thread blocks the signal (pthread_sigmask),
 *                 the main thread and the other writer take it: the agent
 *                 stops two threads of three, migd waits STOP_GIVEUP_MS
 *                 (1 s), lets them go and stops all three with ptrace
 *                 (stop_ns > 0, the job takes >= 1 s). That the agent is
 *                 asked only once per attachment is judged by time in
 *                 migrate_wholeproc agent-blocked (host only: under TCG a
 *                 ptrace stop alone takes seconds);
 *   own-handler   the host installs its own handler for the signal after
 *                 the agent's constructor: the agent answers EOPNOTSUPP,
 *                 ptrace stops the threads, the host's handler never runs;
 *   ignored       the host starts with the signal ignored (SIG_IGN is kept
 *                 across exec): the agent does not install its handler,
 *                 answers EOPNOTSUPP, ptrace stops the threads.
 * After detach no thread is left traced.
 *
 *   migrate_agent_stop [CASE]
 */
#include <pthread.h>

#include "integration/migrate_common.h"

#define TIMEOUT_S 120.0
/* libmig/agent/stop.c MIG_AGENT_STOP_SIGNAL */
#define STOP_SIGNAL (SIGRTMAX - 7)
/* libmig/agentconn.c STOP_GIVEUP_MS */
#define GIVEUP_S 1.0

struct job {
	struct wtenant *w;
	struct mig_nodes targets;
	struct mig_migrate_opts o;
	struct mig_migrate_result res;
	int r;
	int done;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	struct mig_range rg = { j->w->addr, j->w->addr + j->w->len };

	j->r = mig_migrate(j->w->t, &rg, 1, &j->targets, &j->o, NULL, NULL, &j->res);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void run_case(const char *self, const char *name)
{
	const char *args[12] = { "--size", "16M", "--threads", "2" };
	bool one_blocked = !strcmp(name, "one-blocked"), own = !strcmp(name, "own-handler"),
	     ignored = !strcmp(name, "ignored"), fallback = strcmp(name, "agent") != 0;
	struct wtenant w = { 0 };
	struct job j = { .w = &w };
	char sock[108], sigarg[16], line[512];
	int lfd = -1, conn = -1, a = 4, st;
	struct wt_threads th0, thr;
	uint64_t stop_ns, stop_max = 0, samples = 0, traced_samples = 0;
	long handled = -1;
	pthread_t th;
	double t0, secs, first_traced = -1;

	snprintf(sigarg, sizeof(sigarg), "%d", STOP_SIGNAL);
	if (count_nodes() >= 2) {
		args[a++] = "--node";
		args[a++] = "0";
	}
	if (one_blocked || own) {
		args[a++] = one_blocked ? "--block-signal" : "--handle-signal";
		args[a++] = sigarg;
	}
	agent_preload(self, sock, sizeof(sock), &lfd);
	if (ignored)
		signal(STOP_SIGNAL, SIG_IGN); /* the tenant inherits it through exec */
	wt_start(&w, self, args);
	if (ignored)
		signal(STOP_SIGNAL, SIG_DFL);
	agent_attach(&w, lfd, &conn);
	/*
	 * A new thread starts with every signal blocked until it first runs
	 * (glibc's pthread_create): look once both writers have written.
	 */
	for (int k = 0;; k++) {
		unsigned long long n0 = 0, n1 = 0;

		if (sscanf(wt_cmd(&w, "progress"), "PROGRESS %llu %llu", &n0, &n1) == 2 && n0 && n1)
			break;
		if (k == 1000) {
			wt_kill(&w);
			FAIL("%s: the writers did not start within 10 s", name);
		}
		usleep(10000);
	}
	th0 = wt_threads_of(w.pid, STOP_SIGNAL, 1);
	printf("%s: tenant pid %d, %d threads besides the agent's, %d block signal %d\n", name,
	       w.pid, th0.n, th0.blocking, STOP_SIGNAL);
	if (th0.n != 3 || th0.blocking != (one_blocked ? 1 : 0) || th0.traced) {
		wt_kill(&w);
		FAIL("%s: the tenant is not set up as the case needs", name);
	}
	usleep(100000);

	pick_target(&j.targets, &j.o);
	agent_keeps_classic(w.t, &j.o);
	t0 = now_s();
	if (pthread_create(&th, NULL, job_main, &j))
		FAIL("pthread_create");
	while (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE)) {
		if (now_s() - t0 > TIMEOUT_S) {
			wt_dump_threads(w.pid, "tenant", 0);
			wt_kill(&w);
			FAIL("%s: the job did not end within %.0f s", name, TIMEOUT_S);
		}
		thr = wt_threads_of(w.pid, 0, 0);
		samples++;
		traced_samples += thr.traced > 0;
		if (thr.traced && first_traced < 0)
			first_traced = now_s() - t0;
		usleep(2000);
	}
	pthread_join(th, NULL);
	secs = now_s() - t0;
	if (j.r < 0) {
		wt_kill(&w);
		FAIL("%s: mig_migrate: %s (%s)", name, strerror(-j.r), mig_tenant_last_error());
	}
	print_result(&j.res);
	check_status(&j.res, &j.targets);
	stop_ns = mig_tenant_stop_ns(w.t, &stop_max);
	printf("# %s: %" PRIu64 " windows in %.2f s, moved %" PRIu64 " pages; threads stopped by "
	       "ptrace %.1f ms in all (longest %.1f ms); traced in %" PRIu64 " of %" PRIu64
	       " samples, first at %.2f s\n",
	       name, j.res.windows, secs, j.res.pages_moved, stop_ns / 1e6, stop_max / 1e6,
	       traced_samples, samples, first_traced);
	if (j.res.pages_moved == 0)
		FAIL("%s: nothing moved", name);
	if (j.res.zaps_unstopped)
		FAIL("%s: %" PRIu64 " zaps ran with the threads running", name,
		     j.res.zaps_unstopped);
	if (!fallback && (stop_ns || traced_samples))
		FAIL("%s: the agent could stop every thread, yet ptrace did (%" PRIu64
		     " ns, %" PRIu64 " samples traced)",
		     name, stop_ns, traced_samples);
	if (fallback && !stop_ns)
		FAIL("%s: the agent could not stop every thread, yet ptrace never did", name);
	/* The agent was given STOP_GIVEUP_MS before ptrace took over. */
	if (one_blocked && secs < GIVEUP_S)
		FAIL("%s: the job took %.2f s, less than the agent's %.1f s", name, secs, GIVEUP_S);
	if (one_blocked && first_traced >= 0 && first_traced < GIVEUP_S)
		FAIL("%s: a thread was traced %.2f s into the job, before the agent gave up", name,
		     first_traced);
	mig_migrate_result_free(&j.res);

	(void)mig_tenant_detach(w.t);
	w.t = NULL;
	thr = wt_threads_of(w.pid, 0, 0);
	if (thr.traced)
		FAIL("%s: %d threads still traced after detach", name, thr.traced);
	/* finish(), reading the HANDLED line on the way. */
	fprintf(w.in, "stop\n");
	fflush(w.in);
	while (fgets(line, sizeof(line), w.out)) {
		fputs(line, stdout);
		sscanf(line, "HANDLED %ld", &handled);
	}
	waitpid(w.pid, &st, 0);
	fclose(w.in);
	fclose(w.out);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		FAIL("%s: the tenant found damaged pages (status 0x%x)", name, st);
	if (own && handled != 0)
		FAIL("%s: the host's own handler ran %ld times: the agent signalled anyway", name,
		     handled);
	close(conn);
	close(lfd);
	unlink(sock);
	printf("%s: ok\n", name);
}

int main(int argc, char **argv)
{
	static const char *const cases[] = { "agent", "one-blocked", "own-handler", "ignored" };
	const char *only = argc > 1 ? argv[1] : NULL;
	int ran = 0;

	if (geteuid() != 0)
		SKIP("needs root (ptrace, the agent socket in /tmp)");
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		if (!only || !strcmp(only, cases[k])) {
			run_case(argv[0], cases[k]);
			ran++;
		}
	if (!ran)
		FAIL("no case named %s", only);
	printf("PASS\n");
	return 0;
}
