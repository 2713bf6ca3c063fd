/*
 * test_parse.c - table-driven tests for libmig/parse.c: sizes, address
 * ranges, node lists, node-set formatting and errno names.
 */
#include <errno.h>
#include <string.h>

#include "mig.h"
#include "unit.h"

static const struct {
	const char *in;
	int ret;
	uint64_t val;
} size_cases[] = {
	{ "0", 0, 0 },
	{ "4096", 0, 4096 },
	{ "2M", 0, 2 << 20 },
	{ "2m", 0, 2 << 20 },
	{ "2MiB", 0, 2 << 20 },
	{ "2MB", 0, 2 << 20 },
	{ "1G", 0, UINT64_C(1) << 30 },
	{ "4k", 0, 4096 },
	{ "3T", 0, UINT64_C(3) << 40 },
	{ "0x1000", 0, 4096 },
	{ "0x2M", 0, 2 << 20 },
	{ "10b", 0, 10 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "18446744073709551616", -ERANGE, 0 },
	{ "16777216T", -ERANGE, 0 },
	{ "", -EINVAL, 0 },
	{ "M", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "1 ", -EINVAL, 0 },
	{ "2X", -EINVAL, 0 },
	{ "2Mx", -EINVAL, 0 },
	{ "0x", -EINVAL, 0 },
	{ "1.5G", -EINVAL, 0 },
};

START_TEST(test_size)
{
	uint64_t v = 12345;
	int r = mig_parse_size(size_cases[_i].in, &v);

	ck_assert_msg(r == size_cases[_i].ret, "'%s': got %d want %d", size_cases[_i].in, r,
		      size_cases[_i].ret);
	if (r == 0)
		ck_assert_uint_eq(v, size_cases[_i].val);
	else
		ck_assert_uint_eq(v, 12345); /* ret_* untouched on failure */
}
END_TEST

static const struct {
	const char *in;
	int ret;
	uint64_t start, end;
} range_cases[] = {
	{ "0x7f00-0x7f80", 0, 0x7f00, 0x7f80 },
	{ "4096-8192", 0, 4096, 8192 },
	{ "0x7f0000000000+2M", 0, 0x7f0000000000, 0x7f0000200000 },
	{ "0x1000+4096", 0, 0x1000, 0x2000 },
	{ "0x2000-0x1000", -EINVAL, 0, 0 },
	{ "0x1000-0x1000", -EINVAL, 0, 0 },
	{ "0x1000", -EINVAL, 0, 0 },
	{ "0x1000-", -EINVAL, 0, 0 },
	{ "-0x1000", -EINVAL, 0, 0 },
	{ "0x1000-0x2000x", -EINVAL, 0, 0 },
	{ "0xffffffffffffffff+2", -ERANGE, 0, 0 },
	{ "", -EINVAL, 0, 0 },
};

START_TEST(test_range)
{
	struct mig_range rg = { 1, 2 };
	int r = mig_parse_range(range_cases[_i].in, &rg);

	ck_assert_msg(r == range_cases[_i].ret, "'%s': got %d want %d", range_cases[_i].in, r,
		      range_cases[_i].ret);
	if (r == 0) {
		ck_assert_uint_eq(rg.start, range_cases[_i].start);
		ck_assert_uint_eq(rg.end, range_cases[_i].end);
	} else {
		ck_assert_uint_eq(rg.start, 1);
	}
}
END_TEST

static const struct {
	const char *in;
	int ret;
	const char *canon; /* mig_format_nodes of the result */
	unsigned count;
} node_cases[] = {
	{ "0", 0, "0", 1 },	     { "1", 0, "1", 1 },	  { "0-1,3", 0, "0-1,3", 3 },
	{ "3,0-1", 0, "0-1,3", 3 },  { "0,1,2,3", 0, "0-3", 4 },  { "0-0", 0, "0", 1 },
	{ "1023", 0, "1023", 1 },    { "0-2,2-4", 0, "0-4", 5 },  { "1024", -ERANGE, NULL, 0 },
	{ "", -EINVAL, NULL, 0 },    { "3-1", -EINVAL, NULL, 0 }, { "0,", -EINVAL, NULL, 0 },
	{ ",0", -EINVAL, NULL, 0 },  { "0-", -EINVAL, NULL, 0 },  { "a", -EINVAL, NULL, 0 },
	{ "all", -EINVAL, NULL, 0 }, { "0 1", -EINVAL, NULL, 0 }, { "-1", -EINVAL, NULL, 0 },
};

START_TEST(test_nodes)
{
	struct mig_nodes n;
	char buf[64];
	int r = mig_parse_nodes(node_cases[_i].in, &n);

	ck_assert_msg(r == node_cases[_i].ret, "'%s': got %d want %d", node_cases[_i].in, r,
		      node_cases[_i].ret);
	if (r != 0)
		return;
	ck_assert_uint_eq(mig_nodes_count(&n), node_cases[_i].count);
	r = mig_format_nodes(&n, buf, sizeof(buf));
	ck_assert_int_eq(r, (int)strlen(node_cases[_i].canon));
	ck_assert_str_eq(buf, node_cases[_i].canon);
}
END_TEST

START_TEST(test_format_truncates)
{
	struct mig_nodes n;
	char buf[4];

	ck_assert_int_eq(mig_parse_nodes("0-1,3,5", &n), 0);
	/* Like snprintf: returns the full length, writes a NUL-terminated prefix. */
	ck_assert_int_eq(mig_format_nodes(&n, buf, sizeof(buf)), 7);
	ck_assert_int_eq(mig_format_nodes(&n, NULL, 0), 7);
	ck_assert_int_eq((int)strnlen(buf, sizeof(buf)) < (int)sizeof(buf), 1);
	ck_assert_int_eq(mig_nodes_first(&n), 0);
	memset(&n, 0, sizeof(n));
	ck_assert_int_eq(mig_nodes_first(&n), -ENOENT);
	mig_nodes_set(&n, 700);
	ck_assert_int_eq(mig_nodes_first(&n), 700);
	ck_assert(mig_nodes_test(&n, 700));
	ck_assert(!mig_nodes_test(&n, 5000));
}
END_TEST

START_TEST(test_errno_name)
{
	ck_assert_str_eq(mig_errno_name(ENOMEM), "ENOMEM");
	ck_assert_str_eq(mig_errno_name(-EAGAIN), "EAGAIN");
	ck_assert_str_eq(mig_errno_name(-EEXIST), "EEXIST");
	ck_assert_str_eq(mig_errno_name(99999), "E?");
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_size, 0, (int)(sizeof(size_cases) / sizeof(size_cases[0])));
	tcase_add_loop_test(tc, test_range, 0, (int)(sizeof(range_cases) / sizeof(range_cases[0])));
	tcase_add_loop_test(tc, test_nodes, 0, (int)(sizeof(node_cases) / sizeof(node_cases[0])));
	tcase_add_test(tc, test_format_truncates);
	tcase_add_test(tc, test_errno_name);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(parse_suite)
