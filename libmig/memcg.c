/*
 * memcg.c - room under the tenant's memory cgroup limits.
 *
 * Most of a job's copies are charged to the tenant's memory cgroup
 * (UFFDIO_COPY charges the destination mm's memcg), and two steps hold
 * old and new pages of the tenant at once: a move-first window keeps the
 * pages it took out in the tenant's scratch area until they are filled,
 * and whole THPs are staged into huge slots inside the tenant before the
 * zap. Neither may push the tenant over its limit: an order-0 charge that
 * cannot reclaim invokes the memcg OOM killer, which kills the tenant
 * (host, cgroup v1, a 64 MiB writer at its limit + 256 KiB: oom_kill 1
 * with either step, docs/engine.md "A tenant at its memory limit"). The
 * job reads the limits once (every level from the tenant's cgroup up:
 * memory.max on cgroup v2, memory.limit_in_bytes on v1) and asks for the
 * usage of the limited ones before such a step.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitmap.h"
#include "engine.h"
#include "trace.h"

/* v1 says "no limit" with a page-rounded LONG_MAX; anything this big is none. */
#define NO_LIMIT (UINT64_C(1) << 60)

static int read_u64_at(const char *path, uint64_t *ret)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	buf[n] = '\0';
	if (!strncmp(buf, "max", 3)) {
		*ret = UINT64_MAX;
		return 0;
	}
	errno = 0;
	*ret = strtoull(buf, NULL, 10);
	return errno ? -errno : 0;
}

/*
 * The mount point of the v2 hierarchy (v1: of the one with the memory
 * controller) in our mount namespace, and the cgroup path it shows as
 * its root. Returns 0 or -ENOENT.
 */
static int find_mount(bool v1, char *mnt, size_t mntlen, char *root, size_t rootlen)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char r[PATH_MAX], m[PATH_MAX], fstype[64], opts[512];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2 ||
		    sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		if (v1 ? strcmp(fstype, "cgroup") || !strstr(opts, "memory")
		       : strcmp(fstype, "cgroup2"))
			continue;
		if (v1) {
			/* "memory" as a whole option, not part of another. */
			bool found = false;

			for (char *s = opts, *tok; (tok = strsep(&s, ","));)
				found |= !strcmp(tok, "memory");
			if (!found)
				continue;
		}
		snprintf(mnt, mntlen, "%s", m);
		snprintf(root, rootlen, "%s", r);
		return 0;
	}
	return -ENOENT;
}

/*
 * The tenant's cgroup directory for the memory controller into dir:
 * v1 when a v1 hierarchy has it (hybrid hosts account memory there),
 * else v2. Returns 1 (v1), 2 (v2) or -errno.
 */
static int tenant_dir(pid_t pid, char *dir, size_t len)
{
	char path[64], mnt[PATH_MAX], root[PATH_MAX], v1path[PATH_MAX] = "", v2path[PATH_MAX] = "";
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, rl;
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (getline(&line, &cap, f) > 0) {
		char *hier = line, *ctl = strchr(line, ':'), *cg;

		if (!ctl || !(cg = strchr(ctl + 1, ':')))
			continue;
		*ctl++ = '\0';
		*cg++ = '\0';
		cg[strcspn(cg, "\n")] = '\0';
		/* A cgroup's path starts with '/': empty means not named. */
		if (!strcmp(hier, "0") && !*ctl) {
			snprintf(v2path, sizeof(v2path), "%s", cg);
			continue;
		}
		for (char *s = ctl, *tok; (tok = strsep(&s, ","));)
			if (!strcmp(tok, "memory"))
				snprintf(v1path, sizeof(v1path), "%s", cg);
	}
	for (int v = 1; v <= 2; v++) {
		p = v == 1 ? v1path : v2path;
		if (!*p || find_mount(v == 1, mnt, sizeof(mnt), root, sizeof(root)) < 0)
			continue;
		/* A mount of a cgroup below the namespace's root shows only that subtree. */
		rl = strlen(root);
		if (strcmp(root, "/")) {
			if (strncmp(p, root, rl) || (p[rl] && p[rl] != '/'))
				continue;
			p += rl;
		}
		if (snprintf(dir, len, "%s%s", mnt, p) >= (int)len)
			return -ENAMETOOLONG;
		/* The v2 memory controller may be off; v1's is there when mounted. */
		if (v == 2) {
			char probe[PATH_MAX + 16];

			snprintf(probe, sizeof(probe), "%s/memory.current", dir);
			if (access(probe, R_OK) && strcmp(p, "/") && strcmp(p, ""))
				continue;
		}
		return v;
	}
	return -ENOENT;
}

