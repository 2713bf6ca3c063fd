/*
 * discovery.c - tenant discovery: walk the cgroup2 tree, match each
 * cgroup's path against the policies' globs and take the processes of the
 * matching ones as tenants. Processes come and go; every scan marks what it
 * saw and forgets the rest. A process no policy names, and that root did
 * not name over the socket, never becomes a tenant and is never touched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "agents.h"
#include "daemon.h"
#include "identity.h"
#include "jobs.h"
#include "log.h"
#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define PF_KTHREAD 0x00200000

const char *tenant_state_name(enum tenant_state s)
{
	switch (s) {
	case TENANT_IDLE:
		return "idle";
	case TENANT_QUEUED:
		return "queued";
	case TENANT_MIGRATING:
		return "migrating";
	case TENANT_FAILED:
		return "failed";
	case TENANT_UNRECOVERED:
		return "unrecovered";
	case TENANT_WAITING_AGENT:
		return "waiting-for-agent";
	}
	return "?";
}

static bool is_cgroup2(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

int discovery_init(struct migd *d)
{
	const char *root = d->cfg->cgroup_root;

	free(d->cgroup_root);
	d->cgroup_root = NULL;
	if (root) {
		if (!is_cgroup2(root))
			return log_error_errno(ENOTDIR, "cgroup_root %s is not a cgroup2 mount",
					       root);
	} else if (is_cgroup2("/sys/fs/cgroup")) {
		root = "/sys/fs/cgroup";
	} else if (is_cgroup2("/sys/fs/cgroup/unified")) {
		root = "/sys/fs/cgroup/unified";
	} else {
		log_warning("no cgroup2 mount found: policies cannot find tenants");
		return 0;
	}
	d->cgroup_root = strdup(root);
	return d->cgroup_root ? 0 : -ENOMEM;
}

int proc_pid_info(pid_t pid, uid_t *ret_uid, uint64_t *ret_starttime)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	unsigned flags = 0;
	unsigned ruid, euid;
	bool have_uid = false;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			 "%*d %*d %llu",
			 &flags, &start) != 2)
		return -ESRCH;
	if (flags & PF_KTHREAD)
		return -EPERM;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "Uid: %u %u", &ruid, &euid) == 2) {
			have_uid = true;
			break;
		}
	fclose(f);
	if (!have_uid)
		return -ESRCH;
	/* A process whose real and effective uid differ belongs to root alone. */
	*ret_uid = ruid == euid ? ruid : 0;
	*ret_starttime = start;
	return 0;
}

struct tenant *tenant_find(struct migd *d, pid_t pid)
{
	for (size_t i = 0; i < d->n_tenants; i++)
		if (d->tenants[i]->pid == pid)
			return d->tenants[i];
	return NULL;
}

static void tenant_free(struct tenant *t)
{
	free(t->cgroup);
	free(t->policy);
	free(t->last_error);
	free(t);
}

static int tenant_new(struct migd *d, pid_t pid, uid_t uid, uint64_t start, const char *cgroup,
		      const char *policy, struct tenant **ret)
{
	struct tenant **n, *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->pid = pid;
	t->uid = uid;
	t->starttime = start;
	t->cgroup = cgroup ? strdup(cgroup) : NULL;
	t->policy = policy ? strdup(policy) : NULL;
	n = realloc(d->tenants, (d->n_tenants + 1) * sizeof(*n));
	if (!n || (cgroup && !t->cgroup) || (policy && !t->policy)) {
		tenant_free(t);
		return -ENOMEM;
	}
	d->tenants = n;
	d->tenants[d->n_tenants++] = t;
	*ret = t;
	return 0;
}

