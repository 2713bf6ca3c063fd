/*
 * test_policy.c - policy files (daemon/config.c): every key, the
 * defaults, the errors with file:line, and cgroup glob matching.
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

START_TEST(test_full_policy)
{
	struct config_errors errs = { 0 };
	struct policy p;

	ck_assert_int_eq(policy_parse_string("[policy]\n"
					     "cgroup = /tenants.slice/*.service\n"
					     "nodes = 0-1,3\n"
					     "trigger = interval\n"
					     "interval = 30s\n"
					     "min_region = 1M\n"
					     "window = 4M\n"
					     "rate_limit = 512M\n"
					     "huge_pages = split\n"
					     "compact_after = yes\n"
					     "attach = ptrace\n"
					     "vmas = heap, stack\n",
					     "far", "far.ini", &p, &errs),
			 0);
	ck_assert_str_eq(p.name, "far");
	ck_assert_str_eq(p.cgroup, "/tenants.slice/*.service");
	ck_assert(mig_nodes_test(&p.nodes, 0) && mig_nodes_test(&p.nodes, 1) &&
		  !mig_nodes_test(&p.nodes, 2) && mig_nodes_test(&p.nodes, 3));
	ck_assert_int_eq(p.trigger, TRIGGER_INTERVAL);
	ck_assert_uint_eq(p.interval_ms, 30000);
	ck_assert_uint_eq(p.min_region, 1 << 20);
	ck_assert_uint_eq(p.window, 4 << 20);
	ck_assert_uint_eq(p.rate_limit, 512u << 20);
	ck_assert_int_eq(p.huge, HUGE_SPLIT);
	ck_assert(p.compact_after);
	ck_assert_int_eq(p.attach, MIG_ATTACH_PTRACE);
	ck_assert_uint_eq(p.vmas, POLICY_VMA_HEAP | POLICY_VMA_STACK);
	policy_done(&p);
}
END_TEST

START_TEST(test_defaults)
{
	struct config_errors errs = { 0 };
	struct policy p;

	ck_assert_int_eq(
		policy_parse_string("[policy]\ncgroup = /a\nnodes = 1\n", "a", "a.ini", &p, &errs),
		0);
	ck_assert_int_eq(p.trigger, TRIGGER_ON_ATTACH);
	ck_assert_uint_eq(p.window, 2 << 20);
	ck_assert_uint_eq(p.rate_limit, 0);
	ck_assert_int_eq(p.attach, MIG_ATTACH_AUTO);
	ck_assert(!p.compact_after);
	ck_assert_uint_eq(p.vmas, POLICY_VMA_HEAP | POLICY_VMA_ANON);
	policy_done(&p);
}
END_TEST

static const struct {
	const char *text;
	const char *err;
} bad_cases[] = {
	{ "[policy]\nnodes = 1\n", "p.ini: missing required key 'cgroup'" },
	{ "[policy]\ncgroup = /a\n", "p.ini: missing required key 'nodes'" },
	{ "[policy]\ncgroup = a\nnodes = 1\n", "p.ini:2: cgroup must start with '/'" },
	{ "[policy]\ncgroup = /a\nnodes = 1-\n", "p.ini:3: nodes must be a node list" },
	{ "[policy]\ncgroup = /a\nnodes = 1\ntrigger = often\n", "p.ini:4: trigger must be" },
	{ "[policy]\ncgroup = /a\nnodes = 1\nwindow = 100\n", "p.ini:4: window must be" },
	{ "[policy]\ncgroup = /a\nnodes = 1\nvmas = code\n", "p.ini:4: vmas must be" },
	{ "[policy]\ncgroup = /a\nnodes = 1\nattach = magic\n", "p.ini:4: attach must be" },
	{ "[policy]\ncgroup = /a\nnodes = 1\nhuge_pages = maybe\n", "p.ini:4: huge_pages must be" },
	{ "[policy]\ncgroup = /a\nnodes = 1\ncompact_after = 1\n",
	  "p.ini:4: compact_after must be yes or no" },
	{ "[policy]\ncgroup = /a\nnodes = 1\ncolour = red\n", "p.ini:4: unknown key 'colour'" },
	{ "[policy]\ncgroup = /a\nnodes = 1\ninterval = 5s\n", "only meaningful with trigger" },
	{ "[polcy]\ncgroup = /a\n", "p.ini:2: unknown section [polcy]" },
};

START_TEST(test_bad)
{
	struct config_errors errs = { 0 };
	struct policy p;

	memset(&p, 0x5a, sizeof(p));
	ck_assert_int_eq(policy_parse_string(bad_cases[_i].text, "p", "p.ini", &p, &errs), -EINVAL);
	ck_assert_uint_ge(errs.n, 1);
	ck_assert_msg(strstr(errs.msgs[0], bad_cases[_i].err), "got '%s' want '%s'", errs.msgs[0],
		      bad_cases[_i].err);
	config_errors_clear(&errs);
}
END_TEST

START_TEST(test_dir_and_match)
{
	char dir[] = "/tmp/migd-test-policy-XXXXXX", path[256];
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/b.ini", dir);
	f = fopen(path, "w");
	fputs("[policy]\ncgroup = /far.slice/*\nnodes = 1\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/a.ini", dir);
	f = fopen(path, "w");
	fputs("[policy]\ncgroup = /near.slice/db-*.service\nnodes = 0\n", f);
	fclose(f);
	ck_assert_int_eq(config_parse_string("[migd]\n", "m", &cfg, &errs), 0);
	ck_assert_int_eq(config_load_policies(cfg, dir, &errs), 0);
	ck_assert_uint_eq(cfg->n_policies, 2);
	ck_assert_str_eq(cfg->policies[0].name, "a"); /* sorted by file name */
	ck_assert_str_eq(config_match_cgroup(cfg, "/far.slice/x.service")->name, "b");
	ck_assert_str_eq(config_match_cgroup(cfg, "/near.slice/db-1.service")->name, "a");
	/* '*' does not cross '/', and unnamed cgroups match nothing. */
	ck_assert_ptr_null(config_match_cgroup(cfg, "/far.slice/x.service/sub"));
	ck_assert_ptr_null(config_match_cgroup(cfg, "/near.slice/web.service"));
	ck_assert_ptr_null(config_match_cgroup(cfg, "/"));
	config_free(cfg);

	/* One bad file fails the whole set, and says which. */
	snprintf(path, sizeof(path), "%s/c.ini", dir);
	f = fopen(path, "w");
	fputs("[policy]\ncgroup = /x\nnodes = 1\nwat = 1\n", f);
	fclose(f);
	ck_assert_int_eq(config_parse_string("[migd]\n", "m", &cfg, &errs), 0);
	ck_assert_int_eq(config_load_policies(cfg, dir, &errs), -EINVAL);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_ptr_nonnull(strstr(errs.msgs[0], "c.ini:4: unknown key 'wat'"));
	config_free(cfg);
	config_errors_clear(&errs);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a.ini", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/b.ini", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");

	tcase_add_test(tc, test_full_policy);
	tcase_add_test(tc, test_defaults);
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_dir_and_match);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(policy_suite)
