/*
 * test_uffd.c - libmig/uffd.c: the record of registered ranges (merge,
 * trim, split; table-driven), and the ioctl wrappers on a uffd of this
 * process (API, REGISTER, COPY with -EEXIST passed through, ZEROPAGE,
 * UNREGISTER).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"
#include "uffd.h"
#include "unit.h"

enum { ADD, DEL };

static const struct {
	const char *name;
	struct {
		int op;
		uint64_t s, e;
	} steps[4];
	size_t nsteps;
	struct mig_range want[3];
	size_t nwant;
} regs_cases[] = {
	{ "one", { { ADD, 0x1000, 0x3000 } }, 1, { { 0x1000, 0x3000 } }, 1 },
	{ "merge touching",
	  { { ADD, 0x1000, 0x2000 }, { ADD, 0x2000, 0x3000 } },
	  2,
	  { { 0x1000, 0x3000 } },
	  1 },
	{ "merge overlap",
	  { { ADD, 0x1000, 0x3000 }, { ADD, 0x5000, 0x6000 }, { ADD, 0x2000, 0x5000 } },
	  3,
	  { { 0x1000, 0x6000 } },
	  1 },
	{ "sorted",
	  { { ADD, 0x5000, 0x6000 }, { ADD, 0x1000, 0x2000 } },
	  2,
	  { { 0x1000, 0x2000 }, { 0x5000, 0x6000 } },
	  2 },
	{ "split",
	  { { ADD, 0x1000, 0x5000 }, { DEL, 0x2000, 0x3000 } },
	  2,
	  { { 0x1000, 0x2000 }, { 0x3000, 0x5000 } },
	  2 },
	{ "trim both",
	  { { ADD, 0x1000, 0x3000 }, { ADD, 0x4000, 0x6000 }, { DEL, 0x2000, 0x5000 } },
	  3,
	  { { 0x1000, 0x2000 }, { 0x5000, 0x6000 } },
	  2 },
	{ "remove all",
	  { { ADD, 0x1000, 0x3000 }, { ADD, 0x4000, 0x6000 }, { DEL, 0, 0x10000 } },
	  3,
	  { { 0, 0 } },
	  0 },
};

START_TEST(test_regs)
{
	struct mig__uffd_regs r;
	struct mig_range *v = NULL;
	size_t n = 99;

	mig__uffd_regs_init(&r);
	for (size_t i = 0; i < regs_cases[_i].nsteps; i++) {
		const __typeof__(regs_cases[0].steps[0]) *s = &regs_cases[_i].steps[i];

		if (s->op == ADD)
			ck_assert_int_eq(mig__uffd_regs_add(&r, s->s, s->e), 0);
		else
			ck_assert_int_eq(mig__uffd_regs_remove(&r, s->s, s->e), 0);
	}
	ck_assert_int_eq(mig__uffd_regs_snapshot(&r, &v, &n), 0);
	ck_assert_msg(n == regs_cases[_i].nwant, "%s: %zu ranges", regs_cases[_i].name, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(v[i].start, regs_cases[_i].want[i].start);
		ck_assert_uint_eq(v[i].end, regs_cases[_i].want[i].end);
	}
	ck_assert_int_eq(mig__uffd_regs_add(&r, 5, 5), -EINVAL);
	free(v);
	mig__uffd_regs_free(&r);
}
END_TEST

/* A uffd of this process, API done; -1 and *why when there is none. */
static int self_uffd(uint64_t *features, uint64_t *ioctls, const char **why)
{
	static char msg[128];
	int fd;

	if (mig__uffd_probe(features, NULL) < 0) {
		*why = "no userfaultfd here";
		return -1;
	}
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "userfaultfd(2) not allowed for this user: %s",
			 strerror(errno));
		*why = msg;
		return -1;
	}
	ck_assert_int_eq(mig__uffd_api(fd, 0, features, ioctls), 0);
	return fd;
}

