/*
 * proc_scan.c - the window scan's PAGEMAP_SCAN answer (mig__scan_pages)
 * against the pagemap + kpageflags one (mig_query_pages), page by page, on
 * a child of ours holding every kind of page the scan tells apart: 4 KiB
 * pages written, half of them write-protected through the child's own
 * userfaultfd; PMD THPs written, one of them write-protected; pages read,
 * never written (the zero page where the kernel maps it for a read: the
 * 6.18 host here maps a page of its own); holes; a DONTNEED'd stretch. Present, swapped,
 * zero page, uffd-wp, THP and node must agree. It prints what a 2 MiB
 * window's scan costs each way. Skips where the kernel has no PAGEMAP_SCAN.
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "compat.h"
#include "integration/migrate_common.h"
#include "procfs.h"

#define PG    4096UL
#define PMD   (2UL << 20)
#define SMALL (8 * PMD) /* 4 KiB pages */
#define HUGE  (8 * PMD) /* THPs */
#define ZERO  (2 * PMD) /* read only: zero pages */
#define SPAN  (SMALL + HUGE + ZERO)

static void child(int ready)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	char *base =
		mmap(NULL, SPAN + PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char sink = 0;
	uint64_t addr;
	int uffd;

	if (base == MAP_FAILED)
		_exit(2);
	base = (char *)(((uintptr_t)base + PMD - 1) & ~(PMD - 1));
	(void)madvise(base, SMALL, MADV_NOHUGEPAGE);
	(void)madvise(base + SMALL, HUGE, MADV_HUGEPAGE);
	(void)madvise(base + SMALL + HUGE, ZERO, MADV_NOHUGEPAGE);
	/* 4 KiB pages: every third page left a hole. */
	for (size_t i = 0; i < SMALL / PG; i++)
		if (i % 3)
			base[i * PG] = 1;
	memset(base + SMALL, 7, HUGE);
	for (size_t i = 0; i < ZERO / PG; i++)
		sink += base[SMALL + HUGE + i * PG];
	(void)madvise(base + PMD, 16 * PG, MADV_DONTNEED);
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) == 0) {
		struct uffdio_register reg = { .range = { (uintptr_t)base, SMALL + HUGE },
					       .mode = UFFDIO_REGISTER_MODE_WP };
		struct uffdio_writeprotect wp = { .range = { (uintptr_t)base, SMALL / 2 },
						  .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		struct uffdio_writeprotect wph = { .range = { (uintptr_t)base + SMALL, PMD },
						   .mode = UFFDIO_WRITEPROTECT_MODE_WP };

		if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0) {
			(void)ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
			(void)ioctl(uffd, UFFDIO_WRITEPROTECT, &wph);
		}
	}
	addr = (uintptr_t)base;
	if (write(ready, &addr, sizeof(addr)) != sizeof(addr))
		_exit(3);
	pause();
	_exit(0);
}

/* The flags the window scan reads. */
#define SCAN_FLAGS \
	(MIG_PAGE_PRESENT | MIG_PAGE_SWAPPED | MIG_PAGE_ZERO | MIG_PAGE_UFFD_WP | MIG_PAGE_THP)

int main(void)
{
	size_t n = SPAN / PG, bad = 0, wp = 0, thp = 0, zero = 0, present = 0;
	struct mig_pageinfo *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
	double t_old = 1e9, t_new = 1e9;
	uint64_t base;
	int p[2], r;
	pid_t pid;

	if (geteuid() != 0)
		SKIP("needs root (kpageflags, userfaultfd in the child)");
	if (!a || !b || pipe(p))
		FAIL("setup: %m");
	pid = fork();
	if (pid == 0)
		child(p[1]);
	if (read(p[0], &base, sizeof(base)) != sizeof(base)) {
		kill(pid, SIGKILL);
		FAIL("the child did not start");
	}
	r = mig__scan_pages(pid, base, n, b);
	if (r == 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		SKIP("the kernel has no PAGEMAP_SCAN (6.7+)");
	}
	if (r < 0 || mig_query_pages(pid, base, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, a) < 0) {
		kill(pid, SIGKILL);
		FAIL("scan: %s", strerror(-r));
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t fa = a[i].flags & SCAN_FLAGS, fb = b[i].flags & SCAN_FLAGS;
		bool node_ok = (fa & MIG_PAGE_PRESENT) ? a[i].node == b[i].node : true;

		present += !!(fa & MIG_PAGE_PRESENT);
		wp += !!(fa & MIG_PAGE_UFFD_WP) && (fa & MIG_PAGE_PRESENT);
		thp += !!(fa & MIG_PAGE_THP);
		zero += !!(fa & MIG_PAGE_ZERO);
		if (fa != fb || !node_ok) {
			if (bad++ < 10)
				printf("page %zu: pagemap flags %#x node %d, PAGEMAP_SCAN flags "
				       "%#x "
				       "node %d\n",
				       i, fa, a[i].node, fb, b[i].node);
		}
	}
	/* What one window's scan costs each way (best of 20 over the 4 KiB part). */
	for (int k = 0; k < 20; k++) {
		double t0 = now_s();

		if (mig_query_pages(pid, base, PMD / PG, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, a) < 0)
			FAIL("mig_query_pages");
		t_old = MIN(t_old, now_s() - t0);
		t0 = now_s();
		if (mig__scan_pages(pid, base, PMD / PG, b) != 0)
			FAIL("mig__scan_pages");
		t_new = MIN(t_new, now_s() - t0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("# proc_scan: %zu pages: %zu present, %zu uffd-wp, %zu THP, %zu zero; %zu differ\n",
	       n, present, wp, thp, zero, bad);
	printf("# proc_scan: a 2 MiB window of 4 KiB pages: pagemap + kpageflags + nodes %.0f us, "
	       "PAGEMAP_SCAN + nodes %.0f us\n",
	       t_old * 1e6, t_new * 1e6);
	if (bad)
		FAIL("%zu pages differ", bad);
	/* Zero pages only where the kernel maps the zero page on a read (not on every host). */
	if (!wp || !thp || present == n)
		FAIL("the child's pages are not what the test needs (wp %zu, THP %zu, present %zu)",
		     wp, thp, present);
	printf("PASS\n");
	return 0;
}
