/*
 * attach_stopped.c - tenants in awkward states at attach time.
 *
 * 1. Stopped by SIGSTOP (job control): ptrace attach works on the stopped
 *    tenant (register, zap, refill with UFFDIO_COPY, detach) and leaves it
 *    stopped - the state stays 'T' and its parent sees no continue; after
 *    SIGCONT its data is intact. Through the agent (whose thread is stopped
 *    too) attach refuses with -EAGAIN and a clear message, and never
 *    resumes the tenant.
 * 2. Main thread exited (pthread_exit in main, the command thread runs on):
 *    attach seizes a live thread from /proc/PID/task, zap/fill/detach work,
 *    and the maps and fds seen through that thread are as before. On
 *    kernels without PIDFD_THREAD (< 6.9) migd cannot copy the uffd out of
 *    such a process: that part checks the clear -EOPNOTSUPP and says so.
 */
#include "integration/attach_common.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

/* Fill [addr, addr+len) of the tenant with its pattern through the uffd. */
static void fill_all(int uffd, uint64_t addr, uint64_t len)
{
	uint8_t *buf = aligned_alloc(4096, len);
	uint64_t done = 0;
	int r;

	CHECK(buf, "alloc");
	for (uint64_t off = 0; off < len; off += 4096)
		pattern_page(buf + off, off);
	r = mig__uffd_copy(uffd, addr, buf, len, 0, &done);
	CHECK(r == 0 && done == len, "UFFDIO_COPY: %s (%" PRIu64 " of %" PRIu64 ")",
	      mig_errno_name(r), done, len);
	free(buf);
}

/*
 * The tenant is back in its job-control stop (after a detach it passes
 * through the kernel for a moment: 'R' without running user code), stays
 * there, and its parent sees no continue.
 */
static void check_still_stopped(pid_t pid, const char *when)
{
	siginfo_t si;

	for (int i = 0; i < 1000 && task_state(pid, pid) != 'T'; i++)
		usleep(1000);
	for (int i = 0; i < 30; i++) {
		char st = task_state(pid, pid);

		CHECK(st == 'T', "%s: tenant state '%c', not stopped", when, st);
		usleep(10 * 1000);
	}
	memset(&si, 0, sizeof(si));
	CHECK(waitid(P_PID, (id_t)pid, &si, WCONTINUED | WNOHANG) == 0 && si.si_pid == 0,
	      "%s: the tenant was continued (si_code %d)", when, si.si_code);
}

static void stop_tenant(pid_t pid)
{
	int st;

	kill(pid, SIGSTOP);
	CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st), "SIGSTOP");
}

static void stopped_ptrace(const char *prog)
{
	struct tenant tn;
	mig_tenant *t = NULL;
	struct mig_range run;
	int r, st;

	tenant_start(&tn, (char *[]){ (char *)prog, "--mb", "4", NULL }, true);
	stop_tenant(tn.pid);
	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
		&t);
	CHECK(r == 0, "attach to a stopped tenant: %s (%s)", mig_errno_name(r),
	      mig_tenant_last_error());
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	{
		struct reader rd;

		/* The zap raises a REMOVE event that someone must read. */
		reader_start(&rd, mig_tenant_uffd(t), tn.addr);
		run = (struct mig_range){ tn.addr, tn.addr + tn.len };
		r = mig_tenant_zap(t, &run, 1);
		CHECK(r == 0, "zap in a stopped tenant: %s", mig_errno_name(r));
		reader_wait_removes(&rd, 1);
		reader_stop(&rd);
		CHECK(rd.faults == 0, "a stopped tenant faulted %lu times", rd.faults);
	}
	check_still_stopped(tn.pid, "after zap");
	fill_all(mig_tenant_uffd(t), tn.addr, tn.len);
	r = mig_tenant_detach(t);
	CHECK(r == 0, "detach: %s", mig_errno_name(r));
	printf("# stopped tenant: attached, zapped, filled, detached; still stopped\n");
	check_still_stopped(tn.pid, "after detach");
	/* It runs no user code: a command sent now is answered only after SIGCONT. */
	fprintf(tn.in, "check\n");
	fflush(tn.in);
	{
		struct pollfd pf = { .fd = fileno(tn.out), .events = POLLIN };

		CHECK(poll(&pf, 1, 300) == 0, "the stopped tenant answered a command");
	}
	kill(tn.pid, SIGCONT);
	CHECK(waitpid(tn.pid, &st, WCONTINUED) == tn.pid && WIFCONTINUED(st), "SIGCONT");
	CHECK(!strcmp(tenant_line(&tn), "CHECK ok"), "data after SIGCONT");
	tenant_stop(&tn);
}

