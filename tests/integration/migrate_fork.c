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
	struct wtenant w = { 0 };

	(void)argc;
	event_test_run(argv[0], "fork", &w, &res);
	event_test_done(&w, &res);
	return 0;
}
