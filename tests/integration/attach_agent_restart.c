/*
 * attach_agent_restart.c - crash recovery through the agent. A first
 * "migd" (a child process of the test) accepts the agent, attaches,
 * registers the tenant's area, zaps it and dies without detaching. The
 * agent keeps the uffd (closing it would hand the tenant zeros). A second
 * "migd" (the test itself) listens on the same socket again; the agent
 * reconnects and hands over the kept uffd, which already had its
 * UFFDIO_API: attach reuses it with the features it had, serves the
 * pages the first one zapped, works on, and detach leaves the tenant's
 * maps and fds as before the first attach with no uffd registration left.
 */
#include "integration/attach_common.h"

/* The first migd: attach, register, zap, report the features, die. */
static void first_migd(int lfd, pid_t tenant, uint64_t addr, uint64_t len, int report)
{
	struct mig_range run = { addr, addr + len };
	mig_tenant *t = NULL;
	struct reader rd;
	uint64_t feat;
	pid_t apid = 0;
	int conn, r;

	r = mig_agent_accept(lfd, 5000, &apid, &conn);
	CHECK(r == 0 && apid == tenant, "first accept: %s", mig_errno_name(r));
	r = mig_tenant_attach(
		tenant, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = conn },
		&t);
	CHECK(r == 0, "first attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	CHECK(mig_tenant_register(t, addr, len, UFFDIO_REGISTER_MODE_MISSING, NULL) == 0,
	      "register");
	reader_start(&rd, mig_tenant_uffd(t), addr);
	CHECK(mig_tenant_zap(t, &run, 1) == 0, "first zap");
	reader_wait_removes(&rd, 1);
	feat = mig_tenant_features(t);
	CHECK(write(report, &feat, sizeof(feat)) == sizeof(feat), "report");
	/* Crash: no detach, the kernel closes everything. */
	_exit(0);
}

/* True when some VMA of pid is still registered with a uffd (VmFlags um/uw/ui). */
static bool uffd_registered(pid_t pid)
{
	char path[64], *s, *l;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	s = slurp(path);
	for (l = strstr(s, "VmFlags:"); l && !found; l = strstr(l + 1, "VmFlags:")) {
		size_t n = strcspn(l, "\n");
		char *v = strndup(l, n);

		found = strstr(v, " um") || strstr(v, " uw") || strstr(v, " ui");
		free(v);
	}
	free(s);
	return found;
}

int main(int argc, char **argv)
{
	char prog[4096], agent[4096], sock[108];
	char *maps0, *fds0, *maps1, *fds1;
	struct tenant tn;
	struct reader rd;
	mig_tenant *t = NULL;
	struct mig_range run;
	uint64_t feat = 0, t0;
	int lfd, conn, r, st, pp[2];
	pid_t apid = 0, m1;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	agent_setup(argv[0], "agent-restart", agent, sizeof(agent), sock, sizeof(sock), &lfd);
	setenv("LD_PRELOAD", agent, 1);
	tenant_start(&tn, (char *[]){ prog, "--mb", "4", NULL }, true);
	unsetenv("LD_PRELOAD");
	/* The fds are snapshot after the reconnect: the agent's socket comes and goes. */
	maps0 = maps_of(tn.pid);

	CHECK(pipe(pp) == 0, "pipe");
	m1 = fork();
	CHECK(m1 >= 0, "fork");
	if (m1 == 0) {
		close(pp[0]);
		first_migd(lfd, tn.pid, tn.addr, tn.len, pp[1]);
	}
	close(pp[1]);
	CHECK(read(pp[0], &feat, sizeof(feat)) == sizeof(feat), "first migd reported nothing");
	close(pp[0]);
	CHECK(waitpid(m1, &st, 0) == m1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "first migd status 0x%x", st);
	CHECK(uffd_registered(tn.pid), "the registration did not survive the first migd");

	/* The second migd: same socket path, new listener. */
	close(lfd);
	unlink(sock);
	CHECK(mig_agent_listen(sock, &lfd) == 0, "listen again");
	t0 = now_ns();
	r = mig_agent_accept(lfd, 10000, &apid, &conn);
	CHECK(r == 0 && apid == tn.pid, "second accept: %s", mig_errno_name(r));
	printf("# agent reconnected %.0f ms after the new listener\n",
	       (double)(now_ns() - t0) / 1e6);
	fds0 = fds_of(tn.pid);
	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = conn },
		&t);
	CHECK(r == 0, "attach to the kept uffd: %s (%s)", mig_errno_name(r),
	      mig_tenant_last_error());
	CHECK(mig_tenant_features(t) == feat, "features 0x%" PRIx64 ", first migd had 0x%" PRIx64,
	      mig_tenant_features(t), feat);
	printf("# kept uffd reused: features 0x%" PRIx64 " read back from fdinfo\n", feat);
	reader_start(&rd, mig_tenant_uffd(t), tn.addr);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "data zapped by the first migd");
	CHECK(rd.faults >= tn.len / 4096, "faults %lu", rd.faults);
	printf("# %lu faults left by the first migd served by the second\n", rd.faults);
	/* Same uffd: registering the range again is allowed, and it works on. */
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register again: %s", mig_errno_name(r));
	run = (struct mig_range){ tn.addr, tn.addr + tn.len };
	rd.faults = 0;
	CHECK(mig_tenant_zap(t, &run, 1) == 0, "second zap");
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "data after second zap");
	CHECK(rd.faults >= tn.len / 4096, "faults %lu", rd.faults);
	reader_stop(&rd);
	r = mig_tenant_detach(t);
	CHECK(r == 0, "detach: %s", mig_errno_name(r));

	maps1 = maps_of(tn.pid);
	fds1 = fds_of(tn.pid);
	CHECK(!strcmp(maps0, maps1), "maps differ:\n%s\n---\n%s", maps0, maps1);
	/* Before the kept uffd's attach, it was in the table; now it is gone. */
	CHECK(!strstr(fds1, "userfaultfd"), "uffd left after detach:\n%s", fds1);
	CHECK(strstr(fds0, "userfaultfd"), "kept uffd was not in the table:\n%s", fds0);
	CHECK(!uffd_registered(tn.pid), "a uffd registration is left after detach");
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "after detach");
	tenant_stop(&tn);
	close(conn);
	close(lfd);
	unlink(sock);
	free(maps0);
	free(fds0);
	free(maps1);
	free(fds1);
	printf("PASS attach_agent_restart\n");
	return 0;
}