void mig__memcg_init(struct mig__memcg *m, pid_t pid)
{
	char dir[PATH_MAX], file[PATH_MAX + 32];
	size_t n = 0;
	int v = tenant_dir(pid, dir, sizeof(dir));

	m->n = 0;
	if (v < 0) {
		MIG_TRACE("MEMCG pid=%d: no memory cgroup found (%d): not checked", (int)pid, v);
		return;
	}
	/* From the tenant's cgroup up to the hierarchy's root, each limited level. */
	for (;;) {
		uint64_t lim;

		snprintf(file, sizeof(file), "%s/%s", dir,
			 v == 1 ? "memory.limit_in_bytes" : "memory.max");
		if (read_u64_at(file, &lim) == 0 && lim < NO_LIMIT && n < MIG__MEMCG_LEVELS) {
			m->level[n].limit = lim;
			m->level[n].v1 = v == 1;
			m->level[n].dir = strdup(dir);
			if (m->level[n].dir) {
				MIG_TRACE("MEMCG pid=%d: %s limit %llu", (int)pid, dir,
					  (unsigned long long)lim);
				n++;
			}
		}
		char *slash = strrchr(dir, '/');

		if (!slash || slash == dir)
			break;
		*slash = '\0';
		snprintf(file, sizeof(file), "%s/%s", dir,
			 v == 1 ? "memory.usage_in_bytes" : "memory.current");
		/* Above the hierarchy's mount point there is no cgroup. */
		if (access(file, R_OK))
			break;
	}
	m->n = n;
}

void mig__memcg_free(struct mig__memcg *m)
{
	for (size_t k = 0; k < m->n; k++)
		free(m->level[k].dir);
	m->n = 0;
}

/*
 * The file pages of a cgroup (its LRU's, so without shmem, which is
 * swap-backed): what reclaim can give back before any OOM. 0 if unread.
 */
static uint64_t reclaimable(const char *dir, bool v1)
{
	char path[PATH_MAX + 16];
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	uint64_t sum = 0;

	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		char key[64];
		unsigned long long val;

		if (sscanf(line, "%63s %llu", key, &val) != 2)
			continue;
		if (v1 ? !strcmp(key, "total_inactive_file") || !strcmp(key, "total_active_file")
		       : !strcmp(key, "inactive_file") || !strcmp(key, "active_file"))
			sum += val;
	}
	return sum;
}

uint64_t mig__memcg_room(const struct mig__memcg *m, uint64_t need)
{
	uint64_t room = UINT64_MAX;

	for (size_t k = 0; k < m->n; k++) {
		char path[PATH_MAX + 32];
		uint64_t use, r;

		snprintf(path, sizeof(path), "%s/%s", m->level[k].dir,
			 m->level[k].v1 ? "memory.usage_in_bytes" : "memory.current");
		/* A level that cannot be read now is taken as full: safe, not fast. */
		if (read_u64_at(path, &use) < 0)
			return 0;
		r = use < m->level[k].limit ? m->level[k].limit - use : 0;
		/* Short: its file pages count too, reclaim takes them before the OOM killer. */
		if (r < need)
			r += reclaimable(m->level[k].dir, m->level[k].v1);
		room = MIN(room, r);
	}
	return room;
}

bool mig__memcg_fits(const struct mig__job *j, uint64_t len, bool movefirst)
{
	uint64_t need = (movefirst ? 2 : 1) * len + MIG__MEMCG_SLACK, room;

	if (!j->memcg.n)
		return true;
	room = mig__memcg_room(&j->memcg, need);
	/*
	 * The last move-first window's pages in the scratch area: the next
	 * session drops them before it takes anything out. Without this they
	 * held every later window back (6.12 guest, daemon_memcg's tight
	 * case: 35 of 39 windows -EDQUOT at the limit + 7 MiB).
	 */
	if (room < need && j->scratch_dirty && !j->scratch_keep)
		room += j->scratch_held;
	/*
	 * The huge slots, for a classic pass: its session's end drops them
	 * before the fill (a pass that takes nothing out fills nothing), and
	 * staging again overwrites them in place. Without this, 3 THPs staged
	 * by a pass that took nothing out held 6 MiB and 10 of 14 windows
	 * failed (host, the same case). A move-first session keeps them.
	 */
	if (room < need && !movefirst && !j->scratch_keep)
		room += mig__bitmap_count(j->hslots, MIG__HSLOTS_MAX) * (uint64_t)MIG__PMD;
	if (room >= need)
		return true;
	MIG_TRACE("MEMCG room %llu < %llu for %llu bytes%s", (unsigned long long)room,
		  (unsigned long long)need, (unsigned long long)len,
		  movefirst ? " move first" : "");
	return false;
}

void mig__memcg_held_back(struct mig__job *j, uint64_t win_start)
{
	if (j->memcg_win != win_start + 1)
		j->windows_memcg++;
	j->memcg_win = win_start + 1;
}
