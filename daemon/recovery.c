/*
 * recovery.c - at start, before the socket serves anyone: finish what a
 * migd that died left behind (docs/engine.md, "After a crash").
 *
 * Every journal in state_dir names a tenant that was in the middle of a
 * window: some of its pages maybe taken out, some write-protected, its
 * uffd still open in it, its threads waiting. libmig's mig_recover puts
 * each one right. A tenant it cannot bring back is named loudly: an
 * error in the log, the state "unrecovered" with the reason in
 * `migctl tenants`, `migctl status` exits nonzero, and `migctl migrate`
 * of it is refused. Its journal stays for the next start to try again.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon.h"
#include "log.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool is_journal(const char *name)
{
	size_t n = strlen(name);

	return n > 8 && strcmp(name + n - 8, ".journal") == 0;
}

static void mark_unrecovered(struct migd *d, const struct mig_recover_info *info, int r)
{
	struct tenant *t = NULL;
	char *msg = NULL;

	if (tenant_add_explicit(d, info->pid, &t) < 0)
		return;
	if (asprintf(&msg, "not recovered after a crash of migd: %s (%s)", info->reason,
		     mig_errno_name(r)) < 0)
		msg = NULL;
	free(t->last_error);
	t->last_error = msg;
	t->state = TENANT_UNRECOVERED;
}

int recovery_run(struct migd *d)
{
	const char *dir = d->cfg->state_dir;
	uint64_t t0 = now_ns();
	unsigned ok = 0, dropped = 0, bad = 0;
	struct dirent *e;
	DIR *dp;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(errno, "cannot create state_dir %s: %m", dir);
	/* Jobs put their staging files below it; systemd makes it only under the unit. */
	if (mkdir(d->cfg->runtime_dir, 0755) < 0 && errno != EEXIST)
		return log_error_errno(errno, "cannot create runtime_dir %s: %m",
				       d->cfg->runtime_dir);
	dp = opendir(dir);
	if (!dp)
		return log_error_errno(errno, "cannot read state_dir %s: %m", dir);
	while ((e = readdir(dp))) {
		struct mig_recover_info info;
		char path[PATH_MAX];
		int r;

		if (!is_journal(e->d_name))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;
		r = mig_recover(path, &info);
		if (r == 0) {
			ok++;
			log_notice(
				"pid %d recovered after a crash of migd in %.1f ms (refill %.1f, "
				"settle %.1f, release in the tenant %.1f): %" PRIu64
				" pages put back, %" PRIu64 " dropped by the tenant meanwhile%s%s",
				(int)info.pid, info.elapsed_ns / 1e6, info.refill_ns / 1e6,
				info.settle_ns / 1e6, info.release_ns / 1e6, info.pages_refilled,
				info.pages_gone, info.reason[0] ? "; " : "", info.reason);
		} else if (r > 0) {
			dropped++;
			log_info("journal %s dropped: %s", path, info.reason);
		} else {
			bad++;
			log_error("pid %d NOT recovered after a crash of migd: %s (%s); journal %s "
				  "kept",
				  (int)info.pid, info.reason, mig_errno_name(r), path);
			mark_unrecovered(d, &info, r);
		}
	}
	closedir(dp);
	if (ok || dropped || bad)
		log_notice("recovery: %u tenants recovered, %u journals dropped, %u not recovered, "
			   "%.1f ms",
			   ok, dropped, bad, (now_ns() - t0) / 1e6);
	return 0;
}
