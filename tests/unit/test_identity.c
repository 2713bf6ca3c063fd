/*
 * test_identity.c - daemon/identity.c with real processes: the identity
 * of a live child holds; once the child has exited, and once its pid could
 * name another process, the check is ESRCH with a reason; a kernel thread
 * and a missing pid are refused when the identity is taken.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "identity.h"
#include "unit.h"

START_TEST(test_child)
{
	struct pid_identity id = PID_IDENTITY_NULL;
	char reason[256] = "";
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	ck_assert_int_eq(identity_take(pid, &id, reason, sizeof(reason)), 0);
	ck_assert_int_ge(id.pidfd, 0);
	ck_assert_uint_gt(id.starttime, 0);
	ck_assert_int_eq(identity_check(&id, 0, reason, sizeof(reason)), 0);
	ck_assert_int_eq(identity_check(&id, getuid(), reason, sizeof(reason)), 0);
	if (getuid() == 0) {
		/* Root's process, asked for by another uid: refused. */
		ck_assert_int_eq(identity_check(&id, 65534, reason, sizeof(reason)), -EPERM);
		ck_assert_ptr_nonnull(strstr(reason, "changed owner"));
	}
	kill(pid, SIGKILL);
	/* A zombie has exited already: its identity no longer holds. */
	while (identity_check(&id, 0, reason, sizeof(reason)) == 0)
		usleep(1000);
	ck_assert_int_eq(identity_check(&id, 0, reason, sizeof(reason)), -ESRCH);
	ck_assert_ptr_nonnull(strstr(reason, "exited"));
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(identity_check(&id, 0, reason, sizeof(reason)), -ESRCH);
	identity_done(&id);
	ck_assert_int_lt(id.pidfd, 0);
	identity_done(&id); /* twice is fine */
}
END_TEST

START_TEST(test_refused)
{
	struct pid_identity id = PID_IDENTITY_NULL;
	char reason[256] = "";

	ck_assert_int_eq(identity_take(4194303, &id, reason, sizeof(reason)), -ESRCH);
	ck_assert_ptr_nonnull(strstr(reason, "no such process: 4194303"));
	ck_assert_int_lt(id.pidfd, 0);
	/* kthreadd is pid 2 in the initial pid namespace only. */
	if (identity_take(2, &id, reason, sizeof(reason)) == -EPERM)
		ck_assert_ptr_nonnull(strstr(reason, "kernel thread"));
	else
		identity_done(&id);
	ck_assert_int_eq(identity_check(&id, 0, reason, sizeof(reason)), -ESRCH);
}
END_TEST

static Suite *identity_suite(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_child);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(identity_suite)
