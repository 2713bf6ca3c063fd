/*
 * floor.h (bench) - the floor chain: the kernel operations a migration
 * window is made of, run back to back on an idle child process with no
 * migd, no ptrace and no writers, window after window (2 MiB each):
 *
 *   scan     PAGEMAP_SCAN of the window (a pagemap read where the kernel
 *            has none) and move_pages(2) asking for the node of each page
 *   freeze   UFFDIO_WRITEPROTECT of the window, through the child's uffd
 *   stage    process_vm_readv of the window into our own staging buffer
 *   zap      the child moves the window into its scratch area with
 *            UFFDIO_MOVE and drops it there (madvise(MADV_DONTNEED) of the
 *            window where the kernel has no UFFDIO_MOVE); it is told by a
 *            pipe, once per batch of FLOOR_BATCH windows, so that waking a
 *            process on a loaded machine does not count as kernel work
 *   fill     UFFDIO_COPY of the window from staging, through the child's
 *            uffd (taken with pidfd_getfd): the cross-process copy
 *   thaw     UFFDIO_WRITEPROTECT off
 *   collapse MADV_COLLAPSE by process_madvise(2), THP tenants only
 *
 * What migd adds above this (ptrace injections, the fault thread, passes,
 * its own bookkeeping) is what the bench's "x floor" column measures. The
 * child checks every page at the end: a floor that loses data is no floor.
 */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <numaif.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "compat.h"
#include "integration/migrate_common.h"

#define FLOOR_PAGE  4096UL
#define FLOOR_PMD   (2UL << 20)
#define FLOOR_NPG   (FLOOR_PMD / FLOOR_PAGE)
#define FLOOR_MAGIC UINT64_C(0x666c6f6f72000000)
/* Windows per batch: each phase runs for a batch, the zap with one round trip. */
#define FLOOR_BATCH 32

enum { FL_SCAN, FL_FREEZE, FL_STAGE, FL_ZAP, FL_FILL, FL_THAW, FL_COLLAPSE, FL_N };
static const char *const floor_phase[FL_N] = { "scan", "freeze", "stage", "zap",
					       "fill", "thaw", "collapse" };

struct floor_result {
	int ok;		    /* the chain ran and the child found every page intact */
	int move;	    /* the zap was UFFDIO_MOVE (else madvise) */
	int pm_scan;	    /* the scan was PAGEMAP_SCAN (else a pagemap read) */
	double secs, gbs;   /* the whole chain */
	double cpu_s;	    /* our CPU time over the chain (the child's zap not counted, as for migd) */
	double phase[FL_N]; /* seconds per phase */
	char why[160];
};

