/*
 * stopset.c - stopping and resuming every thread of a tenant: each thread
 * is seized and interrupted (all first, then their stops are awaited
 * together), /proc/PID/task is listed again until no new thread appears,
 * and at the end each is restored and detached (ptrace.c does the
 * per-thread part).
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crashpoint.h"
#include "engine.h"
#include "procfs.h"
#include "stopset.h"
#include "util.h"

#ifdef __x86_64__

/* How long stopping the threads may take before held faults are released. */
#define STOP_RELEASE_NS (20ULL * 1000 * 1000)

static bool in_list(const pid_t *tids, size_t n, pid_t tid)
{
	for (size_t k = 0; k < n; k++)
		if (tids[k] == tid)
			return true;
	return false;
}

static bool in_set(const struct mig__stopset *set, pid_t tid)
{
	for (size_t k = 0; k < set->n; k++)
		if (set->s[k].tid == tid)
			return true;
	return false;
}

/* Seize and interrupt the threads not in set or keep; *added counts them. */
static int seize_new(struct mig_tenant *t, const pid_t *keep, size_t nkeep, bool child,
		     struct mig__stopset *set, size_t *added)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int r = 0;

	*added = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", t->pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while (r == 0 && (d = readdir(dir))) {
		pid_t tid = atoi(d->d_name);
		struct mig__inject *s;
		int tp;

		if (tid <= 0 || in_list(keep, nkeep, tid) || in_set(set, tid) ||
		    !mig__proc_thread_live(t->pid, tid))
			continue;
		if (set->n == set->cap) {
			size_t cap = set->cap ? 2 * set->cap : 16;
			struct mig__inject *ns = realloc(set->s, cap * sizeof(*ns));

			if (!ns) {
				r = -ENOMEM;
				break;
			}
			set->s = ns;
			set->cap = cap;
		}
		s = &set->s[set->n];
		memset(s, 0, sizeof(*s));
		s->t = t;
		s->tid = tid;
		s->child = child && tid == t->pid;
		if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(uintptr_t)MIG__PTRACE_OPTIONS) < 0) {
			r = -errno;
			if (r == -ESRCH || !mig__proc_thread_live(t->pid, tid)) {
				r = 0; /* exited meanwhile */
				continue;
			}
			if (r == -EPERM && (tp = mig__proc_tracer_pid(tid)) > 0) {
				mig__tenant_set_error("thread %d of pid %d is traced by pid %d",
						      tid, t->pid, tp);
				r = -EBUSY;
			} else
				mig__tenant_set_error("cannot ptrace thread %d of pid %d: %s", tid,
						      t->pid, strerror(-r));
			break;
		}
		set->n++;
		(*added)++;
		if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
			s->tid = -1; /* exited: nothing to detach */
	}
	closedir(dir);
	return r;
}

int mig__stop_threads(struct mig_tenant *t, const pid_t *keep, size_t nkeep,
		      void (*release)(void *ud), void *ud, struct mig__stopset *set)
{
	bool child = mig__proc_parent_pid(t->pid) == getpid(), released = !release;
	uint64_t t0 = mig__now_ns();

	memset(set, 0, sizeof(*set));
	for (;;) {
		bool waiting = false;
		size_t added;
		int r = seize_new(t, keep, nkeep, child, set, &added);

		if (r < 0)
			return r;
		mig__crash_point("stopset:seized");
		for (size_t k = 0; k < set->n; k++) {
			struct mig__inject *s = &set->s[k];

			if (s->stopped || s->tid <= 0)
				continue;
			r = mig__inject_acquire_stop(s, true);
			if (r == 0) {
				s->stopped = true;
				s->t0 = mig__now_ns();
			} else if (r == -ESRCH)
				s->tid = -1;
			else if (r == -EINPROGRESS || r == -EAGAIN)
				waiting = true;
			else
				return r;
		}
		if (!waiting && added == 0)
			break;
		if (waiting) {
			if (!released && mig__now_ns() - t0 > STOP_RELEASE_NS) {
				release(ud);
				released = true;
			}
			usleep(20);
		}
	}
	mig__crash_point("stopset:stopped");
	/* Stopped after the pid was checked: still the same process? */
	if (mig__tenant_exited(t))
		return -ESRCH;
	return 0;
}

int mig__resume_threads(struct mig__stopset *set)
{
	int r = 0;

	for (size_t k = 0; k < set->n; k++) {
		struct mig__inject *s = &set->s[k];
		int q = 0;

		if (s->tid <= 0)
			continue;
		/* Seized but not stopped yet (a failed stop): wait for it. */
		if (!s->stopped) {
			q = mig__inject_acquire_stop(s, false);
			s->stopped = q == 0;
		}
		if (q != -ESRCH)
			q = mig__inject_end(s);
		if (q < 0 && q != -ESRCH && r == 0)
			r = q;
	}
	free(set->s);
	memset(set, 0, sizeof(*set));
	return r;
}

#else /* !__x86_64__ */

int mig__stop_threads(struct mig_tenant *t, const pid_t *keep, size_t nkeep,
		      void (*release)(void *ud), void *ud, struct mig__stopset *set)
{
	(void)t;
	(void)keep;
	(void)nkeep;
	(void)release;
	(void)ud;
	memset(set, 0, sizeof(*set));
	return -EOPNOTSUPP;
}

int mig__resume_threads(struct mig__stopset *set)
{
	free(set->s);
	memset(set, 0, sizeof(*set));
	return 0;
}

#endif /* __x86_64__ */
