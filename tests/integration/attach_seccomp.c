/*
 * attach_seccomp.c - a tenant under a seccomp filter (a hardened service:
 * systemd's SystemCallFilter=, a deny-list against userfaultfd) is never
 * killed, trapped or failed by a syscall migd injects: the injection
 * layer runs the thread's filters first and injects only what they allow
 * (libmig/seccomp.c, docs/engine.md "A tenant under a seccomp filter").
 *
 * Each case starts the writer (one writing thread; on node 0 where there
 * are two) with --seccomp RULES, attaches and migrates it whole (classic
 * windows, then move-first windows where the kernel has UFFDIO_MOVE, back
 * to node 0 on two nodes), and stops it: the writer must be alive, every
 * page of it right, and each result must add up with every failed page
 * failed for a reason the case allows (EAGAIN, pages a classic window's
 * writer kept writing, always):
 *   kill:userfaultfd       the uffd comes by the /dev/userfaultfd handoff:
 *                          every page moved (the filter before: SIGSYS at
 *                          attach)
 *   errno:userfaultfd      the same (Docker's default profile answers EPERM)
 *   kill:ioctl=UFFDIO_MOVE the MOVE zap's steps are not run: pages stay,
 *                          failed EPERM (with the madvise zap, moved)
 *   errno:madvise=DONTNEED the scratch area's emptying and the madvise zap
 *                          are not run: what needs them fails EPERM
 *   kill:rt_sigreturn      attach refused (a session that the injector's
 *                          death would end in rt_sigreturn): -EPERM with
 *                          a reason that names seccomp
 *   errno:userfaultfd, trap:socketpair  the handoff's socketpair is not
 *                          run (SIGSYS): attach refused the same way
 * and, with this process under a seccomp filter of its own (the kernel
 * then shows no tenant's filter), a filtered tenant is refused and an
 * unfiltered one still migrates.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "compat.h"
#include "integration/migrate_common.h"

#define SZ "16M"

struct scase {
	const char *name;
	const char *rules;
	bool attach_refused; /* attach must fail -EPERM, naming seccomp */
	bool all_moved;	     /* else pages may fail, EPERM only */
};

/* One job over the whole data with protocol p; the result must add up and name its failures. */
static void one_job(struct wtenant *w, const struct scase *c, enum mig_window_protocol p)
{
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct mig_range rg = { w->addr, w->addr + w->len };
	int r;

	pick_target(&targets, &o);
	o.protocol = p;
	if (p == MIG_WINDOW_MOVEFIRST && count_nodes() >= 2) {
		/* The classic job took the pages to node 1: this one brings them back. */
		memset(&targets, 0, sizeof(targets));
		mig_nodes_set(&targets, 0);
	}
	r = mig_migrate(w->t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0) {
		wt_kill(w);
		FAIL("%s: mig_migrate (%s): %s (%s)", c->name, p ? "move first" : "classic",
		     strerror(-r), mig_tenant_last_error());
	}
	print_result(&res);
	check_status(&res, &targets);
	if (kill(w->pid, 0) != 0)
		FAIL("%s: the tenant died during the job", c->name);
	/*
	 * Nothing refused: the pages move as in any job (a classic window's
	 * hot pages may stay, -EAGAIN, when the writer outruns it: a loaded
	 * TCG guest).
	 */
	if (c->all_moved && (res.pages_moved + res.pages_skipped) * 4 < res.pages_present * 3) {
		wt_kill(w);
		FAIL("%s: moved %" PRIu64 " of %" PRIu64 ", failed %" PRIu64 " (all were to move)",
		     c->name, res.pages_moved, res.pages_present, res.pages_failed);
	}
	for (unsigned k = 0; k < res.nerrnos; k++)
		if (res.errnos[k].err != EAGAIN && (c->all_moved || res.errnos[k].err != EPERM)) {
			wt_kill(w);
			FAIL("%s: %" PRIu64 " pages failed %s: only %s is expected", c->name,
			     res.errnos[k].pages, mig_errno_name(res.errnos[k].err),
			     c->all_moved
				     ? "EAGAIN (written all through the job)"
				     : "EPERM (a syscall the filter does not allow) or EAGAIN");
		}
	printf("# %s (%s): moved %" PRIu64 ", failed %" PRIu64 ", the tenant alive\n", c->name,
	       p ? "move first" : "classic", res.pages_moved, res.pages_failed);
}

