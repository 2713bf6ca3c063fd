/*
 * vm-sanity: checks, run inside a qemu guest, that the kernel offers what
 * migd needs: move_pages(2) between NUMA nodes, and a full-mode userfaultfd
 * with the features it reports. Built statically into build/vm/ by
 * tests/vm/build so that it runs in the busybox guest without libraries.
 *
 *   vm-sanity move-pages          move a page from node 0 to 1 and back
 *   vm-sanity uffd [--expect-move|--expect-no-move]
 *                                 create a full-mode uffd, print features
 *
 * Exit status: 0 pass, 1 fail, 77 skip (with the reason on stdout).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Debian 12's headers are Linux 6.1: the later uffd bits are defined here
 * (values from include/uapi/linux/userfaultfd.h of Linux 6.8+).
 */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC	    0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif

#define MPOL_MF_MOVE (1 << 1)

static long page_size;

static int fail(const char *what)
{
	printf("FAIL: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Returns the node of the page at addr, or -errno from move_pages(2). */
static int page_node(void *addr)
{
	void *pages[1] = { addr };
	int status[1] = { -1 };

	if (syscall(SYS_move_pages, 0, 1UL, pages, NULL, status, 0) < 0)
		return -errno;
	return status[0];
}

/* Moves the page at addr to node; returns the resulting status. */
static int move_page(void *addr, int node)
{
	void *pages[1] = { addr };
	int nodes[1] = { node };
	int status[1] = { -1 };

	if (syscall(SYS_move_pages, 0, 1UL, pages, nodes, status, MPOL_MF_MOVE) < 0)
		return -errno;
	return status[0];
}

static int nodes_online(void)
{
	char buf[256] = "";
	FILE *f = fopen("/sys/devices/system/node/online", "re");
	int n = 0, a, b;
	char *p;

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	/* The format is a list of ranges: "0-1", "0,2-3". */
	for (p = strtok(buf, ",\n"); p; p = strtok(NULL, ",\n")) {
		if (sscanf(p, "%d-%d", &a, &b) == 2)
			n += b - a + 1;
		else if (sscanf(p, "%d", &a) == 1)
			n++;
	}
	return n;
}

static int cmd_move_pages(void)
{
	static const int route[] = { 0, 1, 0 };
	unsigned char *mem;
	size_t i;
	int r;

	if (nodes_online() < 2) {
		printf("SKIP: fewer than 2 NUMA nodes online\n");
		return 77;
	}
	mem = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap");
	memset(mem, 0x5a, page_size);
	printf("page %p starts on node %d\n", (void *)mem, page_node(mem));
	for (i = 0; i < sizeof(route) / sizeof(route[0]); i++) {
		r = move_page(mem, route[i]);
		if (r != route[i]) {
			printf("FAIL: move_pages to node %d: status %d (%s)\n", route[i], r,
			       r < 0 ? strerror(-r) : "wrong node");
			return 1;
		}
		r = page_node(mem);
		if (r != route[i]) {
			printf("FAIL: after moving to node %d the page is on %d\n", route[i], r);
			return 1;
		}
		printf("moved to node %d: ok\n", r);
	}
	for (i = 0; i < (size_t)page_size; i++)
		if (mem[i] != 0x5a) {
			printf("FAIL: page contents changed at byte %zu\n", i);
			return 1;
		}
	printf("contents intact\n");
	return 0;
}

static const struct {
	uint64_t bit;
	const char *name;
} features[] = {
	{ UFFD_FEATURE_PAGEFAULT_FLAG_WP, "PAGEFAULT_FLAG_WP" },
	{ UFFD_FEATURE_EVENT_FORK, "EVENT_FORK" },
	{ UFFD_FEATURE_EVENT_REMAP, "EVENT_REMAP" },
	{ UFFD_FEATURE_EVENT_REMOVE, "EVENT_REMOVE" },
	{ UFFD_FEATURE_MISSING_HUGETLBFS, "MISSING_HUGETLBFS" },
	{ UFFD_FEATURE_MISSING_SHMEM, "MISSING_SHMEM" },
	{ UFFD_FEATURE_EVENT_UNMAP, "EVENT_UNMAP" },
	{ UFFD_FEATURE_SIGBUS, "SIGBUS" },
	{ UFFD_FEATURE_THREAD_ID, "THREAD_ID" },
	{ UFFD_FEATURE_MINOR_HUGETLBFS, "MINOR_HUGETLBFS" },
	{ UFFD_FEATURE_MINOR_SHMEM, "MINOR_SHMEM" },
	{ UFFD_FEATURE_EXACT_ADDRESS, "EXACT_ADDRESS" },
	{ UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "WP_HUGETLBFS_SHMEM" },
	{ UFFD_FEATURE_WP_UNPOPULATED, "WP_UNPOPULATED" },
	{ UFFD_FEATURE_POISON, "POISON" },
	{ UFFD_FEATURE_WP_ASYNC, "WP_ASYNC" },
	{ UFFD_FEATURE_MOVE, "MOVE" },
};

static int cmd_uffd(const char *expect)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	struct uffdio_register reg;
	uint64_t unknown;
	size_t i;
	int fd, devfd;
	void *mem;

	/* Full mode (no UFFD_USER_MODE_ONLY): migd never falls back to it. */
	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fail("userfaultfd(O_CLOEXEC|O_NONBLOCK), full mode");
	printf("userfaultfd(2) full mode: ok\n");

	devfd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (devfd < 0) {
		printf("/dev/userfaultfd: %s\n", strerror(errno));
	} else {
		int fd2 = ioctl(devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC);

		if (fd2 < 0)
			return fail("USERFAULTFD_IOC_NEW");
		printf("/dev/userfaultfd USERFAULTFD_IOC_NEW: ok\n");
		close(fd2);
		close(devfd);
	}

	/* Asking for no feature makes the kernel report all it supports. */
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return fail("UFFDIO_API");
	printf("UFFDIO_API features 0x%llx:", (unsigned long long)api.features);
	unknown = api.features;
	for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (api.features & features[i].bit) {
			printf(" %s", features[i].name);
			unknown &= ~features[i].bit;
		}
	if (unknown)
		printf(" (unknown 0x%llx)", (unsigned long long)unknown);
	printf("\n");

	mem = mmap(NULL, 16 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	if (mem == MAP_FAILED)
		return fail("mmap");
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)mem;
	reg.range.len = 16 * page_size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
		return fail("UFFDIO_REGISTER(MISSING)");
	printf("UFFDIO_REGISTER ioctls 0x%llx: COPY=%d ZEROPAGE=%d WAKE=%d MOVE=%d\n",
	       (unsigned long long)reg.ioctls, !!(reg.ioctls & (1ULL << _UFFDIO_COPY)),
	       !!(reg.ioctls & (1ULL << _UFFDIO_ZEROPAGE)), !!(reg.ioctls & (1ULL << _UFFDIO_WAKE)),
	       !!(reg.ioctls & (1ULL << _UFFDIO_MOVE)));

	if (expect && strcmp(expect, "--expect-move") == 0) {
		if (!(api.features & UFFD_FEATURE_MOVE) || !(reg.ioctls & (1ULL << _UFFDIO_MOVE))) {
			printf("FAIL: this kernel should report UFFD_FEATURE_MOVE and "
			       "UFFDIO_MOVE\n");
			return 1;
		}
	} else if (expect && strcmp(expect, "--expect-no-move") == 0) {
		if ((api.features & UFFD_FEATURE_MOVE) || (reg.ioctls & (1ULL << _UFFDIO_MOVE))) {
			printf("FAIL: this kernel should not report UFFD_FEATURE_MOVE\n");
			return 1;
		}
	} else if (expect) {
		fprintf(stderr, "vm-sanity: unknown option %s\n", expect);
		return 2;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "move-pages") == 0)
		return cmd_move_pages();
	if (argc >= 2 && strcmp(argv[1], "uffd") == 0)
		return cmd_uffd(argc >= 3 ? argv[2] : NULL);
	fprintf(stderr, "usage: vm-sanity move-pages | uffd [--expect-move|--expect-no-move]\n");
	return 2;
}
