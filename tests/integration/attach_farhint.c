/*
 * attach_farhint.c - migd's mappings inside a tenant stay out of the holes
 * the tenant has just made. The tenant maps 16 MiB and unmaps them again
 * (a tenant about to map there once more, with MAP_FIXED); then migd
 * attaches (its injected 4 KiB argument page) and maps a 6 MiB scratch
 * area (a migration's MOVE zap), once by ptrace and once through the
 * LD_PRELOAD agent (which maps it itself, at the hint migd sends).
 * Without a hint the kernel gives both the
 * highest gap that fits: that fresh hole, where the tenant's MAP_FIXED
 * would replace them without a word. They must lie outside it, with 512
 * MiB or more between them and any mapping of the tenant; the tenant's
 * data checks afterwards.
 */
#include "integration/attach_common.h"

#define AREA (6UL << 20)
#define HOLE (16UL << 20)

/* The distance from [a, a + len) to the nearest mapping of pid other than it. */
static uint64_t clearance(pid_t pid, uint64_t a, uint64_t len)
{
	struct mig_vma *v = NULL;
	uint64_t best = UINT64_MAX;
	size_t n = 0;

	CHECK(mig_read_vmas(pid, &v, &n) == 0, "read maps");
	for (size_t k = 0; k < n; k++) {
		if (v[k].start >= a && v[k].end <= a + len)
			continue; /* ours */
		if (v[k].end <= a && a - v[k].end < best)
			best = a - v[k].end;
		if (v[k].start >= a + len && v[k].start - (a + len) < best)
			best = v[k].start - (a + len);
		CHECK(v[k].end <= a || v[k].start >= a + len, "a mapping overlaps ours");
	}
	free(v);
	return best;
}

/* One tenant, one backend: conn < 0 ptrace, else the agent's connection. */
static void one(struct tenant *tn, int conn, const char *what)
{
	mig_tenant *t = NULL;
	uint64_t hole = 0, area = 0, gap;
	struct mig_vma *v = NULL;
	const char *a;
	size_t n = 0;
	int r;

	a = tenant_ask(tn, "hole 16");
	CHECK(sscanf(a, "HOLE %" SCNx64, &hole) == 1 && hole, "hole: %s", a);
	printf("# %s: the tenant's fresh hole: %#" PRIx64 "-%#" PRIx64 "\n", what, hole,
	       hole + HOLE);
	r = mig_tenant_attach(tn->pid,
			      &(struct mig_attach_opts){ .method = conn < 0 ? MIG_ATTACH_PTRACE
									    : MIG_ATTACH_AGENT,
							 .agent_fd = conn },
			      &t);
	CHECK(r == 0, "%s attach: %s (%s)", what, mig_errno_name(r), mig_tenant_last_error());
	/* What the attach mapped for itself is gone again; nothing of ours is in the hole. */
	CHECK(mig_read_vmas(tn->pid, &v, &n) == 0, "read maps");
	for (size_t k = 0; k < n; k++)
		CHECK(v[k].end <= hole || v[k].start >= hole + HOLE,
		      "%s: a mapping %#" PRIx64 " in the tenant's hole after attach", what,
		      v[k].start);
	free(v);

	r = mig_tenant_map_scratch(t, AREA, &area);
	CHECK(r == 0 && area, "%s map_scratch: %s", what, mig_errno_name(r));
	printf("# %s: scratch area: %#" PRIx64 "-%#" PRIx64 "\n", what, area, area + AREA);
	CHECK(area + AREA <= hole || area >= hole + HOLE,
	      "%s: the scratch area %#" PRIx64 " is in the tenant's hole %#" PRIx64, what, area,
	      hole);
	gap = clearance(tn->pid, area, AREA);
	printf("# %s: clearance to the tenant's nearest mapping: %" PRIu64 " MiB\n", what,
	       gap >> 20);
	CHECK(gap >= 512UL << 20, "%s: only %" PRIu64 " MiB from a mapping of the tenant", what,
	      gap >> 20);
	CHECK(mig_tenant_unmap(t, area, AREA) == 0, "unmap");
	CHECK(mig_tenant_detach(t) == 0, "detach");
	CHECK(!strcmp(tenant_ask(tn, "check"), "CHECK ok"), "%s: tenant data", what);
}

int main(int argc, char **argv)
{
	char prog[4096], agent[4096], sock[128];
	struct tenant tn;
	pid_t apid = 0;
	int lfd = -1, conn = -1, r;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	tenant_start(&tn, (char *[]){ prog, "--mb", "8", NULL }, true);
	one(&tn, -1, "ptrace");
	tenant_stop(&tn);

	/* The agent maps the area itself, at the hint migd sends. */
	agent_setup(argv[0], "farhint", agent, sizeof(agent), sock, sizeof(sock), &lfd);
	setenv("LD_PRELOAD", agent, 1);
	tenant_start(&tn, (char *[]){ prog, "--mb", "8", NULL }, true);
	unsetenv("LD_PRELOAD");
	r = mig_agent_accept(lfd, 5000, &apid, &conn);
	CHECK(r == 0, "accept: %s", mig_errno_name(r));
	one(&tn, conn, "agent");
	tenant_stop(&tn);
	close(lfd);
	unlink(sock);
	printf("PASS\n");
	return 0;
}
