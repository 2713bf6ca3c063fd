/*
 * migrate_fork.c - the tenant forks while a window is zapped and not yet
 * filled: the child inherits the holes, migd fills them from staging
 * before it releases the child's uffd, and the child finds every page
 * intact (it checks them all and exits 0). The parent verifies too.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	struct mig_migrate_result res;
	struct evtest e = { 0 };
	struct wtenant w = { 0 };
	int r;

	(void)argc;
	r = run_event_test(argv[0], &w, "fork", &e, &res);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	if (strncmp(e.answer, "OK", 2))
		FAIL("the child found damaged pages: %s", e.answer);
	if (res.events == 0)
		FAIL("no event was read");
	finish(&w);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
