/*
 * stress_tenant - a tenant whose threads change their own memory in every
 * way a program may while migd migrates it, and check every read against
 * their own exact model.
 *
 *   stress_tenant [--size MiB] [--threads N] [--seed S] [--ops LIST]
 *
 * The data area (one anonymous private mapping, 2 MiB aligned, THPs in its
 * first half) is cut into one slice per thread; only the owner touches a
 * slice, so its model (for each page: zero, or content id + generation) is
 * exact at every moment. A thread loops over random operations on its
 * slice, chosen from --ops (default all), each followed by a check of the
 * pages it touched:
 *   w  write a page (a fresh page gets a whole new content)
 *   r  read a page and compare it with the model
 *   d  madvise(MADV_DONTNEED) a run: it must read zero at once
 *   m  replace a run with a fresh mapping (mmap MAP_FIXED): zero
 *   u  munmap a run, then map it again (MAP_FIXED_NOREPLACE): zero
 *   p  mprotect a run PROT_READ (read it), or PROT_NONE, then RW again
 *   x  mremap a run out of the data area and back (content unchanged)
 *   y  mremap a run over another run of the slice (MREMAP_FIXED): the
 *      destination holds the source's content, the source is mapped
 *      again fresh (zero)
 *   g  mremap that grows and shrinks: shrink a run in place (its tail is
 *      unmapped), map the tail again (it reads zero), then move
 *      it out growing it (MAYMOVE|FIXED to the spare slot, twice the
 *      size) and back shrinking it (content unchanged)
 *   f  madvise(MADV_FREE) a run: each page reads its content or zero
 *      (the kernel may reclaim it) until written; then written afresh
 *   k  fork: the child checks the thread's whole slice against the model
 *      as it was at the fork, writes pages of its copy, checks them, and
 *      exits; the parent's pages are untouched by it (checked after)
 *   h  madvise(MADV_COLLAPSE) the 2 MiB block holding the run when the
 *      block lies in the slice (THPs form again under migd's feet, for
 *      its whole-THP path): content unchanged (the kernel may refuse)
 *
 * Page content: word 0 = MAGIC ^ content id, word 1 and the last word =
 * generation, the words between a pattern of the content id.
 *
 * Prints "READY PID ADDR LEN" and reads commands on stdin:
 *   progress   answer "OPS n BAD b" (total operations and bad reads so far)
 *   stop       stop the threads, check every page in full, print figures,
 *              exit 0 (every page as the model says) or 1
 * A bad read is printed at once on stderr with the page, the operation
 * and what was expected, so a failure names its cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE   4096UL
#define PMD    (2UL << 20)
#define WORDS  (PAGE / 8)
#define MAGIC  UINT64_C(0x5354524553530000)
#define NONE   UINT64_MAX /* model: the page reads zero */
#define RUNMAX 16
#define SPARE  RUNMAX

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; not in the libc headers of Debian 12 */
#endif

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static char *base;
static size_t npages, per_thread;
static uint64_t *cid; /* content id of page i, NONE: zero */
static uint64_t *gen; /* its generation */
static char *spare;   /* SPARE pages per thread, outside the data area */
static unsigned nthreads = 4;
static const char *ops = "wrdmupxygfk";
static atomic_int stop;
static atomic_uint_fast64_t nops, nbad;
static atomic_uint_fast64_t next_cid;
static atomic_uint_fast64_t counts[12];

static uint64_t pattern(uint64_t c, size_t w)
{
	return (c * 0x9e3779b97f4a7c15ULL) ^ (w * 0xff51afd7ed558ccdULL);
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: reproducible from the seed. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static char *addr_of(size_t i)
{
	return base + i * PAGE;
}

static void dump(const char *why, const void *addr);

/*
 * The VMAs within 1 MiB of addr with their VmFlags (/proc/self/smaps):
 * "um"/"uw" say whether migd's userfaultfd had the VMA registered when
 * the tenant read a bad page there.
 */
static void dump_flags(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	uintptr_t a = (uintptr_t)addr, lo, hi;
	char line[512];
	bool near = false;

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2) {
			near = hi > a - (1UL << 20) && lo < a + (1UL << 20);
			if (near)
				fprintf(stderr, "stress_tenant: vma %s", line);
		} else if (near && !strncmp(line, "VmFlags:", 8)) {
			fprintf(stderr, "stress_tenant:   %s", line);
		}
	}
	if (f)
		fclose(f);
}

