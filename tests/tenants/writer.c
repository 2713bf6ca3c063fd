/*
 * writer - a tenant that keeps writing a verifiable pattern while it is
 * migrated, and checks every page at the end.
 *
 *   writer [--size SIZE] [--threads N] [--node N] [--thp-half | --thp]
 *          [--sparse SIZE] [--nice N] [--block-signal SIG] [--handle-signal SIG]
 *          [--vmas N] [--fork-child] [--busy-main] [--seccomp RULES]
 *
 * The data area holds 4 KiB pages (and, with --thp-half, THPs in its
 * first half; with --thp, THPs throughout). --threads 0 is an idle tenant. Page i holds a tag (i)
 * in its first word, its generation in the second and in the last word, and a fixed pattern of i
 * between. Writer threads bump the generation of their pages over and over and keep the last
 * generation of each page in private memory (outside the data area), timing every write: a write
 * that waits for migd is a stall.
 *
 * --sparse SIZE also reserves SIZE of MAP_NORESERVE anonymous memory (no
 * THP) and writes SPARSE_CHUNKS runs of SPARSE_RUN pages at scattered
 * offsets, some across a 2 MiB boundary; nothing else of it is touched.
 * Those pages are checked at the end too.
 *
 * --vmas N also maps 2N pages outside the data area, every other one
 * read-only: about 2N VMAs (a tenant with guard pages or single pages
 * mprotected), none of them migrated. The bench measures what a window
 * costs in such a tenant.
 *
 * --nice N lowers the priority of every thread (the busybox guests have
 * no nice(1)): spinning writers on every CPU must not starve migd, whose
 * work is what a test measures.
 *
 * --block-signal SIG: the first writer thread blocks signal number SIG
 * (pthread_sigmask), the other threads take it. --handle-signal SIG: the
 * writer installs its own handler for SIG before it starts its threads (so
 * after a preloaded library's constructors ran); "stop" then also prints
 * "HANDLED N", how many times that handler ran. Both are how a host may
 * treat the signal libmig-agent.so stops threads with.
 *
 * --fork-child: once the data is written, fork a child that shares every
 * page and waits until we die: UFFDIO_MOVE then refuses each page we have
 * not written since (-EBUSY). The writers then write the first half of
 * the data only: the second half stays shared.
 *
 * --busy-main: once READY, the main thread spins (it never touches the
 * data area) and another thread reads the commands: a tenant whose main
 * thread is an event loop always at work. The "mainstat" command prints
 * "MAINSTAT spins=N", the main thread's loop count (a test reads its
 * stops from /proc: each is a voluntary context switch).
 *
 * --seccomp RULES: before its threads start, the writer installs a seccomp
 * filter (as a hardened service has one) made of RULES, comma-separated,
 * each ACTION:NR or ACTION:NR:ARG=VALUE (VALUE in any base strtoull takes;
 * the rule matches syscall NR, with argument ARG equal to VALUE):
 * ACTION kill (SECCOMP_RET_KILL_PROCESS), thread (KILL_THREAD), trap
 * (SIGSYS), errno (EPERM). Syscalls no rule matches are allowed; another
 * architecture is killed. Every thread has it. migd must never make the
 * tenant meet one of these answers for a syscall it did not make.
 *
 * It prints "READY PID ADDR LEN" (and with --sparse, then
 * "SPARSE ADDR LEN PAGES") and then reads commands on stdin, one a
 * line, answering each on stdout:
 *   munmap OFF LEN     unmap part of the data (not checked afterwards)
 *   dontneed OFF LEN   madvise(MADV_DONTNEED): must read zero at once and
 *                      stay zero until the end (no stale refill)
 *   mremap OFF LEN     move part of the data to a new address
 *   away OFF LEN       move part of the data to a new address, leaving a hole
 *   back               move it back into that hole (one "away" at a time)
 *   foreign OFF file|uffd  replace one page of the data by a VMA userfaultfd
 *                      will not take from migd: the writer's own executable
 *                      mapped there read-only, or an anonymous page the
 *                      writer registers with a uffd of its own ("OK KIND",
 *                      "OK tmpfs" when the file is on tmpfs: shmem, which
 *                      userfaultfd takes); the page is not checked afterwards
 *   touch OFF LEN      read the first word of each page, in address order
 *                      (a walk that faults on pages taken out): "OK N", N the
 *                      pages whose tag was right
 *   fork               fork; the child checks every page, exits 0 or 1
 *   exit               exit at once
 *   progress           "PROGRESS N0 N1 ...": writes each writer thread has
 *                      made so far (a thread blocked for good stops counting)
 *   stalls             "STALLS START:END ...": the last writes of every
 *                      thread that took over 1 ms, wall-clock nanoseconds
 *   reset              start the write statistics anew (every thread has
 *                      dropped its own before "OK")
 *   stat               "STAT writes=N slow=N p999_us=N max_us=N secs=S":
 *                      writes since the last reset, those over 1 ms, the
 *                      99.9th percentile and the longest, and how long ago
 *                      the reset was (the bench's stall figures)
 *   stop               stop writing, check every page, print figures,
 *                      exit 0 (all good) or 1
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stddef.h>
#include <inttypes.h>
#include <numaif.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mig.h"

#define PAGE  4096UL
#define PMD   (2UL << 20)
#define WORDS (PAGE / 8)
#define MAGIC UINT64_C(0x6d69676400000000)

enum { LIVE = 0, UNMAPPED, ZEROED };

static size_t npages;
static size_t nwrite;	  /* the writers write pages [0, nwrite) */
static char *_Atomic *pg; /* current address of each page */
static uint64_t *genrec;  /* last generation written to each page */
static uint8_t *state;	  /* LIVE, UNMAPPED, ZEROED */
static pthread_rwlock_t quiesce = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int stop;
static unsigned nthreads = 2;
static atomic_uint handled;	/* runs of the --handle-signal handler */
static int handle_sig;		/* --handle-signal */
static int busy_main;		/* --busy-main */
static pthread_t *threads;	/* the writer threads */
static volatile uint64_t spins; /* --busy-main: the main thread's loops */

