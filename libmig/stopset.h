/*
 * stopset.h - stopping and resuming all threads of a tenant (stopset.c),
 * with one ptrace session per thread.
 */
#ifndef MIG_STOPSET_H
#define MIG_STOPSET_H

#include <stddef.h>
#include <sys/types.h>

#include "ptrace.h"
#include "tenant.h"

/*
 * The threads of a tenant stopped by mig__stop_threads: one session
 * (seized, stopped, registers saved) per thread; tid <= 0 for a thread
 * that exited meanwhile.
 */
struct mig__stopset {
	struct mig__inject *s;
	size_t n, cap;
};

/*
 * Seize and stop every thread of the tenant but keep[nkeep], listing
 * them again until no new one appears (a stopped thread cannot clone).
 * All are interrupted first and their stops awaited together. A thread
 * held in a userfault taken in kernel mode cannot stop until its fault
 * is served: after a while release(ud) is called (once) and the wait
 * goes on. Returns 0; -EBUSY (a thread is traced by someone else),
 * -ESRCH, -EPERM... Always call mig__resume_threads afterwards.
 */
MIG_INTERNAL int mig__stop_threads(struct mig_tenant *t, const pid_t *keep, size_t nkeep,
				   void (*release)(void *ud), void *ud, struct mig__stopset *set);

/* Restore and detach every thread of set; frees it. Returns 0 or -errno. */
MIG_INTERNAL int mig__resume_threads(struct mig__stopset *set);

#endif /* MIG_STOPSET_H */
