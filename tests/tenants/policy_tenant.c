/*
 * policy_tenant - a tenant with two anonymous regions of the same size:
 * BOUND carries its own memory policy, mbind(MPOL_BIND, node 0); FREE has
 * no VMA policy. FREE's pages are still placed on node 0 (bound while
 * faulted in, then its policy is reset with MPOL_DEFAULT), so on a
 * machine with two nodes both regions start on node 0 and only the VMA
 * policy tells them apart.
 *
 *   policy_tenant [--size SIZE]      (SIZE of each region, default 8M)
 *
 * Page i of a region holds a tag (region, i) in its first word, its
 * generation in the second and the last word and a fixed pattern of i
 * between. A writer thread keeps bumping the generations of both regions
 * and records each in private memory, so a page that comes back stale,
 * zeroed or damaged is found.
 *
 * It prints "READY PID BOUND FREE SIZE", then reads commands on stdin:
 *   check   verify every page now: "OK PAGES" or "BAD region page reason"
 *   stop    stop writing, verify every page, print "# " figures, exit 0
 *           (all good) or 1
 */
#include <errno.h>
#include <inttypes.h>
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE  4096UL
#define WORDS (PAGE / 8)
#define MAGIC UINT64_C(0x706f6c6900000000)

static char *region[2]; /* 0: BOUND (mbind node 0), 1: FREE (no VMA policy) */
static size_t npages;	/* per region */
static uint64_t *genrec[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop;
static uint64_t writes, max_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t pattern(unsigned r, size_t i, size_t w)
{
	return ((i + r * 0x10000000ULL) * 0x9e3779b97f4a7c15ULL) ^ (w * 0xff51afd7ed558ccdULL);
}

static void fill_page(unsigned r, size_t i, uint64_t gen)
{
	uint64_t *p = (uint64_t *)(region[r] + i * PAGE);

	p[0] = MAGIC ^ ((uint64_t)r << 32) ^ i;
	p[1] = gen;
	for (size_t w = 2; w < WORDS - 1; w++)
		p[w] = pattern(r, i, w);
	p[WORDS - 1] = gen;
}

static const char *check_page(unsigned r, size_t i)
{
	const uint64_t *p = (const uint64_t *)(region[r] + i * PAGE);

	if (p[0] != (MAGIC ^ ((uint64_t)r << 32) ^ i)) {
		for (size_t w = 0; w < WORDS && !p[w]; w++)
			if (w == WORDS - 1)
				return "zero-filled";
		return "wrong tag";
	}
	if (p[1] != genrec[r][i] || p[WORDS - 1] != genrec[r][i])
		return "stale generation";
	for (size_t w = 2; w < WORDS - 1; w++)
		if (p[w] != pattern(r, i, w))
			return "pattern damaged";
	return NULL;
}

/* Verify both regions; the writer is held meanwhile. Returns damaged pages. */
static size_t check_all(int verbose)
{
	size_t bad = 0;

	pthread_mutex_lock(&lock);
	for (unsigned r = 0; r < 2; r++)
		for (size_t i = 0; i < npages; i++) {
			const char *why = check_page(r, i);

			if (why && bad++ < 5 && verbose)
				printf("BAD %s page %zu: %s\n", r ? "free" : "bound", i, why);
		}
	pthread_mutex_unlock(&lock);
	return bad;
}

/*
 * Rewrite every page of both regions over and over, a few pages at a
 * time with a short pause, so that pages are written during their
 * migration windows without starving a slow (emulated) machine.
 */
static void *writer_main(void *arg)
{
	size_t i = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&lock);
		for (unsigned k = 0; k < 8; k++, i = (i + 1) % (2 * npages)) {
			unsigned r = i >= npages;
			size_t pi = i % npages;
			uint64_t t0 = now_ns(), dt;

			fill_page(r, pi, ++genrec[r][pi]);
			dt = now_ns() - t0;
			if (dt > max_ns)
				max_ns = dt;
			writes++;
		}
		pthread_mutex_unlock(&lock);
		usleep(200);
	}
	return NULL;
}

static int parse_size(const char *s, size_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || v == 0 || v % PAGE)
		return -EINVAL;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long node0 = 1;
	size_t size = 8UL << 20;
	pthread_t th;
	char line[256];

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--size") && a + 1 < argc) {
			if (parse_size(argv[++a], &size) < 0) {
				fprintf(stderr, "bad size: %s\n", argv[a]);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: %s [--size SIZE]\n", argv[0]);
			return 2;
		}
	}
	npages = size / PAGE;
	for (unsigned r = 0; r < 2; r++) {
		region[r] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				 -1, 0);
		genrec[r] = calloc(npages, sizeof(uint64_t));
		if (region[r] == MAP_FAILED || !genrec[r]) {
			perror("mmap");
			return 1;
		}
		/* Both regions get their pages on node 0. */
		if (mbind(region[r], size, MPOL_BIND, &node0, 8 * sizeof(node0), 0) < 0) {
			perror("mbind MPOL_BIND");
			return 1;
		}
		for (size_t i = 0; i < npages; i++)
			fill_page(r, i, genrec[r][i] = 1);
	}
	/* FREE drops its VMA policy; its pages stay where they are. */
	if (mbind(region[1], size, MPOL_DEFAULT, NULL, 0, 0) < 0) {
		perror("mbind MPOL_DEFAULT");
		return 1;
	}
	if (pthread_create(&th, NULL, writer_main, NULL)) {
		perror("pthread_create");
		return 1;
	}
	printf("READY %d %p %p %zu\n", getpid(), (void *)region[0], (void *)region[1], size);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "check", 5)) {
			size_t bad = check_all(1);

			if (bad)
				printf("BAD %zu pages\n", bad);
			else
				printf("OK %zu\n", 2 * npages);
		} else if (!strncmp(line, "stop", 4)) {
			break;
		} else {
			printf("ERR unknown command\n");
		}
		fflush(stdout);
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	{
		size_t bad = check_all(1);

		printf("# policy tenant: %" PRIu64
		       " writes, longest write %.3f ms, %zu of %zu pages "
		       "damaged\n",
		       writes, max_ns / 1e6, bad, 2 * npages);
		fflush(stdout);
		return bad ? 1 : 0;
	}
}
