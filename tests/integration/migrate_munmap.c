/*
 * migrate_munmap.c - the tenant munmaps 4 MiB around the window being migrated, after its zap: the
 * pages are dropped (reported gone), everything else moves and verifies.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	struct mig_migrate_result res;
	struct wtenant w = { 0 };

	(void)argc;
	event_test_run(argv[0], "munmap", &w, &res);
	if (res.pages_gone == 0)
		FAIL("no page reported gone");
	event_test_done(&w, &res);
	return 0;
}
