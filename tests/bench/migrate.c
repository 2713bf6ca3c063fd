/*
 * migrate.c (bench) - what a migration costs, against what the machine
 * and the kernel can do, all measured in the same run:
 *
 *   cases      4 KiB and THP tenants (tests/tenants/writer), idle and with
 *              2 writer threads: GB/s, migd's CPU seconds per GB moved and
 *              its peak RSS (each case runs in a process of its own),
 *              migd's longest held write (the fault thread's hold time)
 *   stall      with writers: writes over 1 ms per second, p99.9 and the
 *              longest write, during the migration and, as the baseline,
 *              for MIG_BENCH_BASE_SECS (2) just before it on the same
 *              tenant with no migration
 *   memcpy     single-thread memcpy of 256 MiB, best of 5
 *   floor      the floor chain (floor.h): migd's kernel operations back
 *              to back on an idle child, no migd, no ptrace
 *   guests     with 2+ nodes (the qemu guests, tests/bench/migrate-vm.sh):
 *              node 0 -> 1, and move_pages(2) and migrate_pages(2) of a
 *              fresh tenant of the same kind and size
 *
 * It ends with one table. One node: 1 GiB forced to node 0, every case;
 * two or more: 256 MiB, the cases with writers. MIG_BENCH_SIZE, MIG_BENCH_CASES
 * (e.g. "4k-2w,thp-idle"; 4k-vmas is 4k-idle in a tenant with 60,000 more VMAs; mf-4k-idle and
 * mf-4k-2w are the 4 KiB cases with move-first windows, MIG_WINDOW_MOVEFIRST; on one node
 * 4k-span64g is 4k-idle with a 64 GiB reservation migrated beside it and 4k-8g an 8 GiB 4k-idle,
 * whose peak RSS is compared with 4k-idle's: memory bounded by the windows in flight),
 * MIG_BENCH_WINDOW (MiB), MIG_BENCH_ZAP (move, madvise), MIG_BENCH_THREADS (fill workers) and
 * MIG_BENCH_BASE_SECS change that; MIG_BENCH_FLOOR=0 leaves out memcpy and the floor chain (their
 * columns read 0). The job's fault thread runs at real-time priority where it may, as migd's does
 * (mig_migrate_opts.fault_rt); MIG_BENCH_FAULT_RT=0 runs it as a normal thread. A case whose
 * tenant finds a damaged page fails the bench.
 */
#include <sys/mman.h>
#include <sys/resource.h>

#include "bench/floor.h"

struct stat_fig {
	uint64_t writes, slow, p999_us, max_us;
	double secs;
};

struct case_res {
	int ran, ok;
	char why[160];
	int skipped; /* why says why it did not run here: not a failure */
	double secs, gbs, cpu_s;
	uint64_t moved, present, huge, retried, held_us;
	long hwm_kib;
	int stalls; /* base and mig below are set */
	struct stat_fig base, mig;
	double mp_gbs, mg_gbs; /* move_pages(2), migrate_pages(2): GB/s, 0 if not run */
};

struct bcase {
	const char *name;
	int thp, writers;
	int movefirst;	    /* MIG_WINDOW_MOVEFIRST (needs the MOVE zap) */
	const char *vmas;   /* writer --vmas: that many more VMAs in the tenant */
	const char *size;   /* this size instead of MIG_BENCH_SIZE (one-node host only) */
	const char *sparse; /* writer --sparse: migrated too, the job spans it */
};