static void stopped_agent(const char *self, const char *prog)
{
	char agent[4096], sock[108];
	struct tenant tn;
	mig_tenant *t = NULL;
	int lfd, conn, r, st;
	pid_t apid = 0;

	agent_setup(self, "agent-stopped", agent, sizeof(agent), sock, sizeof(sock), &lfd);
	setenv("LD_PRELOAD", agent, 1);
	tenant_start(&tn, (char *[]){ (char *)prog, "--mb", "1", NULL }, true);
	unsetenv("LD_PRELOAD");
	r = mig_agent_accept(lfd, 5000, &apid, &conn);
	CHECK(r == 0 && apid == tn.pid, "accept: %s", mig_errno_name(r));
	stop_tenant(tn.pid);
	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = conn },
		&t);
	CHECK(r == -EAGAIN, "agent attach to a stopped tenant gave %s", mig_errno_name(r));
	CHECK(strstr(mig_tenant_last_error(), "stopped"), "unclear error: %s",
	      mig_tenant_last_error());
	printf("# agent, stopped tenant: %s\n", mig_tenant_last_error());
	check_still_stopped(tn.pid, "after refused agent attach");
	kill(tn.pid, SIGCONT);
	CHECK(waitpid(tn.pid, &st, WCONTINUED) == tn.pid && WIFCONTINUED(st), "SIGCONT");
	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = conn },
		&t);
	CHECK(r == 0, "agent attach after SIGCONT: %s (%s)", mig_errno_name(r),
	      mig_tenant_last_error());
	CHECK(mig_tenant_detach(t) == 0, "detach");
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "data");
	tenant_stop(&tn);
	close(conn);
	close(lfd);
	unlink(sock);
}

/* The tenant's thread that is not tid main, once main is a zombie. */
static pid_t other_thread(pid_t pid)
{
	char path[64];
	struct dirent **ents;
	pid_t tid = 0;
	int n;

	for (int i = 0; i < 500 && task_state(pid, pid) != 'Z'; i++)
		usleep(2000);
	CHECK(task_state(pid, pid) == 'Z', "main thread did not exit");
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	n = scandir(path, &ents, NULL, NULL);
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && atoi(ents[i]->d_name) != pid)
			tid = atoi(ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	CHECK(tid > 0, "no live thread");
	return tid;
}

static void main_exited(const char *prog)
{
	struct tenant tn;
	struct reader rd;
	mig_tenant *t = NULL;
	char *maps0, *fds0, *maps1, *fds1;
	struct mig_range run;
	uint64_t ns = 0;
	pid_t tid;
	int r, pfd;

	tenant_start(&tn, (char *[]){ (char *)prog, "--mb", "4", "--main-exits", NULL }, true);
	tid = other_thread(tn.pid);
	/* One round trip first: the thread's first malloc adds an arena to the maps. */
	CHECK(!strncmp(tenant_ask(&tn, "sigs"), "SIGS", 4), "tenant thread");
	maps0 = maps_of_task(tn.pid, tid);
	fds0 = fds_of_task(tn.pid, tid);
	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
		&t);
	pfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	if (pfd < 0 && r == -EOPNOTSUPP) {
		/* The uffd was made and closed again inside the tenant: nothing left. */
		CHECK(strstr(mig_tenant_last_error(), "main thread"), "unclear error: %s",
		      mig_tenant_last_error());
		fds1 = fds_of_task(tn.pid, tid);
		CHECK(!strcmp(fds0, fds1), "refused attach left fds:\n%s\n---\n%s", fds0, fds1);
		CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "data");
		tenant_stop(&tn);
		printf("# main thread exited: refused on this kernel (no PIDFD_THREAD): %s\n",
		       mig_tenant_last_error());
		free(fds1);
		goto out;
	}
	if (pfd >= 0)
		close(pfd);
	CHECK(r == 0, "attach with a zombie main thread: %s (%s)", mig_errno_name(r),
	      mig_tenant_last_error());
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	reader_start(&rd, mig_tenant_uffd(t), tn.addr);
	run = (struct mig_range){ tn.addr, tn.addr + tn.len };
	r = mig_tenant_zap(t, &run, 1);
	CHECK(r == 0, "zap: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "data after zap+fill");
	CHECK(rd.faults >= tn.len / 4096, "faults %lu", rd.faults);
	reader_stop(&rd);
	mig_tenant_stop_ns(t, &ns);
	r = mig_tenant_detach(t);
	CHECK(r == 0, "detach: %s", mig_errno_name(r));
	maps1 = maps_of_task(tn.pid, tid);
	fds1 = fds_of_task(tn.pid, tid);
	CHECK(!strcmp(maps0, maps1), "maps differ:\n%s\n---\n%s", maps0, maps1);
	CHECK(!strcmp(fds0, fds1), "fds differ:\n%s\n---\n%s", fds0, fds1);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "data after detach");
	tenant_stop(&tn);
	printf("# main thread exited: attached through thread %d, %lu faults served\n", tid,
	       rd.faults);
	free(maps1);
	free(fds1);
out:
	free(maps0);
	free(fds0);
}

int main(int argc, char **argv)
{
	char prog[4096];

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	stopped_ptrace(prog);
	stopped_agent(argv[0], prog);
	main_exited(prog);
	printf("PASS attach_stopped\n");
	return 0;
}
