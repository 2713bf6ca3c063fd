/*
 * attach_farhint.c - migd's mappings inside a tenant stay out of the holes
 * the tenant has just made. The tenant maps 16 MiB and unmaps them again
 * (a tenant about to map there once more, with MAP_FIXED); then migd
 * attaches (its injected 4 KiB argument page) and maps a 6 MiB scratch
 * area (a migration's MOVE zap). Without a hint the kernel gives both the
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

int main(int argc, char **argv)
{
	char prog[4096], *maps;
	struct tenant tn;
	mig_tenant *t = NULL;
	uint64_t hole = 0, area = 0, gap;
	const char *a;
	int r;

	need_root();
	prog_path(prog, sizeof(prog), argv[0], "tenants/tenant_data");
	tenant_start(&tn, (char *[]){ prog, "--mb", "8", NULL }, true);
	a = tenant_ask(&tn, "hole 16");
	CHECK(sscanf(a, "HOLE %" SCNx64, &hole) == 1 && hole, "hole: %s", a);
	printf("# the tenant's fresh hole: %#" PRIx64 "-%#" PRIx64 "\n", hole, hole + HOLE);

	r = mig_tenant_attach(
		tn.pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 },
		&t);
	CHECK(r == 0, "attach: %s (%s)", mig_errno_name(r), mig_tenant_last_error());
	/* The attach's argument page is gone again; nothing of ours is in the hole. */
	maps = maps_of(tn.pid);
	{
		struct mig_vma *v = NULL;
		size_t n = 0;

		CHECK(mig_read_vmas(tn.pid, &v, &n) == 0, "read maps");
		for (size_t k = 0; k < n; k++)
			CHECK(v[k].end <= hole || v[k].start >= hole + HOLE,
			      "a mapping in the tenant's hole after attach:\n%s", maps);
		free(v);
	}
	free(maps);

	r = mig_tenant_map_scratch(t, AREA, &area);
	CHECK(r == 0 && area, "map_scratch: %s", mig_errno_name(r));
	printf("# scratch area: %#" PRIx64 "-%#" PRIx64 "\n", area, area + AREA);
	CHECK(area + AREA <= hole || area >= hole + HOLE,
	      "the scratch area %#" PRIx64 " is in the tenant's hole %#" PRIx64, area, hole);
	gap = clearance(tn.pid, area, AREA);
	printf("# clearance to the tenant's nearest mapping: %" PRIu64 " MiB\n", gap >> 20);
	CHECK(gap >= 512UL << 20, "only %" PRIu64 " MiB from a mapping of the tenant", gap >> 20);
	CHECK(mig_tenant_unmap(t, area, AREA) == 0, "unmap");
	CHECK(mig_tenant_detach(t) == 0, "detach");
	CHECK(!strcmp(tenant_ask(&tn, "check"), "CHECK ok"), "tenant data");
	tenant_stop(&tn);
	printf("PASS\n");
	return 0;
}