static const struct bcase cases[] = {
	{ .name = "4k-idle" },
	{ .name = "4k-2w", .writers = 2 },
	{ .name = "thp-idle", .thp = 1 },
	{ .name = "thp-2w", .thp = 1, .writers = 2 },
	{ .name = "mf-4k-idle", .movefirst = 1 },
	{ .name = "mf-4k-2w", .writers = 2, .movefirst = 1 },
	{ .name = "4k-vmas", .vmas = "30000" },
	/*
	 * Memory bounded by the windows in flight: the job's peak RSS of a
	 * 1 GiB tenant migrated with a 64 GiB reservation beside it (its span
	 * 65 GiB), and of an 8 GiB tenant, against 4k-idle's.
	 */
	{ .name = "4k-span64g", .sparse = "64G" },
	{ .name = "4k-8g", .size = "8G" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static double memcpy_gbs(size_t len)
{
	char *a = malloc(len), *b = malloc(len);
	double best = 0;

	if (!a || !b)
		return 0;
	memset(a, 1, len);
	memset(b, 2, len);
	for (int k = 0; k < 5; k++) {
		double t0 = now_s();

		memcpy(b, a, len);
		__asm__ volatile("" ::"r"(b) : "memory");
		double gbs = len / (now_s() - t0) / 1e9;
		if (gbs > best)
			best = gbs;
	}
	free(a);
	free(b);
	return best;
}

/* The "KEY: N kB" line of a /proc file, in KiB; -1 if it has none. */
static long proc_kib(const char *path, const char *key)
{
	char line[256];
	long kb = -1;
	size_t n = strlen(key);
	FILE *f = fopen(path, "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			kb = strtol(line + n + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return kb;
}

static long vm_hwm_kib(void)
{
	return proc_kib("/proc/self/status", "VmHWM");
}

static long mem_available_kib(void)
{
	return proc_kib("/proc/meminfo", "MemAvailable");
}

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int stat_of(struct wtenant *w, struct stat_fig *s)
{
	const char *l = wt_cmd(w, "stat");

	return sscanf(l,
		      "STAT writes=%" SCNu64 " slow=%" SCNu64 " p999_us=%" SCNu64 " max_us=%" SCNu64
		      " secs=%lf",
		      &s->writes, &s->slow, &s->p999_us, &s->max_us, &s->secs) == 5
		       ? 0
		       : -EPROTO;
}

static void tenant_args(const struct bcase *c, const char *size, int on_node0, const char **args)
{
	size_t a = 0;

	args[a++] = "--size";
	args[a++] = size;
	args[a++] = "--threads";
	args[a++] = c->writers ? "2" : "0";
	if (c->thp)
		args[a++] = "--thp";
	if (on_node0) {
		args[a++] = "--node";
		args[a++] = "0";
	}
	if (c->vmas) {
		args[a++] = "--vmas";
		args[a++] = c->vmas;
	}
	if (c->sparse) {
		args[a++] = "--sparse";
		args[a++] = c->sparse;
	}
	args[a] = NULL;
}

/* move_pages(2) of every page of a fresh tenant of the case's kind to node 1: GB/s. */
static double time_move_pages(const char *self, const struct bcase *c, const char *size)
{
	const char *args[12];
	struct wtenant w = { 0 };
	size_t n;
	void **pages;
	int *nodes, *status;
	double t;
	long r;

	tenant_args(c, size, 1, args);
	wt_start(&w, self, args);
	n = w.len / 4096;
	pages = calloc(n, sizeof(*pages));
	nodes = calloc(n, sizeof(*nodes));
	status = calloc(n, sizeof(*status));
	if (!pages || !nodes || !status)
		FAIL("calloc");
	for (size_t i = 0; i < n; i++) {
		pages[i] = (void *)(uintptr_t)(w.addr + i * 4096);
		nodes[i] = 1;
	}
	t = now_s();
	r = move_pages(w.pid, n, pages, nodes, status, MPOL_MF_MOVE);
	t = now_s() - t;
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("move_pages tenant: verify failed");
	printf("# bench %s: move_pages(2): %.3f s for %zu pages (returned %ld), %.3f GB/s\n",
	       c->name, t, n, r, n * 4096.0 / t / 1e9);
	free(pages);
	free(nodes);
	free(status);
	return n * 4096.0 / t / 1e9;
}

static double time_migrate_pages(const char *self, const struct bcase *c, const char *size)
{
	const char *args[12];
	unsigned long from[16] = { 1 }, to[16] = { 2 };
	struct wtenant w = { 0 };
	double t;
	long r;

	tenant_args(c, size, 1, args);
	wt_start(&w, self, args);
	t = now_s();
	r = migrate_pages(w.pid, 1024 + 1, from, to);
	t = now_s() - t;
	if (wt_stop(&w, NULL, NULL) != 0)
		FAIL("migrate_pages tenant: verify failed");
	printf("# bench %s: migrate_pages(2): %.3f s for the whole tenant (returned %ld), "
	       "%.3f GB/s\n",
	       c->name, t, r, w.len / t / 1e9);
	return w.len / t / 1e9;
}

/* One case, in a process of its own (its VmHWM and CPU time are migd's share). */
static void run_case(const char *self, const struct bcase *c, const char *size, int nodes,
		     struct case_res *cr)
{
	const char *args[12];
	struct mig_migrate_opts o = { 0 };
	struct mig_migrate_result res;
	struct mig_nodes targets;
	struct wtenant w = { 0 };
	double base_secs = getenv("MIG_BENCH_BASE_SECS") ? atof(getenv("MIG_BENCH_BASE_SECS")) : 2;
	uint64_t stop0, stop_ns, stop_max_ns = 0;
	double cpu0;
	int r;

	cr->ran = 1;
	if (c->size && nodes >= 2) {
		snprintf(cr->why, sizeof(cr->why), "a one-node host's case (%s tenant)", c->size);
		cr->skipped = 1;
		return;
	}
	if (c->size) {
		uint64_t want = 0;
		long avail = mem_available_kib();

		size = c->size;
		/* The tenant, its pages once more while they move, and room for the rest. */
		if (mig_parse_size(size, &want) == 0 && avail >= 0 &&
		    (uint64_t)avail * 1024 < 2 * want + (1UL << 30)) {
			snprintf(cr->why, sizeof(cr->why),
				 "skipped: %ld MiB available, a %s tenant wants %" PRIu64 " MiB",
				 avail / 1024, size, (2 * want + (1UL << 30)) >> 20);
			cr->skipped = 1;
			return;
		}
	}
	pick_target(&targets, &o);
	/* As migd asks: no per-page status, whose array the job's span would size. */
	o.no_status = true;
	if (getenv("MIG_BENCH_ZAP"))
		o.zap = !strcmp(getenv("MIG_BENCH_ZAP"), "madvise") ? MIG_ZAP_MADVISE
								    : MIG_ZAP_MOVE;
	if (getenv("MIG_BENCH_WINDOW"))
		o.window = strtoull(getenv("MIG_BENCH_WINDOW"), NULL, 0) << 20;
	/*
	 * MIG_BENCH_STATE=DIR: the job keeps its journal in DIR and its
	 * staging in a file under /dev/shm, as migd's jobs do (journal in
	 * state_dir, staging in runtime_dir on tmpfs).
	 */
	if (getenv("MIG_BENCH_STATE") && *getenv("MIG_BENCH_STATE")) {
		o.journal_dir = getenv("MIG_BENCH_STATE");
		o.staging_dir = "/dev/shm";
	}
	if (getenv("MIG_BENCH_THREADS"))
		o.threads = (unsigned)strtoul(getenv("MIG_BENCH_THREADS"), NULL, 0);
	o.protocol = c->movefirst ? MIG_WINDOW_MOVEFIRST : MIG_WINDOW_CLASSIC;
	/* As migd: the fault thread at real-time priority (MIG_BENCH_FAULT_RT=0: not). */
	o.fault_rt = !getenv("MIG_BENCH_FAULT_RT") || strcmp(getenv("MIG_BENCH_FAULT_RT"), "0");
	tenant_args(c, size, nodes >= 2, args);
	wt_start(&w, self, args);
	struct mig_range rg[2] = { { w.addr, w.addr + w.len } };
	size_t nrg = 1;

	if (c->sparse) {
		char line[256];
		void *sp;
		uint64_t slen;
		int spages;

		if (!fgets(line, sizeof(line), w.out) ||
		    sscanf(line, "SPARSE %p %" SCNu64 " %d", &sp, &slen, &spages) != 3)
			FAIL("writer said no SPARSE line");
		rg[nrg++] = (struct mig_range){ (uint64_t)(uintptr_t)sp,
						(uint64_t)(uintptr_t)sp + slen };
		if (rg[1].start < rg[0].start) {
			struct mig_range t = rg[0];

			rg[0] = rg[1];
			rg[1] = t;
		}
	}
	wt_attach(&w);
	if (c->writers) {
		/* The baseline: the same tenant, attached, no migration. */
		if (strcmp(wt_cmd(&w, "reset"), "OK"))
			FAIL("tenant reset");
		usleep((useconds_t)(base_secs * 1e6));
		if (stat_of(&w, &cr->base) < 0)
			FAIL("tenant stat");
		if (strcmp(wt_cmd(&w, "reset"), "OK"))
			FAIL("tenant reset");
	} else {
		usleep(200000);
	}
	stop0 = mig_tenant_stop_ns(w.t, NULL);
	cpu0 = cpu_now();
	r = mig_migrate(w.t, rg, nrg, &targets, &o, NULL, NULL, &res);
	cr->cpu_s = cpu_now() - cpu0;
	if (r == -EOPNOTSUPP && c->movefirst) {
		snprintf(cr->why, sizeof(cr->why),
			 "no move-first windows here (needs UFFDIO_MOVE)");
		cr->skipped = 1;
		(void)mig_tenant_detach(w.t);
		(void)wt_stop(&w, NULL, NULL);
		return;
	}
	if (r < 0)
		FAIL("%s: mig_migrate: %s", c->name, strerror(-r));
	/* How long the job held the tenant's threads stopped (ptrace sessions). */
	stop_ns = mig_tenant_stop_ns(w.t, &stop_max_ns) - stop0;
	if (c->writers) {
		if (stat_of(&w, &cr->mig) < 0)
			FAIL("tenant stat");
		cr->stalls = 1;
	}
	(void)mig_tenant_detach(w.t);
	cr->hwm_kib = vm_hwm_kib();
	if (wt_stop(&w, NULL, NULL) != 0) {
		snprintf(cr->why, sizeof(cr->why), "the tenant found damaged pages");
		return;
	}
	cr->secs = res.elapsed_ns / 1e9;
	cr->gbs = res.bytes_per_sec / 1e9;
	cr->moved = res.pages_moved;
	cr->present = res.pages_present;
	cr->huge = res.huge_kept;
	cr->retried = res.pages_retried;
	cr->held_us = res.max_stall_us;
	printf("# bench %s: %s in %.3f s, %.3f GB/s; moved %" PRIu64 "/%" PRIu64
	       " present pages, retried %" PRIu64 ", huge kept %" PRIu64
	       ", longest held write %" PRIu64 " us, CPU %.3f s, tenant stopped %.1f ms "
	       "(longest %.2f ms), %" PRIu64 " faults served, fault thread %s%s\n",
	       c->name, size, cr->secs, cr->gbs, cr->moved, cr->present, cr->retried, cr->huge,
	       cr->held_us, cr->cpu_s, stop_ns / 1e6, stop_max_ns / 1e6, res.faults,
	       res.fault_rt > 0 ? "SCHED_FIFO" : "normal",
	       res.fault_rt < 0 ? " (real time refused)" : "");
	mig_migrate_result_free(&res);
	if (nodes >= 2) {
		cr->mp_gbs = time_move_pages(self, c, size);
		cr->mg_gbs = time_migrate_pages(self, c, size);
	}
	cr->ok = 1;
}

static int wanted(const char *name)
{
	const char *list = getenv("MIG_BENCH_CASES");
	size_t n = strlen(name);

	if (!list)
		return count_nodes() < 2 || strstr(name, "-2w") != NULL;
	for (const char *p = strstr(list, name); p; p = strstr(p + 1, name))
		if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return 1;
	return 0;
}

static double per_s(const struct stat_fig *s)
{
	return s->secs > 0 ? s->slow / s->secs : 0;
}

int main(int argc, char **argv)
{
	int nodes = count_nodes(), failed = 0;
	const char *size = getenv("MIG_BENCH_SIZE") ? getenv("MIG_BENCH_SIZE")
			   : nodes >= 2		    ? "256M"
						    : "1G";
	struct floor_result fl[2];
	int no_floor = getenv("MIG_BENCH_FLOOR") && !strcmp(getenv("MIG_BENCH_FLOOR"), "0");
	struct case_res *cr;
	uint64_t bytes;
	double mc;

	(void)argc;
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags, pidfd_getfd)");
	if (mig_parse_size(size, &bytes) < 0 || bytes % (2UL << 20) || !bytes)
		FAIL("MIG_BENCH_SIZE %s: not a multiple of 2 MiB", size);
	cr = mmap(NULL, sizeof(*cr) * NCASES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	if (cr == MAP_FAILED)
		FAIL("mmap: %m");
	memset(cr, 0, sizeof(*cr) * NCASES);
	fflush(stdout);
	for (size_t k = 0; k < NCASES; k++) {
		pid_t pid;
		int st = 0;

		if (!wanted(cases[k].name))
			continue;
		pid = fork();
		if (pid == 0) {
			run_case(argv[0], &cases[k], size, nodes, &cr[k]);
			fflush(stdout);
			_exit(cr[k].ok ? 0 : 1);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			cr[k].ran = 1;
			cr[k].ok = 0;
			if (!cr[k].why[0])
				snprintf(cr[k].why, sizeof(cr[k].why), "exit status %d", st);
		}
	}
	memset(fl, 0, sizeof(fl));
	/* MIG_BENCH_FLOOR=0: the cases alone (a whole-process timing of one case). */
	mc = no_floor ? 0 : memcpy_gbs(256UL << 20);
	for (int thp = 0; thp < 2 && !no_floor; thp++) {
		floor_chain(thp, bytes, &fl[thp]);
		if (!fl[thp].ok) {
			printf("# bench: floor chain (%s): %s\n", thp ? "THP" : "4 KiB",
			       fl[thp].why);
			failed = 1;
			continue;
		}
		printf("# bench: floor chain (%s, zap %s, scan %s): %.3f s, %.3f GB/s, CPU %.2f "
		       "s/GB;",
		       thp ? "THP" : "4 KiB", fl[thp].move ? "UFFDIO_MOVE" : "madvise",
		       fl[thp].pm_scan ? "PAGEMAP_SCAN" : "pagemap", fl[thp].secs, fl[thp].gbs,
		       fl[thp].cpu_s / (bytes / 1e9));
		for (int p = 0; p < FL_N; p++)
			printf(" %s %.0f%%", floor_phase[p], 100 * fl[thp].phase[p] / fl[thp].secs);
		printf("\n");
	}

	printf("# bench table: %s, %d node%s%s, single-thread memcpy %.2f GB/s, floor chain "
	       "%.2f (4 KiB) / %.2f (THP) GB/s\n",
	       size, nodes, nodes > 1 ? "s" : "",
	       nodes > 1 ? " (node 0 -> 1)" : " (forced to node 0)", mc, fl[0].gbs, fl[1].gbs);
	printf("# %-10s %6s %6s %6s %8s %7s %8s %7s %7s %7s %9s %9s %9s %8s %7s %7s\n", "case",
	       "GB/s", "xmemcp", "xfloor", "xmovepg", "xmigpg", "held ms", "CPUs/GB", "xflCPU",
	       "RSS MiB", ">1ms/s base", ">1ms/s mig", "p99.9 us", "max ms", "moved%", "huge");
	for (size_t k = 0; k < NCASES; k++) {
		const struct case_res *c = &cr[k];
		const struct floor_result *f = &fl[cases[k].thp];
		double cpu_gb;
		char b1[24] = "-", b2[24] = "-", b3[24] = "-", b4[24] = "-", mp[16] = "-",
		     mg[16] = "-";

		if (!c->ran)
			continue;
		if (c->skipped) {
			printf("# %-10s SKIPPED: %s\n", cases[k].name, c->why);
			continue;
		}
		if (!c->ok) {
			printf("# %-10s FAILED: %s\n", cases[k].name, c->why);
			failed = 1;
			continue;
		}
		if (c->stalls) {
			snprintf(b1, sizeof(b1), "%.1f", per_s(&c->base));
			snprintf(b2, sizeof(b2), "%.1f", per_s(&c->mig));
			snprintf(b3, sizeof(b3), "%" PRIu64 "/%" PRIu64, c->base.p999_us,
				 c->mig.p999_us);
			snprintf(b4, sizeof(b4), "%.1f/%.1f", c->base.max_us / 1e3,
				 c->mig.max_us / 1e3);
		}
		if (c->mp_gbs > 0)
			snprintf(mp, sizeof(mp), "%.2f", c->gbs / c->mp_gbs);
		if (c->mg_gbs > 0)
			snprintf(mg, sizeof(mg), "%.2f", c->gbs / c->mg_gbs);
		cpu_gb = c->moved ? c->cpu_s / (c->moved * 4096.0 / 1e9) : 0;
		printf("# %-10s %6.3f %6.3f %6.2f %8s %7s %8.2f %7.2f %7.2f %7.1f %9s %9s %9s %8s "
		       "%7.1f %7" PRIu64 "\n",
		       cases[k].name, c->gbs, mc > 0 ? c->gbs / mc : 0,
		       f->gbs > 0 ? c->gbs / f->gbs : 0, mp, mg, c->held_us / 1e3, cpu_gb,
		       cpu_gb > 0 && f->ok ? f->cpu_s / (bytes / 1e9) / cpu_gb : 0,
		       c->hwm_kib / 1024.0, b1, b2, b3, b4,
		       c->present ? 100.0 * c->moved / c->present : 0, c->huge);
	}
	printf("# columns: xmemcp, xfloor, xmovepg, xmigpg: migd's GB/s over memcpy's, the floor "
	       "chain's, move_pages(2)'s and migrate_pages(2)'s; held ms: migd's longest held "
	       "write; CPUs/GB: migd's CPU seconds per GB moved; xflCPU: the floor chain's CPU "
	       "seconds per GB over migd's (CPU time holds better than wall time on a loaded "
	       "machine); >1ms/s: writes over 1 ms per second, baseline (no migration) and during "
	       "it; p99.9 and max: baseline/during\n");
	/* Issue 16: the same peak RSS within 2x for a 1 GiB job and a far bigger one. */
	for (size_t k = 0; k < NCASES; k++) {
		const struct case_res *c1 = &cr[0]; /* 4k-idle */

		if ((!cases[k].size && !cases[k].sparse) || !cr[k].ok || !c1->ok ||
		    c1->hwm_kib <= 0)
			continue;
		printf("# memory bound: peak RSS %s %.1f MiB / 4k-idle %.1f MiB = %.2f (target <= "
		       "2)\n",
		       cases[k].name, cr[k].hwm_kib / 1024.0, c1->hwm_kib / 1024.0,
		       (double)cr[k].hwm_kib / (double)c1->hwm_kib);
	}
	munmap(cr, sizeof(*cr) * NCASES);
	return failed;
}