/* The child: its memory, its uffd, and a zap on request. */
static void floor_child(int thp, uint64_t size, int cmd_fd, int reply_fd)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	uint64_t feat, cmd[2];
	char *base, *scratch;
	size_t bad = 0;
	int uffd, move;

	base = mmap(NULL, size + FLOOR_PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	scratch = mmap(NULL, 2 * FLOOR_PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (base == MAP_FAILED || scratch == MAP_FAILED)
		_exit(2);
	base = (char *)(((uintptr_t)base + FLOOR_PMD - 1) & ~(FLOOR_PMD - 1));
	scratch = (char *)(((uintptr_t)scratch + FLOOR_PMD - 1) & ~(FLOOR_PMD - 1));
	(void)madvise(base, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	(void)madvise(scratch, FLOOR_PMD, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (uint64_t i = 0; i < size / FLOOR_PAGE; i++) {
		uint64_t *p = (uint64_t *)(base + i * FLOOR_PAGE);

		for (size_t w = 0; w < FLOOR_PAGE / 8; w++)
			p[w] = FLOOR_MAGIC ^ (i * 512 + w);
	}
	/* Which features the kernel has, asked on a uffd of its own (API goes once per uffd). */
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0)
		_exit(3);
	feat = api.features;
	close(uffd);
	move = !!(feat & UFFD_FEATURE_MOVE);
	api = (struct uffdio_api){ .api = UFFD_API,
				   .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP |
					       (move ? UFFD_FEATURE_MOVE : 0) };
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0)
		_exit(4);
	reg = (struct uffdio_register){ .range = { (uintptr_t)base, size },
					.mode = UFFDIO_REGISTER_MODE_MISSING |
						UFFDIO_REGISTER_MODE_WP };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		_exit(5);
	reg = (struct uffdio_register){ .range = { (uintptr_t)scratch, FLOOR_PMD },
					.mode = UFFDIO_REGISTER_MODE_MISSING };
	if (move && ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		_exit(6);
	{
		uint64_t hello[4] = { (uint64_t)uffd, (uintptr_t)base, (uint64_t)move, 0 };

		if (write(reply_fd, hello, sizeof(hello)) != sizeof(hello))
			_exit(7);
	}
	/* A batch: cmd[1] windows from offset cmd[0]. */
	while (read(cmd_fd, cmd, sizeof(cmd)) == sizeof(cmd) && cmd[0] != UINT64_MAX) {
		char ok = 1;

		for (uint64_t off = cmd[0]; off < cmd[0] + cmd[1] * FLOOR_PMD; off += FLOOR_PMD) {
			if (move) {
				struct uffdio_move mv = { .dst = (uintptr_t)scratch,
							  .src = (uintptr_t)base + off,
							  .len = FLOOR_PMD,
							  .mode = UFFDIO_MOVE_MODE_DONTWAKE };

				if (ioctl(uffd, UFFDIO_MOVE, &mv) < 0 ||
				    mv.move != (int64_t)FLOOR_PMD)
					ok = 0;
				(void)madvise(scratch, FLOOR_PMD, MADV_DONTNEED);
			} else if (madvise(base + off, FLOOR_PMD, MADV_DONTNEED) < 0) {
				ok = 0;
			}
		}
		if (write(reply_fd, &ok, 1) != 1)
			_exit(8);
	}
	for (uint64_t i = 0; i < size / FLOOR_PAGE; i++) {
		const uint64_t *p = (const uint64_t *)(base + i * FLOOR_PAGE);

		for (size_t w = 0; w < FLOOR_PAGE / 8; w++)
			if (p[w] != (FLOOR_MAGIC ^ (i * 512 + w))) {
				bad++;
				break;
			}
	}
	_exit(bad ? 1 : 0);
}

/* CPU seconds the process has used (utime + stime of /proc/PID/stat). */
static double floor_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, stime = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || sscanf(p, ") %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stime) != 2)
		return 0;
	return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* One window's scan: PAGEMAP_SCAN (or pagemap) and the nodes. */
static int floor_scan(int pm, pid_t pid, uint64_t a, int *pm_scan)
{
	struct page_region vec[FLOOR_NPG];
	void *pages[FLOOR_NPG];
	int status[FLOOR_NPG];

	if (*pm_scan) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = a,
			.end = a + FLOOR_PMD,
			.vec = (uintptr_t)vec,
			.vec_len = FLOOR_NPG,
			.category_anyof_mask = PAGE_IS_PRESENT,
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_HUGE,
		};

		if (ioctl(pm, PAGEMAP_SCAN, &arg) < 0) {
			if (errno != ENOTTY && errno != EINVAL)
				return -errno;
			*pm_scan = 0;
		}
	}
	if (!*pm_scan) {
		uint64_t ent[FLOOR_NPG];

		if (pread(pm, ent, sizeof(ent), (off_t)(a / FLOOR_PAGE * 8)) != sizeof(ent))
			return -EIO;
	}
	for (size_t i = 0; i < FLOOR_NPG; i++)
		pages[i] = (void *)(uintptr_t)(a + i * FLOOR_PAGE);
	return move_pages(pid, FLOOR_NPG, pages, NULL, status, 0) < 0 ? -errno : 0;
}

static int floor_wp(int ufd, uint64_t a, int on)
{
	struct uffdio_writeprotect wp = { .range = { a, FLOOR_PMD },
					  .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };

	return ioctl(ufd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

static int floor_fill(int ufd, uint64_t a, const char *staging)
{
	for (uint64_t done = 0; done < FLOOR_PMD;) {
		struct uffdio_copy c = { .dst = a + done,
					 .src = (uintptr_t)staging + done,
					 .len = FLOOR_PMD - done };

		if (ioctl(ufd, UFFDIO_COPY, &c) < 0 && errno != EAGAIN)
			return -errno;
		if (c.copy > 0)
			done += (uint64_t)c.copy;
	}
	return 0;
}

/* Run the chain over size bytes of an idle child (THP or 4 KiB pages). */
static void floor_chain(int thp, uint64_t size, struct floor_result *fr)
{
	int to_child[2], from_child[2], pidfd = -1, ufd = -1, pm = -1, st = 0;
	uint64_t hello[4], a0, stop[2] = { UINT64_MAX, 0 };
	char *staging = NULL, path[64];
	double t0, t, tall;
	pid_t pid;

	memset(fr, 0, sizeof(*fr));
	fr->pm_scan = 1;
	if (pipe(to_child) || pipe(from_child)) {
		snprintf(fr->why, sizeof(fr->why), "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		floor_child(thp, size, to_child[0], from_child[1]);
	}
	close(to_child[0]);
	close(from_child[1]);
	if (pid < 0 || read(from_child[0], hello, sizeof(hello)) != sizeof(hello)) {
		snprintf(fr->why, sizeof(fr->why), "the child did not start");
		goto out;
	}
	a0 = hello[1];
	fr->move = (int)hello[2];
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	ufd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)hello[0], 0);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	staging = mmap(NULL, FLOOR_BATCH * FLOOR_PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ufd < 0 || pm < 0 || staging == MAP_FAILED) {
		snprintf(fr->why, sizeof(fr->why), "pidfd_getfd/pagemap/staging: %s",
			 strerror(errno));
		goto out;
	}
	memset(staging, 0, FLOOR_BATCH * FLOOR_PMD);
	tall = now_s();
	fr->cpu_s = -floor_cpu(getpid());
	for (uint64_t b0 = 0; b0 < size; b0 += FLOOR_BATCH * FLOOR_PMD) {
		uint64_t nw = (size - b0) / FLOOR_PMD < FLOOR_BATCH ? (size - b0) / FLOOR_PMD : FLOOR_BATCH;
		uint64_t cmd[2] = { b0, nw };
		char ok = 0;
		int r = 0;

		for (uint64_t k = 0; k < nw && r >= 0; k++) {
			uint64_t a = a0 + b0 + k * FLOOR_PMD;
			struct iovec l = { staging + k * FLOOR_PMD, FLOOR_PMD },
				     rm = { (void *)(uintptr_t)a, FLOOR_PMD };

			t0 = now_s();
			r = floor_scan(pm, pid, a, &fr->pm_scan);
			t = now_s(), fr->phase[FL_SCAN] += t - t0, t0 = t;
			if (r >= 0)
				r = floor_wp(ufd, a, 1);
			t = now_s(), fr->phase[FL_FREEZE] += t - t0, t0 = t;
			if (r >= 0 && process_vm_readv(pid, &l, 1, &rm, 1, 0) != (ssize_t)FLOOR_PMD)
				r = -EIO;
			fr->phase[FL_STAGE] += now_s() - t0;
		}
		t0 = now_s();
		if (r >= 0 && (write(to_child[1], cmd, sizeof(cmd)) != sizeof(cmd) ||
			       read(from_child[0], &ok, 1) != 1 || !ok))
			r = -EIO;
		fr->phase[FL_ZAP] += now_s() - t0;
		for (uint64_t k = 0; k < nw && r >= 0; k++) {
			uint64_t a = a0 + b0 + k * FLOOR_PMD;

			t0 = now_s();
			r = floor_fill(ufd, a, staging + k * FLOOR_PMD);
			t = now_s(), fr->phase[FL_FILL] += t - t0, t0 = t;
			if (r >= 0)
				r = floor_wp(ufd, a, 0);
			t = now_s(), fr->phase[FL_THAW] += t - t0, t0 = t;
			if (r >= 0 && thp) {
				struct iovec iv = { (void *)(uintptr_t)a, FLOOR_PMD };

				/* Best effort, as for migd: a page left small is slower, not wrong. */
				(void)syscall(SYS_process_madvise, pidfd, &iv, 1, MADV_COLLAPSE, 0);
			}
			fr->phase[FL_COLLAPSE] += now_s() - t0;
		}
		if (r < 0) {
			snprintf(fr->why, sizeof(fr->why), "windows from %" PRIu64 ": %s",
				 b0 / FLOOR_PMD, strerror(-r));
			goto out;
		}
	}
	fr->secs = now_s() - tall;
	fr->cpu_s += floor_cpu(getpid());
	fr->gbs = size / fr->secs / 1e9;
	fr->ok = 1;
out:
	if (write(to_child[1], stop, sizeof(stop)) < 0)
		fr->ok = 0;
	close(to_child[1]);
	close(from_child[0]);
	if (pid > 0 && (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))) {
		if (fr->ok)
			snprintf(fr->why, sizeof(fr->why), "the child found damaged pages (%d)",
				 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		fr->ok = 0;
	}
	if (staging && staging != MAP_FAILED)
		munmap(staging, FLOOR_BATCH * FLOOR_PMD);
	if (pm >= 0)
		close(pm);
	if (ufd >= 0)
		close(ufd);
	if (pidfd >= 0)
		close(pidfd);
}

#endif
