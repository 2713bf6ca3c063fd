/*
 * test_maps.c - libmig/maps.c: the /proc/PID/maps line parser against a
 * table of lines in the kernel's format (odd paths, pseudo names, kernel
 * mappings above 47 bits, malformed input), mig_read_vmas() on this
 * process's own maps, and mig__read_vmas_range() both ways (PROCMAP_QUERY
 * where the kernel has it, the text) against mig_read_vmas().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "mig.h"
#include "procfs.h"
#include "unit.h"

#define RW (MIG_VMA_READ | MIG_VMA_WRITE)
#define AP (MIG_VMA_ANON | MIG_VMA_PRIVATE)

static const struct {
	const char *line;
	int ret;
	uint64_t start, end, offset;
	unsigned flags;
	const char *name;
} cases[] = {
	{ "55d4c6a00000-55d4c6a21000 rw-p 00000000 00:00 0                          [heap]\n", 0,
	  0x55d4c6a00000, 0x55d4c6a21000, 0, RW | AP | MIG_VMA_HEAP, "[heap]" },
	{ "7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \n", 0, 0x7f0000000000, 0x7f0000200000,
	  0, RW | AP, "" },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:00 0", 0, 0x7f0000000000, 0x7f0000001000, 0,
	  RW | AP, "" },
	{ "7f1234560000-7f1234580000 r-xp 0001c000 fd:01 1835203                    "
	  "/usr/lib/x86_64-linux-gnu/libc.so.6\n",
	  0, 0x7f1234560000, 0x7f1234580000, 0x1c000, MIG_VMA_READ | MIG_VMA_EXEC | MIG_VMA_PRIVATE,
	  "/usr/lib/x86_64-linux-gnu/libc.so.6" },
	{ "7f0000000000-7f0000001000 rw-s 00000000 00:01 1234 /tmp/my file with  spaces "
	  "(deleted)\n",
	  0, 0x7f0000000000, 0x7f0000001000, 0, RW, "/tmp/my file with  spaces (deleted)" },
	{ "7f0000000000-7f0000004000 rw-p 00000000 00:00 0    [anon:my buffer]\n", 0,
	  0x7f0000000000, 0x7f0000004000, 0, RW | AP, "[anon:my buffer]" },
	{ "7ffd0e5c0000-7ffd0e5e1000 rw-p 00000000 00:00 0                          [stack]\n", 0,
	  0x7ffd0e5c0000, 0x7ffd0e5e1000, 0, RW | AP | MIG_VMA_STACK, "[stack]" },
	{ "7f0000000000-7f0000800000 rw-p 00000000 00:00 0    [stack:1234]\n", 0, 0x7f0000000000,
	  0x7f0000800000, 0, RW | AP | MIG_VMA_STACK, "[stack:1234]" },
	{ "7ffd0e5fc000-7ffd0e5fe000 r-xp 00000000 00:00 0                          [vdso]\n", 0,
	  0x7ffd0e5fc000, 0x7ffd0e5fe000, 0, MIG_VMA_READ | MIG_VMA_EXEC | AP | MIG_VMA_SPECIAL,
	  "[vdso]" },
	{ "7ffd0e5f8000-7ffd0e5fc000 r--p 00000000 00:00 0                          [vvar]\n", 0,
	  0x7ffd0e5f8000, 0x7ffd0e5fc000, 0, MIG_VMA_READ | AP | MIG_VMA_SPECIAL, "[vvar]" },
	{ "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n",
	  0, 0xffffffffff600000, 0xffffffffff601000, 0, MIG_VMA_EXEC | AP | MIG_VMA_SPECIAL,
	  "[vsyscall]" },
	{ "7f0000000000-7f0000001000 ---p 00000000 00:00 0\n", 0, 0x7f0000000000, 0x7f0000001000, 0,
	  AP, "" },
	/* A memfd is shmem with an inode: not anonymous in migd's sense. */
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:01 2049 /memfd:x (deleted)\n", 0,
	  0x7f0000000000, 0x7f0000001000, 0, RW | MIG_VMA_PRIVATE, "/memfd:x (deleted)" },
	/* Long paths are truncated, keeping their start. */
	{ "1000-2000 r--p 00000000 fd:01 7 "
	  "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  0, 0x1000, 0x2000, 0, MIG_VMA_READ | MIG_VMA_PRIVATE,
	  "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	{ "", -EINVAL, 0, 0, 0, 0, NULL },
	{ "garbage\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "2000-1000 rw-p 00000000 00:00 0\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-1000 rw-p 00000000 00:00 0\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000 rwzp 00000000 00:00 0\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000 rw-q 00000000 00:00 0\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000 rw-p 00000000 00:00\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000 rw-p 00000000 0000 0\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000 rw-p 00000000 00:00 x\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000 rw-p 00000000 00:00 12a /x\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "11111111111111111-2000 rw-p 00000000 00:00 0\n", -EINVAL, 0, 0, 0, 0, NULL },
	{ "1000-2000 rw-p 00000000 00:00 0 two\nlines\n", -EINVAL, 0, 0, 0, 0, NULL },
};

