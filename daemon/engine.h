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

/* What a job does to its tenant. */
enum engine_op {
	ENGINE_MIGRATE,	 /* mig_migrate (then mig_compact with compact_after) */
	ENGINE_RELOCATE, /* mig_relocate of src..src+len to dst */
	ENGINE_COMPACT,	 /* mig_compact of ranges[0] (n == 0: the whole process) */
};

const char *engine_op_name(enum engine_op op);

struct engine_migrate_req {
	enum engine_op op;
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
	bool compact_after;	 /* ENGINE_MIGRATE: compact the tenant after it */
	uint64_t src, len, dst;	 /* ENGINE_RELOCATE */
	unsigned relocate_flags; /* MIG_RELOCATE_* */
};

/*
 * Attach, run the request's op, detach. A migration fills *ret_summary
 * with the job summary (pages_moved, pages_skipped, pages_failed,
 * failures, bytes_per_sec, max_stall_us, huge_kept, large_skipped, ...)
 * also when cancelled, and with compact_after a "compact" object; a
 * relocation or compaction with "path" (the path of every run, or "mixed"),
 * "runs" [{"start","end","path"}], "vmas_before", "vmas_after" and the page
 * and large-folio counts (docs/protocol.md). Returns 0, -ECANCELED or
 * -errno; *ret_reason (may be NULL) gets libmig's sentence on failure.
 */
int engine_migrate(const struct engine_migrate_req *req, mig_progress_fn progress, void *userdata,
		   json_object **ret_summary, char **ret_reason);

#endif /* MIGD_ENGINE_H */
