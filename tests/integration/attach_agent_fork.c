/*
 * attach_agent_fork.c - the agent is safe across fork. A tenant with
 * libmig-agent.so preloaded is attached through the agent, its area
 * registered and zapped, and then it forks:
 *   - the child has only the forking thread (no agent thread), no inherited
 *     agent connection and no userfaultfd in its fd table;
 *   - its memory is intact: the zapped pages it touches are served through
 *     the uffd the kernel made for it (UFFD_EVENT_FORK on the parent's uffd);
 *   - the parent stays attached: zap, fill, map/unmap through the agent
 *     still work, and detach leaves its maps and fds as before;
 *   - a child that calls mig_agent_start() gets an agent of its own, which
 *     connects as the child's pid and serves an attach.
 */
#include "integration/attach_common.h"

/* Number of threads of pid. */
static int task_count(pid_t pid)
{
	char path[64];
	struct dirent **ents;
	int n, k = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	n = scandir(path, &ents, NULL, NULL);
	if (n < 0)
		FAIL("%s: %m", path);
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.')
			k++;
		free(ents[i]);
	}
	free(ents);
	return k;
}

/* Parse "CHILD <pid> CHECK ok"; returns the pid. */
static pid_t child_line(struct tenant *tn)
{
	const char *l = tenant_line(tn);
	int pid = 0;
	char res[32] = "";

	CHECK(sscanf(l, "CHILD %d CHECK %31s", &pid, res) == 2, "tenant said '%s'", l);
	CHECK(!strcmp(res, "ok"), "child's memory is not intact: '%s'", l);
	return pid;
}

int main(int argc, char **argv)
{
	char prog[4096], agent[4096], sock[108];
	struct tenant tn;
	struct reader rd, crd;
	mig_tenant *t = NULL, *ct = NULL;
	char *maps0, *fds0, *maps1, *fds1, *cfds;
	struct mig_range run;
	uint64_t addr = 0;
	int lfd, conn, cconn, r, cfd;
	pid_t apid = 0, cpid;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	agent_setup(argv[0], "agent-fork", agent, sizeof(agent), sock, sizeof(sock), &lfd);
	setenv("LD_PRELOAD", agent, 1);
	tenant_start(&tn, (char *[]){ prog, "--mb", "4", NULL }, true);
	unsetenv("LD_PRELOAD");

	r = mig_agent_accept(lfd, 5000, &apid, &conn);
	CHECK(r == 0 && apid == tn.pid, "accept: %s (pid %d)", mig_errno_name(r), apid);
	maps0 = maps_of(tn.pid);
	fds0 = fds_of(tn.pid);
	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = conn },
		&t);
	CHECK(r == 0, "attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	CHECK(mig_tenant_features(t) & UFFD_FEATURE_EVENT_FORK, "no EVENT_FORK");
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	reader_start(&rd, mig_tenant_uffd(t), tn.addr);

	/* Zapped and not yet touched: parent and child both miss every page. */
	run = (struct mig_range){ tn.addr, tn.addr + tn.len };
	CHECK(mig_tenant_zap(t, &run, 1) == 0, "zap");
	reader_wait_removes(&rd, 1);
	fprintf(tn.in, "fork\n");
	fflush(tn.in);
	for (int i = 0; i < 5000 && __atomic_load_n(&rd.forks, __ATOMIC_SEQ_CST) == 0; i++)
		usleep(1000);
	CHECK(rd.forks == 1, "no UFFD_EVENT_FORK (%lu)", rd.forks);
	cfd = __atomic_load_n(&rd.fork_fd, __ATOMIC_SEQ_CST);
	CHECK(cfd >= 0, "fork event without a uffd");
	reader_start(&crd, cfd, tn.addr);
	cpid = child_line(&tn);
	CHECK(crd.faults >= tn.len / 4096, "child faults %lu", crd.faults);
	CHECK(rd.faults == 0, "the parent's uffd served %lu faults of the child", rd.faults);
	printf("# child of an attached tenant: %lu faults served on its own uffd\n", crd.faults);

	/* No stray thread, connection or uffd in the child. */
	CHECK(task_count(cpid) == 1, "child has %d threads", task_count(cpid));
	cfds = fds_of(cpid);
	CHECK(!strstr(cfds, "socket:"), "child inherited a socket:\n%s", cfds);
	CHECK(!strstr(cfds, "userfaultfd"), "child inherited a uffd:\n%s", cfds);
	free(cfds);

	/* The parent stays attached: the agent still works for it. */
	CHECK(task_count(tn.pid) == 2, "parent has %d threads", task_count(tn.pid));
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "parent data after fork");
	CHECK(rd.faults >= tn.len / 4096, "parent faults %lu", rd.faults);
	rd.faults = 0;
	CHECK(mig_tenant_zap(t, &run, 1) == 0, "zap after fork: %s", mig_tenant_last_error());
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "parent data after 2nd zap");
	CHECK(rd.faults >= tn.len / 4096, "parent faults %lu", rd.faults);
	CHECK(mig_tenant_map_scratch(t, 4096, &addr) == 0, "map_scratch after fork");
	CHECK(mig_tenant_unmap(t, addr, 4096) == 0, "unmap after fork");
	CHECK(!strcmp(tenant_ask(&tn, "reap"), "REAP 0"), "child's second check");
	reader_stop(&crd);
	close(cfd);

	/* A child that starts its own agent connects as itself. */
	fprintf(tn.in, "forka\n");
	fflush(tn.in);
	for (int i = 0; i < 5000 && __atomic_load_n(&rd.forks, __ATOMIC_SEQ_CST) < 2; i++)
		usleep(1000);
	cfd = __atomic_load_n(&rd.fork_fd, __ATOMIC_SEQ_CST);
	CHECK(rd.forks == 2 && cfd >= 0, "second fork event");
	reader_start(&crd, cfd, tn.addr);
	cpid = child_line(&tn);
	r = mig_agent_accept(lfd, 5000, &apid, &cconn);
	CHECK(r == 0 && apid == cpid, "child's agent: %s (pid %d, child %d)", mig_errno_name(r),
	      apid, cpid);
	r = mig_tenant_attach(
		cpid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = cconn },
		&ct);
	CHECK(r == 0, "attach to child: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	CHECK(mig_tenant_map_scratch(ct, 4096, &addr) == 0, "child map_scratch");
	CHECK(mig_tenant_unmap(ct, addr, 4096) == 0, "child unmap");
	CHECK(mig_tenant_detach(ct) == 0, "child detach");
	CHECK(task_count(cpid) == 2, "child with its agent has %d threads", task_count(cpid));
	CHECK(!strcmp(tenant_ask(&tn, "reap"), "REAP 0"), "second child's check");
	reader_stop(&crd);
	close(cfd);
	close(cconn);

	reader_stop(&rd);
	r = mig_tenant_detach(t);
	CHECK(r == 0, "detach: %s", mig_errno_name(r));
	maps1 = maps_of(tn.pid);
	fds1 = fds_of(tn.pid);
	CHECK(!strcmp(maps0, maps1), "maps differ:\n%s\n---\n%s", maps0, maps1);
	CHECK(!strcmp(fds0, fds1), "fds differ:\n%s\n---\n%s", fds0, fds1);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "after detach");
	tenant_stop(&tn);
	close(conn);
	close(lfd);
	unlink(sock);
	free(maps0);
	free(fds0);
	free(maps1);
	free(fds1);
	printf("PASS attach_agent_fork\n");
	return 0;
}
