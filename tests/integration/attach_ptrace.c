/*
 * attach_ptrace.c - attach to an unmodified C tenant by ptrace injection,
 * register its data area, zap it through the injected path, serve the
 * faults with UFFDIO_COPY from a reader thread, detach. The tenant checks
 * its data and keeps running; its maps and fd table are unchanged after
 * detach. Also exercises map_scratch/unmap/move through injection, and
 * prints the tenant's stop time for attach + detach.
 */
#include "integration/attach_common.h"

static void stop_time_figures(pid_t pid, const char *self)
{
	/* Measure attach + detach stop time on an idle tenant, 20 rounds. */
	uint64_t total = 0, worst = 0, det_wall = 0;
	const int rounds = 20;

	for (int i = 0; i < rounds; i++) {
		mig_tenant *t;
		uint64_t s, mx, t0;

		CHECK(mig_tenant_attach(pid, NULL, &t) == 0, "attach: %s", mig_tenant_last_error());
		s = mig_tenant_stop_ns(t, &mx);
		t0 = now_ns();
		/* Detach stops the thread once more (close of its fd). */
		CHECK(mig_tenant_detach(t) == 0, "detach");
		det_wall += now_ns() - t0;
		total += s;
		worst = mx > worst ? mx : worst;
	}
	(void)self;
	printf("# attach stop time: %.3f ms mean, %.3f ms worst (goal < 5 ms)\n",
	       total / rounds / 1e6, worst / 1e6);
	printf("# detach wall time (includes one stop): %.3f ms mean\n", det_wall / rounds / 1e6);
}

int main(int argc, char **argv)
{
	char prog[4096];
	struct tenant tn;
	struct reader rd;
	mig_tenant *t = NULL;
	char *maps0, *fds0, *maps1, *fds1;
	uint64_t ioctls = 0, stop, stop_max, addr = 0, moved = 0;
	struct mig_range runs[3];
	int r;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	tenant_start(&tn, (char *[]){ prog, "--mb", "8", NULL }, true);
	maps0 = maps_of(tn.pid);
	fds0 = fds_of(tn.pid);

	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
		&t);
	CHECK(r == 0, "attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	stop = mig_tenant_stop_ns(t, &stop_max);
	printf("# attach (ptrace) stop time: %.3f ms\n", stop / 1e6);
	CHECK(mig_tenant_method(t) == MIG_ATTACH_PTRACE, "method");
	CHECK(mig_tenant_features(t) & UFFD_FEATURE_EVENT_REMOVE, "features 0x%" PRIx64,
	      mig_tenant_features(t));
	CHECK(mig_tenant_fd_in_tenant(t) > 100, "tenant fd %d not high",
	      mig_tenant_fd_in_tenant(t));
	printf("# tenant uffd fd %d, features 0x%" PRIx64 "\n", mig_tenant_fd_in_tenant(t),
	       mig_tenant_features(t));
	{
		/* The tenant's copy is close-on-exec. */
		char path[64], *info, *fl;

		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", tn.pid,
			 mig_tenant_fd_in_tenant(t));
		info = slurp(path);
		fl = strstr(info, "flags:");
		CHECK(fl && (strtoul(fl + 6, NULL, 8) & O_CLOEXEC), "not cloexec: %s", info);
		free(info);
	}

	r = mig_tenant_register(t, tn.addr, tn.len, UFFDIO_REGISTER_MODE_MISSING, &ioctls);
	CHECK(r == 0, "register: %s", mig_errno_name(r));
	CHECK(ioctls & (1ull << _UFFDIO_COPY), "no COPY ioctl");
	reader_start(&rd, mig_tenant_uffd(t), tn.addr);

	/* Three runs: first page, a middle MiB, the last page. */
	runs[0] = (struct mig_range){ tn.addr, tn.addr + 4096 };
	runs[1] = (struct mig_range){ tn.addr + (2 << 20), tn.addr + (3 << 20) };
	runs[2] = (struct mig_range){ tn.addr + tn.len - 4096, tn.addr + tn.len };
	r = mig_tenant_zap(t, runs, 3);
	CHECK(r == 0, "zap: %s", mig_errno_name(r));
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant data after zap+fill");
	printf("# faults served: %lu, events: %lu\n", rd.faults, rd.events);
	CHECK(rd.faults >= 2 + 256, "expected 258 faults, got %lu", rd.faults);
	CHECK(reader_wait_removes(&rd, 3) == 3, "expected 3 REMOVE events, got %lu", rd.removes);
	CHECK(rd.err == 0, "reader: %s", mig_errno_name(rd.err));

	/* Scratch area, UFFDIO_MOVE into a zapped page, unmap. */
	r = mig_tenant_map_scratch(t, 4096, &addr);
	CHECK(r == 0 && addr, "map_scratch: %s", mig_errno_name(r));
	if (mig_tenant_features(t) & UFFD_FEATURE_MOVE) {
		uint8_t page[4096];
		struct iovec l = { page, 4096 }, rm = { (void *)(uintptr_t)addr, 4096 };

		pattern_page(page, 4096);
		CHECK(process_vm_writev(tn.pid, &l, 1, &rm, 1, 0) == 4096, "write scratch: %m");
		runs[0] = (struct mig_range){ tn.addr + 4096, tn.addr + 8192 };
		/* The reader must not fill it first: the move would then get EEXIST. */
		reader_stop(&rd);
		{
			struct reader ev;

			reader_start(&ev, mig_tenant_uffd(t), ~0ull); /* events only */
			CHECK(mig_tenant_zap(t, runs, 1) == 0, "zap for move");
			reader_stop(&ev);
		}
		r = mig_tenant_move(t, tn.addr + 4096, addr, 4096, 0, &moved);
		CHECK(r == 0 && moved == 4096, "move: %s moved %" PRIu64, mig_errno_name(r), moved);
		reader_start(&rd, mig_tenant_uffd(t), tn.addr);
		CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant data after move");
		printf("# UFFDIO_MOVE through injection: ok\n");
	} else {
		r = mig_tenant_move(t, tn.addr, addr, 4096, 0, &moved);
		CHECK(r == -EOPNOTSUPP, "move without UFFD_FEATURE_MOVE: %s", mig_errno_name(r));
		printf("# UFFDIO_MOVE skipped: this kernel does not offer UFFD_FEATURE_MOVE "
		       "(needs 6.8); mig_tenant_move refuses with EOPNOTSUPP\n");
	}
	CHECK(mig_tenant_unmap(t, addr, 4096) == 0, "unmap");
	CHECK(mig_tenant_zap(t, (struct mig_range[]){ { 1, 2 } }, 1) == -EINVAL, "bad run");

	reader_stop(&rd);
	r = mig_tenant_detach(t);
	CHECK(r == 0, "detach: %s", mig_errno_name(r));
	maps1 = maps_of(tn.pid);
	fds1 = fds_of(tn.pid);
	CHECK(!strcmp(maps0, maps1), "maps differ:\n%s\n---\n%s", maps0, maps1);
	CHECK(!strcmp(fds0, fds1), "fds differ:\n%s\n---\n%s", fds0, fds1);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant data after detach");

	stop_time_figures(tn.pid, argv[0]);
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant alive after 20 rounds");
	tenant_stop(&tn);
	free(maps0);
	free(fds0);
	free(maps1);
	free(fds1);
	printf("PASS attach_ptrace\n");
	return 0;
}
