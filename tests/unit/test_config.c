/*
 * test_config.c - daemon/config.c: the main file and policy files,
 * table-driven, including the file:line of every error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static const struct {
	const char *text;
	int ret;
	const char *err; /* substring of the first error */
} main_cases[] = {
	{ "[migd]\nsocket = /tmp/x.sock\n", 0, NULL },
	{ "# comment\n\n[migd]\nmax_jobs = 4\nscan_interval = 500ms\n", 0, NULL },
	{ "[migd]\nsocket = relative\n", -EINVAL, "t.ini:2: socket must be an absolute path" },
	{ "[migd]\nbogus = 1\n", -EINVAL, "t.ini:2: unknown key 'bogus'" },
	{ "[other]\nsocket = /x\n", -EINVAL, "t.ini:2: unknown section [other]" },
	{ "[migd]\nthis line is broken\n", -EINVAL, "t.ini:2: expected 'key = value'" },
	{ "[migd]\nmax_jobs = 0\n", -EINVAL, "t.ini:2: max_jobs must be 1..64" },
	{ "[migd]\nscan_interval = 5x\n", -EINVAL, "t.ini:2: scan_interval" },
	{ "[migd]\nsocket_mode = 999\n", -EINVAL, "t.ini:2: socket_mode" },
	{ "[migd]\nlog_level = loud\n", -EINVAL, "t.ini:2: log_level" },
	{ "[migd]\nmax_window = 64M\n", 0, NULL },
	{ "[migd]\nwindow_protocol = movefirst\n", 0, NULL },
	{ "[migd]\nwindow_protocol = classic\n", 0, NULL },
	{ "[migd]\nwindow_protocol = fast\n", -EINVAL, "t.ini:2: window_protocol must be" },
	{ "[migd]\nfault_priority = realtime\n", 0, NULL },
	{ "[migd]\nfault_priority = normal\n", 0, NULL },
	{ "[migd]\nfault_priority = high\n", -EINVAL,
	  "t.ini:2: fault_priority must be realtime or normal, got 'high'" },
	{ "[migd]\nmax_window = 1M\n", -EINVAL, "t.ini:2: max_window must be a size from 2M" },
	{ "[migd]\nmax_window = 32G\n", -EINVAL, "t.ini:2: max_window must be a size from 2M" },
	{ "[migd]\nhand_device = no\n", 0, NULL },
	{ "[migd]\nhand_device = maybe\n", -EINVAL, "t.ini:2: hand_device must be yes or no" },
};

START_TEST(test_main)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int r = config_parse_string(main_cases[_i].text, "t.ini", &cfg, &errs);

	ck_assert_int_eq(r, main_cases[_i].ret);
	if (r == 0) {
		ck_assert_ptr_nonnull(cfg);
		ck_assert_uint_eq(errs.n, 0);
	} else {
		ck_assert_ptr_null(cfg);
		ck_assert_uint_ge(errs.n, 1);
		ck_assert_msg(strstr(errs.msgs[0], main_cases[_i].err), "got '%s' want '%s'",
			      errs.msgs[0], main_cases[_i].err);
	}
	config_free(cfg);
	config_errors_clear(&errs);
}
END_TEST

START_TEST(test_every_error_reported)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;

	ck_assert_int_eq(
		config_parse_string("[migd]\nfoo = 1\nmax_jobs = x\nbar\n", "t.ini", &cfg, &errs),
		-EINVAL);
	ck_assert_uint_eq(errs.n, 3);
	ck_assert_ptr_nonnull(strstr(errs.msgs[0], "t.ini:2:"));
	ck_assert_ptr_nonnull(strstr(errs.msgs[1], "t.ini:3:"));
	ck_assert_ptr_nonnull(strstr(errs.msgs[2], "t.ini:4:"));
	config_errors_clear(&errs);
}
END_TEST