static void bad(size_t i, const char *op, const char *why, const uint64_t *p)
{
	/* The first bad read names the operations before it, and the mappings. */
	if (atomic_fetch_add(&nbad, 1) == 0) {
		dump("bad read", p);
		dump_flags(p);
	}
	fprintf(stderr,
		"BAD page %zu (%p) after op '%s': %s; want cid %" PRIx64 " gen %" PRIu64
		", got w0 %" PRIx64 " w1 %" PRIu64 " wlast %" PRIu64 "\n",
		i, (void *)addr_of(i), op, why, cid[i] == NONE ? 0 : cid[i], gen[i], p[0] ^ MAGIC,
		p[1], p[WORDS - 1]);
}

/* Compare page i (at p) with the model; full: every word. */
static bool check(size_t i, const uint64_t *p, const char *op, bool full)
{
	if (cid[i] == NONE) {
		for (size_t w = 0; w < WORDS; w += full ? 1 : 37)
			if (p[w]) {
				bad(i, op, "not zero", p);
				return false;
			}
		return true;
	}
	if (p[0] != (MAGIC ^ cid[i])) {
		bad(i, op, p[0] ? "wrong content" : "zero-filled", p);
		return false;
	}
	if (p[1] != gen[i] || p[WORDS - 1] != gen[i]) {
		bad(i, op, "stale generation", p);
		return false;
	}
	for (size_t w = 2; w < WORDS - 1; w += full ? 1 : 61)
		if (p[w] != pattern(cid[i], w)) {
			bad(i, op, "pattern damaged", p);
			return false;
		}
	return true;
}

/* After MADV_FREE: the page reads its content, or zero if reclaimed. */
static void check_freed(size_t i, const char *op)
{
	const uint64_t *p = (const uint64_t *)addr_of(i);

	if (cid[i] != NONE && p[0] == 0) {
		for (size_t w = 0; w < WORDS; w += 37)
			if (p[w]) {
				bad(i, op, "neither content nor zero", p);
				return;
			}
		return;
	}
	check(i, p, op, false);
}

static void write_page(size_t i)
{
	uint64_t *p = (uint64_t *)addr_of(i);

	if (cid[i] == NONE) {
		cid[i] = atomic_fetch_add(&next_cid, 1);
		gen[i] = 1;
		p[0] = MAGIC ^ cid[i];
		for (size_t w = 2; w < WORDS - 1; w++)
			p[w] = pattern(cid[i], w);
		p[1] = p[WORDS - 1] = 1;
		return;
	}
	gen[i]++;
	p[1] = gen[i];
	p[WORDS - 1] = gen[i];
}

static void die(const char *what, size_t i)
{
	fprintf(stderr, "stress_tenant: %s at page %zu: %s\n", what, i, strerror(errno));
	dump(what, addr_of(i));
	_exit(2);
}

/* Each thread's last operations, for dump(); stage: how far an 'x' got. */
#define HIST 256
static struct {
	char op;
	size_t first, n;
	int stage;
} hist[64][HIST];
static unsigned hpos[64];

static void note(unsigned t, char op, size_t first, size_t n, int stage)
{
	unsigned k = hpos[t]++ % HIST;

	hist[t][k].op = op;
	hist[t][k].first = first;
	hist[t][k].n = n;
	hist[t][k].stage = stage;
}

/* Is the page at p mapped (by any VMA)? */
static bool mapped(void *p)
{
	unsigned char v;

	return mincore(p, PAGE, &v) == 0 || errno != ENOMEM;
}

/* Move the pages of run [first, first + n) now at spare back, one by one. */
static void bring_back(char *spare_slot, size_t first, size_t n, const char *what)
{
	for (size_t k = 0; k < n; k++)
		if (!mapped(addr_of(first + k)) &&
		    mremap(spare_slot + k * PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
			   addr_of(first + k)) == MAP_FAILED)
			die(what, first + k);
}

/* Keep the thread's spare slot reserved (PROT_NONE), so nobody else maps there. */
static void reserve_spare(char *spare_slot, size_t first)
{
	if (mmap(spare_slot, SPARE * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
		 0) == MAP_FAILED)
		die("mmap spare", first);
}

static void zero_run(size_t first, size_t n, const char *op)
{
	for (size_t k = 0; k < n; k++) {
		cid[first + k] = NONE;
		gen[first + k] = 0;
	}
	for (size_t k = 0; k < n; k++)
		check(first + k, (uint64_t *)addr_of(first + k), op, false);
}

