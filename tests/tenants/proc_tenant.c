/*
 * proc_tenant.c - a tenant for the /proc reader, placement and split tests.
 *
 * It maps one anonymous private region, fills it with a pattern that
 * depends on each word's position, prints where everything is, and then
 * answers commands on stdin until EOF. At the end it checks its pattern
 * and exits 1 if anything was changed, so a test can tell that reading or
 * splitting its memory left the data alone.
 *
 *   proc_tenant [-s SIZE] [-m small|thp|default] [-t all|half|none] [-n ANON_NAME] [-f]
 *
 *   -s  region size (default 64M); thp mode aligns the region to 2 MiB
 *   -m  small: MADV_NOHUGEPAGE; thp: MADV_HUGEPAGE; default: nothing
 *   -t  which pages to write: all, every other page (half), none
 *   -n  name the region with PR_SET_VMA_ANON_NAME (shown as [anon:NAME])
 *   -f  also map a deleted file whose path has spaces
 *
 * Output: "region START END", optionally "file START END" and
 * "anon-name ok|unsupported", then "ready". Commands: "verify" answers
 * "ok" or "bad PAGE"; "touch OFFSET LENGTH" (bytes from the region's
 * start, page aligned) writes the pattern into those pages, in order, and
 * answers "ok" (a test switches the kernel's mTHP sizes between touches,
 * so each stretch gets folios of the size it wants); "exit" ends like EOF.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "mig.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA	     0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static uint64_t *region;
static size_t region_len, page_size;
static int touch_mode;	 /* 0 none, 1 all, 2 half */
static uint8_t *touched; /* pages written by "touch" */

/*
 * The pattern loops run over up to a gigabyte; under SANITIZE=1 they would
 * dominate the test time while checking nothing of libmig.
 */
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

NO_SANITIZE static uint64_t word_value(size_t page, size_t word)
{
	return (UINT64_C(0x9e3779b97f4a7c15) * (page + 1)) ^ ((uint64_t)word << 3) ^ 0x5a5a;
}

NO_SANITIZE static bool page_written(size_t page)
{
	return touch_mode == 1 || (touch_mode == 2 && page % 2 == 0) || touched[page];
}

/* Write the pattern into pages [first, end) that page_written names. */
NO_SANITIZE static void fill(size_t first, size_t end)
{
	size_t words = page_size / sizeof(uint64_t);

	for (size_t pg = first; pg < end; pg++) {
		if (!page_written(pg))
			continue;
		for (size_t w = 0; w < words; w++)
			region[pg * words + w] = word_value(pg, w);
	}
}

/* "touch OFFSET LENGTH": 0, or -1 when the stretch is not inside the region. */
static int touch_cmd(const char *args)
{
	unsigned long long off, len;

	if (sscanf(args, "%llu %llu", &off, &len) != 2 || off % page_size || len % page_size ||
	    off > region_len || len > region_len - off)
		return -1;
	for (size_t pg = off / page_size; pg < (off + len) / page_size; pg++)
		touched[pg] = 1;
	fill(off / page_size, (off + len) / page_size);
	return 0;
}

/* Returns the first bad page, or -1 when every page holds what it should. */
NO_SANITIZE static long verify(void)
{
	size_t words = page_size / sizeof(uint64_t);

	for (size_t pg = 0; pg < region_len / page_size; pg++) {
		for (size_t w = 0; w < words; w++) {
			uint64_t want = page_written(pg) ? word_value(pg, w) : 0;

			if (region[pg * words + w] != want)
				return (long)pg;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *mode = "default", *touch = "all", *name = NULL;
	uint64_t size = 64 << 20;
	bool want_file = false;
	char line[128];
	size_t map_len;
	char *p;
	int c;

	while ((c = getopt(argc, argv, "s:m:t:n:f")) != -1) {
		switch (c) {
		case 's':
			if (mig_parse_size(optarg, &size) < 0 || size == 0) {
				fprintf(stderr, "bad size %s\n", optarg);
				return 2;
			}
			break;
		case 'm':
			mode = optarg;
			break;
		case 't':
			touch = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'f':
			want_file = true;
			break;
		default:
			return 2;
		}
	}
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	region_len = (size_t)size;
	touch_mode = strcmp(touch, "all") == 0 ? 1 : strcmp(touch, "half") == 0 ? 2 : 0;

	/* Over-map by 2 MiB and trim, so that THP mode gets an aligned region. */
	map_len = region_len + (2 << 20);
	p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	{
		uintptr_t a = ((uintptr_t)p + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1);

		if (a > (uintptr_t)p)
			munmap(p, a - (uintptr_t)p);
		munmap((char *)a + region_len, (uintptr_t)p + map_len - a - region_len);
		region = (uint64_t *)a;
	}
	if (strcmp(mode, "thp") == 0)
		madvise(region, region_len, MADV_HUGEPAGE);
	else if (strcmp(mode, "small") == 0)
		madvise(region, region_len, MADV_NOHUGEPAGE);
	touched = calloc(region_len / page_size, 1);
	if (!touched) {
		perror("calloc");
		return 2;
	}
	fill(0, region_len / page_size);

	printf("region 0x%lx 0x%lx\n", (unsigned long)(uintptr_t)region,
	       (unsigned long)((uintptr_t)region + region_len));
	if (name) {
		int r = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)region, region_len,
			      (unsigned long)name);

		printf("anon-name %s\n", r == 0 ? "ok" : "unsupported");
	}
	if (want_file) {
		char path[] = "/tmp/mig proc tenant XXXXXX";
		int fd = mkstemp(path);
		void *f;

		if (fd < 0 || ftruncate(fd, (off_t)page_size) < 0) {
			perror("file");
			return 2;
		}
		f = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0);
		unlink(path);
		close(fd);
		if (f == MAP_FAILED) {
			perror("mmap file");
			return 2;
		}
		printf("file 0x%lx 0x%lx %s\n", (unsigned long)(uintptr_t)f,
		       (unsigned long)((uintptr_t)f + page_size), path);
	}
	printf("ready\n");
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "verify", 6) == 0) {
			long bad = verify();

			if (bad < 0)
				printf("ok\n");
			else
				printf("bad %ld\n", bad);
			fflush(stdout);
		} else if (strncmp(line, "touch ", 6) == 0) {
			printf("%s\n", touch_cmd(line + 6) == 0 ? "ok" : "bad touch");
			fflush(stdout);
		} else if (strncmp(line, "exit", 4) == 0) {
			break;
		}
	}
	if (verify() >= 0) {
		fprintf(stderr, "proc_tenant: memory corrupted at page %ld\n", verify());
		return 1;
	}
	return 0;
}
