/*
 * attach_agent.c - the same attach/zap/fill/detach cycle as attach_ptrace,
 * through libmig-agent.so preloaded into the tenant: listen, accept the
 * agent, attach with MIG_ATTACH_AGENT, zap, serve faults with UFFDIO_COPY,
 * move, detach; the tenant checks its data, its maps and fd table are
 * unchanged. Then what the agent must not do to its host: its thread
 * blocks every signal (the host's SIGUSR1s all reach the host), its fds
 * are close-on-exec, and with no migd listening the host runs undisturbed
 * and silent.
 */
#include "integration/attach_common.h"

/* The status line "key:\tvalue" of a task of pid named name, or NULL. */
static char *task_status(pid_t pid, const char *name, const char *key)
{
	char path[128], *st, *k;
	struct dirent **ents;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	n = scandir(path, &ents, NULL, NULL);
	for (int i = 0; i < n; i++) {
		char p2[400];

		if (ents[i]->d_name[0] == '.') {
			free(ents[i]);
			continue;
		}
		snprintf(p2, sizeof(p2), "%s/%s/status", path, ents[i]->d_name);
		st = slurp(p2);
		k = strstr(st, "Name:");
		if (k && !strncmp(k + 6, name, strlen(name)) && (k = strstr(st, key))) {
			char *v = strdup(k + strlen(key));

			v[strcspn(v, "\n")] = 0;
			free(st);
			for (int j = i; j < n; j++)
				free(ents[j]);
			free(ents);
			return v;
		}
		free(st);
		free(ents[i]);
	}
	free(ents);
	return NULL;
}

static void quiet_without_migd(const char *prog, const char *agent)
{
	char env[] = "MIGD_AGENT_SOCKET=/nonexistent/migd-agent.sock";
	struct tenant tn;
	pid_t pid;

	putenv(env);
	setenv("LD_PRELOAD", agent, 1);
	tenant_start(&tn, (char *[]){ (char *)prog, "--mb", "1", NULL }, true);
	unsetenv("LD_PRELOAD");
	pid = tn.pid;
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant with absent migd");
	{
		char *blk = NULL;

		/* The helper starts on its own time: on a loaded host that can take a while. */
		for (int k = 0; k < 200 && !(blk = task_status(pid, "migd-agent", "SigBlk:")); k++)
			usleep(50 * 1000);
		CHECK(blk != NULL, "agent thread not running after 10 s");
		free(blk);
	}
	tenant_stop(&tn);
	printf("# agent with no migd: host ran undisturbed\n");
}

