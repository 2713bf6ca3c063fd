/*
 * test_uffd.c - libmig/uffd.c: the record of registered ranges (merge,
 * trim, split; table-driven), and the ioctl wrappers on a uffd of this
 * process (API, REGISTER, COPY with -EEXIST passed through, ZEROPAGE,
 * UNREGISTER).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

START_TEST(test_wrappers)
{
	uint64_t features = 0, ioctls = 0, done = 0;
	static uint8_t src[4096] __attribute__((aligned(4096)));
	uint8_t *p;
	int fd;

	if (mig__uffd_probe(&features, NULL) < 0)
		UNIT_SKIP("no userfaultfd here");
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		UNIT_SKIP("userfaultfd(2) not allowed for this user: %s", strerror(errno));
	ck_assert_int_eq(mig__uffd_api(fd, 0, &features, &ioctls), 0);
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
	tcase_add_test(tc, test_settle_facts);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(uffd_suite)
