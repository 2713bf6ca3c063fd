/*
 * jobs.c - the job queue. At most max_jobs migrations and
 * JOBS_MAX_PLACEMENTS placement reads run at a time, each kind in its own
 * share of the pool, so placement reads never wait behind migrations nor
 * the other way round. The next job to start is the queued one whose uid
 * has the fewest jobs of its kind running, the oldest among equals. The
 * loop thread owns the list; a worker touches only its own job, and only
 * the fields marked so.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define JOBS_KEEP_FINISHED 64

const char *job_state_name(enum job_state s)
{
	switch (s) {
	case JOB_QUEUED:
		return "queued";
	case JOB_RUNNING:
		return "running";
	case JOB_DONE:
		return "done";
	case JOB_FAILED:
		return "failed";
	case JOB_CANCELLED:
		return "cancelled";
	}
	return "?";
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->req.ranges);
	identity_done(&j->req.ident);
	free(j->journal_dir);
	free(j->staging_dir);
	free(j->policy);
	free(j->reason);
	json_object_put(j->summary);
	json_object_put(j->req_id);
	if (j->client)
		client_unref(j->client);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static void on_async_closed(uv_handle_t *h)
{
	struct job *j = h->data;

	j->async_open = false;
}

json_object *job_json(const struct job *j)
{
	json_object *o = json_object_new_object();
	char nodes[256];

	mig_format_nodes(&j->req.to, nodes, sizeof(nodes));
	json_object_object_add(o, "job", json_object_new_int64((int64_t)j->id));
	json_object_object_add(o, "kind",
			       json_object_new_string(j->kind == JOB_MIGRATE
							      ? engine_op_name(j->req.op)
							      : "placement"));
	json_object_object_add(o, "pid", json_object_new_int(j->req.pid));
	json_object_object_add(o, "state", json_object_new_string(job_state_name(j->state)));
	if (j->kind == JOB_MIGRATE)
		json_object_object_add(o, "to", json_object_new_string(nodes));
	json_object_object_add(o, "policy", j->policy ? json_object_new_string(j->policy) : NULL);
	json_object_object_add(o, "uid", json_object_new_int((int)j->uid));
	json_object_object_add(o, "bytes_done",
			       json_object_new_int64((int64_t)j->progress.bytes_done));
	json_object_object_add(o, "bytes_total",
			       json_object_new_int64((int64_t)j->progress.bytes_total));
	return o;
}

static void send_event(struct job *j, const char *event)
{
	json_object *o;

	if (!j->client || !client_alive(j->client))
		return;
	o = json_object_new_object();
	json_object_object_add(o, "id", j->req_id ? json_object_get(j->req_id) : NULL);
	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "job", json_object_new_int64((int64_t)j->id));
	if (strcmp(event, "progress") == 0) {
		json_object_object_add(o, "bytes_done",
				       json_object_new_int64((int64_t)j->progress.bytes_done));
		json_object_object_add(o, "bytes_total",
				       json_object_new_int64((int64_t)j->progress.bytes_total));
		json_object_object_add(o, "pages_moved",
				       json_object_new_int64((int64_t)j->progress.pages_moved));
		json_object_object_add(o, "windows",
				       json_object_new_int64((int64_t)j->progress.windows));
	}
	client_send(j->client, o);
	json_object_put(o);
}

/* Worker thread: record progress, wake the loop, tell libmig whether to stop. */
static int on_progress(const struct mig_migrate_progress *p, void *userdata)
{
	struct job *j = userdata;

	pthread_mutex_lock(&j->lock);
	j->progress = *p;
	j->progress_new = true;
	pthread_mutex_unlock(&j->lock);
	uv_async_send(&j->async);
	return j->cancel;
}

static void on_async(uv_async_t *a)
{
	struct job *j = a->data;
	bool fresh;

	pthread_mutex_lock(&j->lock);
	fresh = j->progress_new;
	j->progress_new = false;
	pthread_mutex_unlock(&j->lock);
	if (fresh)
		send_event(j, "progress");
}

