/*
 * proc_maps.c - mig_read_vmas() on a live tenant: its anonymous region is
 * found with exact bounds and flags, a named anonymous region reads as
 * [anon:NAME], a deleted file whose path has spaces is parsed whole and is
 * not anonymous, kernel mappings are special, and a gone tenant is -ESRCH.
 */
#include "mig.h"
#include "integration/proc_util.h"

int main(void)
{
	struct mig_vma *vmas = NULL;
	bool seen_region = false, seen_file = false, seen_vdso = false, seen_stack = false;
	struct tenant t;
	char want[PATH_MAX + 16];
	size_t n = 0;
	int r;

	tenant_start(&t, "-s", "8M", "-m", "small", "-n", "mig test", "-f", (char *)NULL);
	r = mig_read_vmas(t.pid, &vmas, &n);
	CHECK(r == 0, "mig_read_vmas: %d", r);
	snprintf(want, sizeof(want), "%s (deleted)", t.file_path);
	for (size_t i = 0; i < n; i++) {
		const struct mig_vma *v = &vmas[i];

		if (i > 0)
			CHECK(vmas[i - 1].end <= v->start, "VMAs out of order at %zu", i);
		if (v->start == t.start) {
			CHECK(v->end == t.end, "region end %#lx want %#lx", (unsigned long)v->end,
			      (unsigned long)t.end);
			CHECK(mig_vma_is_anon_private(v), "region not anon private: %#x", v->flags);
			CHECK((v->flags & (MIG_VMA_READ | MIG_VMA_WRITE)) ==
				      (MIG_VMA_READ | MIG_VMA_WRITE),
			      "flags %#x", v->flags);
			if (t.anon_name == 1)
				CHECK(strcmp(v->name, "[anon:mig test]") == 0, "name '%s'",
				      v->name);
			else
				printf("# anon VMA names not supported by this kernel: name '%s'\n",
				       v->name);
			seen_region = true;
		}
		if (v->start == t.file_start) {
			CHECK(strncmp(v->name, want, sizeof(v->name) - 1) == 0,
			      "file name '%s' want '%s'", v->name, want);
			CHECK(!(v->flags & MIG_VMA_ANON) && !(v->flags & MIG_VMA_PRIVATE),
			      "file flags %#x", v->flags);
			seen_file = true;
		}
		if (strcmp(v->name, "[vdso]") == 0) {
			CHECK(v->flags & MIG_VMA_SPECIAL, "vdso not special");
			CHECK(!mig_vma_is_anon_private(v), "vdso migratable");
			seen_vdso = true;
		}
		if (v->flags & MIG_VMA_STACK)
			seen_stack = true;
	}
	CHECK(seen_region && seen_file && seen_vdso && seen_stack,
	      "region %d file %d vdso %d stack %d", seen_region, seen_file, seen_vdso, seen_stack);
	printf("# %zu VMAs read from a live tenant\n", n);
	free(vmas);

	CHECK(tenant_finish(&t) == 0, "tenant memory changed");
	vmas = (struct mig_vma *)0x1;
	r = mig_read_vmas(t.pid, &vmas, &n);
	CHECK(r == -ESRCH, "read of a reaped tenant: %d", r);
	CHECK(vmas == (struct mig_vma *)0x1, "ret_vmas touched on failure");
	return 0;
}
