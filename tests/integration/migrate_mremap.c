/*
 * migrate_mremap.c - the tenant mremaps 4 MiB around the window being migrated to a new address,
 * after its zap: the zapped pages follow their new address and every page verifies.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	struct mig_migrate_result res;
	struct wtenant w = { 0 };

	(void)argc;
	event_test_run(argv[0], "mremap", &w, &res);
	if (res.pages_failed)
		FAIL("%" PRIu64 " pages failed", res.pages_failed);
	if (res.pages_gone == 0)
		FAIL("the pages moved away were not reported");
	event_test_done(&w, &res);
	return 0;
}
