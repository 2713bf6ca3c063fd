/*
 * migrate_unreg_foreign.c - a window's end must let go of every VMA it
 * registered, also when its pieces were joined across a VMA userfaultfd
 * will not take from us.
 *
 * The window registers the tenant's whole data VMA. Right after, the
 * tenant puts a foreign VMA (its executable mapped read-only, or a page
 * registered with a uffd of its own) on the last page before the window,
 * then unmaps 2 pages at 15 places inside the window: 17 pieces, over
 * MIG__MAX_REGS, so the two neighbours with the smallest gap become one
 * piece spanning it: the 4 KiB gap of the foreign page. The kernel
 * refuses an UFFDIO_UNREGISTER over a range that holds such a VMA
 * (-EINVAL) and leaves all of it registered: before session 19 the rest
 * of the data stayed registered after the window's end (LEFTOVER in the
 * 6.12 guest capture with ranges data), its faults and events served by
 * whichever window came next.
 *
 * Checked at the next window's planning (nothing of the data may be
 * registered then but the foreign page) and by the trace (no LEFTOVER);
 * the tenant checks every page at the end. Both kinds of foreign VMA run
 * in turn; the file kind skips where the executable is on tmpfs (shmem,
 * which userfaultfd takes).
 */
#include "integration/migrate_common.h"

struct foreign {
	struct wtenant *w;
	const char *kind;
	uint64_t page; /* the foreign page */
	int windows, cuts, leftover;
	char answer[512];
};

static void hook(int phase, const struct mig_range *win, void *ud)
{
	struct foreign *f = ud;
	char cmd[96];

	if (phase == MIG_PHASE_PLANNED && f->page && !f->windows++)
		f->leftover = wt_registered(f->w->pid, "# still registered:", f->w->addr,
					    f->w->addr + f->w->len, f->page);
	if (phase != MIG_PHASE_REGISTERED || f->page || win->start == f->w->addr)
		return;
	/*
	 * First the foreign page, just before the window: the first gap of
	 * the pieces. Then the cuts: when the 17th piece comes, the 16
	 * pieces there are joined where their gap is smallest, and only a
	 * gap between two of those counts (regs_add): the foreign page's.
	 */
	f->page = win->start - 4096;
	snprintf(cmd, sizeof(cmd), "foreign %llu %s", (unsigned long long)(f->page - f->w->addr),
		 f->kind);
	snprintf(f->answer, sizeof(f->answer), "%s", wt_cmd(f->w, cmd));
	for (int k = 0; k < 15; k++) {
		uint64_t at = win->start + (uint64_t)(16 * k + 8) * 4096;

		if (at + 2 * 4096 > win->end)
			break;
		snprintf(cmd, sizeof(cmd), "munmap %llu %u", (unsigned long long)(at - f->w->addr),
			 2 * 4096U);
		f->cuts += !strncmp(wt_cmd(f->w, cmd), "OK", 2);
	}
}

/* Lines with what, but those that name the VMA skip ("" for none). */
static int trace_count(const char *path, const char *what, const char *skip)
{
	char line[512];
	int n = 0;
	FILE *fp = fopen(path, "re");

	while (fp && fgets(line, sizeof(line), fp))
		n += strstr(line, what) != NULL && (!*skip || !strstr(line, skip));
	if (fp)
		fclose(fp);
	return n;
}

/* The trace file is opened once per process: both kinds write to one. */
static char trace[] = "/tmp/migrate_unreg_foreign.trace.XXXXXX";

static int one(const char *self, const char *kind)
{
	const char *args[] = { "--size", "16M", "--threads", "2", NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	struct foreign f = { .w = &w, .kind = kind };
	char skip[64] = "";
	int r, leftover = -trace_count(trace, " LEFTOVER ", skip);

	pick_target(&targets, &o);
	o.phase_hook = hook;
	o.hook_userdata = &f;
	wt_start_source(&w, self, args);
	struct mig_range rg = { w.addr, w.addr + w.len };
	r = mig_migrate(w.t, &rg, 1, &targets, &o, NULL, NULL, &res);
	/* The foreign page is registered, with the tenant's own uffd (kind uffd). */
	if (f.page)
		snprintf(skip, sizeof(skip), "vma=%llx-%llx:", (unsigned long long)f.page,
			 (unsigned long long)f.page + 4096);
	leftover += trace_count(trace, " LEFTOVER ", skip);
	printf("# %s: tenant '%s', %d cuts, %d windows, registered at the next window: %d, "
	       "LEFTOVER %d\n",
	       kind, f.answer, f.cuts, f.windows, f.leftover, leftover);
	if (r < 0) {
		wt_kill(&w);
		FAIL("mig_migrate (%s): %s", kind, strerror(-r));
	}
	print_result(&res);
	mig_migrate_result_free(&res);
	if (!strcmp(f.answer, "OK tmpfs")) {
		wt_kill(&w);
		printf("# %s: SKIP: the executable is on tmpfs (shmem: userfaultfd takes it)\n",
		       kind);
		return 0;
	}
	if (strncmp(f.answer, "OK", 2) || f.cuts < 15 || f.windows < 1)
		FAIL("%s: the test did not reach its point (tenant '%s', %d cuts, %d windows)",
		     kind, f.answer, f.cuts, f.windows);
	if (f.leftover || leftover)
		FAIL("%s: the window's end left %d VMAs of the data registered (%d LEFTOVER)", kind,
		     f.leftover, leftover);
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("%s: the tenant found damaged pages", kind);
	return 1;
}

int main(int argc, char **argv)
{
	int fd = mkstemp(trace), ran;

	(void)argc;
	if (fd < 0)
		FAIL("mkstemp: %s", strerror(errno));
	close(fd);
	setenv("MIG_TRACE", trace, 1);
	ran = one(argv[0], "uffd") + one(argv[0], "file");
	if (getenv("MIG_TEST_KEEP_TRACE"))
		printf("# trace kept: %s\n", trace);
	else
		unlink(trace);
	if (ran == 0)
		SKIP("no foreign VMA could be made");
	printf("PASS\n");
	return 0;
}
