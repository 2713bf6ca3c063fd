/*
 * stress_common.h - shared by the tests/integration/stress_*.c tests:
 * start tests/tenants/stress_tenant (or another tenant program) with
 * pipes, talk to it, read the seed, count migd-side fds and threads.
 * Builds on migrate_common.h (target choice, result checks). Only the
 * processes started here are ever signalled, by pid.
 */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <fcntl.h>

#include "integration/migrate_common.h"

/* Start tenants/<name> with args; fills w like wt_start. */
static inline void st_start(struct wtenant *w, const char *self, const char *name,
			    const char *const *args)
{
	int pin[2], pout[2];
	char prog[4096], rel[256], line[256];
	const char *argv[32] = { name };
	size_t a = 1;
	void *addr;
	int pid;

	snprintf(rel, sizeof(rel), "tenants/%s", name);
	prog_path(self, rel, prog, sizeof(prog));
	for (; args && args[a - 1] && a < 31; a++)
		argv[a] = args[a - 1];
	argv[a] = NULL;
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC))
		FAIL("pipe: %m");
	w->pid = fork();
	if (w->pid < 0)
		FAIL("fork: %m");
	if (w->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		execv(prog, (char **)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	w->in = fdopen(pin[1], "w");
	w->out = fdopen(pout[0], "r");
	if (!fgets(line, sizeof(line), w->out) ||
	    sscanf(line, "READY %d %p %" SCNu64, &pid, &addr, &w->len) != 3)
		FAIL("%s did not start (%s)", name, prog);
	w->addr = (uint64_t)(uintptr_t)addr;
}

/* "OPS n BAD b" from the stress tenant; -1 when it does not answer. */
static inline int st_progress(struct wtenant *w, uint64_t *ops, uint64_t *bad)
{
	const char *l = wt_cmd(w, "progress");

	return sscanf(l, "OPS %" SCNu64 " BAD %" SCNu64, ops, bad) == 2 ? 0 : -1;
}

static inline uint64_t st_seed(void)
{
	const char *e = getenv("STRESS_SEED");
	struct timespec ts;

	if (e && *e)
		return strtoull(e, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20;
}

static inline uint64_t st_rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Entries in /proc/self/<dir> (fd, task). */
static inline int count_dir(const char *dir)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/%s", dir);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (!strcmp(dir, "fd") ? 1 : 0); /* the DIR's own fd */
}

/* Sleep ms milliseconds. */
static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * The result must add up: every page is counted once, statuses agree with
 * the counters, and a present page that was not moved says why.
 */
static inline void st_check_result(const struct mig_migrate_result *r,
				   const struct mig_nodes *targets)
{
	check_identity(r);
	check_status(r, targets);
}

#endif
