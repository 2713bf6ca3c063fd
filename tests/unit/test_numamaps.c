/*
 * test_numamaps.c - table-driven tests for the numa_maps policy parser
 * (libmig/numamaps.c) and the rule that decides whether a VMA's own
 * policy lets the engine place its pages on the targets.
 */
#include <errno.h>
#include <string.h>

#include "engine.h"
#include "unit.h"

static const struct {
	const char *in;
	int ret;
	enum mig__mpol mode;
	const char *nodes;	 /* NULL: none */
	bool allows_0, allows_1; /* targets {0} and {1} */
} cases[] = {
	{ "default anon=3 dirty=3 N0=3 kernelpagesize_kB=4", 0, MIG__MPOL_DEFAULT, NULL, true,
	  true },
	{ "default", 0, MIG__MPOL_DEFAULT, NULL, true, true },
	{ "local anon=1", 0, MIG__MPOL_LOCAL, NULL, true, true },
	{ "bind:0 anon=512 N0=512", 0, MIG__MPOL_BIND, "0", true, false },
	{ "bind:1", 0, MIG__MPOL_BIND, "1", false, true },
	{ "bind:0-1 anon=1", 0, MIG__MPOL_BIND, "0-1", true, true },
	{ "bind=static:0 anon=1", 0, MIG__MPOL_BIND, "0", true, false },
	{ "prefer:1 heap", 0, MIG__MPOL_PREFER, "1", false, true },
	{ "prefer=relative:0", 0, MIG__MPOL_PREFER, "0", true, false },
	{ "prefer (many):0-1 anon=2", 0, MIG__MPOL_PREFER, "0-1", true, true },
	{ "interleave:0-1 anon=8", 0, MIG__MPOL_INTERLEAVE, "0-1", false, false },
	{ "interleave:1", 0, MIG__MPOL_INTERLEAVE, "1", false, true },
	{ "weighted interleave:0 anon=1", 0, MIG__MPOL_INTERLEAVE, "0", true, false },
	{ "bind anon=1", -EINVAL, 0, NULL, false, false },
	{ "bind:", -EINVAL, 0, NULL, false, false },
	{ "bind:x", -EINVAL, 0, NULL, false, false },
	{ "binder:0", -EINVAL, 0, NULL, false, false },
	{ "", -EINVAL, 0, NULL, false, false },
	{ "anon=3", -EINVAL, 0, NULL, false, false },
};

START_TEST(test_policy_parse)
{
	struct mig__policy p = { .mode = 99 }, want = { 0 };
	struct mig_nodes t0 = { 0 }, t1 = { 0 };
	int r = mig__numa_policy_parse(cases[_i].in, &p);

	ck_assert_msg(r == cases[_i].ret, "'%s': got %d want %d", cases[_i].in, r, cases[_i].ret);
	if (r < 0) {
		ck_assert_int_eq(p.mode, 99); /* ret_* untouched on failure */
		return;
	}
	ck_assert_int_eq(p.mode, cases[_i].mode);
	ck_assert_int_eq(p.has_nodes, cases[_i].nodes != NULL);
	if (cases[_i].nodes) {
		ck_assert_int_eq(mig_parse_nodes(cases[_i].nodes, &want.nodes), 0);
		ck_assert(!memcmp(&p.nodes, &want.nodes, sizeof(want.nodes)));
	}
	mig_nodes_set(&t0, 0);
	mig_nodes_set(&t1, 1);
	ck_assert_msg(mig__policy_allows(&p, &t0) == cases[_i].allows_0, "'%s' target 0",
		      cases[_i].in);
	ck_assert_msg(mig__policy_allows(&p, &t1) == cases[_i].allows_1, "'%s' target 1",
		      cases[_i].in);
}
END_TEST

static Suite *numamaps_suite(void)
{
	Suite *s = suite_create("numamaps");
	TCase *tc = tcase_create("policy");

	tcase_add_loop_test(tc, test_policy_parse, 0, sizeof(cases) / sizeof(cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(numamaps_suite)
