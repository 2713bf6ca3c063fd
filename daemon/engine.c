/*
 * engine.c - adapter from the daemon's jobs to libmig. Each call attaches
 * for the duration of one job and detaches before returning, so migd
 * holds no tenant between jobs and a daemon that stops leaves every
 * tenant as it found it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "util.h"

int engine_placement(pid_t pid, const struct mig_range *ranges, size_t n, json_object **ret_json)
{
	_cleanup_free_ struct mig_placement *pl = calloc(1, sizeof(*pl));
	json_object *o, *nodes;
	char key[16];
	int r;

	if (!pl)
		return -ENOMEM;
	r = mig_placement(pid, ranges, n, pl);
	if (r < 0)
		return r;
	o = json_object_new_object();
	nodes = json_object_new_object();
	for (unsigned i = 0; i < MIG_MAX_NODES; i++) {
		if (!pl->node_pages[i])
			continue;
		snprintf(key, sizeof(key), "%u", i);
		json_object_object_add(nodes, key,
				       json_object_new_int64((int64_t)pl->node_pages[i]));
	}
	json_object_object_add(o, "nodes", nodes);
	json_object_object_add(o, "absent", json_object_new_int64((int64_t)pl->absent));
	json_object_object_add(o, "huge", json_object_new_int64((int64_t)pl->huge));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)pl->total));
	*ret_json = o;
	return 0;
}

int engine_policy_ranges(pid_t pid, unsigned vmas, uint64_t min_region,
			 struct mig_range **ret_ranges, size_t *ret_n)
{
	_cleanup_free_ struct mig_vma *v = NULL;
	struct mig_range *out;
	size_t nv, n = 0;
	int r;

	r = mig_read_vmas(pid, &v, &nv);
	if (r < 0)
		return r;
	out = calloc(nv ? nv : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < nv; i++) {
		unsigned kind;

		if (!mig_vma_is_anon_private(&v[i]) || !(v[i].flags & MIG_VMA_WRITE))
			continue;
		if (v[i].flags & MIG_VMA_HEAP)
			kind = POLICY_VMA_HEAP;
		else if (v[i].flags & MIG_VMA_STACK)
			kind = POLICY_VMA_STACK;
		else
			kind = POLICY_VMA_ANON;
		if (!(vmas & kind) || v[i].end - v[i].start < min_region)
			continue;
		out[n].start = v[i].start;
		out[n].end = v[i].end;
		n++;
	}
	*ret_ranges = out;
	*ret_n = n;
	return 0;
}

static json_object *summary_json(const struct mig_migrate_result *res)
{
	json_object *o = json_object_new_object(), *f = json_object_new_object();

	json_object_object_add(o, "pages_total", json_object_new_int64((int64_t)res->pages_total));
	json_object_object_add(o, "pages_moved", json_object_new_int64((int64_t)res->pages_moved));
	json_object_object_add(o, "pages_skipped",
			       json_object_new_int64((int64_t)res->pages_skipped));
	json_object_object_add(o, "pages_failed",
			       json_object_new_int64((int64_t)res->pages_failed));
	json_object_object_add(o, "pages_gone", json_object_new_int64((int64_t)res->pages_gone));
	json_object_object_add(o, "pages_retried",
			       json_object_new_int64((int64_t)res->pages_retried));
	for (unsigned i = 0; i < res->nerrnos && i < MIG_MIGRATE_MAX_ERRNOS; i++)
		json_object_object_add(f, mig_errno_name(res->errnos[i].err),
				       json_object_new_int64((int64_t)res->errnos[i].pages));
	json_object_object_add(o, "failures", f);
	json_object_object_add(o, "bytes_per_sec", json_object_new_double(res->bytes_per_sec));
	json_object_object_add(o, "max_stall_us",
			       json_object_new_int64((int64_t)res->max_stall_us));
	json_object_object_add(o, "huge_kept", json_object_new_int64((int64_t)res->huge_kept));
	json_object_object_add(o, "windows", json_object_new_int64((int64_t)res->windows));
	json_object_object_add(o, "faults", json_object_new_int64((int64_t)res->faults));
	json_object_object_add(o, "elapsed_us",
			       json_object_new_int64((int64_t)(res->elapsed_ns / 1000)));
	return o;
}

int engine_migrate(const struct engine_migrate_req *req, mig_progress_fn progress, void *userdata,
		   json_object **ret_summary)
{
	struct mig_attach_opts aopts = { .method = req->attach, .agent_fd = -1 };
	struct mig_migrate_opts mopts = {
		.window = req->window,
		.force = req->force,
		.no_collapse = req->huge != HUGE_KEEP,
		.cancel = req->cancel,
		.rate_limit = req->rate_limit,
	};
	struct mig_migrate_result res = { 0 };
	_cleanup_free_ struct mig_range *all = NULL;
	const struct mig_range *ranges = req->ranges;
	size_t n = req->n;
	mig_tenant *t = NULL;
	int r, r2;

	if (n == 0) {
		/* Stacks only when a policy asks: the default is the heap and anon mmaps. */
		unsigned vmas = req->vmas ? req->vmas : POLICY_VMA_HEAP | POLICY_VMA_ANON;

		r = engine_policy_ranges(req->pid, vmas, req->min_region, &all, &n);
		if (r < 0)
			return r;
		ranges = all;
	}
	r = mig_tenant_attach(req->pid, &aopts, &t);
	if (r < 0)
		return r;
	r = mig_migrate(t, ranges, n, &req->to, &mopts, progress, userdata, &res);
	r2 = mig_tenant_detach(t);
	if (r == 0 || r == -ECANCELED)
		*ret_summary = summary_json(&res);
	mig_migrate_result_free(&res);
	return r < 0 ? r : r2;
}