START_TEST(test_parse_line)
{
	struct mig_vma v;
	int r;

	memset(&v, 0xa5, sizeof(v));
	r = mig__parse_maps_line(cases[_i].line, &v);
	ck_assert_msg(r == cases[_i].ret, "'%s': got %d want %d", cases[_i].line, r, cases[_i].ret);
	if (r < 0) {
		/* ret_* is untouched on failure. */
		ck_assert_uint_eq(v.start, UINT64_C(0xa5a5a5a5a5a5a5a5));
		return;
	}
	ck_assert_uint_eq(v.start, cases[_i].start);
	ck_assert_uint_eq(v.end, cases[_i].end);
	ck_assert_uint_eq(v.offset, cases[_i].offset);
	ck_assert_msg(v.flags == cases[_i].flags, "'%s': flags %#x want %#x", cases[_i].line,
		      v.flags, cases[_i].flags);
	ck_assert_str_eq(v.name, cases[_i].name);
}
END_TEST

START_TEST(test_anon_private)
{
	struct mig_vma v;

	ck_assert_int_eq(mig__parse_maps_line("1000-2000 rw-p 00000000 00:00 0\n", &v), 0);
	ck_assert(mig_vma_is_anon_private(&v));
	ck_assert_int_eq(
		mig__parse_maps_line("1000-2000 rw-s 00000000 00:01 5 /dev/zero (deleted)\n", &v),
		0);
	ck_assert(!mig_vma_is_anon_private(&v));
	ck_assert_int_eq(mig__parse_maps_line("1000-2000 r--p 00000000 00:00 0 [vvar]\n", &v), 0);
	ck_assert(!mig_vma_is_anon_private(&v));
}
END_TEST

/* mig_read_vmas on ourselves finds a fresh anonymous mapping exactly. */
START_TEST(test_read_self)
{
	long ps = sysconf(_SC_PAGESIZE);
	struct mig_vma *vmas = NULL;
	size_t n = 0;
	bool found = false;
	char *p;

	/* PROT_READ|PROT_EXEC is unusual enough that the kernel will not merge it with a neighbour.
	 */
	p = mmap(NULL, 3 * (size_t)ps, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	ck_assert_int_eq(mig_read_vmas(getpid(), &vmas, &n), 0);
	ck_assert_uint_gt(n, 3);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			ck_assert_uint_le(vmas[i - 1].end, vmas[i].start);
		if (vmas[i].start <= (uintptr_t)p && (uintptr_t)p < vmas[i].end) {
			ck_assert_uint_eq(vmas[i].start, (uintptr_t)p);
			ck_assert_uint_eq(vmas[i].end, (uintptr_t)p + 3 * (uint64_t)ps);
			ck_assert_uint_eq(vmas[i].flags, MIG_VMA_READ | MIG_VMA_EXEC | AP);
			found = true;
		}
	}
	ck_assert(found);
	free(vmas);
	munmap(p, 3 * (size_t)ps);
}
END_TEST

#ifndef PR_SET_VMA
#define PR_SET_VMA	     0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static bool vma_eq(const struct mig_vma *a, const struct mig_vma *b)
{
	return a->start == b->start && a->end == b->end && a->offset == b->offset &&
	       a->flags == b->flags && !strcmp(a->name, b->name);
}

/*
 * The VMAs of [lo, hi) from mig__read_vmas_range (mode: 1 the kernel's
 * PROCMAP_QUERY if it has it, -1 the text) equal those of mig_read_vmas
 * that overlap it, field by field.
 */
