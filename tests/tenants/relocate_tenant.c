/*
 * relocate_tenant.c - a tenant for the relocate and compact tests.
 *
 * It builds the layout compact exists for: block 0 mapped at a 2 MiB
 * aligned address A and filled; block 1 mapped elsewhere, filled, then
 * mremapped right behind it to A + SIZE (so the two VMAs are neighbours
 * with equal flags that do not merge: block 1 keeps its old anon_vma and
 * index); block 2 mapped elsewhere (aligned), filled, left there, with the
 * address range right after block 1 left free for a relocation.
 *
 *   relocate_tenant [-s SIZE] [-m thp|small|default] [-w WRITERS]
 *
 *   -s  size of each block (default 8M, a multiple of 2M)
 *   -m  thp: MADV_HUGEPAGE (default); small: MADV_NOHUGEPAGE; default: none
 *   -w  threads that keep reading and rewriting blocks 0 and 1 (never
 *       block 2, whose address a relocation changes), checking every word
 *       they read
 *
 * Every page holds a pattern of its logical number (block * pages + page),
 * wherever it is. Output: "a ADDR", "d ADDR", "size N", "ready". Commands:
 * "moved PAGE N ADDR": logical pages PAGE..PAGE+N-1 are now at ADDR;
 * "verify": "ok" or "bad PAGE"; EOF or "exit": check and exit 1 if bad.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mig.h"

#define PAGE	    4096UL
#define PMD	    (2UL << 20)
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

static size_t npages;		  /* per block */
static uint64_t *volatile *where; /* address of each logical page */
static volatile int stop;
static volatile unsigned long writer_errors, writer_rounds;

NO_SANITIZE static uint64_t word_value(size_t page, size_t word)
{
	return (UINT64_C(0x9e3779b97f4a7c15) * (page + 1)) ^ ((uint64_t)word << 3) ^ 0xa5a5;
}

NO_SANITIZE static void fill(uint64_t *p, size_t first)
{
	for (size_t pg = 0; pg < npages; pg++)
		for (size_t w = 0; w < PAGE / 8; w++)
			p[pg * PAGE / 8 + w] = word_value(first + pg, w);
}

NO_SANITIZE static long verify(void)
{
	for (size_t pg = 0; pg < 3 * npages; pg++)
		for (size_t w = 0; w < PAGE / 8; w++)
			if (where[pg][w] != word_value(pg, w))
				return (long)pg;
	return -1;
}

/* Read-check and rewrite random pages of blocks 0 and 1 (their addresses stay). */
NO_SANITIZE static void *writer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!stop) {
		size_t pg = (size_t)rand_r(&seed) % (2 * npages);
		volatile uint64_t *p = where[pg];
		size_t w = (size_t)rand_r(&seed) % (PAGE / 8);

		if (p[w] != word_value(pg, w))
			writer_errors++;
		p[w] = word_value(pg, w);
		writer_rounds++;
	}
	return NULL;
}

static void die(const char *what)
{
	printf("error %s: %s\n", what, strerror(errno));
	exit(2);
}

/* An anonymous mapping of len at a PMD-aligned address (anywhere, or at want). */
static void *map_aligned(size_t len, int advice)
{
	char *r = mmap(NULL, len + PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (r == MAP_FAILED)
		die("mmap");
	a = ((uintptr_t)r + PMD - 1) & ~(PMD - 1);
	if (a > (uintptr_t)r)
		munmap(r, a - (uintptr_t)r);
	munmap((char *)a + len, (uintptr_t)r + len + PMD - a - len);
	if (advice >= 0 && madvise((void *)a, len, advice) < 0)
		die("madvise");
	return (void *)a;
}

int main(int argc, char **argv)
{
	uint64_t size = 8 << 20;
	int advice = MADV_HUGEPAGE, nwriters = 0, opt;
	char line[256];
	pthread_t th[16];
	char *a, *b, *d, *hole;

	while ((opt = getopt(argc, argv, "s:m:w:")) != -1) {
		switch (opt) {
		case 's':
			if (mig_parse_size(optarg, &size) < 0 || !size || size % PMD)
				die("-s");
			break;
		case 'm':
			advice = !strcmp(optarg, "thp")	    ? MADV_HUGEPAGE
				 : !strcmp(optarg, "small") ? MADV_NOHUGEPAGE
							    : -1;
			break;
		case 'w':
			nwriters = atoi(optarg);
			if (nwriters < 0 || nwriters > 16)
				die("-w");
			break;
		default:
			return 2;
		}
	}
	npages = size / PAGE;
	where = calloc(3 * npages, sizeof(*where));
	if (!where)
		die("calloc");

	/*
	 * Reserve A .. A + 3 * size (block 0, then PROT_NONE), so that nothing
	 * else is placed there; the last third is freed just before "ready".
	 */
	a = map_aligned(3 * size, advice);
	if (mprotect(a + size, 2 * size, PROT_NONE) < 0)
		die("mprotect");
	fill((uint64_t *)a, 0);
	/* Block 1: filled elsewhere, then moved behind block 0. */
	b = map_aligned(size, advice);
	fill((uint64_t *)b, npages);
	if (mremap(b, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, a + size) != a + size)
		die("mremap");
	/* Block 2 elsewhere, with a guard page before it so it merges with nothing. */
	hole = map_aligned(size + PMD, advice);
	munmap(hole, PMD);
	d = hole + PMD;
	fill((uint64_t *)d, 2 * npages);
	for (size_t pg = 0; pg < npages; pg++) {
		where[pg] = (uint64_t *)(a + pg * PAGE);
		where[npages + pg] = (uint64_t *)(a + size + pg * PAGE);
		where[2 * npages + pg] = (uint64_t *)(d + pg * PAGE);
	}
	for (int i = 0; i < nwriters; i++)
		if (pthread_create(&th[i], NULL, writer, (void *)(uintptr_t)(i + 1)) != 0)
			die("pthread_create");

	munmap(a + 2 * size, size);
	printf("a 0x%lx\nd 0x%lx\nsize %lu\nready\n", (unsigned long)a, (unsigned long)d,
	       (unsigned long)size);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long pg, n, addr;

		if (sscanf(line, "moved %lu %lu 0x%lx", &pg, &n, &addr) == 3) {
			for (size_t k = 0; k < n && pg + k < 3 * npages; k++)
				where[pg + k] = (uint64_t *)(addr + k * PAGE);
			printf("ok\n");
		} else if (!strncmp(line, "verify", 6)) {
			long bad = verify();

			if (bad >= 0)
				printf("bad %ld\n", bad);
			else if (writer_errors)
				printf("bad writers saw %lu wrong words\n", writer_errors);
			else
				printf("ok %lu\n", writer_rounds);
		} else if (!strncmp(line, "exit", 4))
			break;
		fflush(stdout);
	}
	stop = 1;
	for (int i = 0; i < nwriters; i++)
		pthread_join(th[i], NULL);
	return verify() >= 0 || writer_errors ? 1 : 0;
}