static int read_own_cgroup(pid_t pid, char *buf, size_t size)
{
	char path[64], line[PATH_MAX + 8];
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			if (strlen(line + 3) >= size)
				break;
			memcpy(buf, line + 3, strlen(line + 3) + 1);
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

int tenant_add_explicit(struct migd *d, pid_t pid, struct tenant **ret)
{
	struct tenant *t = tenant_find(d, pid);
	char cg[PATH_MAX] = "";
	uint64_t start;
	uid_t uid;
	int r;

	if (t) {
		*ret = t;
		return 0;
	}
	r = proc_pid_info(pid, &uid, &start);
	if (r < 0)
		return r;
	(void)read_own_cgroup(pid, cg, sizeof(cg));
	r = tenant_new(d, pid, uid, start, cg, NULL, &t);
	if (r < 0)
		return r;
	t->gen = d->scan_gen;
	log_info("pid %d named explicitly, now a tenant", (int)pid);
	*ret = t;
	return 0;
}

int tenant_forget(struct migd *d, struct tenant *t)
{
	if (t->job)
		return -EBUSY;
	for (size_t i = 0; i < d->n_tenants; i++)
		if (d->tenants[i] == t) {
			d->tenants[i] = d->tenants[--d->n_tenants];
			tenant_free(t);
			return 0;
		}
	return -ENOENT;
}

static void queue_policy_job(struct migd *d, struct tenant *t, const struct policy *p)
{
	char reason[256];
	struct engine_migrate_req req = {
		.pid = t->pid,
		.ident = PID_IDENTITY_NULL,
		.to = p->nodes,
		.window = p->window,
		.rate_limit = p->rate_limit,
		.attach = p->attach,
		.huge = p->huge,
		.compact_after = p->compact_after,
		.vmas = p->vmas,
		.min_region = p->min_region,
	};
	struct job *j;
	int r;

	/* Its journal from a crash is still there: the engine would refuse (logged at start). */
	if (t->state == TENANT_UNRECOVERED)
		return;
	if (agents_policy_must_wait(d, t, p))
		return;
	/* The identity of the process this scan saw, checked again when the job starts. */
	r = identity_take(t->pid, &req.ident, reason, sizeof(reason));
	if (r == 0 && req.ident.starttime != t->starttime) {
		identity_done(&req.ident);
		r = -ESRCH;
	}
	if (r < 0)
		return; /* Gone or replaced since the scan read it: the next scan sees. */
	/* The ranges are chosen by the job itself: the tenant's VMAs change until then. */
	r = job_submit(d, JOB_MIGRATE, &req, 0, p->name, NULL, NULL, &j);
	if (r < 0) {
		log_warning_errno(r, "policy %s: cannot queue a job for pid %d: %m", p->name,
				  (int)t->pid);
		return;
	}
	t->job = j;
	t->state = j->state == JOB_RUNNING ? TENANT_MIGRATING : TENANT_QUEUED;
}

void discovery_queue_policy_job(struct migd *d, struct tenant *t)
{
	for (size_t i = 0; t->policy && i < d->cfg->n_policies; i++)
		if (strcmp(d->cfg->policies[i].name, t->policy) == 0) {
			queue_policy_job(d, t, &d->cfg->policies[i]);
			return;
		}
}

static void see_pid(struct migd *d, pid_t pid, const char *cgroup, const struct policy *p)
{
	struct tenant *t = tenant_find(d, pid);
	uint64_t start;
	uid_t uid;
	uint64_t now = uv_now(d->loop);

	if (pid == getpid() || pid == 1)
		return;
	if (proc_pid_info(pid, &uid, &start) < 0)
		return;
	if (t && t->starttime != start && !t->job) {
		/* The pid was reused: the entry now stands for a new process. */
		t->starttime = start;
		t->uid = uid;
		t->state = TENANT_IDLE;
		t->last_run_ms = 0;
		t->agent_wait_since_ms = 0;
		free(t->last_error);
		t->last_error = NULL;
		free(t->policy);
		t->policy = NULL;
	}
	if (!t || !t->policy) {
		if (!t && tenant_new(d, pid, uid, start, cgroup, p->name, &t) < 0)
			return;
		if (!t->policy)
			t->policy = strdup(p->name);
		log_info("policy %s: found tenant pid %d in %s", p->name, (int)pid, cgroup);
		if (p->trigger == TRIGGER_ON_ATTACH && !d->stopping)
			queue_policy_job(d, t, p);
	} else {
		if (!t->policy || strcmp(t->policy, p->name) != 0) {
			free(t->policy);
			t->policy = strdup(p->name);
		}
		if (!t->cgroup || strcmp(t->cgroup, cgroup) != 0) {
			free(t->cgroup);
			t->cgroup = strdup(cgroup);
		}
		if (p->trigger == TRIGGER_INTERVAL && !t->job && !d->stopping &&
		    now - t->last_run_ms >= p->interval_ms)
			queue_policy_job(d, t, p);
		else if (t->state == TENANT_WAITING_AGENT && !t->job && !d->stopping)
			queue_policy_job(d, t, p); /* still waiting, or out of time */
	}
	t->gen = d->scan_gen;
}

static void scan_cgroup(struct migd *d, const char *rel, int depth)
{
	const struct policy *p = config_match_cgroup(d->cfg, rel[0] ? rel : "/");
	char path[PATH_MAX + 64];
	DIR *dir;
	struct dirent *de;

	if (depth > 32)
		return;
	if (p) {
		FILE *f;
		int pid;

		snprintf(path, sizeof(path), "%s%s/cgroup.procs", d->cgroup_root, rel);
		f = fopen(path, "re");
		if (f) {
			while (fscanf(f, "%d", &pid) == 1)
				see_pid(d, pid, rel[0] ? rel : "/", p);
			fclose(f);
		}
	}
	snprintf(path, sizeof(path), "%s%s", d->cgroup_root, rel);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char sub[PATH_MAX];

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name) >= sizeof(sub))
			continue;
		scan_cgroup(d, sub, depth + 1);
	}
	closedir(dir);
}

static bool explicit_alive(const struct tenant *t)
{
	uint64_t start;
	uid_t uid;

	return proc_pid_info(t->pid, &uid, &start) == 0 && start == t->starttime;
}

void discovery_scan(struct migd *d)
{
	size_t kept = 0;

	d->scan_gen++;
	d->stats.scans++;
	if (d->cgroup_root && d->cfg->n_policies)
		scan_cgroup(d, "", 0);
	for (size_t i = 0; i < d->n_tenants; i++) {
		struct tenant *t = d->tenants[i];

		/* Explicit tenants stay while they live; a tenant with a job stays until it ends.
		 */
		if (t->gen == d->scan_gen || t->job || (!t->policy && explicit_alive(t))) {
			d->tenants[kept++] = t;
			continue;
		}
		log_info("tenant pid %d left (%s)", (int)t->pid,
			 t->policy ? "no longer in a policy's cgroup, or exited" : "exited");
		tenant_free(t);
	}
	d->n_tenants = kept;
	migd_update_status(d);
}

void discovery_done(struct migd *d)
{
	for (size_t i = 0; i < d->n_tenants; i++)
		tenant_free(d->tenants[i]);
	free(d->tenants);
	d->tenants = NULL;
	d->n_tenants = 0;
	free(d->cgroup_root);
	d->cgroup_root = NULL;
}
