/*
 * tenant.h - internal view of a tenant: the state libmig keeps per
 * attached process and the small interface behind which the two backends
 * (ptrace injection, agent) execute operations inside the tenant.
 */
#ifndef MIG_TENANT_H
#define MIG_TENANT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mig.h"
#include "uffd.h"

/*
 * How the engine drives a zap (docs/engine.md, "The zap protocol"). The
 * thread that runs the madvise inside the tenant (the executor) must never
 * wait for a fault the engine holds: a thread held in a fault taken from
 * kernel mode (a syscall writing to a write-protected page, or the kernel
 * updating its rseq area on the way back to user mode) cannot be stopped
 * by ptrace, and the agent's helper cannot serve requests while held. So
 * the backend first names its executor threads (prepare: the engine
 * releases and stops holding their faults), gets them ready (ptrace:
 * seized and stopped), and then asks for the runs (ready), giving the
 * ranges the executor's kernel will write while it runs the zap (its
 * rseq area, the stack below its stack pointer); the engine keeps those
 * out of the zap set and fixes the set at that moment.
 */
/*
 * One step of a zap, run by the executor inside the tenant:
 * MIG__ZAP_MADVISE: madvise(start, len, MADV_DONTNEED);
 * MIG__ZAP_MOVE: ioctl(uffd, UFFDIO_MOVE, { dst, start, len, mode }).
 * MIG__ZAP_STOP: stop every other thread of the tenant until the zap
 *   ends (no syscall; done gets 0 or -errno). The engine asks for it
 *   before madvise steps on tenant pages: with the tenant's threads
 *   stopped none of them can change its mappings between the moment a
 *   run is computed and its madvise, and every REMOVE event read then
 *   is the zap's own (docs/engine.md, "The zap").
 */
enum { MIG__ZAP_MADVISE = 1, MIG__ZAP_MOVE, MIG__ZAP_STOP };

struct mig__zap_step {
	int op;
	uint64_t start, len;
	uint64_t dst, mode; /* MOVE only */
};

struct mig__zap_ctl {
	/* Called first with the executor threads. May be NULL. */
	void (*prepare)(void *ud, const pid_t *tids, size_t n);
	/*
	 * The executor is ready; excl[nexcl] must not be zapped. *runs and
	 * *n get what to zap now (valid until the op returns; n may be 0).
	 * With next set, runs are not used: the steps come from next.
	 * Returns 0 or -errno (then nothing is zapped).
	 */
	int (*ready)(void *ud, const struct mig_range *excl, size_t nexcl,
		     const struct mig_range **runs, size_t *n);
	/*
	 * Optional. The next step, computed when it is due: 1 (*st filled),
	 * 0 (no more), or -errno. The backend runs the step and then calls
	 * done with its result (the syscall's return, -errno; for MOVE the
	 * bytes moved), or with -EINTR if it did not run. Between next and
	 * done the engine may hold a lock the fault thread needs: the
	 * backend must call unlock (may be NULL) before anything that can
	 * make the executor fault (delivering a signal to it), and before
	 * done.
	 */
	int (*next)(void *ud, struct mig__zap_step *st);
	void (*unlock)(void *ud);
	void (*done)(void *ud, const struct mig__zap_step *st, int64_t ret, uint64_t moved);
	/*
	 * Optional. A MIG__ZAP_STOP waits for threads that can only stop on
	 * their way back to user mode: one held in a fault taken in kernel
	 * mode waits for the engine. When the stop takes long the backend
	 * calls release, which lets every held fault go, and waits on.
	 */
	void (*release)(void *ud);
	/* MOVE steps: an unregistered page of the tenant for the ioctl's argument. */
	uint64_t arg_page;
	void *ud;
};

struct mig__tenant_ops {
	const char *name; /* "ptrace", "agent" */
	/* Run the zap inside the tenant: ctl->ready's runs (madvise), or ctl->next's steps. */
	int (*zap)(struct mig_tenant *t, const struct mig__zap_ctl *ctl);
	/* mmap(NULL, len, RW, MAP_PRIVATE|MAP_ANONYMOUS) inside the tenant. */
	int (*map_scratch)(struct mig_tenant *t, size_t len, uint64_t *ret_addr);
	int (*unmap)(struct mig_tenant *t, uint64_t addr, size_t len);
	/* ioctl(tenant_fd, UFFDIO_MOVE) inside the tenant. */
	int (*move)(struct mig_tenant *t, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
		    uint64_t *ret_moved);
	/* close(fd) inside the tenant. */
	int (*close_fd)(struct mig_tenant *t, int fd);
	/* Free backend state (after the tenant fd was closed). */
	void (*release)(struct mig_tenant *t);
};

struct mig_tenant {
	pid_t pid;
	int pidfd;	   /* held from attach to detach: no pid reuse */
	int uffd;	   /* migd's copy of the tenant's userfaultfd */
	int tenant_fd;	   /* the same uffd's fd number inside the tenant */
	uint64_t features; /* requested and granted at UFFDIO_API */
	uint64_t offered;  /* every feature the kernel offers */
	uint64_t ioctls;   /* UFFDIO_API ioctls */
	bool kept;	   /* the agent handed over a uffd kept from an earlier migd */
	enum mig_attach_method method;
	const struct mig__tenant_ops *ops;
	void *priv;		    /* backend state */
	pthread_mutex_t op_lock;    /* one in-tenant operation at a time */
	struct mig__uffd_regs regs; /* ranges registered through mig_tenant_register */
	uint64_t stop_ns;	    /* total time the tenant thread was stopped by us */
	uint64_t stop_max_ns;	    /* longest single stop */
};

/* Backends. attach fills t->tenant_fd and t->uffd (migd's copy). */
MIG_INTERNAL extern const struct mig__tenant_ops mig__ptrace_ops;
MIG_INTERNAL extern const struct mig__tenant_ops mig__agent_ops;
MIG_INTERNAL int mig__ptrace_attach(struct mig_tenant *t);
MIG_INTERNAL int mig__agent_attach(struct mig_tenant *t, int agent_fd);

/* Zap through ctl under the tenant's op_lock; see struct mig__zap_ctl. */
MIG_INTERNAL int mig__tenant_zap_ctl(struct mig_tenant *t, const struct mig__zap_ctl *ctl);

/* Set the calling thread's last error message (mig_tenant_last_error). */
MIG_INTERNAL void mig__tenant_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* MIG_TENANT_H */
