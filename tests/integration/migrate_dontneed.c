/*
 * migrate_dontneed.c - the tenant madvise(MADV_DONTNEED)s 4 MiB around the window being migrated,
 * after its zap: those pages read zero at once and at the end (never refilled with stale content).
 */
#include "integration/migrate_common.h"

int main(int argc, char **argv)
{
	struct mig_migrate_result res;
	struct wtenant w = { 0 };

	(void)argc;
	event_test_run(argv[0], "dontneed", &w, &res);
	if (res.pages_gone == 0)
		FAIL("no page reported gone");
	event_test_done(&w, &res);
	return 0;
}
