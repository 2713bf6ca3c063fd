/*
 * replay.c - runs a fuzz target's entry point over every file of its seed
 * corpus (tests/fuzz/corpus/NAME) and of its regression inputs
 * (tests/fuzz/regress/NAME: every input that once crashed it), as one
 * Check test per directory. Built with the normal compiler into
 * build/tests/fuzz-replay-NAME; `make check-unit` runs it, under ASan and
 * UBSan with SANITIZE=1.
 *
 *   fuzz-replay-NAME DIR...
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static char **dirs;
static int ndirs;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long len;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(len > 0 ? (size_t)len : 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)len, f), len);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

START_TEST(test_dir)
{
	DIR *d = opendir(dirs[_i]);
	struct dirent *de;
	char path[4096];
	int n = 0;

	ck_assert_msg(d != NULL, "cannot open %s", dirs[_i]);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirs[_i], de->d_name);
		ck_assert_int_eq(replay_file(path), 0);
		n++;
	}
	closedir(d);
	printf("%s: %d inputs replayed\n", dirs[_i], n);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("fuzz-replay");
	TCase *tc = tcase_create("inputs");
	SRunner *sr;
	int failed;

	dirs = argv + 1;
	ndirs = argc - 1;
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_dir, 0, ndirs);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
