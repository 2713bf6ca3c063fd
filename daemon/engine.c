/*
 * engine.c - adapter from the daemon's jobs to libmig. Each call attaches
 * for the duration of one job and detaches before returning, so migd
 * holds no tenant between jobs and a daemon that stops leaves every
 * tenant as it found it.
 *
 * Order of a migration: check the identity (the pid still names the
 * request's process), read its VMAs and keep the anonymous private parts
 * of the ranges, attach, check the identity again (a pid-based attach
 * reached the request's process only if that process was alive all
 * along), then migrate in one libmig job (its memory follows the pages
 * present, not the span: no per-page status is asked for) and detach.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents.h"
#include "compat.h"
#include "engine.h"
#include "ranges.h"
#include "util.h"

#define REASON_MAX 512

static void set_reason(char **ret_reason, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Keep the first reason: it is the one closest to the cause. */
static void set_reason(char **ret_reason, const char *fmt, ...)
{
	va_list ap;

	if (!ret_reason || *ret_reason)
		return;
	va_start(ap, fmt);
	if (vasprintf(ret_reason, fmt, ap) < 0)
		*ret_reason = NULL;
	va_end(ap);
}

/* libmig's reason for the last failed call on this thread, or strerror. */
static void set_libmig_reason(char **ret_reason, const char *what, pid_t pid, int err)
{
	const char *why = mig_tenant_last_error();

	set_reason(ret_reason, "%s pid %d: %s", what, (int)pid, why && *why ? why : strerror(-err));
}

/* The request's process still holds its pid (identity.h), or why not. */
static int check_identity(const struct engine_migrate_req *req, char **ret_reason)
{
	char why[REASON_MAX];
	int r = identity_check(&req->ident, req->uid, why, sizeof(why));

	if (r < 0)
		set_reason(ret_reason, "%s", why);
	return r;
}

static bool keep_anon_private(const struct mig_vma *v, void *userdata)
{
	(void)userdata;
	return mig_vma_is_anon_private(v);
}

/*
 * The anonymous private parts of the request's ranges (all of them when it
 * names none). -EFAULT when named ranges hold none, with the reason.
 */
static int anon_ranges(const struct engine_migrate_req *req, struct mig_range **ret, size_t *ret_n,
		       char **ret_reason)
{
	_cleanup_free_ struct mig_vma *v = NULL;
	size_t nv;
	int r;

	r = mig_read_vmas(req->pid, &v, &nv);
	if (r < 0) {
		set_reason(ret_reason, "cannot read the memory map of pid %d: %s", (int)req->pid,
			   strerror(-r));
		return r;
	}
	r = ranges_intersect_vmas(req->ranges, req->n, v, nv, keep_anon_private, NULL, ret, ret_n);
	if (r < 0) {
		set_reason(ret_reason, "out of memory");
		return r;
	}
	if (req->n > 0 && *ret_n == 0) {
		set_reason(ret_reason,
			   "the range%s %#" PRIx64 "-%#" PRIx64 "%s of pid %d hold%s no anonymous "
			   "private memory (only that can be migrated)",
			   req->n > 1 ? "s" : "", req->ranges[0].start, req->ranges[0].end,
			   req->n > 1 ? ",..." : "", (int)req->pid, req->n > 1 ? "" : "s");
		free(*ret);
		*ret = NULL;
		return -EFAULT;
	}
	return 0;
}

