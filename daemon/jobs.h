/*
 * jobs.h - work that blocks on a tenant (placement reads, attach and
 * migration) runs on libuv's thread pool; progress comes back to the loop
 * through a uv_async. A job outlives the client that asked for it: a
 * client that goes away only stops receiving events.
 *
 * Both kinds queue and can be cancelled by their number. At most max_jobs
 * migrations and JOBS_MAX_PLACEMENTS placement reads run at once, so the
 * pool (max_jobs + 4 threads) always has room for both; among queued jobs
 * the uid with the fewest running jobs goes first, so one client's flood
 * cannot starve another's work.
 */
#ifndef MIGD_JOBS_H
#define MIGD_JOBS_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
/* util.h before uv.h: its MIN/MAX then win over sys/param.h quietly. */
#include "util.h"
#include <uv.h>

#include "daemon.h"
#include "engine.h"

/* Placement reads running at once. */
#define JOBS_MAX_PLACEMENTS 2
/* Jobs one uid may have queued (policy jobs are bounded by the tenants). */
#define JOBS_MAX_QUEUED_PER_UID 64

enum job_kind {
	JOB_MIGRATE,
	JOB_PLACEMENT,
};

enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_DONE,
	JOB_FAILED,
	JOB_CANCELLED,
};

struct job {
	struct job *next;
	struct migd *d;
	uint64_t id;
	enum job_kind kind;
	enum job_state state;
	uid_t uid;    /* who asked (0 for policy jobs) */
	char *policy; /* the policy that triggered it, NULL when asked for */
	struct engine_migrate_req req;
	volatile int cancel;
	/* Copies of the configuration's directories (a reload may free the config). */
	char *journal_dir, *staging_dir;

	uv_work_t work;
	uv_async_t async;
	bool async_open;

	pthread_mutex_t lock; /* guards progress and progress_new */
	struct mig_migrate_progress progress;
	bool progress_new;

	/* Written by the worker, read by the loop after the work is done. */
	int result;
	json_object *summary;
	char *reason; /* why it failed, for the client and the log (malloc'd) */

	struct client *client; /* ref held; events go there while it is alive */
	json_object *req_id;
	uint64_t queued_ms, started_ms, finished_ms;
};

/*
 * Queue a job (takes ownership of req.ranges and req.ident, also on
 * failure). The client, if any, gets a "queued" event now, progress
 * events, and the reply at the end. Returns 0, -ESHUTDOWN, -EBUSY (uid
 * has JOBS_MAX_QUEUED_PER_UID jobs queued), -ENOMEM.
 */
int job_submit(struct migd *d, enum job_kind kind, const struct engine_migrate_req *req, uid_t uid,
	       const char *policy, struct client *c, json_object *req_id, struct job **ret);
struct job *job_find(struct migd *d, uint64_t id);
void job_cancel(struct job *j);
/* c is going away: cancel its placement reads (its migrations carry on). */
void jobs_client_gone(struct migd *d, struct client *c);
/* Ask every job to stop after its current window. */
void jobs_cancel_all(struct migd *d);
const char *job_state_name(enum job_state s);
json_object *job_json(const struct job *j);
void jobs_free_all(struct migd *d);

#endif /* MIGD_JOBS_H */
