/*
 * migrate_copyfail.c - a copy engine put in front of the default one
 * through the seam fails on chosen pages (every 97th). Those pages stay
 * where they were with their data (status -EIO, the tenant verifies
 * them), all others move, and no page that a batch copied is asked for
 * again by the page-by-page fallback of the same pass (copies are
 * counted per page).
 */
#include "integration/migrate_common.h"

static uint64_t base, npages;
static uint32_t *copies;
static uint64_t *ok_stage; /* stage (1, 2, ...) in which the page was last copied */
static uint64_t stage = 1, violations, failed_calls;

static bool chosen(uint64_t i)
{
	return i % 97 == 5;
}

static int failing_copy(const struct mig_copy_engine *e, const struct mig_copy_req *req)
{
	const struct mig_copy_engine *inner = mig_copy_engine_default();
	uint64_t *bits = calloc((req->npages + 63) / 64, 8);
	struct mig_copy_req sub = *req;
	int r;

	(void)e;
	sub.copied = bits;
	r = inner->copy(inner, &sub);
	for (size_t k = 0; k < req->npages; k++) {
		uint64_t i = (req->src[k] - base) / 4096;
		bool got = (bits[k / 64] >> (k % 64)) & 1;

		if (i >= npages)
			continue;
		if (ok_stage[i] == stage)
			violations++; /* copied in this stage already, asked again */
		if (chosen(i)) {
			if (req->err)
				req->err[k] = EIO;
			failed_calls++;
			continue;
		}
		if (got) {
			req->copied[k / 64] |= UINT64_C(1) << (k % 64);
			copies[i]++;
			ok_stage[i] = stage;
		}
	}
	free(bits);
	return r;
}

/* Each window pass stages once; the hook marks the end of a stage. */
static void hook(int phase, const struct mig_range *win, void *ud)
{
	(void)win;
	(void)ud;
	if (phase == MIG_PHASE_STAGED)
		stage++;
}

static const struct mig_copy_engine failing = { .name = "failing", .copy = failing_copy };

int main(int argc, char **argv)
{
	const char *args[] = { "--size", "32M", "--threads", "2", "--thp-half", NULL, NULL, NULL };
	struct mig_migrate_opts o = { .engine = &failing, .phase_hook = hook };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	uint64_t nchosen = 0, bad = 0, total = 0;
	int r;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	pick_target(&targets, &o);
	/* A move-first window stages nothing: the copy-engine seam is not on its path. */
	if (o.protocol == MIG_WINDOW_MOVEFIRST)
		SKIP("move-first windows do not use the copy engine (docs/engine.md, \"Move "
		     "first\")");
	/* The kernel's migration of whole THPs does not use it either: every THP by the windows. */
	o.thp_uffd = true;
	if (count_nodes() >= 2) {
		args[5] = "--node";
		args[6] = "0";
	}
	wt_start(&w, argv[0], args);
	wt_attach(&w);
	base = w.addr;
	npages = w.len / 4096;
	copies = calloc(npages, sizeof(*copies));
	ok_stage = calloc(npages, sizeof(*ok_stage));
	usleep(100000);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	print_result(&res);
	for (uint64_t i = 0; i < npages; i++) {
		total += copies[i];
		if (!chosen(i))
			continue;
		nchosen++;
		if (res.status[i] != -EIO) {
			if (bad++ < 5)
				printf("chosen page %" PRIu64 ": status %d, want -EIO\n", i,
				       res.status[i]);
		}
	}
	printf("# failing engine: %" PRIu64 " chosen pages, %" PRIu64 " refused copies, %" PRIu64
	       " successful copies for %" PRIu64 " moved + %" PRIu64 " retried pages, %" PRIu64
	       " repeat requests\n",
	       nchosen, failed_calls, total, res.pages_moved, res.pages_retried, violations);
	finish(&w);
	if (bad)
		FAIL("%" PRIu64 " chosen pages not reported -EIO", bad);
	if (res.pages_failed != nchosen)
		FAIL("failed %" PRIu64 ", chosen %" PRIu64, res.pages_failed, nchosen);
	if (res.pages_moved + nchosen != res.pages_present - res.pages_skipped)
		FAIL("not every other page moved");
	if (violations)
		FAIL("pages copied by a batch were asked for again");
	if (total != res.pages_copied)
		FAIL("engine counted %" PRIu64 " copies, result says %" PRIu64, total,
		     res.pages_copied);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