static void *thread_main(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	size_t lo = t * per_thread, len = strlen(ops);
	uint64_t s = (uint64_t)arg * 0x100000001b3ULL + 88172645463325252ULL;
	char *myspare = spare + (size_t)t * SPARE * PAGE;
	char sbuf[32];

	{
		/* The seed comes from the environment so every thread is reproducible. */
		const char *e = getenv("STRESS_SEED");

		s ^= e ? strtoull(e, NULL, 0) * 0x9e3779b97f4a7c15ULL : 0;
		if (!s)
			s = 1;
	}
	while (!atomic_load(&stop)) {
		char op = ops[rnd(&s) % len];
		size_t n = 1 + rnd(&s) % RUNMAX, first = lo + rnd(&s) % (per_thread - n);

		snprintf(sbuf, sizeof(sbuf), "%c", op);
		note(t, op, first, n, 0);
		switch (op) {
		case 'w':
			for (size_t k = 0; k < n; k++)
				write_page(first + k);
			atomic_fetch_add(&counts[0], 1);
			break;
		case 'r':
			for (size_t k = 0; k < n; k++)
				check(first + k, (uint64_t *)addr_of(first + k), sbuf, false);
			atomic_fetch_add(&counts[1], 1);
			break;
		case 'd':
			if (madvise(addr_of(first), n * PAGE, MADV_DONTNEED))
				die("madvise", first);
			zero_run(first, n, "d");
			atomic_fetch_add(&counts[2], 1);
			break;
		case 'm':
			if (mmap(addr_of(first), n * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
				die("mmap fixed", first);
			zero_run(first, n, "m");
			atomic_fetch_add(&counts[3], 1);
			break;
		case 'u':
			if (munmap(addr_of(first), n * PAGE))
				die("munmap", first);
			if (mmap(addr_of(first), n * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
				 0) != addr_of(first))
				die("mmap noreplace (someone took the hole)", first);
			zero_run(first, n, "u");
			atomic_fetch_add(&counts[4], 1);
			break;
		case 'p': {
			bool none = rnd(&s) & 1;

			if (mprotect(addr_of(first), n * PAGE, none ? PROT_NONE : PROT_READ))
				die("mprotect", first);
			if (!none)
				for (size_t k = 0; k < n; k++)
					check(first + k, (uint64_t *)addr_of(first + k), "p(ro)",
					      false);
			else
				usleep(rnd(&s) % 200);
			if (mprotect(addr_of(first), n * PAGE, PROT_READ | PROT_WRITE))
				die("mprotect rw", first);
			for (size_t k = 0; k < n; k++)
				check(first + k, (uint64_t *)addr_of(first + k),
				      none ? "p(none)" : "p(rw)", false);
			atomic_fetch_add(&counts[5], 1);
			break;
		}
		case 'x': {
			void *q = mremap(addr_of(first), n * PAGE, n * PAGE,
					 MREMAP_MAYMOVE | MREMAP_FIXED, myspare);

			if (q == MAP_FAILED) {
				if (errno != EFAULT)
					die("mremap out", first);
				/*
				 * The run spans two VMAs. Before Linux 6.17 nothing
				 * moved; since, the VMAs before one that cannot be
				 * moved with the others (a userfaultfd-armed one)
				 * have moved: put them back.
				 */
				bring_back(myspare, first, n, "mremap partial move back");
				reserve_spare(myspare, first);
				break;
			}
			note(t, op, first, n, 1);
			for (size_t k = 0; k < n; k++)
				check(first + k, (uint64_t *)(myspare + k * PAGE), "x(away)",
				      false);
			usleep(rnd(&s) % 200);
			if (mremap(myspare, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				   addr_of(first)) == MAP_FAILED) {
				/*
				 * Since Linux 6.17 the run may have left as several
				 * VMAs, and they come back in one call only if none
				 * is userfaultfd-armed: bring it back page by page.
				 */
				if (errno != EFAULT)
					die("mremap back", first);
				bring_back(myspare, first, n, "mremap back (page by page)");
			}
			note(t, op, first, n, 2);
			/* Keep the spare slot reserved, so nobody else maps there. */
			reserve_spare(myspare, first);
			note(t, op, first, n, 3);
			for (size_t k = 0; k < n; k++)
				check(first + k, (uint64_t *)addr_of(first + k), "x(back)", false);
			atomic_fetch_add(&counts[6], 1);
			break;
		}
		case 'y': {
			size_t dst = lo + rnd(&s) % (per_thread - n);

			if (dst + n > first && dst < first + n)
				break; /* overlapping runs: mremap refuses them */
			if (mremap(addr_of(first), n * PAGE, n * PAGE,
				   MREMAP_MAYMOVE | MREMAP_FIXED, addr_of(dst)) == MAP_FAILED) {
				size_t m = 0;

				if (errno != EFAULT)
					die("mremap over", first);
				/*
				 * The run spans two VMAs. Since Linux 6.17 a prefix
				 * may have moved (see 'x'); before, the destination
				 * was unmapped all the same (mremap_to unmaps it
				 * before it looks at the source). What is unmapped
				 * there now is mapped again: it reads zero.
				 */
				while (m < n && !mapped(addr_of(first + m)))
					m++;
				for (size_t k = m; k < n; k++)
					if (!mapped(addr_of(dst + k))) {
						if (mmap(addr_of(dst + k), PAGE,
							 PROT_READ | PROT_WRITE,
							 MAP_PRIVATE | MAP_ANONYMOUS |
								 MAP_FIXED_NOREPLACE,
							 -1, 0) != addr_of(dst + k))
							die("mmap destination again", dst + k);
						zero_run(dst + k, 1, "y(dst unmapped)");
					}
				if (m == 0)
					break;
				n = m;
			}
			for (size_t k = 0; k < n; k++) {
				cid[dst + k] = cid[first + k];
				gen[dst + k] = gen[first + k];
			}
			if (mmap(addr_of(first), n * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
				 0) != addr_of(first))
				die("mmap source again", first);
			for (size_t k = 0; k < n; k++)
				check(dst + k, (uint64_t *)addr_of(dst + k), "y(dst)", false);
			zero_run(first, n, "y(src)");
			atomic_fetch_add(&counts[7], 1);
			break;
		}
		case 'g': {
			size_t half = n / 2;

			if (n < 2 || n > SPARE / 2)
				break;
			/*
			 * Shrink in place: the tail is unmapped. A run over
			 * several VMAs cannot be resized (EFAULT, nothing done).
			 */
			if (mremap(addr_of(first), n * PAGE, half * PAGE, 0) != addr_of(first)) {
				if (errno == EFAULT)
					break;
				die("mremap shrink", first);
			}
			/* Map the tail again: new, zero. */
			if (mmap(addr_of(first + half), (n - half) * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
				 0) != addr_of(first + half))
				die("mmap tail again", first + half);
			zero_run(first + half, n - half, "g(grown)");
			for (size_t k = 0; k < half; k++)
				check(first + k, (uint64_t *)addr_of(first + k), "g(shrunk)",
				      false);
			/* Move out growing to twice the size, back shrinking. */
			if (mremap(addr_of(first), n * PAGE, 2 * n * PAGE,
				   MREMAP_MAYMOVE | MREMAP_FIXED, myspare) == MAP_FAILED) {
				if (errno != EFAULT)
					die("mremap grow out", first);
				/* Several VMAs, one userfaultfd-armed (see 'x'). */
				bring_back(myspare, first, n, "mremap grow partial back");
				reserve_spare(myspare, first);
				break;
			}
			for (size_t k = 0; k < n; k++)
				check(first + k, (uint64_t *)(myspare + k * PAGE), "g(out)", false);
			if (mremap(myspare, 2 * n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				   addr_of(first)) == MAP_FAILED) {
				if (errno != EFAULT)
					die("mremap shrink back", first);
				bring_back(myspare, first, n, "mremap shrink back (page by page)");
			}
			reserve_spare(myspare, first);
			for (size_t k = 0; k < n; k++)
				check(first + k, (uint64_t *)addr_of(first + k), "g(back)", false);
			atomic_fetch_add(&counts[8], 1);
			break;
		}
		case 'f':
			if (madvise(addr_of(first), n * PAGE, MADV_FREE))
				die("madvise free", first);
			for (size_t k = 0; k < n; k++)
				check_freed(first + k, "f");
			/* Written afresh: the model is exact again. */
			for (size_t k = 0; k < n; k++) {
				cid[first + k] = NONE;
				write_page(first + k);
			}
			atomic_fetch_add(&counts[9], 1);
			break;
		case 'k': {
			pid_t c = fork();
			int st = 0;

			if (c < 0)
				die("fork", first);
			if (c == 0) {
				/*
				 * The child: only this thread runs, and its slice
				 * and model are as they were at the fork.
				 */
				uint64_t before = atomic_load(&nbad);

				for (size_t i = lo; i < lo + per_thread; i++)
					check(i, (uint64_t *)addr_of(i), "k(child)", true);
				for (size_t k = 0; k < n; k++) {
					write_page(first + k);
					check(first + k, (uint64_t *)addr_of(first + k),
					      "k(child write)", true);
				}
				_exit(atomic_load(&nbad) == before ? 0 : 1);
			}
			while (waitpid(c, &st, 0) < 0 && errno == EINTR)
				;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "BAD fork child of thread %u: status %#x\n", t, st);
				atomic_fetch_add(&nbad, 1);
			}
			for (size_t k = 0; k < n; k++)
				check(first + k, (uint64_t *)addr_of(first + k), "k(parent)",
				      false);
			atomic_fetch_add(&counts[10], 1);
			break;
		}
		case 'h': {
			size_t b = (size_t)((uintptr_t)(base + first * PAGE) & ~(PMD - 1)) -
				   (size_t)(uintptr_t)base;

			b /= PAGE;
			if (b < lo || b + PMD / PAGE > lo + per_thread)
				break;
			/* Refusals (busy pages, a run mapped apart, uffd-wp) are the kernel's
			 * right. */
			(void)madvise(base + b * PAGE, PMD, MADV_COLLAPSE);
			for (size_t k = 0; k < PMD / PAGE; k++)
				check(b + k, (uint64_t *)addr_of(b + k), "h", false);
			atomic_fetch_add(&counts[11], 1);
			break;
		}
		}
		atomic_fetch_add(&nops, 1);
	}
	return NULL;
}

