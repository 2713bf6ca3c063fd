/*
 * migrate_mremap_early.c - the tenant mremaps 4 MiB of the window being
 * migrated right after the window registered it, before anything was
 * protected or staged. Its REMAP must be applied to the window (it was
 * dropped while the window was not yet published to the fault thread):
 * the window follows the pages to their new address, they move and
 * verify, and nothing is left registered after the job (a VMA left
 * registered would raise faults and events nobody reads: a hung tenant).
 * The job runs with the debug trace on (MIG_TRACE): it must show the
 * REMAP read inside a window, and the window itself.
 */
#include <ctype.h>

#include "integration/migrate_common.h"

/* VMAs of pid still registered with a userfaultfd (VmFlags um, uw or ui). */
static int count_registered(pid_t pid)
{
	char path[64], line[512], head[512] = "";
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		printf("# open %s: %s\n", path, strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmFlags:", 8) != 0) {
			char *dash = strchr(line, '-'), *sp = strchr(line, ' ');

			/* A VMA's first line: "start-end perms ...". */
			if (isxdigit((unsigned char)line[0]) && dash && sp && dash < sp)
				snprintf(head, sizeof(head), "%s", line);
			continue;
		}
		if (strstr(line, " um") || strstr(line, " uw") || strstr(line, " ui")) {
			printf("# still registered: %s#   %s", head, line);
			n++;
		}
	}
	fclose(f);
	return n;
}

/* The trace has a window and the REMAP, read while a window was published. */
static void check_trace(const char *path)
{
	char line[1024];
	int wins = 0, remaps = 0, dropped = 0;
	FILE *f = fopen(path, "re");

	while (f && fgets(line, sizeof(line), f)) {
		wins += strstr(line, " WIN start=") != NULL;
		if (strstr(line, " EV REMAP ")) {
			remaps++;
			dropped += strstr(line, " win=0\n") != NULL;
		}
	}
	if (f)
		fclose(f);
	unlink(path);
	printf("# trace: %d windows, %d REMAP events (%d read outside a window)\n", wins, remaps,
	       dropped);
	if (!wins || !remaps || dropped)
		FAIL("the trace does not show the REMAP applied in a window");
}

int main(int argc, char **argv)
{
	struct mig_migrate_result res;
	struct wtenant w = { 0 };
	struct evtest e = { .phase = MIG_PHASE_REGISTERED };
	char trace[] = "/tmp/migrate_mremap_early.trace.XXXXXX";
	int r, fd;

	(void)argc;
	fd = mkstemp(trace);
	if (fd < 0)
		FAIL("mkstemp: %s", strerror(errno));
	close(fd);
	setenv("MIG_TRACE", trace, 1);
	r = run_event_test(argv[0], &w, "mremap", &e, &res);
	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	if (strncmp(e.answer, "OK", 2))
		FAIL("tenant after 'mremap': %s", e.answer);
	if (res.events == 0)
		FAIL("the tenant's REMAP was not read");
	if (count_registered(w.pid))
		FAIL("VMAs left registered after the job");
	check_trace(trace);
	if (res.pages_failed)
		FAIL("%" PRIu64 " pages failed", res.pages_failed);
	/*
	 * The pages the tenant moved are gone from the job (a REMAP, as
	 * mig.h says) but followed to their new address: the tenant
	 * verifies them. Gone are exactly those, read from the REMAP: had
	 * it been dropped, they would have read absent at the first scan.
	 */
	if (res.pages_gone != (2U << 20) / 4096)
		FAIL("%" PRIu64 " pages gone, the tenant moved 512", res.pages_gone);
	if (res.pages_moved + res.pages_gone != res.pages_present)
		FAIL("moved %" PRIu64 " + gone %" PRIu64 " of %" PRIu64 " present pages",
		     res.pages_moved, res.pages_gone, res.pages_present);
	event_test_done(&w, &res);
	return 0;
}