static void work_cb(uv_work_t *w)
{
	struct job *j = w->data;

	if (j->cancel) {
		j->result = -ECANCELED;
		return;
	}
	if (j->kind == JOB_PLACEMENT)
		j->result = engine_placement(&j->req, &j->summary, &j->reason);
	else
		j->result = engine_migrate(&j->req, on_progress, j, &j->summary, &j->reason);
}

static void start_pending(struct migd *d);

static void summary_add_to_stats(struct migd *d, json_object *s)
{
	int64_t v;

	if (!s)
		return;
	if (proto_get_int64(s, "pages_moved", &v) == 0 && v > 0)
		d->stats.pages_moved += (uint64_t)v;
	if (proto_get_int64(s, "pages_failed", &v) == 0 && v > 0)
		d->stats.pages_failed += (uint64_t)v;
}

/* The reason of a failed job: the engine's sentence, else strerror. */
static const char *result_reason(struct job *j)
{
	if (j->result == -ECANCELED)
		return "cancelled";
	if (!j->reason && asprintf(&j->reason, "%s", strerror(-j->result)) < 0)
		j->reason = NULL;
	return j->reason ? j->reason : "out of memory";
}

static void trim_finished(struct migd *d)
{
	unsigned kept = 0;

	for (struct job **p = &d->jobs; *p;) {
		struct job *j = *p;

		if (j->state == JOB_QUEUED || j->state == JOB_RUNNING || j->async_open ||
		    ++kept <= JOBS_KEEP_FINISHED) {
			p = &j->next;
			continue;
		}
		*p = j->next;
		job_free(j);
	}
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct job *j = w->data;
	struct migd *d = j->d;
	struct tenant *t = tenant_find(d, j->req.pid);
	const char *msg;

	if (status == UV_ECANCELED)
		j->result = -ECANCELED;
	on_async(&j->async); /* flush the last progress */
	uv_close((uv_handle_t *)&j->async, on_async_closed);
	j->finished_ms = uv_now(d->loop);
	if (j->kind == JOB_MIGRATE)
		d->running_jobs--;
	else
		d->running_placements--;

	msg = j->result < 0 ? result_reason(j) : NULL;
	if (j->result == 0) {
		j->state = JOB_DONE;
		if (j->kind == JOB_MIGRATE)
			d->stats.jobs_succeeded++;
	} else if (j->result == -ECANCELED) {
		j->state = JOB_CANCELLED;
		d->stats.jobs_cancelled++;
	} else {
		j->state = JOB_FAILED;
		if (j->kind == JOB_MIGRATE)
			d->stats.jobs_failed++;
	}
	if (j->kind == JOB_MIGRATE) {
		const char *why;
		int64_t nmemcg;

		summary_add_to_stats(d, j->summary);
		/* window_protocol = movefirst, and this tenant ran the classic windows. */
		if (j->summary &&
		    proto_get_string(j->summary, "window_protocol_fallback", &why) == 0)
			log_info("job %" PRIu64 ": pid %d: classic windows, not move first: %s",
				 j->id, (int)j->req.pid, why);
		/* The tenant's memory limit kept windows from holding its pages twice. */
		if (j->summary && proto_get_int64(j->summary, "windows_memcg", &nmemcg) == 0 &&
		    nmemcg > 0)
			log_info("job %" PRIu64 ": pid %d: %" PRId64
				 " windows classic or without whole THP moves: "
				 "too little room under the tenant's memory limit",
				 j->id, (int)j->req.pid, nmemcg);
		/* UFFDIO_MOVE there, but no scratch area: the madvise zap ran. */
		if (j->summary && proto_get_string(j->summary, "zap_fallback", &why) == 0)
			log_warning("job %" PRIu64 ": pid %d: zapped with madvise, not MOVE: %s",
				    j->id, (int)j->req.pid, why);
		if (j->result == 0)
			log_info("job %" PRIu64 ": pid %d %s", j->id, (int)j->req.pid,
				 j->req.op == ENGINE_MIGRATE ? "migrated"
							     : engine_op_name(j->req.op));
		else
			log_warning("job %" PRIu64 ": %s pid %d failed (%s): %s", j->id,
				    engine_op_name(j->req.op), (int)j->req.pid,
				    mig_errno_name(j->result), msg);
	} else if (j->result < 0 && j->result != -ECANCELED) {
		log_info("job %" PRIu64 ": placement of pid %d failed (%s): %s", j->id,
			 (int)j->req.pid, mig_errno_name(j->result), msg);
	}
	/* Only the job on this very process speaks for the tenant entry. */
	if (t && t->job == j) {
		t->job = NULL;
		t->jobs++;
		free(t->last_error);
		t->last_error = j->result < 0 ? strdup(msg) : NULL;
		t->state = j->result < 0 && j->result != -ECANCELED ? TENANT_FAILED : TENANT_IDLE;
		if (j->policy)
			t->last_run_ms = j->finished_ms;
	}

	if (j->client && client_alive(j->client)) {
		json_object *reply;

		if (j->result == 0)
			reply = proto_reply_ok(j->req_id);
		else
			reply = proto_reply_error_reason(
				j->req_id, j->result, msg, "%s of pid %d %s",
				j->kind == JOB_MIGRATE ? "migration" : "placement read",
				(int)j->req.pid, j->result == -ECANCELED ? "cancelled" : "failed");
		json_object_object_add(reply, "job", json_object_new_int64((int64_t)j->id));
		if (j->summary) {
			json_object_object_foreach (j->summary, key, val) {
				json_object_object_add(reply, key, json_object_get(val));
			}
		}
		client_send(j->client, reply);
		json_object_put(reply);
	}
	if (j->client) {
		client_unref(j->client);
		j->client = NULL;
	}
	start_pending(d);
	trim_finished(d);
	migd_update_status(d);
	if (d->stopping)
		migd_shutdown(d);
}

