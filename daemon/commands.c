/*
 * commands.c - the control commands and who may run them.
 *
 * Authorization: root may do anything. Any other uid may only look at and
 * act on tenants it owns (real and effective uid of the process), and may
 * migrate only processes a policy already names: naming a new process
 * explicitly is root's alone, so a process no policy names is touched
 * only on root's word.
 *
 * A request that names a pid takes that process's identity (pidfd, start
 * time, owner) when it arrives and decides on it; the job carries it and
 * checks it again when it starts (identity.h). A request's cost is bounded
 * before it is queued: ranges are merged and counted, the window is held
 * to the configuration's max_window, and a connection has at most
 * CLIENT_MAX_PLACEMENTS placement reads in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents.h"
#include "daemon.h"
#include "identity.h"
#include "jobs.h"
#include "log.h"
#include "proto.h"
#include "ranges.h"
#include "util.h"

/* Ranges a request may list before merging: the line cap bounds it anyway. */
#define MAX_RANGES_RAW 8192
/* Placement reads one connection may have queued or running. */
#define CLIENT_MAX_PLACEMENTS 2

struct command {
	const char *name;
	void (*run)(struct migd *d, struct client *c, uid_t uid, json_object *id, json_object *req);
	bool root_only;
};

static void reply_error(struct client *c, json_object *id, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void reply_error(struct client *c, json_object *id, int err, const char *fmt, ...)
{
	char msg[1024];
	json_object *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = proto_reply_error(id, err, "%s", msg);
	client_send(c, o);
	json_object_put(o);
}

/*
 * Refusals the journal is told of: at most REFUSALS_LOGGED per
 * REFUSAL_PERIOD_MS, so that a client asking again and again cannot fill
 * it; the next line logged says how many were left out.
 */
#define REFUSALS_LOGGED	  10
#define REFUSAL_PERIOD_MS 10000
static struct {
	uint64_t since_ms;
	unsigned logged, dropped;
} refusals;
/* The command being run (command_dispatch runs one at a time). */
static const char *running_cmd = "request";

/*
 * Refuse a request for what it asks (another user's process, a process no
 * policy names, a root-only command), not for how it is written: the
 * client gets the reason, and so does the journal, with who asked. Badly
 * formed requests are only counted (bad_requests).
 */
static void refuse(struct client *c, json_object *id, uid_t uid, int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void refuse(struct client *c, json_object *id, uid_t uid, int err, const char *fmt, ...)
{
	uint64_t now = uv_hrtime() / 1000000;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (now - refusals.since_ms >= REFUSAL_PERIOD_MS) {
		refusals.since_ms = now;
		refusals.logged = 0;
	}
	if (refusals.logged < REFUSALS_LOGGED) {
		refusals.logged++;
		if (refusals.dropped)
			log_notice("%u refusals not logged (over %d in %d s)", refusals.dropped,
				   REFUSALS_LOGGED, REFUSAL_PERIOD_MS / 1000);
		log_notice("refused '%s' of uid %u (pid %d): %s: %s", running_cmd, (unsigned)uid,
			   (int)client_pid(c), mig_errno_name(err), msg);
		refusals.dropped = 0;
	} else {
		refusals.dropped++;
	}
	reply_error(c, id, err, "%s", msg);
}

static void reply_send(struct client *c, json_object *o)
{
	client_send(c, o);
	json_object_put(o);
}

/*
 * Take the identity of pid and check that uid may act on it; replies and
 * returns <0 when not. The caller owns *ret and ends it with identity_done.
 */
static int authorize_pid(struct client *c, json_object *id, uid_t uid, pid_t pid,
			 struct pid_identity *ret)
{
	char reason[256];
	int r;

	r = identity_take(pid, ret, reason, sizeof(reason));
	if (r < 0) {
		refuse(c, id, uid, r == -EPERM ? EPERM : ESRCH, "%s", reason);
		return r;
	}
	if (uid != 0 && uid != ret->owner) {
		refuse(c, id, uid, EPERM, "uid %u may not act on pid %d (owned by uid %u)",
		       (unsigned)uid, (int)pid, (unsigned)ret->owner);
		identity_done(ret);
		return -EPERM;
	}
	return 0;
}

static int get_pid(struct client *c, json_object *id, json_object *req, pid_t *ret)
{
	int64_t v;
	int r = proto_get_int64(req, "pid", &v);

	if (r < 0 || v <= 0 || v > INT32_MAX) {
		reply_error(c, id, EINVAL, "'pid' must be a positive integer");
		return -EINVAL;
	}
	*ret = (pid_t)v;
	return 0;
}

static int get_ranges(struct client *c, json_object *id, json_object *req, struct mig_range **ret,
		      size_t *ret_n)
{
	json_object *arr;
	struct mig_range *out;
	size_t n;

	if (!json_object_object_get_ex(req, "ranges", &arr) ||
	    json_object_is_type(arr, json_type_null)) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (!json_object_is_type(arr, json_type_array)) {
		reply_error(c, id, EINVAL, "'ranges' must be an array of \"START-END\" strings");
		return -EINVAL;
	}
	n = json_object_array_length(arr);
	if (n > MAX_RANGES_RAW) {
		reply_error(c, id, E2BIG, "too many ranges: %zu (at most %d after merging)", n,
			    RANGES_MAX);
		return -E2BIG;
	}
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out) {
		reply_error(c, id, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *s =
			json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;

		if (!s || mig_parse_range(s, &out[i]) < 0 || out[i].start % 4096 ||
		    out[i].end % 4096) {
			reply_error(
				c, id, EINVAL,
				"range %zu: expected page-aligned \"START-END\" or \"START+LEN\"",
				i);
			free(out);
			return -EINVAL;
		}
	}
	/* Overlapping and touching ranges become one: each page is asked for once. */
	ranges_normalize(out, &n);
	if (n > RANGES_MAX) {
		reply_error(c, id, E2BIG,
			    "too many ranges: %zu after merging overlaps (at most %d); ask for "
			    "fewer, larger ranges",
			    n, RANGES_MAX);
		free(out);
		return -E2BIG;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

static int64_t count_unrecovered(const struct migd *d, uid_t uid)
{
	int64_t n = 0;

	for (size_t i = 0; i < d->n_tenants; i++)
		n += d->tenants[i]->state == TENANT_UNRECOVERED &&
		     (uid == 0 || d->tenants[i]->uid == uid);
	return n;
}

static void cmd_status(struct migd *d, struct client *c, uid_t uid, json_object *id,
		       json_object *req)
{
	json_object *o = proto_reply_ok(id), *jobs = json_object_new_array();
	unsigned queued = 0;

	for (struct job *j = d->jobs; j; j = j->next) {
		if (j->state == JOB_QUEUED)
			queued++;
		if ((j->state == JOB_QUEUED || j->state == JOB_RUNNING) && j->kind == JOB_MIGRATE &&
		    (uid == 0 || j->uid == uid))
			json_object_array_add(jobs, job_json(j));
	}
	json_object_object_add(o, "version", json_object_new_string(MIG_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(
		o, "uptime_s",
		json_object_new_int64((int64_t)(uv_now(d->loop) - d->start_ms) / 1000));
	json_object_object_add(o, "config", json_object_new_string(d->cfg->source));
	json_object_object_add(o, "socket", json_object_new_string(d->cfg->socket_path));
	json_object_object_add(o, "cgroup_root",
			       d->cgroup_root ? json_object_new_string(d->cgroup_root) : NULL);
	json_object_object_add(o, "policies", json_object_new_int64((int64_t)d->cfg->n_policies));
	json_object_object_add(o, "tenants", json_object_new_int64((int64_t)d->n_tenants));
	json_object_object_add(o, "unrecovered", json_object_new_int64(count_unrecovered(d, uid)));
	json_object_object_add(o, "jobs_running", json_object_new_int64(d->running_jobs));
	json_object_object_add(o, "jobs_queued", json_object_new_int64(queued));
	json_object_object_add(o, "jobs", jobs);
	reply_send(c, o);
}

static void cmd_tenants(struct migd *d, struct client *c, uid_t uid, json_object *id,
			json_object *req)
{
	json_object *o = proto_reply_ok(id), *arr = json_object_new_array();

	for (size_t i = 0; i < d->n_tenants; i++) {
		const struct tenant *t = d->tenants[i];
		json_object *e;

		if (uid != 0 && t->uid != uid)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "pid", json_object_new_int(t->pid));
		json_object_object_add(e, "uid", json_object_new_int((int)t->uid));
		json_object_object_add(e, "cgroup",
				       t->cgroup ? json_object_new_string(t->cgroup) : NULL);
		json_object_object_add(e, "policy",
				       t->policy ? json_object_new_string(t->policy) : NULL);
		json_object_object_add(e, "state",
				       json_object_new_string(tenant_state_name(t->state)));
		json_object_object_add(
			e, "agent",
			json_object_new_boolean(agents_connected(t->pid, t->starttime)));
		json_object_object_add(e, "jobs", json_object_new_int64((int64_t)t->jobs));
		json_object_object_add(e, "job",
				       t->job ? json_object_new_int64((int64_t)t->job->id) : NULL);
		json_object_object_add(e, "last_error",
				       t->last_error ? json_object_new_string(t->last_error)
						     : NULL);
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "tenants", arr);
	json_object_object_add(o, "unrecovered", json_object_new_int64(count_unrecovered(d, uid)));
	reply_send(c, o);
}

static void cmd_policies(struct migd *d, struct client *c, uid_t uid, json_object *id,
			 json_object *req)
{
	json_object *o = proto_reply_ok(id), *arr = json_object_new_array();
	char nodes[256], vmas[64];

	for (size_t i = 0; i < d->cfg->n_policies; i++) {
		const struct policy *p = &d->cfg->policies[i];
		json_object *e = json_object_new_object();

		mig_format_nodes(&p->nodes, nodes, sizeof(nodes));
		policy_vmas_format(p->vmas, vmas, sizeof(vmas));
		json_object_object_add(e, "name", json_object_new_string(p->name));
		json_object_object_add(e, "file", json_object_new_string(p->file));
		json_object_object_add(e, "cgroup", json_object_new_string(p->cgroup));
		json_object_object_add(e, "nodes", json_object_new_string(nodes));
		json_object_object_add(e, "trigger",
				       json_object_new_string(policy_trigger_name(p->trigger)));
		if (p->trigger == TRIGGER_INTERVAL)
			json_object_object_add(e, "interval_ms",
					       json_object_new_int64((int64_t)p->interval_ms));
		json_object_object_add(e, "min_region",
				       json_object_new_int64((int64_t)p->min_region));
		json_object_object_add(e, "window", json_object_new_int64((int64_t)p->window));
		json_object_object_add(e, "rate_limit",
				       json_object_new_int64((int64_t)p->rate_limit));
		json_object_object_add(e, "huge_pages",
				       json_object_new_string(policy_huge_name(p->huge)));
		json_object_object_add(e, "compact_after",
				       json_object_new_boolean(p->compact_after));
		json_object_object_add(e, "attach",
				       json_object_new_string(policy_attach_name(p->attach)));
		json_object_object_add(e, "vmas", json_object_new_string(vmas));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "policies", arr);
	reply_send(c, o);
}

static unsigned client_placements(struct migd *d, const struct client *c)
{
	unsigned n = 0;

	for (struct job *j = d->jobs; j; j = j->next)
		if (j->client == c && j->kind == JOB_PLACEMENT &&
		    (j->state == JOB_QUEUED || j->state == JOB_RUNNING))
			n++;
	return n;
}

static void cmd_placement(struct migd *d, struct client *c, uid_t uid, json_object *id,
			  json_object *req)
{
	struct engine_migrate_req r = { .ident = PID_IDENTITY_NULL };
	int e;

	if (client_placements(d, c) >= CLIENT_MAX_PLACEMENTS) {
		reply_error(c, id, EBUSY,
			    "%d placement reads of this connection are in flight; wait for "
			    "their replies",
			    CLIENT_MAX_PLACEMENTS);
		return;
	}
	if (get_pid(c, id, req, &r.pid) < 0 || get_ranges(c, id, req, &r.ranges, &r.n) < 0)
		return;
	if (authorize_pid(c, id, uid, r.pid, &r.ident) < 0) {
		free(r.ranges);
		return;
	}
	e = job_submit(d, JOB_PLACEMENT, &r, uid, NULL, c, id, NULL);
	if (e < 0)
		reply_error(c, id, -e, "cannot queue the placement read: %s", strerror(-e));
}

/*
 * The tenant a job on the process of ident is for: one job per tenant at a
 * time; a process no policy names only on root's word. An entry left by an
 * earlier process with the same pid does not count for this one. Replies
 * and returns <0 when not.
 */
static int claim_tenant(struct migd *d, struct client *c, uid_t uid, json_object *id,
			const struct pid_identity *ident, struct tenant **ret)
{
	pid_t pid = ident->pid;
	struct tenant *t = tenant_find(d, pid);

	if (t && t->state == TENANT_UNRECOVERED) {
		refuse(c, id, uid, EBUSY,
		       "pid %d was not recovered after a crash of migd and is not touched "
		       "again until it is: %s",
		       (int)pid, t->last_error ? t->last_error : "see migd's log");
		return -EBUSY;
	}
	if (t && t->job) {
		reply_error(c, id, EBUSY, "pid %d already has job %" PRIu64 " (%s)", (int)pid,
			    t->job->id, job_state_name(t->job->state));
		return -EBUSY;
	}
	if (t && t->starttime != ident->starttime) {
		/* What a policy said of the earlier process says nothing of this one. */
		if (uid != 0 || tenant_forget(d, t) < 0) {
			refuse(c, id, uid, EPERM,
			       "pid %d is a new process, not the one a policy named; only "
			       "root may name it",
			       (int)pid);
			return -EPERM;
		}
		t = NULL;
	}
	if (!t && uid != 0) {
		refuse(c, id, uid, EPERM,
		       "pid %d is not named by any policy; only root may name a process "
		       "explicitly",
		       (int)pid);
		return -EPERM;
	}
	if (!t && tenant_add_explicit(d, pid, &t) < 0) {
		refuse(c, id, uid, ESRCH, "no such process: %d", (int)pid);
		return -ESRCH;
	}
	*ret = t;
	return 0;
}

/*
 * Claim the tenant, read the ranges of req (NULL: none) and queue a job
 * for it. Takes r->ident and r->ranges in every case.
 */
static void submit_tenant_job(struct migd *d, struct client *c, uid_t uid, json_object *id,
			      json_object *req, struct engine_migrate_req *r)
{
	struct tenant *t;
	int e;

	if (claim_tenant(d, c, uid, id, &r->ident, &t) < 0 ||
	    (req && get_ranges(c, id, req, &r->ranges, &r->n) < 0)) {
		identity_done(&r->ident);
		free(r->ranges);
		return;
	}
	if (r->op == ENGINE_COMPACT && r->n > 1) {
		reply_error(c, id, EINVAL, "compact takes one range at most");
		identity_done(&r->ident);
		free(r->ranges);
		return;
	}
	e = job_submit(d, JOB_MIGRATE, r, uid, NULL, c, id, &t->job);
	if (e < 0) {
		t->job = NULL;
		reply_error(c, id, -e, "cannot queue the job: %s",
			    e == -EBUSY ? "too many jobs of this uid are queued" : strerror(-e));
		return;
	}
	if (t->job->state == JOB_QUEUED)
		t->state = TENANT_QUEUED;
}

static void cmd_migrate(struct migd *d, struct client *c, uid_t uid, json_object *id,
			json_object *req)
{
	struct engine_migrate_req r = { .attach = MIG_ATTACH_AUTO,
					.huge = HUGE_KEEP,
					.ident = PID_IDENTITY_NULL };
	const char *to, *s;
	int force = 0, e;

	if (get_pid(c, id, req, &r.pid) < 0)
		return;
	if (proto_get_string(req, "to", &to) < 0 || mig_parse_nodes(to, &r.to) < 0) {
		reply_error(c, id, EINVAL, "'to' must be a node list like \"1\" or \"0-1,3\"");
		return;
	}
	e = proto_get_bool(req, "force", &force);
	if (e == -EINVAL) {
		reply_error(c, id, EINVAL, "'force' must be true or false");
		return;
	}
	r.force = force;
	e = proto_get_string(req, "huge_pages", &s);
	if (e == 0 && !strcmp(s, "keep"))
		r.huge = HUGE_KEEP;
	else if (e == 0 && !strcmp(s, "split"))
		r.huge = HUGE_SPLIT;
	else if (e == 0 && !strcmp(s, "skip"))
		r.huge = HUGE_SKIP;
	else if (e != -ENOENT) {
		reply_error(c, id, EINVAL, "'huge_pages' must be \"keep\", \"split\" or \"skip\"");
		return;
	}
	e = proto_get_string(req, "window", &s);
	if (e == -EINVAL ||
	    (e == 0 && (mig_parse_size(s, &r.window) < 0 || r.window == 0 || r.window % 4096))) {
		reply_error(c, id, EINVAL, "'window' must be a size like \"2M\" (multiple of 4K)");
		return;
	}
	if (r.window > d->cfg->max_window) {
		reply_error(c, id, EINVAL,
			    "'window' %s is larger than max_window (%" PRIu64
			    " bytes): a window is how long the tenant may wait",
			    s, d->cfg->max_window);
		return;
	}
	e = proto_get_string(req, "rate_limit", &s);
	if (e == -EINVAL || (e == 0 && mig_parse_size(s, &r.rate_limit) < 0)) {
		reply_error(c, id, EINVAL,
			    "'rate_limit' must be bytes per second like \"64M\" (0: unlimited)");
		return;
	}
	if (authorize_pid(c, id, uid, r.pid, &r.ident) < 0)
		return;
	submit_tenant_job(d, c, uid, id, req, &r);
}

static int get_addr(struct client *c, json_object *id, json_object *req, const char *key,
		    uint64_t *ret)
{
	const char *s;

	if (proto_get_string(req, key, &s) < 0 || mig_parse_size(s, ret) < 0 || *ret % 4096) {
		reply_error(c, id, EINVAL,
			    "'%s' must be a page-aligned number like \"0x7f0000000000\"", key);
		return -EINVAL;
	}
	return 0;
}

/* "copy": true asks for the copy path even where UFFDIO_MOVE exists. */
static int get_copy_flag(struct client *c, json_object *id, json_object *req, unsigned *flags)
{
	int copy = 0, e = proto_get_bool(req, "copy", &copy);

	if (e == -EINVAL) {
		reply_error(c, id, EINVAL, "'copy' must be true or false");
		return e;
	}
	if (copy)
		*flags |= MIG_RELOCATE_NO_MOVE;
	return 0;
}

static void cmd_relocate(struct migd *d, struct client *c, uid_t uid, json_object *id,
			 json_object *req)
{
	struct engine_migrate_req r = { .op = ENGINE_RELOCATE,
					.attach = MIG_ATTACH_PTRACE,
					.ident = PID_IDENTITY_NULL };
	int replace = 0;

	if (get_pid(c, id, req, &r.pid) < 0 || get_addr(c, id, req, "src", &r.src) < 0 ||
	    get_addr(c, id, req, "len", &r.len) < 0 || get_addr(c, id, req, "dst", &r.dst) < 0 ||
	    get_copy_flag(c, id, req, &r.relocate_flags) < 0)
		return;
	if (r.len == 0) {
		reply_error(c, id, EINVAL, "'len' must not be 0");
		return;
	}
	if (proto_get_bool(req, "replace", &replace) == -EINVAL) {
		reply_error(c, id, EINVAL, "'replace' must be true or false");
		return;
	}
	if (replace)
		r.relocate_flags |= MIG_RELOCATE_REPLACE;
	if (authorize_pid(c, id, uid, r.pid, &r.ident) < 0)
		return;
	/* Its ranges are src, len, dst: a "ranges" field is not read. */
	r.ranges = NULL;
	r.n = 0;
	submit_tenant_job(d, c, uid, id, NULL, &r);
}

static void cmd_compact(struct migd *d, struct client *c, uid_t uid, json_object *id,
			json_object *req)
{
	struct engine_migrate_req r = { .op = ENGINE_COMPACT,
					.attach = MIG_ATTACH_PTRACE,
					.ident = PID_IDENTITY_NULL };

	if (get_pid(c, id, req, &r.pid) < 0 || get_copy_flag(c, id, req, &r.relocate_flags) < 0 ||
	    authorize_pid(c, id, uid, r.pid, &r.ident) < 0)
		return;
	submit_tenant_job(d, c, uid, id, req, &r);
}

static void cmd_cancel(struct migd *d, struct client *c, uid_t uid, json_object *id,
		       json_object *req)
{
	struct job *j;
	int64_t v;

	if (proto_get_int64(req, "job", &v) < 0 || v <= 0) {
		reply_error(c, id, EINVAL, "'job' must be a job number");
		return;
	}
	j = job_find(d, (uint64_t)v);
	if (!j || (uid != 0 && j->uid != uid)) {
		reply_error(c, id, ENOENT, "no such job: %" PRId64, v);
		return;
	}
	if (j->state != JOB_QUEUED && j->state != JOB_RUNNING) {
		reply_error(c, id, EALREADY, "job %" PRId64 " already %s", v,
			    job_state_name(j->state));
		return;
	}
	job_cancel(j);
	json_object *o = proto_reply_ok(id);
	json_object_object_add(o, "job", json_object_new_int64(v));
	json_object_object_add(o, "state", json_object_new_string("cancelling"));
	reply_send(c, o);
}

static void cmd_reload(struct migd *d, struct client *c, uid_t uid, json_object *id,
		       json_object *req)
{
	_cleanup_free_ char *msg = NULL;
	int r = migd_reload(d, &msg);

	if (r < 0) {
		reply_error(c, id, -r, "%s", msg ? msg : "reload failed");
		return;
	}
	json_object *o = proto_reply_ok(id);
	json_object_object_add(o, "policies", json_object_new_int64((int64_t)d->cfg->n_policies));
	json_object_object_add(o, "config", json_object_new_string(d->cfg->source));
	reply_send(c, o);
}

static void cmd_stats(struct migd *d, struct client *c, uid_t uid, json_object *id,
		      json_object *req)
{
	json_object *o = proto_reply_ok(id);
	const struct migd_stats *s = &d->stats;

#define ADD(f) json_object_object_add(o, #f, json_object_new_int64((int64_t)s->f))
	ADD(jobs_started);
	ADD(jobs_succeeded);
	ADD(jobs_failed);
	ADD(jobs_cancelled);
	ADD(pages_moved);
	ADD(pages_failed);
	ADD(reloads);
	ADD(reload_failures);
	ADD(requests);
	ADD(bad_requests);
	ADD(clients);
	ADD(clients_dropped);
	ADD(scans);
#undef ADD
	reply_send(c, o);
}

static const struct command commands[] = {
	{ "status", cmd_status, false },     { "tenants", cmd_tenants, false },
	{ "policies", cmd_policies, false }, { "placement", cmd_placement, false },
	{ "migrate", cmd_migrate, false },   { "cancel", cmd_cancel, false },
	{ "relocate", cmd_relocate, true },  { "compact", cmd_compact, false },
	{ "reload", cmd_reload, true },	     { "stats", cmd_stats, false },
};

void command_dispatch(struct migd *d, struct client *c, uid_t uid, json_object *req)
{
	json_object *id = NULL;
	const char *name;

	json_object_object_get_ex(req, "id", &id);
	if (proto_get_string(req, "cmd", &name) < 0) {
		d->stats.bad_requests++;
		reply_error(c, id, EINVAL, "missing \"cmd\" (a string)");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		if (commands[i].root_only && uid != 0) {
			running_cmd = commands[i].name;
			refuse(c, id, uid, EPERM, "'%s' is for root only", name);
			return;
		}
		log_debug("uid %u: %s", (unsigned)uid, name);
		running_cmd = commands[i].name;
		commands[i].run(d, c, uid, id, req);
		running_cmd = "request";
		return;
	}
	d->stats.bad_requests++;
	reply_error(c, id, EOPNOTSUPP, "unknown command '%.64s'", name);
}

void command_line(struct migd *d, struct client *c, uid_t uid, const char *line, size_t len)
{
	json_object *req = NULL;
	const char *why = NULL;
	int r;

	d->stats.requests++;
	r = proto_parse_object(line, len, &req, &why);
	if (r < 0) {
		d->stats.bad_requests++;
		reply_error(c, NULL, -r, "malformed request: %s", why);
		return;
	}
	command_dispatch(d, c, uid, req);
	json_object_put(req);
}
