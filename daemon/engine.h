/*
 * engine.h - the daemon's thin adapter over libmig's tenant, placement and
 * migration calls. Everything here blocks on a tenant and runs on a job
 * thread, never on the loop.
 *
 * Each call checks first that the request's process is still the one
 * holding the pid (identity.h), works on the parts of the ranges that are
 * anonymous private memory, in chunks of bounded span (ranges.h), and on
 * failure writes a reason a person can act on: libmig's own
 * (mig_tenant_last_error) where it has one.
 */
#ifndef MIGD_ENGINE_H
#define MIGD_ENGINE_H

#include <json-c/json.h>
#include <stdbool.h>

#include "config.h"
#include "identity.h"
#include "mig.h"

/* Span a placement read covers between two looks at the cancel flag. */
#define ENGINE_PLACEMENT_SLICE (UINT64_C(1) << 30)

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
	struct pid_identity ident; /* taken when the request arrived; owned */
	uid_t uid;		   /* who asked: 0 root or a policy */
	struct mig_range *ranges;  /* sorted, merged; n == 0: every selected VMA */
	size_t n;
	struct mig_nodes to;
	bool force;
	uint64_t window;
	uint64_t rate_limit;
	enum mig_attach_method attach;
	bool no_device; /* migd.conf hand_device = no (mig_attach_opts) */
	enum policy_huge huge;
	unsigned vmas;	     /* n == 0: POLICY_VMA_* to take, 0 = all kinds */
	uint64_t min_region; /* n == 0: smaller VMAs are left alone */
	const volatile int *cancel;
	bool compact_after;	 /* ENGINE_MIGRATE: compact the tenant after it */
	uint64_t src, len, dst;	 /* ENGINE_RELOCATE */
	unsigned relocate_flags; /* MIG_RELOCATE_* */
	/* Crash recovery: the journal directory and the staging directory (tmpfs). */
	const char *journal_dir;
	const char *staging_dir;
	bool movefirst; /* migd.conf window_protocol = movefirst */
	bool fault_rt;	/* migd.conf fault_priority = realtime */
};

/*
 * Placement of the request's process in its ranges (n == 0: all anonymous
 * private memory) as {"nodes":{"0":N,...},"absent":N,"huge":N,"total":N}.
 * Returns 0, -ECANCELED, -ESRCH (exited or another process now), -errno;
 * *ret_reason (may be NULL) gets why on failure (malloc'd).
 */
int engine_placement(const struct engine_migrate_req *req, json_object **ret_json,
		     char **ret_reason);

/* The VMAs of pid a policy selects (vmas kinds, at least min_region bytes). */
int engine_policy_ranges(pid_t pid, unsigned vmas, uint64_t min_region,
			 struct mig_range **ret_ranges, size_t *ret_n);

/*
 * Attach, run the request's op, detach. A migration works on the
 * anonymous private parts of its ranges only (pages_not_anon counts the
 * rest; none at all is -EFAULT) and hands them to libmig in chunks. A migration fills *ret_summary
 * with the job summary (pages_moved, pages_skipped, pages_failed,
 * failures, bytes_per_sec, max_stall_us, huge_kept, large_skipped, ...)
 * also when cancelled, and with compact_after a "compact" object; a
 * relocation or compaction with "path" (the path of every run, or "mixed"),
 * "runs" [{"start","end","path"}], "vmas_before", "vmas_after" and the page
 * and large-folio counts (docs/protocol.md). Returns 0, -ECANCELED or
 * -errno; *ret_reason (may be NULL) gets why on failure (malloc'd): libmig's
 * sentence, or the daemon's (identity, ranges).
 */
int engine_migrate(const struct engine_migrate_req *req, mig_progress_fn progress, void *userdata,
		   json_object **ret_summary, char **ret_reason);

#endif /* MIGD_ENGINE_H */