START_TEST(test_wrappers)
{
	uint64_t features = 0, ioctls = 0, done = 0;
	static uint8_t src[4096] __attribute__((aligned(4096)));
	const char *why;
	uint8_t *p;
	int fd;

	fd = self_uffd(&features, &ioctls, &why);
	if (fd < 0)
		UNIT_SKIP("%s", why);
	ck_assert(features & UFFD_FEATURE_EVENT_REMOVE);
	p = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(p != MAP_FAILED);
	ck_assert_int_eq(mig__uffd_register(fd, (uintptr_t)p, 2 * 4096,
					    UFFDIO_REGISTER_MODE_MISSING, &ioctls),
			 0);
	ck_assert(ioctls & (1ull << _UFFDIO_COPY));
	memset(src, 0xab, sizeof(src));
	ck_assert_int_eq(mig__uffd_copy(fd, (uintptr_t)p, src, 4096, 0, &done), 0);
	ck_assert_uint_eq(done, 4096);
	ck_assert_int_eq(p[100], 0xab);
	/* The page is there now: -EEXIST is passed through unchanged. */
	ck_assert_int_eq(mig__uffd_copy(fd, (uintptr_t)p, src, 4096, 0, &done), -EEXIST);
	ck_assert_int_eq(mig__uffd_zeropage(fd, (uintptr_t)p + 4096, 4096, 0, &done), 0);
	ck_assert_int_eq(p[4096 + 5], 0);
	ck_assert_int_eq(mig__uffd_wake(fd, (uintptr_t)p, 4096), 0);
	ck_assert_int_eq(mig__uffd_read(fd, (struct uffd_msg[1]){ 0 }, 1), -EAGAIN);
	ck_assert_int_eq(mig__uffd_unregister(fd, (uintptr_t)p, 2 * 4096), 0);
	ck_assert_int_eq(mig__uffd_copy(fd, (uintptr_t)p, src, 4096, 0, &done), -ENOENT);
	munmap(p, 2 * 4096);
	close(fd);
}
END_TEST

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * mig__mem_readv (procfs.c) on a range registered for missing pages that
 * nobody serves: present pages are read, and a missing one fails at once
 * (EIO) instead of waiting for a reader that would never come, as
 * process_vm_readv does. The fault thread's slot reads stand on this.
 */
