/*
 * migrate_sparse.c - a whole-process migration of a tenant with a 256 GiB
 * MAP_NORESERVE anonymous reservation of which only 4 MiB, at scattered
 * offsets, is present (what a JVM or Go heap or a sanitizer's shadow looks
 * like), next to its normal data with writer threads running. The engine
 * must skip the empty windows before any REGISTER or write-protect work:
 * the job must finish in seconds, move exactly the present pages of the
 * reservation (every other page of it reported absent, -ENOENT), and the
 * tenant must find all of its data intact.
 *
 * First the same job without a per-page status (what migd asks for):
 * its memory must follow the pages present, not the span (peak RSS
 * growth under MAX_GROWTH_MB, where per-page arrays over 256 GiB would
 * take 320 MB), with the counts still adding up.
 */
#include "integration/migrate_common.h"

#define SPARSE_SIZE   "256G"
#define TIME_LIMIT_S  30.0
#define MAX_GROWTH_MB 32

/* This process's peak RSS in KiB; reset (clear_refs 5) with reset. */
static long peak_rss_kb(bool reset)
{
	char line[256];
	long kb = -1;
	FILE *f;

	if (reset) {
		f = fopen("/proc/self/clear_refs", "w");
		if (f) {
			fputs("5", f);
			fclose(f);
		}
	}
	f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * Every writable anonymous private VMA of pid, but for multi-terabyte
 * ones: under SANITIZE=1 the sanitizer's shadow is 16+ TiB, and the
 * result's per-page status array alone would need 4 GiB per TiB.
 */
static size_t whole_ranges(pid_t pid, struct mig_range **ret)
{
	struct mig_vma *v = NULL;
	struct mig_range *out;
	size_t nv = 0, n = 0;
	int r = mig_read_vmas(pid, &v, &nv);

	if (r < 0)
		FAIL("mig_read_vmas(%d): %s", pid, strerror(-r));
	out = calloc(nv + 1, sizeof(*out));
	if (!out)
		FAIL("out of memory");
	for (size_t i = 0; i < nv; i++) {
		if (!mig_vma_is_anon_private(&v[i]) || !(v[i].flags & MIG_VMA_WRITE))
			continue;
		if (v[i].end - v[i].start > (UINT64_C(1) << 40)) {
			printf("leaving out %#" PRIx64 "-%#" PRIx64
			       " (over 1 TiB: a sanitizer's shadow; the per-page status would not "
			       "fit)\n",
			       v[i].start, v[i].end);
			continue;
		}
		out[n].start = v[i].start;
		out[n++].end = v[i].end;
	}
	free(v);
	*ret = out;
	return n;
}

int main(int argc, char **argv)
{
	const char *args[] = { "--size",   "32M",	"--threads", "2",  "--thp-half",
			       "--sparse", SPARSE_SIZE, NULL,	     NULL, NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	struct mig_range *rg = NULL;
	uint64_t saddr = 0, slen = 0, present = 0, absent = 0, other = 0, on_target = 0;
	void *sp = NULL;
	char line[256];
	size_t n, base = 0, idx = (size_t)-1;
	int spages = 0, r;
	double t0, dt;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	pick_target(&targets, &o);
	if (count_nodes() >= 2) {
		args[7] = "--node";
		args[8] = "0";
	}
	wt_start(&w, argv[0], args);
	if (!fgets(line, sizeof(line), w.out) ||
	    sscanf(line, "SPARSE %p %" SCNu64 " %d", &sp, &slen, &spages) != 3) {
		wt_kill(&w);
		FAIL("the tenant did not report its sparse reservation: %s", line);
	}
	saddr = (uint64_t)(uintptr_t)sp;
	printf("sparse reservation %#" PRIx64 "-%#" PRIx64 ", %d pages written\n", saddr,
	       saddr + slen, spages);
	wt_attach(&w);
	usleep(100000);

	n = whole_ranges(w.pid, &rg);
	for (size_t k = 0; k < n; k++) {
		if (rg[k].start <= saddr && saddr + slen <= rg[k].end)
			idx = k;
		else if (idx == (size_t)-1)
			base += (rg[k].end - rg[k].start) / 4096;
	}
	if (idx == (size_t)-1) {
		wt_kill(&w);
		FAIL("the sparse reservation is not among the tenant's VMAs");
	}
	{
		struct mig_migrate_opts nos = o;
		long before, after;

		nos.no_status = true;
		before = peak_rss_kb(true);
		r = mig_migrate(w.t, rg, n, &targets, &nos, NULL, NULL, &res);
		after = peak_rss_kb(false);
		if (r < 0) {
			wt_kill(&w);
			FAIL("mig_migrate without status: %s", strerror(-r));
		}
		print_result(&res);
		printf("# without status: peak RSS %ld -> %ld KiB over %" PRIu64
		       " pages of ranges, %" PRIu64 " present\n",
		       before, after, res.pages_total, res.pages_present);
		if (res.status || res.nstatus) {
			wt_kill(&w);
			FAIL("a status with no_status");
		}
		if (before > 0 && after - before > MAX_GROWTH_MB * 1024L) {
			wt_kill(&w);
			FAIL("peak RSS grew by %ld KiB (limit %d MiB)", after - before,
			     MAX_GROWTH_MB);
		}
		mig_migrate_result_free(&res);
	}
	t0 = now_s();
	r = mig_migrate(w.t, rg, n, &targets, &o, NULL, NULL, &res);
	dt = now_s() - t0;
	printf("mig_migrate of %zu VMAs: %d (%s)\n", n, r, r < 0 ? strerror(-r) : "ok");
	if (r < 0) {
		wt_kill(&w);
		FAIL("mig_migrate: %s", strerror(-r));
	}
	print_result(&res);
	check_status(&res, &targets);
	printf("# whole-process job with a %s sparse reservation: %.3f s (goal < %.0f s), "
	       "%" PRIu64 " windows\n",
	       SPARSE_SIZE, dt, TIME_LIMIT_S, res.windows);

	/* The reservation's pages, as the result reports them. */
	base += (saddr - rg[idx].start) / 4096;
	for (size_t i = 0; i < slen / 4096; i++) {
		int st = res.status[base + i];

		if (st >= 0 || st == -EBUSY || st == -EAGAIN || st == -ENOMEM || st == -EIO) {
			present++;
			if (st >= 0 && mig_nodes_test(&targets, (unsigned)st))
				on_target++;
		} else if (st == -ENOENT) {
			absent++;
		} else if (other++ < 5) {
			printf("sparse page %zu: status %d\n", i, st);
		}
	}
	printf("# sparse reservation: %" PRIu64 " pages present, %" PRIu64
	       " on the target, %" PRIu64 " absent, %" PRIu64 " other\n",
	       present, on_target, absent, other);
	(void)mig_tenant_detach(w.t);
	mig_migrate_result_free(&res);
	free(rg);
	if (present != (uint64_t)spages || on_target != (uint64_t)spages || other) {
		wt_kill(&w);
		FAIL("want exactly the %d written pages of the reservation present and moved",
		     spages);
	}
	if (dt > TIME_LIMIT_S) {
		wt_kill(&w);
		FAIL("the job took %.1f s", dt);
	}
	{
		uint64_t max_us = 0, p99 = 0;

		if (wt_stop(&w, &max_us, &p99) != 0)
			FAIL("the tenant found damaged pages");
		printf("# tenant longest write stall: %.3f ms, p99 %" PRIu64 " us\n",
		       max_us / 1000.0, p99);
	}
	printf("PASS\n");
	return 0;
}