static void range_matches(uint64_t lo, uint64_t hi, int mode, size_t want)
{
	struct mig_vma *all = NULL, *got = NULL;
	size_t nall = 0, ngot = 0, k = 0;
	int old = mig__procmap_query_set(mode == 1 ? 0 : -1);

	ck_assert_int_eq(mig__read_vmas_range(getpid(), lo, hi, &got, &ngot), 0);
	(void)mig__procmap_query_set(old);
	ck_assert_int_eq(mig_read_vmas(getpid(), &all, &nall), 0);
	for (size_t i = 0; i < nall; i++) {
		/*
		 * The gate area ([vsyscall], above the user address space) is
		 * no VMA of the process: only the text shows it. Never tenant
		 * memory either way.
		 */
		if (all[i].end <= lo || all[i].start >= hi ||
		    (mode == 1 && !strcmp(all[i].name, "[vsyscall]")))
			continue;
		ck_assert_uint_lt(k, ngot);
		if (!vma_eq(&all[i], &got[k]))
			ck_abort_msg("mode %d: %lx-%lx %x '%s' vs %lx-%lx %x '%s'", mode,
				     (unsigned long)all[i].start, (unsigned long)all[i].end,
				     all[i].flags, all[i].name, (unsigned long)got[k].start,
				     (unsigned long)got[k].end, got[k].flags, got[k].name);
		k++;
	}
	ck_assert_uint_eq(k, ngot);
	if (want)
		ck_assert_uint_eq(ngot, want);
	free(all);
	free(got);
}

/*
 * A window's VMAs by range: five VMAs cut from one mapping by mprotect,
 * one of them named, a shared anonymous mapping and a file mapping
 * beside them; whole ranges, ranges that start or end inside a VMA, an
 * empty range, both ways.
 */
START_TEST(test_read_range)
{
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
	char *p, *sh, *f;
	uint64_t b;
	int fd;

	p = mmap(NULL, 5 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	ck_assert_int_eq(mprotect(p + ps, ps, PROT_READ), 0);
	ck_assert_int_eq(mprotect(p + 3 * ps, ps, PROT_READ), 0);
	/* Named anonymous memory needs CONFIG_ANON_VMA_NAME: without, it stays unnamed. */
	if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p + 2 * ps, ps, "migd-test") < 0)
		printf("test_read_range: no anonymous VMA names here (%m): not checked\n");
	sh = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	f = mmap(NULL, ps, PROT_READ, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne(f, MAP_FAILED);
	close(fd);
	b = (uint64_t)(uintptr_t)p;
	for (int mode = 1; mode >= -1; mode -= 2) {
		range_matches(b, b + 5 * ps, mode, 5);
		range_matches(b + ps / 2, b + ps + 1, mode, 2);
		range_matches(b + 2 * ps, b + 3 * ps, mode, 1);
		range_matches(b + 4 * ps, b + 4 * ps, mode, 0);
		range_matches((uint64_t)(uintptr_t)sh, (uint64_t)(uintptr_t)sh + ps, mode, 1);
		range_matches((uint64_t)(uintptr_t)f, (uint64_t)(uintptr_t)f + ps, mode, 1);
		/* The stack, the vdso and whatever lies between: the top of the address space. */
		range_matches(UINT64_C(0x7f0000000000), UINT64_MAX, mode, 0);
	}
	munmap(f, ps);
	munmap(sh, ps);
	munmap(p, 5 * ps);
}
END_TEST

START_TEST(test_read_errors)
{
	struct mig_vma *vmas = (struct mig_vma *)0x1;
	size_t n = 77;

	ck_assert_int_eq(mig_read_vmas(0, &vmas, &n), -EINVAL);
	ck_assert_int_eq(mig_read_vmas(-5, &vmas, &n), -EINVAL);
	/* pid_max is at most 2^22: this pid cannot exist. */
	ck_assert_int_eq(mig_read_vmas(0x7ffffff0, &vmas, &n), -ESRCH);
	ck_assert_ptr_eq(vmas, (struct mig_vma *)0x1);
	ck_assert_uint_eq(n, 77);
}
END_TEST

static Suite *maps_suite(void)
{
	Suite *s = suite_create("maps");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_line, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_anon_private);
	tcase_add_test(tc, test_read_self);
	tcase_add_test(tc, test_read_range);
	tcase_add_test(tc, test_read_errors);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(maps_suite)