static int job_run(struct job *j)
{
	struct migd *d = j->d;
	int r;

	r = uv_async_init(d->loop, &j->async, on_async);
	if (r < 0)
		return r;
	j->async.data = j;
	j->async_open = true;
	j->work.data = j;
	r = uv_queue_work(d->loop, &j->work, work_cb, after_work_cb);
	if (r < 0) {
		uv_close((uv_handle_t *)&j->async, on_async_closed);
		j->async_open = false;
		return r;
	}
	j->state = JOB_RUNNING;
	j->started_ms = uv_now(d->loop);
	if (j->kind == JOB_PLACEMENT)
		d->running_placements++;
	if (j->kind == JOB_MIGRATE) {
		struct tenant *t = tenant_find(d, j->req.pid);

		d->running_jobs++;
		d->stats.jobs_started++;
		if (t)
			t->state = TENANT_MIGRATING;
		send_event(j, "started");
	}
	return 0;
}

static unsigned running_of(struct migd *d, enum job_kind kind, uid_t uid)
{
	unsigned n = 0;

	for (struct job *j = d->jobs; j; j = j->next)
		if (j->state == JOB_RUNNING && j->kind == kind && j->uid == uid)
			n++;
	return n;
}

/* The queued job of kind to start next: fewest running for its uid, then oldest. */
static struct job *pick_next(struct migd *d, enum job_kind kind)
{
	struct job *best = NULL;
	unsigned best_running = 0;

	/* The list is newest first: a later candidate with equal running is older. */
	for (struct job *j = d->jobs; j; j = j->next) {
		unsigned running;

		if (j->state != JOB_QUEUED || j->kind != kind)
			continue;
		running = running_of(d, kind, j->uid);
		if (!best || running <= best_running) {
			best = j;
			best_running = running;
		}
	}
	return best;
}

static void start_kind(struct migd *d, enum job_kind kind)
{
	for (;;) {
		unsigned running = kind == JOB_MIGRATE ? d->running_jobs : d->running_placements;
		unsigned limit = kind == JOB_MIGRATE ? d->cfg->max_jobs : JOBS_MAX_PLACEMENTS;
		struct job *next;

		if (running >= limit)
			return;
		next = pick_next(d, kind);
		if (!next)
			return;
		if (job_run(next) < 0) {
			next->state = JOB_FAILED;
			next->result = -ENOMEM;
			return;
		}
	}
}

