/*
 * stop.h - the agent stops the tenant's other threads itself (stop.c),
 * for the moment migd takes pages out with madvise: no ptrace.
 */
#ifndef MIG_AGENT_STOP_H
#define MIG_AGENT_STOP_H

#include <stdint.h>
#include <sys/types.h>

/* The most threads one stop takes; a tenant with more is stopped by ptrace. */
#define MIG_AGENT_STOP_MAX 1024

/*
 * One stop's state. It lives in the helper thread's stack, which every
 * zap keeps out of its set (libmig: op_zap_begin): the stopped threads
 * write it while pages around them are taken out, and must not fault on
 * it. Fields shared with the signal handler are accessed atomically.
 */
struct mig_agent_stopctl {
	int active;  /* a stop is in progress */
	int go;	     /* futex word: RESUME bumps it */
	int inside;  /* handlers that may still read this block */
	int n;	     /* slots in use */
	uint64_t t0; /* when this stop began (ms, CLOCK_MONOTONIC) */
	struct {
		pid_t tid;
		int state;	  /* SLOT_SIGNALLED, _STOPPED, _WAITING, _GONE (stop.c) */
		uint64_t sent_ms; /* when it was last signalled */
	} slot[MIG_AGENT_STOP_MAX];
};

/* Install the stop signal's handler, where the host has none of its own. */
void mig_agent_stop_install(void);

/* The helper thread's block, set once before it serves requests. */
void mig_agent_stop_init(struct mig_agent_stopctl *c);

/* MIG_AGENT_STOP: 0, -EINPROGRESS (ask again) or -errno (all let go). */
int64_t mig_agent_stop(struct mig_agent_stopctl *c, unsigned wait_ms);

/* MIG_AGENT_RESUME: let every stopped thread go; 0. */
int64_t mig_agent_resume(struct mig_agent_stopctl *c);

#endif /* MIG_AGENT_STOP_H */
