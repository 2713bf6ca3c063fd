/*
 * migrate_mremap.c - the tenant mremaps 4 MiB around the window being migrated to a new address,
 * after its zap: the zapped pages follow their new address and every page verifies.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	struct mig_migrate_result res;
	struct evtest e = { 0 };
	struct wtenant w = { 0 };
	int r;

	(void)argc;
	r = run_event_test(argv[0], &w, "mremap", &e, &res);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	if (strncmp(e.answer, "OK", 2))
		FAIL("tenant: %s", e.answer);
	if (res.events == 0)
		FAIL("no event was read");
	if (res.pages_failed)
		FAIL("%" PRIu64 " pages failed", res.pages_failed);
	if (res.pages_gone == 0)
		FAIL("the pages moved away were not reported");
	finish(&w);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
