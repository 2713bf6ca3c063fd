/*
 * engine.c - adapter from the daemon's jobs to libmig. Each call attaches
 * for the duration of one job and detaches before returning, so migd
 * holds no tenant between jobs and a daemon that stops leaves every
 * tenant as it found it.
 */
#include <errno.h>
#include <inttypes.h>
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

const char *engine_op_name(enum engine_op op)
{
	switch (op) {
	case ENGINE_MIGRATE:
		return "migrate";
	case ENGINE_RELOCATE:
		return "relocate";
	case ENGINE_COMPACT:
		return "compact";
	}
	return "?";
}

static json_object *relocate_json(const struct mig_relocate_result *res)
{
	json_object *o = json_object_new_object(), *runs = json_object_new_array();
	const char *path = NULL;
	char buf[32];

	for (size_t i = 0; i < res->nruns; i++) {
		json_object *e = json_object_new_object();
		const char *p = mig_relocate_path_name(res->runs[i].path);

		snprintf(buf, sizeof(buf), "0x%" PRIx64, res->runs[i].start);
		json_object_object_add(e, "start", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "0x%" PRIx64, res->runs[i].end);
		json_object_object_add(e, "end", json_object_new_string(buf));
		json_object_object_add(e, "path", json_object_new_string(p));
		json_object_array_add(runs, e);
		path = !path || !strcmp(path, p) ? p : "mixed";
	}
#define ADD(f) json_object_object_add(o, #f, json_object_new_int64((int64_t)res->f))
	json_object_object_add(o, "path", json_object_new_string(path ? path : "none"));
	ADD(vmas_before);
	ADD(vmas_after);
	ADD(merged);
	ADD(left);
	ADD(pages);
	ADD(pages_moved);
	ADD(pages_copied);
	ADD(pages_remapped);
	ADD(pages_absent);
	ADD(thp_before);
	ADD(thp_after);
	ADD(mthp_before);
	ADD(mthp_after);
	ADD(collapsed);
#undef ADD
	json_object_object_add(o, "stopped_us",
			       json_object_new_int64((int64_t)(res->stopped_ns / 1000)));
	json_object_object_add(o, "elapsed_us",
			       json_object_new_int64((int64_t)(res->elapsed_ns / 1000)));
	json_object_object_add(o, "runs", runs);
	return o;
}

/* Relocate or compact on an attached tenant. */
static int engine_relocate(mig_tenant *t, const struct engine_migrate_req *req,
			   json_object **ret_summary)
{
	struct mig_relocate_result res = { 0 };
	int r;

	if (req->op == ENGINE_RELOCATE)
		r = mig_relocate(t, req->src, req->len, req->dst, req->relocate_flags, &res);
	else
		r = mig_compact(t, req->n ? &req->ranges[0] : NULL,
				req->relocate_flags & MIG_RELOCATE_NO_MOVE, &res);
	if (r < 0)
		return r;
	*ret_summary = relocate_json(&res);
	mig_relocate_result_free(&res);
	return 0;
}

int engine_migrate(const struct engine_migrate_req *req, mig_progress_fn progress, void *userdata,
		   json_object **ret_summary, char **ret_reason)
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
	_cleanup_free_ struct mig_range *all = NULL, *small = NULL;
	const struct mig_range *ranges = req->ranges;
	json_object *compact = NULL;
	size_t n = req->n;
	uint64_t skipped = 0;
	mig_tenant *t = NULL;
	int r, r2;

	if (req->op != ENGINE_MIGRATE) {
		/* The tenant's threads are held with ptrace for it (mig_relocate). */
		aopts.method = MIG_ATTACH_PTRACE;
		r = mig_tenant_attach(req->pid, &aopts, &t);
		if (r >= 0) {
			r = engine_relocate(t, req, ret_summary);
			if (r < 0 && ret_reason)
				*ret_reason = strdup(mig_tenant_last_error());
			r2 = mig_tenant_detach(t);
			r = r < 0 ? r : r2;
		} else if (ret_reason)
			*ret_reason = strdup(mig_tenant_last_error());
		return r;
	}
	if (n == 0) {
		/* Stacks only when a policy asks: the default is the heap and anon mmaps. */
		unsigned vmas = req->vmas ? req->vmas : POLICY_VMA_HEAP | POLICY_VMA_ANON;

		r = engine_policy_ranges(req->pid, vmas, req->min_region, &all, &n);
		if (r < 0)
			return r;
		ranges = all;
	}
	if (req->huge == HUGE_SKIP) {
		/* Leave every large folio where it is: migrate only the rest. */
		r = mig_ranges_without_large(req->pid, ranges, n, &small, &n, &skipped);
		if (r < 0)
			return r;
		ranges = small;
	}
	r = mig_tenant_attach(req->pid, &aopts, &t);
	if (r < 0) {
		if (ret_reason)
			*ret_reason = strdup(mig_tenant_last_error());
		return r;
	}
	/* Everything left out (all large): nothing to migrate, nothing failed. */
	r = n ? mig_migrate(t, ranges, n, &req->to, &mopts, progress, userdata, &res) : 0;
	if (r == 0 && req->compact_after) {
		struct mig_relocate_result cres = { 0 };

		/* Best effort: a compaction that cannot run leaves the migration done. */
		if (mig_compact(t, NULL, 0, &cres) == 0)
			compact = relocate_json(&cres);
		else
			compact = json_object_new_string(mig_tenant_last_error());
		mig_relocate_result_free(&cres);
	}
	r2 = mig_tenant_detach(t);
	if (r == 0 || r == -ECANCELED) {
		*ret_summary = summary_json(&res);
		json_object_object_add(*ret_summary, "large_skipped",
				       json_object_new_int64((int64_t)skipped));
		if (compact)
			json_object_object_add(*ret_summary, "compact", compact);
		compact = NULL;
	}
	json_object_put(compact);
	mig_migrate_result_free(&res);
	return r < 0 ? r : r2;
}