int engine_placement(const struct engine_migrate_req *req, json_object **ret_json,
		     char **ret_reason)
{
	_cleanup_free_ struct mig_placement *pl = calloc(1, sizeof(*pl));
	_cleanup_free_ struct mig_placement *sum = calloc(1, sizeof(*sum));
	_cleanup_free_ struct mig_range *ranges = NULL;
	json_object *o, *nodes;
	size_t n = 0;
	char key[16];
	int r;

	if (!pl || !sum)
		return -ENOMEM;
	r = check_identity(req, ret_reason);
	if (r < 0)
		return r;
	r = anon_ranges(req, &ranges, &n, ret_reason);
	if (r < 0)
		return r;
	/* Slice by slice, so a cancel is seen within one slice's read. */
	for (size_t i = 0; i < n; i++) {
		for (uint64_t s = ranges[i].start; s < ranges[i].end;) {
			struct mig_range slice = { s,
						   MIN(ranges[i].end, s + ENGINE_PLACEMENT_SLICE) };

			if (req->cancel && *req->cancel) {
				set_reason(ret_reason, "cancelled");
				return -ECANCELED;
			}
			r = mig_placement(req->pid, &slice, 1, pl);
			if (r < 0) {
				set_reason(ret_reason, "cannot read the placement of pid %d: %s",
					   (int)req->pid, strerror(-r));
				return r;
			}
			for (unsigned k = 0; k < MIG_MAX_NODES; k++)
				sum->node_pages[k] += pl->node_pages[k];
			sum->absent += pl->absent;
			sum->huge += pl->huge;
			sum->total += pl->total;
			s = slice.end;
		}
	}
	/* Still alive after the reads: what they saw was the request's process. */
	r = check_identity(req, ret_reason);
	if (r < 0)
		return r;
	o = json_object_new_object();
	nodes = json_object_new_object();
	for (unsigned i = 0; i < MIG_MAX_NODES; i++) {
		if (!sum->node_pages[i])
			continue;
		snprintf(key, sizeof(key), "%u", i);
		json_object_object_add(nodes, key,
				       json_object_new_int64((int64_t)sum->node_pages[i]));
	}
	json_object_object_add(o, "nodes", nodes);
	json_object_object_add(o, "absent", json_object_new_int64((int64_t)sum->absent));
	json_object_object_add(o, "huge", json_object_new_int64((int64_t)sum->huge));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)sum->total));
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

/*
 * {"16kB": N, ..., "2048kB": N}: counts[] per folio order, named like the
 * kernel's hugepages-<size>kB controls, smallest first, for every size
 * whose count (or, with also, also's count) is not 0.
 */
static json_object *folio_sizes(const uint64_t *counts, const uint64_t *also)
{
	json_object *o = json_object_new_object();
	unsigned long ps = (unsigned long)sysconf(_SC_PAGESIZE);

	for (unsigned k = 1; k < MIG_FOLIO_ORDERS; k++) {
		char key[32];

		if (!counts[k] && !(also && also[k]))
			continue;
		snprintf(key, sizeof(key), "%lukB", (ps << k) >> 10);
		json_object_object_add(o, key, json_object_new_int64((int64_t)counts[k]));
	}
	return o;
}

/* "large_before" and "large_after": the large folios per size, in both for every size seen. */
static void add_folio_sizes(json_object *o, const uint64_t *before, const uint64_t *after)
{
	json_object_object_add(o, "large_before", folio_sizes(before, after));
	json_object_object_add(o, "large_after", folio_sizes(after, before));
}

/*
 * huge_pages = skip: "large_skipped" the large folios left where they
 * are per size, "large_skipped_pages" their pages in the job's ranges.
 */