START_TEST(test_mem_readv)
{
	uint64_t features = 0, ioctls = 0;
	uint8_t a[4096], b[4096], c[4096], *p;
	struct iovec l[3] = { { a, 4096 }, { b, 4096 }, { c, 4096 } }, r[3];
	const char *why;
	uint64_t t0;
	int fd;

	fd = self_uffd(&features, &ioctls, &why);
	if (fd < 0)
		UNIT_SKIP("%s", why);
	p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(p != MAP_FAILED);
	memset(p, 0x11, 4096);
	memset(p + 4096, 0x22, 4096);
	memset(p + 3 * 4096, 0x44, 4096);
	ck_assert_int_eq(mig__uffd_register(fd, (uintptr_t)p, 4 * 4096,
					    UFFDIO_REGISTER_MODE_MISSING, &ioctls),
			 0);
	/* Two present pages, side by side (one preadv), then a present one apart. */
	r[0] = (struct iovec){ p, 4096 };
	r[1] = (struct iovec){ p + 4096, 4096 };
	r[2] = (struct iovec){ p + 3 * 4096, 4096 };
	ck_assert_int_eq(mig__mem_readv(getpid(), l, r, 3), 3 * 4096);
	ck_assert(a[7] == 0x11 && b[4095] == 0x22 && c[0] == 0x44);
	/* Page 2 is missing: the read stops there, at once. */
	t0 = mono_ns();
	r[2] = (struct iovec){ p + 2 * 4096, 4096 };
	ck_assert_int_eq(mig__mem_readv(getpid(), l, r, 3), 2 * 4096);
	r[0] = (struct iovec){ p + 2 * 4096, 4096 };
	errno = 0;
	ck_assert_int_eq(mig__mem_readv(getpid(), l, r, 1), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_uint_lt(mono_ns() - t0, 2000000000ull);
	/* Nothing was faulted in, and no fault is waiting to be read. */
	ck_assert_int_eq(mig__uffd_read(fd, (struct uffd_msg[1]){ 0 }, 1), -EAGAIN);
	errno = 0;
	ck_assert_int_eq(mig__mem_readv(0x7ffffff0, l, r, 1), -1);
	ck_assert_int_eq(errno, ESRCH);
	munmap(p, 4 * 4096);
	close(fd);
}
END_TEST

static uint8_t *settle_area;

static void *settle_mover(void *arg)
{
	(void)arg;
	/* Blocks until its REMAP is read: that is the kernel fact under test. */
	return mremap(settle_area, 4 * 4096, 4 * 4096, MREMAP_MAYMOVE | MREMAP_FIXED,
		      settle_area + 64 * 4096);
}

/*
 * The facts the fault thread's settle() stands on (faults.c): an event on
 * its way shows as mig__uffd_events_pending until it is read, a VMA moved
 * by mremap stays registered at its new place and is found there by
 * mig__uffd_unregister_ours, which leaves another uffd's VMA alone.
 */
START_TEST(test_settle_facts)
{
	struct uffd_msg m[4];
	uint64_t features = 0, ioctls = 0;
	uint8_t *other;
	pthread_t t;
	void *moved;
	int fd, fd2, n = 0;

	if (mig__uffd_probe(&features, NULL) < 0 || !(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		UNIT_SKIP("no userfaultfd with write protection here");
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	fd2 = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fd2 < 0)
		UNIT_SKIP("userfaultfd(2) not allowed for this user: %s", strerror(errno));
	ck_assert_int_eq(mig__uffd_api(fd,
				       UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_PAGEFAULT_FLAG_WP,
				       NULL, NULL),
			 0);
	ck_assert_int_eq(mig__uffd_api(fd2, 0, NULL, NULL), 0);
	settle_area =
		mmap(NULL, 128 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(settle_area != MAP_FAILED);
	ck_assert_int_eq(munmap(settle_area + 4 * 4096, 124 * 4096), 0);
	memset(settle_area, 7, 4 * 4096);
	other = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(other != MAP_FAILED);
	ck_assert_int_eq(
		mig__uffd_register(fd2, (uintptr_t)other, 4096, UFFDIO_REGISTER_MODE_MISSING, NULL),
		0);
	ck_assert_int_eq(mig__uffd_register(fd, (uintptr_t)settle_area, 4 * 4096,
					    UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
					    &ioctls),
			 0);
	ck_assert_int_eq(mig__uffd_events_pending(fd), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, settle_mover, NULL), 0);
	for (int k = 0; k < 2000 && !mig__uffd_events_pending(fd); k++)
		usleep(1000);
	ck_assert_int_eq(mig__uffd_events_pending(fd), 1);
	/* Moved while registered: registered at its new place, found there. */
	ck_assert_int_eq(mig__uffd_unregister_ours(fd, getpid()), 1);
	ck_assert_int_eq(mig__uffd_events_pending(fd), 1);
	while (n <= 0)
		n = mig__uffd_read(fd, m, 4);
	ck_assert_int_eq(m[0].event, UFFD_EVENT_REMAP);
	ck_assert_int_eq(pthread_join(t, &moved), 0);
	ck_assert_ptr_eq(moved, settle_area + 64 * 4096);
	ck_assert_int_eq(mig__uffd_events_pending(fd), 0);
	ck_assert_int_eq(mig__uffd_unregister_ours(fd, getpid()), 0);
	/* The other uffd's VMA is still its own. */
	ck_assert_int_eq(
		mig__uffd_register(fd, (uintptr_t)other, 4096, UFFDIO_REGISTER_MODE_MISSING, NULL),
		-EBUSY);
	ck_assert_int_eq(((uint8_t *)moved)[5], 7);
	close(fd);
	close(fd2);
}
END_TEST

static Suite *uffd_suite(void)
{
	Suite *s = suite_create("uffd");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_regs, 0, (int)(sizeof(regs_cases) / sizeof(regs_cases[0])));
	tcase_add_test(tc, test_wrappers);
	tcase_add_test(tc, test_mem_readv);
	tcase_add_test(tc, test_settle_facts);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(uffd_suite)