static void on_own_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&handled, 1);
}

/* Write-latency histogram: 1 us buckets below 10 ms, 1 ms buckets to 100 s. */
#define FINE   10000
#define COARSE 100000
/* The last STALL_LOG writes that took over 1 ms: wall-clock start and end. */
#define STALL_LOG 64
struct hist {
	uint64_t fine[FINE];
	uint64_t coarse[COARSE];
	uint64_t n, max_ns, slow;
	unsigned gen; /* the reset this thread's figures start from */
	uint64_t stall_start[STALL_LOG], stall_end[STALL_LOG];
	unsigned nstall;
};
static struct hist *hists;
/* Bumped by "reset"; each writer drops its own figures when it sees it. */
static unsigned reset_gen;
static uint64_t reset_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t pattern(size_t i, size_t w)
{
	return (i * 0x9e3779b97f4a7c15ULL) ^ (w * 0xff51afd7ed558ccdULL);
}

static void fill_page(size_t i, uint64_t gen)
{
	uint64_t *p = (uint64_t *)pg[i];

	p[0] = MAGIC ^ i;
	p[1] = gen;
	for (size_t w = 2; w < WORDS - 1; w++)
		p[w] = pattern(i, w);
	p[WORDS - 1] = gen;
}

/* 0 when page i is as expected, else a short reason. */
static const char *check_page(size_t i)
{
	const uint64_t *p = (const uint64_t *)pg[i];

	if (state[i] == UNMAPPED)
		return NULL;
	if (state[i] == ZEROED) {
		for (size_t w = 0; w < WORDS; w++)
			if (p[w])
				return "not zero after DONTNEED";
		return NULL;
	}
	if (p[0] != (MAGIC ^ i)) {
		for (size_t w = 0; w < WORDS && !p[w]; w++)
			if (w == WORDS - 1)
				return "zero-filled";
		return "wrong tag";
	}
	if (p[1] != genrec[i] || p[WORDS - 1] != genrec[i])
		return "stale generation";
	for (size_t w = 2; w < WORDS - 1; w++)
		if (p[w] != pattern(i, w))
			return "pattern damaged";
	return NULL;
}

/* Relaxed stores of one thread's own counters: "stat" reads them while it writes. */
#define BUMP(x) __atomic_store_n(&(x), (x) + 1, __ATOMIC_RELAXED)