static void start_pending(struct migd *d)
{
	if (d->stopping)
		return;
	start_kind(d, JOB_MIGRATE);
	start_kind(d, JOB_PLACEMENT);
}

static unsigned queued_of(struct migd *d, uid_t uid)
{
	unsigned n = 0;

	for (struct job *j = d->jobs; j; j = j->next)
		if (j->state == JOB_QUEUED && j->uid == uid && !j->policy)
			n++;
	return n;
}

int job_submit(struct migd *d, enum job_kind kind, const struct engine_migrate_req *req, uid_t uid,
	       const char *policy, struct client *c, json_object *req_id, struct job **ret)
{
	struct engine_migrate_req own = *req;
	struct job *j = NULL;
	int r = 0;

	if (d->stopping)
		r = -ESHUTDOWN;
	else if (!policy && queued_of(d, uid) >= JOBS_MAX_QUEUED_PER_UID)
		r = -EBUSY;
	else if (!(j = calloc(1, sizeof(*j))))
		r = -ENOMEM;
	if (r < 0) {
		free(own.ranges);
		identity_done(&own.ident);
		return r;
	}
	pthread_mutex_init(&j->lock, NULL);
	j->d = d;
	j->id = ++d->next_job_id;
	j->kind = kind;
	j->state = JOB_QUEUED;
	j->uid = uid;
	j->req = own;
	j->req.uid = uid;
	j->req.cancel = &j->cancel;
	j->journal_dir = strdup(d->cfg->state_dir);
	if (asprintf(&j->staging_dir, "%s/staging", d->cfg->runtime_dir) < 0)
		j->staging_dir = NULL;
	if (!j->journal_dir || !j->staging_dir) {
		free(j->journal_dir);
		free(j->staging_dir);
		free(own.ranges);
		identity_done(&own.ident);
		pthread_mutex_destroy(&j->lock);
		free(j);
		return -ENOMEM;
	}
	j->req.no_device = !d->cfg->hand_device;
	j->req.movefirst = d->cfg->movefirst;
	j->req.fault_rt = d->cfg->fault_rt;
	j->req.journal_dir = j->journal_dir;
	j->req.staging_dir = j->staging_dir;
	j->policy = policy ? strdup(policy) : NULL;
	j->client = c ? client_ref(c) : NULL;
	j->req_id = req_id ? json_object_get(req_id) : NULL;
	j->queued_ms = uv_now(d->loop);
	j->next = d->jobs;
	d->jobs = j;

	if (kind == JOB_MIGRATE)
		send_event(j, "queued");
	start_pending(d);
	if (ret)
		*ret = j;
	migd_update_status(d);
	return 0;
}

struct job *job_find(struct migd *d, uint64_t id)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (id && j->id == id)
			return j;
	return NULL;
}

void job_cancel(struct job *j)
{
	j->cancel = 1;
	if (j->state == JOB_QUEUED) {
		struct tenant *t = tenant_find(j->d, j->req.pid);

		/* Never started: finish it through the same path as a ran job. */
		if (job_run(j) == 0)
			return;
		j->state = JOB_CANCELLED;
		if (t && t->job == j)
			t->job = NULL;
	} else if (j->state == JOB_RUNNING) {
		uv_cancel((uv_req_t *)&j->work);
	}
}

void jobs_client_gone(struct migd *d, struct client *c)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (j->client == c && j->kind == JOB_PLACEMENT &&
		    (j->state == JOB_QUEUED || j->state == JOB_RUNNING))
			job_cancel(j);
}

void jobs_cancel_all(struct migd *d)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (j->state == JOB_QUEUED || j->state == JOB_RUNNING)
			job_cancel(j);
}

void jobs_free_all(struct migd *d)
{
	while (d->jobs) {
		struct job *j = d->jobs;

		d->jobs = j->next;
		job_free(j);
	}
}