static void run_case(const char *self, const struct scase *c)
{
	const char *args[] = { "--size", SZ,   "--threads", "1", "--seccomp",
			       c->rules, NULL, NULL,	    NULL };
	struct wtenant w = { 0 };
	int r, st;

	printf("# case %s: --seccomp %s\n", c->name, c->rules);
	if (count_nodes() >= 2) {
		args[6] = "--node"; /* start on node 0, move to node 1 */
		args[7] = "0";
	}
	wt_start(&w, self, args);
	usleep(50000);
	r = mig_tenant_attach(
		w.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
		&w.t);
	if (c->attach_refused) {
		if (r != -EPERM || !strstr(mig_tenant_last_error(), "seccomp")) {
			wt_kill(&w);
			FAIL("%s: attach gave %s (%s), not -EPERM naming seccomp", c->name,
			     mig_errno_name(r), mig_tenant_last_error());
		}
		printf("# %s: attach refused: %s\n", c->name, mig_tenant_last_error());
		w.t = NULL;
	} else {
		if (r < 0) {
			wt_kill(&w);
			FAIL("%s: attach: %s (%s)", c->name, mig_errno_name(r),
			     mig_tenant_last_error());
		}
		one_job(&w, c, MIG_WINDOW_CLASSIC);
		if (kernel_has_move())
			one_job(&w, c, MIG_WINDOW_MOVEFIRST);
		r = mig_tenant_detach(w.t);
		if (r < 0) {
			wt_kill(&w);
			FAIL("%s: detach: %s", c->name, strerror(-r));
		}
	}
	st = wt_stop(&w, NULL, NULL);
	if (st != 0)
		FAIL("%s: the tenant ended with %d (%s)", c->name, st,
		     st > 128 ? strsignal(st - 128) : "its data check failed");
	printf("# %s: the tenant lived through it, every page right\n", c->name);
}

/*
 * This process under a filter of its own (allow everything): the kernel
 * shows a tracer under seccomp no tenant's filter (PTRACE_SECCOMP_GET_FILTER:
 * EACCES), so a filtered tenant gets no syscall at all, and an unfiltered
 * one is not concerned. The tenants start first (a filter is inherited
 * across fork and exec); a child takes the filter and attaches, this
 * process stops the tenants and checks their pages.
 */
static void unreadable(const char *self)
{
	struct sock_filter f[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_fprog prog = { 1, f };
	const char *fargs[] = { "--size", SZ, "--threads", "1", "--seccomp", "kill:323", NULL };
	const char *pargs[] = { "--size", SZ, "--threads", "1", NULL, NULL, NULL };
	struct scase plain = { "no filter, the tracer filtered", "", false, true };
	struct wtenant wf = { 0 }, wp = { 0 };
	pid_t c;
	int st, r;

	if (count_nodes() >= 2) {
		pargs[4] = "--node";
		pargs[5] = "0";
	}
	wt_start(&wf, self, fargs);
	wt_start(&wp, self, pargs);
	fflush(stdout);
	c = fork();
	if (c < 0)
		FAIL("fork: %m");
	if (c == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
			FAIL("seccomp on the test itself: %m");
		r = mig_tenant_attach(
			wf.pid,
			&(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
			&wf.t);
		if (r != -EPERM || !strstr(mig_tenant_last_error(), "cannot read"))
			FAIL("filtered tenant, tracer filtered: attach gave %s (%s), not -EPERM "
			     "saying the filter cannot be read",
			     mig_errno_name(r), mig_tenant_last_error());
		printf("# filtered tenant, the tracer filtered: attach refused: %s\n",
		       mig_tenant_last_error());
		r = mig_tenant_attach(
			wp.pid,
			&(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
			&wp.t);
		if (r < 0)
			FAIL("unfiltered tenant, tracer filtered: attach: %s",
			     mig_tenant_last_error());
		one_job(&wp, &plain, MIG_WINDOW_CLASSIC);
		if (mig_tenant_detach(wp.t) < 0)
			FAIL("unfiltered tenant: detach");
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		wt_kill(&wf);
		wt_kill(&wp);
		FAIL("the case with this process under seccomp failed (status %d)", st);
	}
	if (wt_stop(&wf, NULL, NULL) != 0 || wt_stop(&wp, NULL, NULL) != 0)
		FAIL("a tenant of the case with this process under seccomp ended badly");
	printf("# with the tracer filtered: both tenants lived, every page right\n");
}

int main(int argc, char **argv)
{
	char move[64], dontneed[64];

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, PTRACE_SECCOMP_GET_FILTER)");
	snprintf(move, sizeof(move), "kill:%d:1=%#lx", SYS_ioctl, (unsigned long)UFFDIO_MOVE);
	/* errno, not kill: glibc madvises the stacks of threads that end (DONTNEED) itself. */
	snprintf(dontneed, sizeof(dontneed), "errno:%d:2=%d", SYS_madvise, MADV_DONTNEED);
	{
		char uffd_kill[32], uffd_errno[32], sigret[32], handoff[64];
		struct scase cases[] = {
			{ "kill on userfaultfd", uffd_kill, false, true },
			{ "EPERM on userfaultfd", uffd_errno, false, true },
			{ "kill on UFFDIO_MOVE", move, false, false },
			{ "EPERM on MADV_DONTNEED", dontneed, false, false },
			{ "kill on rt_sigreturn", sigret, true, false },
			{ "EPERM on userfaultfd, SIGSYS on socketpair", handoff, true, false },
		};

		snprintf(uffd_kill, sizeof(uffd_kill), "kill:%d", SYS_userfaultfd);
		snprintf(uffd_errno, sizeof(uffd_errno), "errno:%d", SYS_userfaultfd);
		snprintf(sigret, sizeof(sigret), "kill:%d", SYS_rt_sigreturn);
		snprintf(handoff, sizeof(handoff), "errno:%d,trap:%d", SYS_userfaultfd,
			 SYS_socketpair);
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
			run_case(argv[0], &cases[k]);
	}
	unreadable(argv[0]);
	printf("# every filtered tenant lived, every page right\n");
	return 0;
}