static void record(struct hist *h, uint64_t ns)
{
	uint64_t us = ns / 1000;

	if (us < FINE)
		BUMP(h->fine[us]);
	else if (us / 1000 < COARSE)
		BUMP(h->coarse[us / 1000]);
	else
		BUMP(h->coarse[COARSE - 1]);
	BUMP(h->n);
	if (ns > 1000000)
		BUMP(h->slow);
	if (ns > h->max_ns)
		__atomic_store_n(&h->max_ns, ns, __ATOMIC_RELAXED);
}

/* A "reset" was asked for: this thread starts its figures anew. */
static void reset_own(struct hist *h)
{
	unsigned g = __atomic_load_n(&reset_gen, __ATOMIC_ACQUIRE);

	if (h->gen == g)
		return;
	memset(h->fine, 0, sizeof(h->fine));
	memset(h->coarse, 0, sizeof(h->coarse));
	h->n = h->max_ns = h->slow = 0;
	__atomic_store_n(&h->gen, g, __ATOMIC_RELEASE);
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A write that just ended after ns: when it was, on the wall clock (tests compare with date). */
static void note_stall(struct hist *h, uint64_t ns)
{
	uint64_t end = wall_ns();
	unsigned k = h->nstall % STALL_LOG;

	h->stall_start[k] = end - ns;
	h->stall_end[k] = end;
	__atomic_store_n(&h->nstall, h->nstall + 1, __ATOMIC_RELEASE);
}

static void *writer_main(void *arg)
{
	unsigned k = (unsigned)(uintptr_t)arg;
	struct hist *h = &hists[k];

	while (!atomic_load(&stop)) {
		for (size_t i = k; i < nwrite && !atomic_load(&stop); i += nthreads) {
			uint64_t t0, g;
			uint64_t *p;

			reset_own(h);
			t0 = now_ns();
			pthread_rwlock_rdlock(&quiesce);
			if (state[i] != LIVE) {
				pthread_rwlock_unlock(&quiesce);
				continue;
			}
			p = (uint64_t *)pg[i];
			g = genrec[i] + 1;
			p[1] = g;
			p[WORDS - 1] = g;
			genrec[i] = g;
			pthread_rwlock_unlock(&quiesce);
			g = now_ns() - t0;
			record(h, g);
			if (g > 1000000)
				note_stall(h, g);
		}
	}
	return NULL;
}

static void stats(void)
{
	uint64_t n = 0, max = 0, seen = 0, p99 = 0;

	for (unsigned k = 0; k < nthreads; k++) {
		n += hists[k].n;
		if (hists[k].max_ns > max)
			max = hists[k].max_ns;
	}
	for (size_t b = 0; b < FINE + COARSE && n; b++) {
		for (unsigned k = 0; k < nthreads; k++)
			seen += b < FINE ? hists[k].fine[b] : hists[k].coarse[b - FINE];
		if (seen * 100 >= n * 99) {
			p99 = b < FINE ? b : (b - FINE) * 1000;
			break;
		}
	}
	printf("# writer: %" PRIu64 " writes, max stall %.3f ms, p99 %" PRIu64 " us\n", n,
	       max / 1e6, p99);
	printf("STALL max_us=%" PRIu64 " p99_us=%" PRIu64 " writes=%" PRIu64 "\n", max / 1000, p99,
	       n);
}

/* "MAINSTAT spins=N" (--busy-main): the main thread's loops so far. */
static void main_stat(void)
{
	printf("MAINSTAT spins=%" PRIu64 "\n", spins);
}

/*
 * Writes since the last reset: how many, how many took over 1 ms, the
 * 99.9th percentile and the longest (read while the writers run).
 */
static void stat_line(void)
{
	uint64_t n = 0, slow = 0, max = 0, seen = 0, p999 = 0;

	for (unsigned k = 0; k < nthreads; k++) {
		uint64_t m = __atomic_load_n(&hists[k].max_ns, __ATOMIC_RELAXED);

		n += __atomic_load_n(&hists[k].n, __ATOMIC_RELAXED);
		slow += __atomic_load_n(&hists[k].slow, __ATOMIC_RELAXED);
		max = m > max ? m : max;
	}
	for (size_t b = 0; b < FINE + COARSE && n; b++) {
		for (unsigned k = 0; k < nthreads; k++)
			seen += __atomic_load_n(b < FINE ? &hists[k].fine[b]
							 : &hists[k].coarse[b - FINE],
						__ATOMIC_RELAXED);
		if (seen * 1000 >= n * 999) {
			p999 = b < FINE ? b : (b - FINE) * 1000;
			break;
		}
	}
	printf("STAT writes=%" PRIu64 " slow=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64
	       " secs=%.3f\n",
	       n, slow, p999, max / 1000, (now_ns() - reset_ns) / 1e9);
}

#define SPARSE_CHUNKS 16
#define SPARSE_RUN    64
static char *sparse;
static uint64_t sparse_len;

static char *sparse_page(size_t k, size_t p)
{
	/* Chunk k starts 32 pages before a 2 MiB boundary inside its 1/16th. */
	return sparse + k * (sparse_len / SPARSE_CHUNKS) + ((k * 7) % 32 + 1) * PMD - 32 * PAGE +
	       p * PAGE;
}

static void sparse_fill(void)
{
	for (size_t k = 0; k < SPARSE_CHUNKS; k++)
		for (size_t p = 0; p < SPARSE_RUN; p++) {
			uint64_t *w = (uint64_t *)sparse_page(k, p);

			for (size_t x = 0; x < WORDS; x++)
				w[x] = ((uint64_t)(uintptr_t)w + x) ^ MAGIC;
		}
}

static size_t sparse_check(void)
{
	size_t bad = 0;

	for (size_t k = 0; sparse && k < SPARSE_CHUNKS; k++)
		for (size_t p = 0; p < SPARSE_RUN; p++) {
			uint64_t *w = (uint64_t *)sparse_page(k, p);
			size_t x = 0;

			while (x < WORDS && w[x] == (((uint64_t)(uintptr_t)w + x) ^ MAGIC))
				x++;
			if (x < WORDS && bad++ < 10)
				fprintf(stderr, "sparse page %p: word %zu damaged\n", (void *)w, x);
		}
	return bad;
}

static size_t check_all(size_t *bad)
{
	size_t ok = 0;

	*bad = 0;
	for (size_t i = 0; i < npages; i++) {
		const char *why = check_page(i);

		if (!why) {
			ok++;
			continue;
		}
		if ((*bad)++ < 10)
			fprintf(stderr,
				"page %zu at %p: %s (gen want %" PRIu64 " got %" PRIu64 "/%" PRIu64
				")\n",
				i, (void *)pg[i], why, genrec[i], ((uint64_t *)pg[i])[1],
				((uint64_t *)pg[i])[WORDS - 1]);
	}
	return ok;
}

static int range_args(const char *line, size_t *ret_first, size_t *ret_n)
{
	unsigned long long off, len;

	if (sscanf(line, "%*s %llu %llu", &off, &len) != 2 || off % PAGE || len % PAGE ||
	    off / PAGE + len / PAGE > npages || !len)
		return -EINVAL;
	*ret_first = off / PAGE;
	*ret_n = len / PAGE;
	return 0;
}

/* The run "away" took elsewhere: where it was, and its pages. */
static char *away_from;
static size_t away_first, away_n;

/*
 * "foreign OFF file|uffd": page OFF of the data becomes a VMA that
 * migd's uffd cannot unregister (a file mapping, or another uffd's): the
 * kernel then refuses an UFFDIO_UNREGISTER over a range that holds it.
 */
static int foreign(const char *line, unsigned long long *off, char *kind)
{
	static int own_uffd = -1;
	size_t i;
	void *p;

	if (sscanf(line, "%*s %llu %7s", off, kind) != 2 || *off % PAGE || *off / PAGE >= npages)
		return -1;
	i = *off / PAGE;
	pthread_rwlock_wrlock(&quiesce);
	state[i] = UNMAPPED;
	if (!strcmp(kind, "file")) {
		int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
		struct statfs sf;

		p = fd < 0 ? MAP_FAILED
			   : mmap(pg[i], PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
		if (fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type == 0x01021994 /* TMPFS_MAGIC */)
			strcpy(kind, "tmpfs");
		if (fd >= 0)
			close(fd);
	} else if (!strcmp(kind, "uffd")) {
		struct uffdio_api api = { .api = UFFD_API };
		struct uffdio_register reg = { .range = { (uintptr_t)pg[i], PAGE },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };

		if (own_uffd < 0) {
			own_uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
			if (own_uffd >= 0 && ioctl(own_uffd, UFFDIO_API, &api) < 0) {
				close(own_uffd);
				own_uffd = -1;
			}
		}
		p = own_uffd < 0 ? MAP_FAILED
				 : mmap(pg[i], PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p != MAP_FAILED && ioctl(own_uffd, UFFDIO_REGISTER, &reg) < 0)
			p = MAP_FAILED;
	} else {
		p = MAP_FAILED;
	}
	pthread_rwlock_unlock(&quiesce);
	return p == MAP_FAILED ? -1 : 0;
}

static void command(const char *line)
{
	size_t first, n, bad;

	if (!strncmp(line, "munmap", 6) && range_args(line, &first, &n) == 0) {
		pthread_rwlock_wrlock(&quiesce);
		int r = munmap(pg[first], n * PAGE);
		for (size_t i = first; i < first + n; i++)
			state[i] = UNMAPPED;
		pthread_rwlock_unlock(&quiesce);
		printf("%s\n", r ? "FAIL munmap" : "OK");
	} else if (!strncmp(line, "dontneed", 8) && range_args(line, &first, &n) == 0) {
		pthread_rwlock_wrlock(&quiesce);
		int r = madvise(pg[first], n * PAGE, MADV_DONTNEED);
		for (size_t i = first; i < first + n; i++)
			state[i] = ZEROED;
		for (size_t i = first; i < first + n && !r; i++)
			if (check_page(i))
				r = -1;
		pthread_rwlock_unlock(&quiesce);
		printf("%s\n", r ? "FAIL dontneed: not zero" : "OK");
	} else if (!strncmp(line, "mremap", 6) && range_args(line, &first, &n) == 0) {
		void *to =
			mmap(NULL, n * PAGE + PMD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *r = MAP_FAILED;

		if (to != MAP_FAILED) {
			to = (void *)(((uintptr_t)to + PMD - 1) & ~(PMD - 1));
			pthread_rwlock_wrlock(&quiesce);
			r = mremap(pg[first], n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				   to);
			if (r != MAP_FAILED)
				for (size_t i = first; i < first + n; i++)
					pg[i] = (char *)r + (i - first) * PAGE;
			pthread_rwlock_unlock(&quiesce);
		}
		printf("%s %p\n", r == MAP_FAILED ? "FAIL mremap" : "OK", r);
	} else if (!strncmp(line, "away", 4) && range_args(line, &first, &n) == 0 && !away_n) {
		/* "away OFF LEN": the run leaves its place, a hole there, until "back". */
		void *to = mmap(NULL, n * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *r = MAP_FAILED;

		if (to != MAP_FAILED) {
			pthread_rwlock_wrlock(&quiesce);
			away_from = pg[first];
			r = mremap(pg[first], n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				   to);
			if (r != MAP_FAILED) {
				for (size_t i = first; i < first + n; i++)
					pg[i] = (char *)r + (i - first) * PAGE;
				away_first = first;
				away_n = n;
			}
			pthread_rwlock_unlock(&quiesce);
		}
		printf("%s\n", r == MAP_FAILED ? "FAIL away" : "OK");
	} else if (!strcmp(line, "back") && away_n) {
		/* The run "away" took, to its place again. */
		void *r;

		pthread_rwlock_wrlock(&quiesce);
		r = mremap(pg[away_first], away_n * PAGE, away_n * PAGE,
			   MREMAP_MAYMOVE | MREMAP_FIXED, away_from);
		if (r != MAP_FAILED)
			for (size_t i = away_first; i < away_first + away_n; i++)
				pg[i] = (char *)r + (i - away_first) * PAGE;
		away_n = 0;
		pthread_rwlock_unlock(&quiesce);
		printf("%s\n", r == MAP_FAILED ? "FAIL back" : "OK");
	} else if (!strncmp(line, "foreign", 7)) {
		unsigned long long off;
		char kind[8] = "";

		if (foreign(line, &off, kind))
			printf("FAIL foreign\n");
		else
			printf("OK %s\n", kind);
	} else if (!strncmp(line, "touch", 5) && range_args(line, &first, &n) == 0) {
		size_t right = 0;

		pthread_rwlock_rdlock(&quiesce);
		for (size_t i = first; i < first + n; i++)
			right += *(volatile uint64_t *)pg[i] == (MAGIC ^ i);
		pthread_rwlock_unlock(&quiesce);
		printf("OK %zu\n", right);
	} else if (!strcmp(line, "fork")) {
		pid_t child;
		int st = 0;

		pthread_rwlock_wrlock(&quiesce);
		child = fork();
		if (child == 0) {
			size_t ok = check_all(&bad);

			fprintf(stderr, "child: %zu pages ok, %zu bad\n", ok, bad);
			_exit(bad ? 1 : 0);
		}
		pthread_rwlock_unlock(&quiesce);
		if (child > 0)
			waitpid(child, &st, 0);
		printf("%s\n",
		       child > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "OK" : "FAIL fork");
	} else if (!strcmp(line, "exit")) {
		_exit(0);
	} else if (!strcmp(line, "stalls")) {
		printf("STALLS");
		for (unsigned k = 0; k < nthreads; k++) {
			unsigned ns = __atomic_load_n(&hists[k].nstall, __ATOMIC_ACQUIRE);

			for (unsigned x = ns > STALL_LOG ? ns - STALL_LOG : 0; x < ns; x++)
				printf(" %" PRIu64 ":%" PRIu64, hists[k].stall_start[x % STALL_LOG],
				       hists[k].stall_end[x % STALL_LOG]);
		}
		printf("\n");
	} else if (!strcmp(line, "reset")) {
		reset_ns = now_ns();
		__atomic_fetch_add(&reset_gen, 1, __ATOMIC_RELEASE);
		for (unsigned k = 0; k < nthreads; k++)
			while (__atomic_load_n(&hists[k].gen, __ATOMIC_ACQUIRE) !=
			       __atomic_load_n(&reset_gen, __ATOMIC_RELAXED))
				usleep(100);
		printf("OK\n");
	} else if (!strcmp(line, "stat")) {
		stat_line();
	} else if (!strcmp(line, "mainstat")) {
		main_stat();
	} else if (!strcmp(line, "progress")) {
		printf("PROGRESS");
		for (unsigned k = 0; k < nthreads; k++)
			printf(" %" PRIu64, __atomic_load_n(&hists[k].n, __ATOMIC_RELAXED));
		printf("\n");
	} else {
		printf("FAIL unknown command\n");
	}
	fflush(stdout);
}

/* The command loop on stdin (see the top); returns the exit code. */
static int commands(void)
{
	char line[256];

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		if (!strcmp(line, "stop")) {
			atomic_store(&stop, 1);
			for (unsigned k = 0; k < nthreads; k++)
				pthread_join(threads[k], NULL);
			free(threads);
			size_t bad, ok = check_all(&bad), sbad = sparse_check();

			if (sparse)
				printf("SPARSE %s pages=%d bad=%zu\n", sbad ? "FAIL" : "OK",
				       SPARSE_CHUNKS * SPARSE_RUN, sbad);
			bad += sbad;

			stats();
			if (handle_sig)
				printf("HANDLED %u\n", atomic_load(&handled));
			printf("VERIFY %s pages=%zu ok=%zu bad=%zu\n", bad ? "FAIL" : "OK", npages,
			       ok, bad);
			fflush(stdout);
			return bad ? 1 : 0;
		}
		command(line);
	}
	return 0;
}

static atomic_int commands_done;
static int commands_rc;
static void *commands_main(void *arg)
{
	(void)arg;
	commands_rc = commands();
	atomic_store(&commands_done, 1);
	return NULL;
}

/*
 * --seccomp RULES (see the top): a classic BPF program, installed with
 * no_new_privs. Returns 0, or -1 with a message.
 */
static int seccomp_install(const char *spec)
{
	struct sock_filter f[256];
	unsigned n = 0;
	char *copy = strdup(spec), *save = NULL;

	if (!copy)
		return -1;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	for (char *r = strtok_r(copy, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
		char act[16];
		unsigned nr, arg = 0;
		long long val = 0;
		uint32_t ret;
		int got = sscanf(r, "%15[a-z]:%u:%u=%lli", act, &nr, &arg, &val);

		if ((got != 2 && got != 4) || arg > 5 || n + 12 > sizeof(f) / sizeof(f[0])) {
			fprintf(stderr, "writer: bad --seccomp rule '%s'\n", r);
			free(copy);
			return -1;
		}
		ret = !strcmp(act, "kill")     ? SECCOMP_RET_KILL_PROCESS
		      : !strcmp(act, "thread") ? SECCOMP_RET_KILL_THREAD
		      : !strcmp(act, "trap")   ? SECCOMP_RET_TRAP
		      : !strcmp(act, "errno")  ? SECCOMP_RET_ERRNO | EPERM
					       : 0;
		if (!ret && strcmp(act, "thread")) {
			fprintf(stderr, "writer: bad --seccomp action '%s'\n", act);
			free(copy);
			return -1;
		}
		f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						      offsetof(struct seccomp_data, nr));
		if (got == 2) {
			f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
		} else {
			/* nr, then the argument's low and high words (little endian). */
			uint32_t off = (uint32_t)offsetof(struct seccomp_data, args[arg]);

			f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 5);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off);
			f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							      (uint32_t)val, 0, 3);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off + 4);
			f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							      (uint32_t)(val >> 32), 0, 1);
		}
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, ret);
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	free(copy);
	{
		struct sock_fprog prog = { (unsigned short)n, f };

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
			perror("writer: seccomp");
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t size = 64UL << 20, sparse_size = 0, nvmas = 0;
	int node = -1, thp_half = 0, thp_all = 0, block_sig = 0, fork_child = 0;
	const char *seccomp_rules = NULL;
	char *base;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--size") && a + 1 < argc) {
			if (mig_parse_size(argv[++a], &size) < 0 || size % PMD || !size) {
				fprintf(stderr, "bad --size (a multiple of 2 MiB)\n");
				return 2;
			}
		} else if (!strcmp(argv[a], "--threads") && a + 1 < argc)
			nthreads = (unsigned)atoi(argv[++a]);
		else if (!strcmp(argv[a], "--node") && a + 1 < argc)
			node = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--thp-half"))
			thp_half = 1;
		else if (!strcmp(argv[a], "--thp"))
			thp_all = 1;
		else if (!strcmp(argv[a], "--nice") && a + 1 < argc) {
			/* Before any thread exists: they all inherit it. */
			if (setpriority(PRIO_PROCESS, 0, atoi(argv[++a])) < 0) {
				perror("writer: setpriority");
				return 2;
			}
		} else if (!strcmp(argv[a], "--sparse") && a + 1 < argc) {
			if (mig_parse_size(argv[++a], &sparse_size) < 0 ||
			    sparse_size < SPARSE_CHUNKS * 64 * PMD) {
				fprintf(stderr, "bad --sparse (at least 2 GiB)\n");
				return 2;
			}
		} else if (!strcmp(argv[a], "--vmas") && a + 1 < argc) {
			nvmas = strtoull(argv[++a], NULL, 0);
			if (nvmas == 0 || nvmas > 30000) {
				fprintf(stderr, "bad --vmas (1-30000: vm.max_map_count)\n");
				return 2;
			}
		} else if (!strcmp(argv[a], "--block-signal") && a + 1 < argc)
			block_sig = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--handle-signal") && a + 1 < argc)
			handle_sig = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--fork-child"))
			fork_child = 1;
		else if (!strcmp(argv[a], "--busy-main"))
			busy_main = 1;
		else if (!strcmp(argv[a], "--seccomp") && a + 1 < argc)
			seccomp_rules = argv[++a];
		else {
			fprintf(stderr, "usage: writer [--size SIZE] [--threads N] [--node N] "
					"[--thp-half | --thp] [--sparse SIZE] [--nice N] "
					"[--block-signal SIG] [--handle-signal SIG] [--vmas N] "
					"[--fork-child] [--busy-main] [--seccomp RULES]\n");
			return 2;
		}
	}
	if (nthreads > 64)
		return 2;
	npages = size / PAGE;
	nwrite = fork_child ? npages / 2 : npages;
	pg = calloc(npages, sizeof(*pg));
	genrec = calloc(npages, sizeof(*genrec));
	state = calloc(npages, 1);
	hists = calloc(nthreads ? nthreads : 1, sizeof(*hists));
	threads = calloc(nthreads ? nthreads : 1, sizeof(*threads));
	base = mmap(NULL, size + PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pg || !genrec || !state || !hists || !threads || base == MAP_FAILED) {
		perror("writer: alloc");
		return 1;
	}
	base = (char *)(((uintptr_t)base + PMD - 1) & ~(PMD - 1));
	(void)madvise(base, size / 2, thp_half || thp_all ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	(void)madvise(base + size / 2, size / 2, thp_all ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (node >= 0) {
		unsigned long mask[16] = { 0 };

		mask[node / 64] = 1UL << (node % 64);
		if (set_mempolicy(MPOL_BIND, mask, 1024 + 1) < 0) {
			perror("writer: set_mempolicy");
			return 1;
		}
	}
	for (size_t i = 0; i < npages; i++) {
		pg[i] = base + i * PAGE;
		fill_page(i, 0);
	}
	if (node >= 0)
		(void)set_mempolicy(MPOL_DEFAULT, NULL, 0);
	if (fork_child) {
		/*
		 * A child that shares every page and only waits (it dies with
		 * us): the kernel then refuses to UFFDIO_MOVE a page of ours
		 * until we write it (-EBUSY: not AnonExclusive).
		 */
		pid_t c = fork();

		if (c < 0) {
			perror("writer: fork");
			return 1;
		}
		if (c == 0) {
			(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1)
				_exit(0);
			for (;;)
				pause();
		}
	}
	if (handle_sig) {
		struct sigaction sa = { .sa_handler = on_own_signal, .sa_flags = SA_RESTART };

		if (sigaction(handle_sig, &sa, NULL) < 0) {
			perror("writer: sigaction");
			return 2;
		}
	}
	/* Before the threads: they inherit it. */
	if (seccomp_rules && seccomp_install(seccomp_rules) < 0)
		return 2;
	reset_ns = now_ns();
	for (unsigned k = 0; k < nthreads; k++) {
		sigset_t set, old;
		int r;

		/* The thread starts with the signal blocked: no moment it takes it. */
		sigemptyset(&set);
		if (k == 0 && block_sig && sigaddset(&set, block_sig) < 0) {
			fprintf(stderr, "writer: bad --block-signal %d\n", block_sig);
			return 2;
		}
		pthread_sigmask(SIG_BLOCK, &set, &old);
		r = pthread_create(&threads[k], NULL, writer_main, (void *)(uintptr_t)k);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r) {
			perror("writer: pthread_create");
			return 1;
		}
	}
	if (sparse_size) {
		sparse_len = sparse_size;
		sparse = mmap(NULL, sparse_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (sparse == MAP_FAILED || madvise(sparse, sparse_len, MADV_NOHUGEPAGE)) {
			perror("writer: sparse reservation");
			return 1;
		}
		sparse_fill();
	}
	if (nvmas) {
		char *v = mmap(NULL, 2 * nvmas * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (v == MAP_FAILED) {
			perror("writer: --vmas");
			return 1;
		}
		for (uint64_t k = 0; k < nvmas; k++)
			if (mprotect(v + 2 * k * PAGE, PAGE, PROT_READ) < 0) {
				perror("writer: --vmas mprotect");
				return 1;
			}
	}
	printf("READY %d %p %" PRIu64 "\n", getpid(), (void *)base, size);
	if (sparse)
		printf("SPARSE %p %" PRIu64 " %d\n", (void *)sparse, sparse_len,
		       SPARSE_CHUNKS * SPARSE_RUN);
	fflush(stdout);
	if (busy_main) {
		pthread_t c;

		if (pthread_create(&c, NULL, commands_main, NULL)) {
			perror("writer: pthread_create");
			return 1;
		}
		/* Busy until the commands end; never touches the data area. */
		while (!atomic_load(&commands_done))
			spins++;
		pthread_join(c, NULL);
		return commands_rc;
	}
	return commands();
}
