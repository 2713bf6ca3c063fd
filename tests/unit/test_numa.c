/*
 * test_numa.c - libmig/numa.c and the libnuma calls behind it: libnuma
 * never writes to our stderr (numa_warn/numa_error are overridden), node
 * CPUs and free memory come back as -errno for a node that is not here.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "unit.h"

START_TEST(test_numa_silent)
{
	FILE *f = tmpfile();
	struct bitmask *b;
	int saved, fd;
	long size;

	ck_assert_ptr_nonnull(f);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	fd = fileno(f);
	ck_assert_int_eq(dup2(fd, 2), 2);
	/* Each of these makes the default hooks print (warn once per kind, error always). */
	b = numa_parse_nodestring("1000");
	numa_set_membind(numa_no_nodes_ptr);
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	size = lseek(fd, 0, SEEK_END);
	fclose(f);
	ck_assert_ptr_null(b);
	ck_assert_msg(size == 0, "libnuma wrote %ld bytes to stderr", size);
}
END_TEST

START_TEST(test_node_queries)
{
	cpu_set_t cpus;
	int r;

	ck_assert_int_gt(mig__node_free(0), 0);
	ck_assert_int_eq(mig__node_free(MIG_MAX_NODES - 1), -ENODEV);
	ck_assert_int_eq(mig__node_free(-1), -ENODEV);
	r = mig__node_cpus(0, &cpus);
	ck_assert_msg(r == 0 || r == -ENOENT, "node 0 cpus: %d", r);
	if (r == 0)
		ck_assert_int_gt(CPU_COUNT(&cpus), 0);
	ck_assert_int_eq(mig__node_cpus(MIG_MAX_NODES - 1, &cpus), -ENODEV);
	ck_assert_int_eq(mig__node_cpus(-1, &cpus), -EINVAL);
}
END_TEST

START_TEST(test_bind_thread)
{
	struct mig_nodes n = { 0 };
	int mode = -1;

	mig_nodes_set(&n, 0);
	ck_assert_int_eq(mig__bind_thread(&n), 0);
	ck_assert_int_eq(get_mempolicy(&mode, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(mode, MPOL_BIND);
	ck_assert_int_eq(mig__prefer_thread(0), 0);
	ck_assert_int_eq(get_mempolicy(&mode, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(mode, MPOL_PREFERRED);
	ck_assert_int_eq(mig__prefer_thread(-1), 0);
	ck_assert_int_eq(get_mempolicy(&mode, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(mode, MPOL_DEFAULT);
	/* A node that is not here: the kernel's EINVAL, as a -errno. */
	memset(&n, 0, sizeof(n));
	mig_nodes_set(&n, MIG_MAX_NODES - 1);
	ck_assert_int_eq(mig__bind_thread(&n), -EINVAL);
}
END_TEST

static Suite *numa_suite(void)
{
	Suite *s = suite_create("numa");
	TCase *tc = tcase_create("libnuma");

	tcase_add_test(tc, test_numa_silent);
	tcase_add_test(tc, test_node_queries);
	tcase_add_test(tc, test_bind_thread);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(numa_suite)