START_TEST(test_embedded_default)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;

	ck_assert_int_eq(config_parse_string(migd_default_config, "(embedded)", &cfg, &errs), 0);
	ck_assert_str_eq(cfg->socket_path, "/run/migd/migd.sock");
	ck_assert_uint_eq(cfg->socket_mode, 0660);
	ck_assert_ptr_null(cfg->cgroup_root);
	ck_assert(cfg->hand_device);
	config_free(cfg);
}
END_TEST

START_TEST(test_duration)
{
	uint64_t ms = 7;

	ck_assert_int_eq(config_parse_duration("500ms", &ms), 0);
	ck_assert_uint_eq(ms, 500);
	ck_assert_int_eq(config_parse_duration("2s", &ms), 0);
	ck_assert_uint_eq(ms, 2000);
	ck_assert_int_eq(config_parse_duration("3", &ms), 0);
	ck_assert_uint_eq(ms, 3000);
	ck_assert_int_eq(config_parse_duration("1h", &ms), 0);
	ck_assert_uint_eq(ms, 3600000);
	ck_assert_int_eq(config_parse_duration("x", &ms), -EINVAL);
	ck_assert_int_eq(config_parse_duration("5d", &ms), -EINVAL);
	ck_assert_uint_eq(ms, 3600000); /* untouched on failure */
}
END_TEST

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/*
 * A policy directory holding a FIFO, a directory and a window above the
 * main file's max_window: the first two are skipped (a FIFO never blocks
 * the reader: nothing writes to it here), the window is an error with
 * the policy's file:line.
 */
START_TEST(test_policy_dir_limits)
{
	static const char *const made[] = { "fifo.ini", "dir.ini", "ok.ini", "wide.ini",
					    "migd.ini.main" };
	char dir[] = "/tmp/migd-unit-XXXXXX", path[128], main_ini[128];
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	char text[512];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo.ini", dir);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	snprintf(path, sizeof(path), "%s/dir.ini", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/ok.ini", dir);
	write_text(path, "[policy]\ncgroup = /a.slice\nnodes = 0\nwindow = 8M\n");
	snprintf(main_ini, sizeof(main_ini), "%s/migd.ini.main", dir);
	snprintf(text, sizeof(text), "[migd]\npolicy_dir = %s\nmax_window = 8M\n", dir);
	write_text(main_ini, text);

	ck_assert_int_eq(config_load(main_ini, &cfg, &errs), 0);
	ck_assert_uint_eq(cfg->n_policies, 1);
	ck_assert_str_eq(cfg->policies[0].name, "ok");
	config_free(cfg);
	cfg = NULL;

	snprintf(path, sizeof(path), "%s/wide.ini", dir);
	write_text(path, "[policy]\ncgroup = /b.slice\nnodes = 0\n\nwindow = 16M\n");
	ck_assert_int_eq(config_load(main_ini, &cfg, &errs), -EINVAL);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.n, 1);
	snprintf(text, sizeof(text), "%s:5: window 16777216 is above max_window 8388608", path);
	ck_assert_msg(strstr(errs.msgs[0], text), "got '%s'", errs.msgs[0]);
	config_errors_clear(&errs);

	/* The main file itself must be a regular file too. */
	snprintf(path, sizeof(path), "%s/fifo.ini", dir);
	ck_assert_int_eq(config_load(path, &cfg, &errs), -EINVAL);
	ck_assert_ptr_nonnull(strstr(errs.msgs[0], "not a regular file"));
	config_errors_clear(&errs);

	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
		ck_assert_int_eq(remove(path), 0);
	}
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("main");

	tcase_add_loop_test(tc, test_main, 0, sizeof(main_cases) / sizeof(main_cases[0]));
	tcase_add_test(tc, test_every_error_reported);
	tcase_add_test(tc, test_embedded_default);
	tcase_add_test(tc, test_duration);
	tcase_add_test(tc, test_policy_dir_limits);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(config_suite)
