/*
 * test_maps.c - libmig/maps.c: the /proc/PID/maps line parser against a
 * table of lines in the kernel's format (odd paths, pseudo names, kernel
 * mappings above 47 bits, malformed input), and mig_read_vmas() on this
 * process's own maps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
	tcase_add_test(tc, test_read_errors);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(maps_suite)
