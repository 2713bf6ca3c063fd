/*
 * demo_tenant.c - the tenant `make demo` migrates: it holds SIZE MiB
 * (default 256) of anonymous memory filled with a pattern, keeps writing
 * into it while it runs, and on SIGTERM/SIGINT checks every page against
 * what it wrote and reports the result. It knows nothing of migd.
 *
 *   demo_tenant [SIZE_MIB]
 *
 * Prints "ready PID START-END" once the memory is filled. Exit status 0:
 * every page checked out; 1: corruption found (and where); 2: setup error.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE  4096u
#define WORDS (PAGE / sizeof(uint64_t))

static uint64_t *mem;
static uint32_t *gens; /* the generation each page was last written with */
static size_t npages;
static atomic_int stop;
static atomic_uint_fast64_t writes;

/* Word w of page p at generation g: any stale, zeroed or misplaced page shows. */
static uint64_t expect(size_t p, size_t w, uint32_t g)
{
	return ((uint64_t)p << 32 | (uint64_t)w << 20 | g) * UINT64_C(0x9E3779B97F4A7C15);
}

static void fill_page(size_t p, uint32_t g)
{
	uint64_t *pg = mem + p * WORDS;

	for (size_t w = 0; w < WORDS; w++)
		pg[w] = expect(p, w, g);
}

static void *writer(void *arg)
{
	uint64_t x = 0x2545F4914F6CDD1DULL;
	struct timespec ts = { 0, 200000 };

	(void)arg;
	while (!atomic_load(&stop)) {
		/* Rewrite a few random pages, then pause: a tenant busy but not spinning. */
		for (int i = 0; i < 16; i++) {
			size_t p;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p = (size_t)(x % npages);
			gens[p]++;
			fill_page(p, gens[p]);
			atomic_fetch_add(&writes, 1);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t bad = 0, first_bad = SIZE_MAX;
	pthread_t th;
	sigset_t set;
	int sig;

	if (mib == 0 || mib > (1u << 20)) {
		fprintf(stderr, "demo_tenant: bad size '%s' (MiB)\n", argv[1]);
		return 2;
	}
	npages = mib * (1u << 20) / PAGE;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gens = calloc(npages, sizeof(*gens));
	if (mem == MAP_FAILED || !gens) {
		fprintf(stderr, "demo_tenant: cannot allocate %zu MiB: %s\n", mib, strerror(errno));
		return 2;
	}
	for (size_t p = 0; p < npages; p++)
		fill_page(p, 0);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&th, NULL, writer, NULL) != 0) {
		fprintf(stderr, "demo_tenant: cannot start the writer thread\n");
		return 2;
	}
	printf("ready %d 0x%" PRIxPTR "-0x%" PRIxPTR "\n", (int)getpid(), (uintptr_t)mem,
	       (uintptr_t)mem + npages * PAGE);
	fflush(stdout);

	sigwait(&set, &sig);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);

	for (size_t p = 0; p < npages; p++) {
		const uint64_t *pg = mem + p * WORDS;

		for (size_t w = 0; w < WORDS; w++)
			if (pg[w] != expect(p, w, gens[p])) {
				if (first_bad == SIZE_MAX)
					first_bad = p;
				bad++;
				break;
			}
	}
	if (bad) {
		printf("data check: FAILED, %zu of %zu pages wrong (first at 0x%" PRIxPTR ")\n",
		       bad, npages, (uintptr_t)(mem + first_bad * WORDS));
		return 1;
	}
	printf("data check: OK, %zu pages intact after %" PRIuFAST64 " writes while running\n",
	       npages, atomic_load(&writes));
	return 0;
}
