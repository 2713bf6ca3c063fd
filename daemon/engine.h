/*
 * engine.h - the daemon's thin adapter over libmig's tenant, placement and
 * migration calls. Everything here blocks on a tenant and runs on a job
 * thread, never on the loop.
 */
#ifndef MIGD_ENGINE_H
#define MIGD_ENGINE_H

#include <json-c/json.h>
#include <stdbool.h>

#include "config.h"
#include "mig.h"

/* Placement of pid's anonymous memory in ranges (n == 0: all) as
 * {"nodes":{"0":N,...},"absent":N,"huge":N,"total":N}. Returns 0 or -errno. */
int engine_placement(pid_t pid, const struct mig_range *ranges, size_t n, json_object **ret_json);

/* The VMAs of pid a policy selects (vmas kinds, at least min_region bytes). */
int engine_policy_ranges(pid_t pid, unsigned vmas, uint64_t min_region,
			 struct mig_range **ret_ranges, size_t *ret_n);

struct engine_migrate_req {
	pid_t pid;
	struct mig_range *ranges; /* n == 0: every anonymous private VMA */
	size_t n;
	struct mig_nodes to;
	bool force;
	uint64_t window;
	uint64_t rate_limit;
	enum mig_attach_method attach;
	enum policy_huge huge;
	unsigned vmas;	     /* n == 0: POLICY_VMA_* to take, 0 = all kinds */
	uint64_t min_region; /* n == 0: smaller VMAs are left alone */
	const volatile int *cancel;
};

/*
 * Attach, migrate, detach. Fills *ret_summary with the job summary
 * (pages_moved, pages_skipped, pages_failed, failures, bytes_per_sec,
 * max_stall_us, huge_kept, ...) also when cancelled. Returns 0, -ECANCELED
 * or -errno.
 */
int engine_migrate(const struct engine_migrate_req *req, mig_progress_fn progress, void *userdata,
		   json_object **ret_summary);

#endif /* MIGD_ENGINE_H */