/*
 * A crash names its cause: the address, where the data area and the spare
 * slots are, and the mappings at that moment (write(2) only).
 */
/*
 * A failure names its cause: each thread's last operations (and those
 * whose run holds addr, and its 'x' operations near addr), where the data area and the spare slots
 * are, and the mappings at that moment (write(2) only: also used in a signal handler).
 */
static void dump(const char *why, const void *addr)
{
	char buf[4096];
	int fd, n;

	for (unsigned t = 0; t < nthreads && t < 64; t++)
		for (unsigned k = 0; k < HIST && k < hpos[t]; k++) {
			unsigned x = (hpos[t] - 1 - k) % HIST;
			char *a = addr_of(hist[t][x].first);

			bool covers = (const char *)addr >= a &&
				      (const char *)addr < a + hist[t][x].n * PAGE;
			bool x_near = hist[t][x].op == 'x' && (const char *)addr >= a - 64 * PAGE &&
				      (const char *)addr <= a + 64 * PAGE;

			if (k >= 4 && !covers && !x_near)
				continue;
			n = snprintf(buf, sizeof(buf),
				     "  thread %u op -%u: %c first %zu (%p) n %zu stage %d\n", t, k,
				     hist[t][x].op, hist[t][x].first,
				     (void *)addr_of(hist[t][x].first), hist[t][x].n,
				     hist[t][x].stage);
			(void)!write(2, buf, (size_t)n);
		}
	n = snprintf(buf, sizeof(buf), "stress_tenant: %s at %p; data %p-%p, spare %p-%p; maps:\n",
		     why, addr, (void *)base, (void *)addr_of(npages), (void *)spare,
		     (void *)(spare + (size_t)nthreads * SPARE * PAGE));
	(void)!write(2, buf, (size_t)n);
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && (n = (int)read(fd, buf, sizeof(buf))) > 0)
		(void)!write(2, buf, (size_t)n);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	dump(sig == SIGSEGV ? "SIGSEGV" : "SIGBUS", si->si_addr);
	_exit(3);
}

