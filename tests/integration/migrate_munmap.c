/*
 * migrate_munmap.c - the tenant munmaps 4 MiB around the window being migrated, after its zap: the
 * pages are dropped (reported gone), everything else moves and verifies.
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	struct mig_migrate_result res;
	struct evtest e = { 0 };
	struct wtenant w = { 0 };
	int r;

	(void)argc;
	r = run_event_test(argv[0], &w, "munmap", &e, &res);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	if (strncmp(e.answer, "OK", 2))
		FAIL("tenant: %s", e.answer);
	if (res.events == 0)
		FAIL("no event was read");
	if (res.pages_gone == 0)
		FAIL("no page reported gone");
	finish(&w);
	mig_migrate_result_free(&res);
	printf("PASS\n");
	return 0;
}
