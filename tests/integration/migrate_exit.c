/*
 * migrate_exit.c - the tenant exits while a window is zapped and not yet
 * filled: mig_migrate notices through the pidfd, returns -ESRCH (or
 * finishes with the pages gone) promptly, and nothing hangs.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	struct mig_migrate_result res = { 0 };
	struct evtest e = { 0 };
	struct wtenant w = { 0 };
	double t0 = now_s();
	int r, st = 0;

	(void)argc;
	r = run_event_test(argv[0], &w, "exit", &e, &res);
	printf("# mig_migrate returned %s %.3f s after start\n", r < 0 ? strerror(-r) : "0",
	       now_s() - t0);
	if (r < 0 && r != -ESRCH)
		FAIL("mig_migrate: %s", strerror(-r));
	if (strcmp(e.answer, "EOF"))
		FAIL("the tenant answered instead of exiting: %s", e.answer);
	if (waitpid(w.pid, &st, 0) != w.pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("the tenant did not exit cleanly");
	(void)mig_tenant_detach(w.t);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