int main(int argc, char **argv)
{
	size_t size = 32UL << 20;
	pthread_t th[64];
	char line[256];
	char *raw;

	for (int a = 1; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "--size"))
			size = strtoul(argv[a + 1], NULL, 0) << 20;
		else if (!strcmp(argv[a], "--threads"))
			nthreads = (unsigned)strtoul(argv[a + 1], NULL, 0);
		else if (!strcmp(argv[a], "--ops"))
			ops = argv[a + 1];
		else if (!strcmp(argv[a], "--seed"))
			setenv("STRESS_SEED", argv[a + 1], 1);
	}
	if (nthreads > 64 || size < PMD || !*ops) {
		fprintf(stderr, "stress_tenant: bad arguments\n");
		return 2;
	}
	{
		struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };

		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
	}
	npages = size / PAGE;
	per_thread = npages / (nthreads ? nthreads : 1);
	if (per_thread < 4 * RUNMAX) {
		fprintf(stderr, "stress_tenant: slices too small\n");
		return 2;
	}
	cid = calloc(npages, sizeof(*cid));
	gen = calloc(npages, sizeof(*gen));
	raw = mmap(NULL, size + PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	spare = mmap(NULL, (size_t)(nthreads ? nthreads : 1) * SPARE * PAGE, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!cid || !gen || raw == MAP_FAILED || spare == MAP_FAILED)
		return 2;
	base = (char *)(((uintptr_t)raw + PMD - 1) & ~(PMD - 1));
	(void)madvise(base, size / 2, MADV_HUGEPAGE);
	(void)madvise(base + size / 2, size / 2, MADV_NOHUGEPAGE);
	atomic_store(&next_cid, 1);
	for (size_t i = 0; i < npages; i++) {
		cid[i] = NONE;
		write_page(i);
	}
	for (unsigned t = 0; t < nthreads; t++)
		if (pthread_create(&th[t], NULL, thread_main, (void *)(uintptr_t)t))
			return 2;
	printf("READY %d %p %zu\n", getpid(), (void *)base, size);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "progress", 8)) {
			printf("OPS %" PRIuFAST64 " BAD %" PRIuFAST64 "\n", atomic_load(&nops),
			       atomic_load(&nbad));
			fflush(stdout);
		} else if (!strncmp(line, "y ", 2)) {
			/* With --threads 0 only: mremap SRC pages over DST. */
			size_t src, dst, n;

			if (nthreads || sscanf(line, "y %zu %zu %zu", &src, &dst, &n) != 3 ||
			    src + n > npages || dst + n > npages ||
			    mremap(addr_of(src), n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				   addr_of(dst)) == MAP_FAILED) {
				printf("ERR %s\n", strerror(errno));
			} else {
				for (size_t k = 0; k < n; k++) {
					cid[dst + k] = cid[src + k];
					gen[dst + k] = gen[src + k];
					cid[src + k] = NONE;
				}
				/* The source is mapped again fresh: it reads zero. */
				if (mmap(addr_of(src), n * PAGE, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
					 0) != addr_of(src))
					die("mmap source again", src);
				printf("OK\n");
			}
			fflush(stdout);
		} else if (!strncmp(line, "check ", 6)) {
			size_t off, n, ok = 0;

			if (sscanf(line, "check %zu %zu", &off, &n) == 2 && off + n <= npages)
				for (size_t k = 0; k < n; k++)
					ok += check(off + k, (uint64_t *)addr_of(off + k), "check",
						    true);
			printf("CHECKED %zu/%zu\n", ok, n);
			fflush(stdout);
		} else if (!strncmp(line, "stop", 4)) {
			break;
		}
	}
	atomic_store(&stop, 1);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	{
		size_t ok = 0, total = nthreads ? nthreads * per_thread : npages;

		for (size_t i = 0; i < total; i++)
			ok += check(i, (uint64_t *)addr_of(i), "final", true);
		printf("# stress tenant: %" PRIuFAST64 " ops (w %" PRIu64 " r %" PRIu64
		       " d %" PRIu64 " m %" PRIu64 " u %" PRIu64 " p %" PRIu64 " x %" PRIu64
		       " y %" PRIu64 " g %" PRIu64 " f %" PRIu64 " k %" PRIu64 " h %" PRIu64
		       "), %zu/%zu pages right, %" PRIuFAST64 " bad reads\n",
		       atomic_load(&nops), (uint64_t)counts[0], (uint64_t)counts[1],
		       (uint64_t)counts[2], (uint64_t)counts[3], (uint64_t)counts[4],
		       (uint64_t)counts[5], (uint64_t)counts[6], (uint64_t)counts[7],
		       (uint64_t)counts[8], (uint64_t)counts[9], (uint64_t)counts[10],
		       (uint64_t)counts[11], ok, total, atomic_load(&nbad));
		fflush(stdout);
		return ok == total && atomic_load(&nbad) == 0 ? 0 : 1;
	}
}