int main(int argc, char **argv)
{
	char prog[4096], agent[4096], sock[108];
	struct tenant tn;
	struct reader rd;
	mig_tenant *t = NULL;
	char *maps0, *fds0, *maps1, *fds1, *blk;
	uint64_t addr = 0, moved = 0;
	struct mig_range run;
	int lfd, conn, r;
	pid_t apid = 0;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	agent_setup(argv[0], "agent-test", agent, sizeof(agent), sock, sizeof(sock), &lfd);
	setenv("LD_PRELOAD", agent, 1);
	tenant_start(&tn, (char *[]){ prog, "--mb", "8", NULL }, true);
	unsetenv("LD_PRELOAD");

	r = mig_agent_accept(lfd, 5000, &apid, &conn);
	CHECK(r == 0, "accept: %s", mig_errno_name(r));
	CHECK(apid == tn.pid, "agent pid %d, tenant %d", apid, tn.pid);
	maps0 = maps_of(tn.pid);
	fds0 = fds_of(tn.pid);

	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AUTO, .agent_fd = conn },
		&t);
	CHECK(r == 0, "attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	CHECK(mig_tenant_method(t) == MIG_ATTACH_AGENT, "AUTO with an agent fd is the agent");
	CHECK(mig_tenant_stop_ns(t, NULL) == 0, "the agent never stops the tenant");
	CHECK(mig_tenant_fd_in_tenant(t) > 100, "tenant fd %d", mig_tenant_fd_in_tenant(t));
	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, NULL);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	reader_start(&rd, mig_tenant_uffd(t), tn.addr);
	run = (struct mig_range){ tn.addr, tn.addr + tn.len };
	r = mig_tenant_zap(t, &run, 1);
	CHECK(r == 0, "zap: %s", mig_errno_name(r));
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant data after zap+fill");
	CHECK(rd.faults >= tn.len / 4096, "faults %lu", rd.faults);
	printf("# agent: %lu faults served after zapping %" PRIu64 " MiB\n", rd.faults,
	       tn.len >> 20);

	r = mig_tenant_map_scratch(t, 4096, &addr);
	CHECK(r == 0, "map_scratch: %s", mig_errno_name(r));
	if (mig_tenant_features(t) & UFFD_FEATURE_MOVE) {
		uint8_t page[4096];
		struct iovec l = { page, 4096 }, rm = { (void *)(uintptr_t)addr, 4096 };
		struct reader ev;

		pattern_page(page, 0);
		CHECK(process_vm_writev(tn.pid, &l, 1, &rm, 1, 0) == 4096, "write: %m");
		reader_stop(&rd);
		reader_start(&ev, mig_tenant_uffd(t), ~0ull);
		run = (struct mig_range){ tn.addr, tn.addr + 4096 };
		CHECK(mig_tenant_zap(t, &run, 1) == 0, "zap");
		reader_stop(&ev);
		r = mig_tenant_move(t, tn.addr, addr, 4096, 0, &moved);
		CHECK(r == 0 && moved == 4096, "move: %s", mig_errno_name(r));
		reader_start(&rd, mig_tenant_uffd(t), tn.addr);
		CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "after move");
		printf("# UFFDIO_MOVE through the agent: ok\n");
	} else {
		r = mig_tenant_move(t, tn.addr, addr, 4096, 0, &moved);
		CHECK(r == -EOPNOTSUPP, "move without UFFD_FEATURE_MOVE: %s", mig_errno_name(r));
		printf("# UFFDIO_MOVE skipped: this kernel does not offer UFFD_FEATURE_MOVE "
		       "(needs 6.8); mig_tenant_move refuses with EOPNOTSUPP\n");
	}
	CHECK(mig_tenant_unmap(t, addr, 4096) == 0, "unmap");
	reader_stop(&rd);
	r = mig_tenant_detach(t);
	CHECK(r == 0, "detach: %s", mig_errno_name(r));
	maps1 = maps_of(tn.pid);
	fds1 = fds_of(tn.pid);
	CHECK(!strcmp(maps0, maps1), "maps differ:\n%s\n---\n%s", maps0, maps1);
	CHECK(!strcmp(fds0, fds1), "fds differ:\n%s\n---\n%s", fds0, fds1);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "after detach");

	/* Attach again on the same connection: the agent serves it anew. */
	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = conn },
		&t);
	CHECK(r == 0, "re-attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	CHECK(mig_tenant_detach(t) == 0, "detach 2");

	/* The agent's thread blocks every signal: the host gets them all. */
	blk = task_status(tn.pid, "migd-agent", "SigBlk:\t");
	CHECK(blk, "no migd-agent thread");
	{
		unsigned long long m = strtoull(blk, NULL, 16);
		const int sigs[] = { SIGHUP,  SIGINT,  SIGPIPE, SIGALRM,  SIGTERM,
				     SIGCHLD, SIGUSR1, SIGUSR2, SIGWINCH, SIGRTMIN + 2 };

		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			CHECK(m >> (sigs[i] - 1) & 1, "agent thread takes signal %d (SigBlk %s)",
			      sigs[i], blk);
	}
	/*
	 * One signal at a time, the next only once the host has counted the
	 * last: two SIGUSR1s pending together are one, and a loaded machine
	 * may not run the host's handler between two kill()s.
	 */
	for (int i = 1; i <= 5; i++) {
		char want[16];
		const char *got = "";

		snprintf(want, sizeof(want), "SIGS %d", i);
		kill(tn.pid, SIGUSR1);
		for (int ms = 0; ms < 5000; ms += 10) {
			got = tenant_ask(&tn, "sigs");
			if (!strcmp(got, want))
				break;
			usleep(10 * 1000);
		}
		CHECK(!strcmp(got, want), "host signals: %s after %d sent", got, i);
	}
	/* Its connection is close-on-exec. */
	{
		char path[64], *info;
		char *fds = fds_of(tn.pid);
		const char *s;

		for (s = fds; (s = strstr(s, "socket:")); s++) {
			const char *ln = s;
			int fd;

			while (ln > fds && ln[-1] != '\n')
				ln--;
			fd = atoi(ln);
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", tn.pid, fd);
			info = slurp(path);
			CHECK(strtoul(strstr(info, "flags:") + 6, NULL, 8) & O_CLOEXEC,
			      "fd %d not cloexec", fd);
			free(info);
		}
		free(fds);
	}
	tenant_stop(&tn);
	close(conn);
	close(lfd);
	unlink(sock);
	quiet_without_migd(prog, agent);
	free(maps0);
	free(fds0);
	free(maps1);
	free(fds1);
	free(blk);
	printf("PASS attach_agent\n");
	return 0;
}
