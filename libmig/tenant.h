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
 * One step of a zap, run by the executor inside the tenant (zap.c drives
 * the steps; the rules are stated there, once):
 * MIG__ZAP_MADVISE: madvise(start, len, MADV_DONTNEED);
 * MIG__ZAP_MOVE: ioctl(uffd, UFFDIO_MOVE, { dst, start, len, mode }), its
 *   argument written to arg_page, an unregistered page of the tenant.
 * MIG__ZAP_STOP: stop every other thread of the tenant until the zap ends
 *   (zap.c asks the backend's stop_others; no zap_step).
 */
enum { MIG__ZAP_MADVISE = 1, MIG__ZAP_MOVE, MIG__ZAP_STOP };

struct mig__zap_step {
	int op;
	uint64_t start, len;
	uint64_t dst, mode; /* MOVE only */
	uint64_t arg_page;  /* MOVE only */
};

struct mig__stopset;

/* Ranges an executor's kernel may write while it runs zap steps, at most. */
#define MIG__ZAP_MAX_EXCL 8

struct mig__tenant_ops {
	const char *name; /* "ptrace", "agent" */
	/*
	 * The zap primitives (zap.c is their only caller, under op_lock).
	 * zap_threads: the threads that will run the steps (the executor:
	 *   ptrace, the thread it seizes; agent, its helpers), up to max.
	 *   Returns how many, or -errno.
	 * zap_begin: get the executor ready (ptrace: seized and stopped, so
	 *   it cannot fault) and name in excl[MIG__ZAP_MAX_EXCL] what its
	 *   kernel writes while it runs steps. *ret_x is the session.
	 *   Returns how many excl, or -errno.
	 * zap_step: run one MOVE or MADVISE step. unlock(ud) is called as
	 *   soon as the syscall has run, and before anything that can make
	 *   the executor fault (a signal delivered to it). Returns 0 with
	 *   *ret_val (the syscall's return or -errno) and *ret_moved (MOVE:
	 *   bytes moved); -EINTR when a signal came first and the step did
	 *   not run; other -errno when the session is lost.
	 * zap_end: end the session (the executor goes on). 0 or -errno.
	 */
	int (*zap_threads)(struct mig_tenant *t, pid_t *tids, size_t max);
	int (*zap_begin)(struct mig_tenant *t, const pid_t *tids, size_t ntids, void **ret_x,
			 struct mig_range *excl);
	int (*zap_step)(struct mig_tenant *t, void *x, const struct mig__zap_step *st,
			void (*unlock)(void *ud), void *ud, int64_t *ret_val, uint64_t *ret_moved);
	int (*zap_end)(struct mig_tenant *t, void *x);
	/*
	 * MIG__ZAP_STOP: stop every thread of the tenant but keep[nkeep] until
	 * resume_others (ptrace: stopset.c; agent: its own signal handler,
	 * no ptrace, and stopset.c where it cannot). A thread held in a
	 * kernel-mode fault cannot stop: when the stop takes long, call
	 * release(ud) (once). Returns 0 or -errno; resume_others follows
	 * either way (set holds what ptrace stopped).
	 */
	int (*stop_others)(struct mig_tenant *t, const pid_t *keep, size_t nkeep,
			   void (*release)(void *ud), void *ud, struct mig__stopset *set);
	int (*resume_others)(struct mig_tenant *t, struct mig__stopset *set);
	/* mmap(NULL, len, RW, MAP_PRIVATE|MAP_ANONYMOUS) inside the tenant. */
	int (*map_scratch)(struct mig_tenant *t, size_t len, uint64_t *ret_addr);
	int (*unmap)(struct mig_tenant *t, uint64_t addr, size_t len);
	/*
	 * madvise(addr, len, advice) inside the tenant, for advice that
	 * process_madvise(2) does not take (MADV_HUGEPAGE). NULL: not offered.
	 */
	int (*advise)(struct mig_tenant *t, uint64_t addr, size_t len, int advice);
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
	bool no_device;	   /* never hand /dev/userfaultfd in (mig_attach_opts) */
	enum mig_attach_method method;
	const struct mig__tenant_ops *ops;
	void *priv;		    /* backend state */
	pthread_mutex_t op_lock;    /* one in-tenant operation at a time */
	struct mig__uffd_regs regs; /* ranges registered through mig_tenant_register */
	uint64_t stop_ns;	    /* total time the tenant thread was stopped by us */
	uint64_t stop_max_ns;	    /* longest single stop */
	pid_t idle_tid;		    /* the zap executor found asleep last (ptrace.c) */
	uint64_t idle_scan_ns;	    /* when they may be looked through for one again */
	uint64_t idle_ran_ns;	    /* its run time when the last session let it go */
};

/* Backends. attach fills t->tenant_fd and t->uffd (migd's copy). */
MIG_INTERNAL extern const struct mig__tenant_ops mig__ptrace_ops;
MIG_INTERNAL extern const struct mig__tenant_ops mig__agent_ops;
MIG_INTERNAL int mig__ptrace_attach(struct mig_tenant *t);
MIG_INTERNAL int mig__agent_attach(struct mig_tenant *t, int agent_fd);
/*
 * After a crash (journal.c): one ptrace session in pid (pinned by pidfd)
 * that unmaps [unmap_addr, +unmap_len) if unmap_len, then closes fd if
 * fd >= 0, without a uffd of its own (an attach would create one, set it
 * up and close it again: three more sessions). sysaddr and restorer: where
 * the job found its code in the tenant (checked before use; 0: scan).
 * Returns 0 or -errno of the session; *ret_closed: close's own result.
 */
MIG_INTERNAL int mig__ptrace_release(pid_t pid, int pidfd, uint64_t sysaddr, uint64_t restorer,
				     uint64_t unmap_addr, size_t unmap_len, int fd,
				     int *ret_closed);

/* True once the tenant's process has exited (its pidfd is readable). */
MIG_INTERNAL bool mig__tenant_exited(const struct mig_tenant *t);

/*
 * madvise inside the tenant (ops->advise). Returns madvise's 0 or -errno,
 * -EOPNOTSUPP when the backend cannot, -ESRCH.
 */
MIG_INTERNAL int mig__tenant_advise(struct mig_tenant *t, uint64_t addr, size_t len, int advice);
/* Set the calling thread's last error message (mig_tenant_last_error). */
MIG_INTERNAL void mig__tenant_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* MIG_TENANT_H */