static void add_skipped(json_object *o, uint64_t pages, const uint64_t *folios)
{
	json_object_object_add(o, "large_skipped", folio_sizes(folios, NULL));
	json_object_object_add(o, "large_skipped_pages", json_object_new_int64((int64_t)pages));
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
	ADD(collapse_failed);
#undef ADD
	if (res->collapse_err)
		json_object_object_add(o, "collapse_error",
				       json_object_new_string(mig_errno_name(-res->collapse_err)));
	add_folio_sizes(o, res->large_before, res->large_after);
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

/*
 * How the fully covered THPs went: "kernel" (move_pages(2) of the head),
 * "move" (a PMD-sized UFFDIO_MOVE of a staged THP), "copy" (4 KiB copies
 * re-formed with MADV_COLLAPSE), joined by "+" where several ran, or "none".
 */
static const char *huge_path(const struct mig_migrate_result *res)
{
	static const char *const names[] = {
		"none", "kernel",      "move",	    "kernel+move",
		"copy", "kernel+copy", "move+copy", "kernel+move+copy",
	};
	unsigned k = (res->huge_kmoved ? 1u : 0u) | (res->huge_moved ? 2u : 0u) |
		     (res->huge_collapsed || res->huge_collapse_failed ? 4u : 0u);

	return names[k];
}

static json_object *summary_json(const struct mig_migrate_result *res, uint64_t pages_not_anon)
{
	json_object *o = json_object_new_object(), *f = json_object_new_object();

	json_object_object_add(o, "pages_total", json_object_new_int64((int64_t)res->pages_total));
	json_object_object_add(o, "pages_absent",
			       json_object_new_int64((int64_t)res->pages_absent));
	json_object_object_add(o, "pages_present",
			       json_object_new_int64((int64_t)res->pages_present));
	json_object_object_add(o, "pages_moved", json_object_new_int64((int64_t)res->pages_moved));
	json_object_object_add(o, "pages_skipped",
			       json_object_new_int64((int64_t)res->pages_skipped));
	json_object_object_add(o, "pages_failed",
			       json_object_new_int64((int64_t)res->pages_failed));
	json_object_object_add(o, "pages_gone", json_object_new_int64((int64_t)res->pages_gone));
	json_object_object_add(o, "pages_retried",
			       json_object_new_int64((int64_t)res->pages_retried));
	json_object_object_add(o, "pages_not_anon", json_object_new_int64((int64_t)pages_not_anon));
	for (unsigned i = 0; i < res->nerrnos && i < MIG_MIGRATE_MAX_ERRNOS; i++)
		json_object_object_add(f, mig_errno_name(res->errnos[i].err),
				       json_object_new_int64((int64_t)res->errnos[i].pages));
	json_object_object_add(o, "failures", f);
	json_object_object_add(o, "bytes_per_sec", json_object_new_double(res->bytes_per_sec));
	json_object_object_add(o, "max_stall_us",
			       json_object_new_int64((int64_t)res->max_stall_us));
	json_object_object_add(o, "huge_kept", json_object_new_int64((int64_t)res->huge_kept));
	/* Large folios per size before and after, and the way whole THPs went. */
	json_object_object_add(o, "thp_before", json_object_new_int64((int64_t)res->thp_before));
	json_object_object_add(o, "thp_after", json_object_new_int64((int64_t)res->thp_after));
	json_object_object_add(o, "mthp_before", json_object_new_int64((int64_t)res->mthp_before));
	json_object_object_add(o, "mthp_after", json_object_new_int64((int64_t)res->mthp_after));
	add_folio_sizes(o, res->large_before, res->large_after);
	json_object_object_add(o, "huge_moved", json_object_new_int64((int64_t)res->huge_moved));
	json_object_object_add(o, "huge_collapsed",
			       json_object_new_int64((int64_t)res->huge_collapsed));
	json_object_object_add(o, "huge_collapse_failed",
			       json_object_new_int64((int64_t)res->huge_collapse_failed));
	json_object_object_add(o, "huge_fallback",
			       json_object_new_int64((int64_t)res->huge_fallback));
	json_object_object_add(o, "mthp_moved", json_object_new_int64((int64_t)res->mthp_moved));
	json_object_object_add(o, "huge_kmoved", json_object_new_int64((int64_t)res->huge_kmoved));
	json_object_object_add(o, "huge_path", json_object_new_string(huge_path(res)));
	json_object_object_add(o, "windows", json_object_new_int64((int64_t)res->windows));
	json_object_object_add(o, "windows_movefirst",
			       json_object_new_int64((int64_t)res->windows_movefirst));
	json_object_object_add(o, "windows_switched",
			       json_object_new_int64((int64_t)res->windows_switched));
	json_object_object_add(o, "windows_memcg",
			       json_object_new_int64((int64_t)res->windows_memcg));
	json_object_object_add(o, "faults", json_object_new_int64((int64_t)res->faults));
	json_object_object_add(o, "elapsed_us",
			       json_object_new_int64((int64_t)(res->elapsed_ns / 1000)));
	return o;
}

/*
 * One libmig job over all the ranges: its memory follows the windows
 * that hold pages (no per-page status is asked for), so a sparse 1 TiB
 * range over a small tenant costs what its pages cost.
 *
 * window_protocol = movefirst: move-first windows where the tenant can
 * have them (UFFDIO_MOVE, Linux 6.8+, and a tenant attached with ptrace);
 * the others, and a tenant libmig cannot give a scratch area, run the
 * classic windows, and why_classic says why (empty when move first ran or
 * was not asked for). *movefirst: the job asked libmig for move first.
 */
static int migrate_ranges(mig_tenant *t, const struct engine_migrate_req *req,
			  const struct mig_range *ranges, size_t n, mig_progress_fn progress,
			  void *userdata, struct mig_migrate_result *res, bool *movefirst,
			  char *why_classic, size_t why_len, char **ret_reason)
{
	struct mig_migrate_opts mopts = {
		.window = req->window,
		.force = req->force,
		.no_collapse = req->huge != HUGE_KEEP,
		.cancel = req->cancel,
		.rate_limit = req->rate_limit,
		.journal_dir = req->journal_dir,
		.staging_dir = req->staging_dir,
		.no_status = true,
		.fault_rt = req->fault_rt,
	};
	int r;

	why_classic[0] = '\0';
	if (req->movefirst && !(mig_tenant_features(t) & UFFD_FEATURE_MOVE))
		snprintf(why_classic, why_len, "the kernel has no UFFDIO_MOVE (Linux 6.8+)");
	else if (req->movefirst && mig_tenant_method(t) != MIG_ATTACH_PTRACE)
		snprintf(why_classic, why_len, "the tenant is attached through its agent");
	else if (req->movefirst)
		mopts.protocol = MIG_WINDOW_MOVEFIRST;
	r = mig_migrate(t, ranges, n, &req->to, &mopts, progress, userdata, res);
	if (r == -EOPNOTSUPP && mopts.protocol == MIG_WINDOW_MOVEFIRST) {
		/* No MOVE zap after all (no scratch area): refused before any window ran. */
		snprintf(why_classic, why_len, "%s", mig_tenant_last_error());
		mopts.protocol = MIG_WINDOW_CLASSIC;
		mig_migrate_result_free(res);
		memset(res, 0, sizeof(*res));
		r = mig_migrate(t, ranges, n, &req->to, &mopts, progress, userdata, res);
	}
	*movefirst = mopts.protocol == MIG_WINDOW_MOVEFIRST;
	if (r < 0 && r != -ECANCELED && why_classic[0] &&
	    !strcmp(mig_tenant_last_error(), why_classic))
		/* libmig said nothing of the classic run: not the move-first refusal. */
		set_reason(ret_reason, "migration of pid %d: %s", (int)req->pid, strerror(-r));
	else if (r < 0 && r != -ECANCELED)
		set_libmig_reason(ret_reason, "migration of", req->pid, r);
	return r;
}

int engine_migrate(const struct engine_migrate_req *req, mig_progress_fn progress, void *userdata,
		   json_object **ret_summary, char **ret_reason)
{
	struct mig_attach_opts aopts = { .method = req->attach,
					 .agent_fd = -1,
					 .no_device = req->no_device };
	struct mig_migrate_result sum = { 0 };
	_cleanup_free_ struct mig_range *ranges = NULL, *small = NULL;
	const struct mig_range *todo;
	json_object *compact = NULL;
	uint64_t not_anon = 0, skipped = 0, skipped_folios[MIG_FOLIO_ORDERS] = { 0 };
	enum mig_attach_method method;
	char why_classic[REASON_MAX] = "";
	bool movefirst = false;
	size_t n = 0;
	mig_tenant *t = NULL;
	int r, r2;

	r = check_identity(req, ret_reason);
	if (r < 0)
		return r;
	if (req->op != ENGINE_MIGRATE) {
		/* The tenant's threads are held with ptrace for it (mig_relocate). */
		aopts.method = MIG_ATTACH_PTRACE;
		r = mig_tenant_attach(req->pid, &aopts, &t);
		if (r < 0) {
			set_libmig_reason(ret_reason, "cannot attach to", req->pid, r);
			return r;
		}
		r = check_identity(req, ret_reason);
		if (r == 0) {
			r = engine_relocate(t, req, ret_summary);
			if (r < 0)
				set_libmig_reason(ret_reason, engine_op_name(req->op), req->pid, r);
		}
		r2 = mig_tenant_detach(t);
		return r < 0 ? r : r2;
	}
	if (req->n == 0) {
		/* Stacks only when a policy asks: the default is the heap and anon mmaps. */
		unsigned vmas = req->vmas ? req->vmas : POLICY_VMA_HEAP | POLICY_VMA_ANON;

		r = engine_policy_ranges(req->pid, vmas, req->min_region, &ranges, &n);
		if (r < 0) {
			set_reason(ret_reason, "cannot read the memory map of pid %d: %s",
				   (int)req->pid, strerror(-r));
			return r;
		}
	} else {
		r = anon_ranges(req, &ranges, &n, ret_reason);
		if (r < 0)
			return r;
		not_anon = (ranges_span(req->ranges, req->n) - ranges_span(ranges, n)) / 4096;
	}
	todo = ranges;
	if (req->huge == HUGE_SKIP && n > 0) {
		/* Leave every large folio where it is: migrate only the rest. */
		r = mig_ranges_without_large(req->pid, ranges, n, &small, &n, &skipped,
					     skipped_folios);
		if (r < 0) {
			set_reason(ret_reason, "cannot find the large folios of pid %d: %s",
				   (int)req->pid, strerror(-r));
			return r;
		}
		todo = small;
	}
	if (n == 0 && !req->compact_after) {
		/* Nothing to move (all large, or nothing mapped): done, nothing failed. */
		*ret_summary = summary_json(&sum, not_anon);
		add_skipped(*ret_summary, skipped, skipped_folios);
		return 0;
	}
	/* auto and agent take the tenant's agent if it is connected now (agents.c). */
	if (req->attach != MIG_ATTACH_PTRACE)
		aopts.agent_fd = agents_borrow(req->pid);
	if (req->attach == MIG_ATTACH_AGENT && aopts.agent_fd < 0) {
		set_reason(ret_reason, "pid %d: attach = agent, but its agent is not connected",
			   (int)req->pid);
		return -ENOTCONN;
	}
	r = mig_tenant_attach(req->pid, &aopts, &t);
	aopts.agent_fd = safe_close(aopts.agent_fd);
	if (r < 0) {
		set_libmig_reason(ret_reason, "cannot attach to", req->pid, r);
		return r;
	}
	method = mig_tenant_method(t);
	r = check_identity(req, ret_reason);
	if (r == 0)
		r = migrate_ranges(t, req, todo, n, progress, userdata, &sum, &movefirst,
				   why_classic, sizeof(why_classic), ret_reason);
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
	if (r == 0 && r2 < 0)
		set_libmig_reason(ret_reason, "cannot detach from", req->pid, r2);
	if (r == 0 || r == -ECANCELED) {
		*ret_summary = summary_json(&sum, not_anon);
		add_skipped(*ret_summary, skipped, skipped_folios);
		json_object_object_add(
			*ret_summary, "attach",
			json_object_new_string(method == MIG_ATTACH_AGENT ? "agent" : "ptrace"));
		json_object_object_add(*ret_summary, "window_protocol",
				       json_object_new_string(movefirst ? "movefirst" : "classic"));
		if (why_classic[0])
			json_object_object_add(*ret_summary, "window_protocol_fallback",
					       json_object_new_string(why_classic));
		/* Whether the fault thread ran at real-time priority, and why not. */
		json_object_object_add(*ret_summary, "fault_priority",
				       json_object_new_string(sum.fault_rt > 0 ? "realtime"
							      : sum.fault_rt < 0
								      ? "normal (real time refused)"
								      : "normal"));
		if (sum.fault_rt < 0)
			json_object_object_add(*ret_summary, "fault_priority_error",
					       json_object_new_string(strerror(-sum.fault_rt)));
		if (sum.zap != MIG_ZAP_AUTO)
			json_object_object_add(*ret_summary, "zap",
					       json_object_new_string(sum.zap == MIG_ZAP_MOVE
									      ? "move"
									      : "madvise"));
		if (sum.zap_fallback[0])
			json_object_object_add(*ret_summary, "zap_fallback",
					       json_object_new_string(sum.zap_fallback));
		if (compact)
			json_object_object_add(*ret_summary, "compact", compact);
		compact = NULL;
	}
	json_object_put(compact);
	return r < 0 ? r : r2;
}
