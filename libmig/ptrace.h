/*
 * ptrace.h - one ptrace session (ptrace.c): run syscalls inside a tenant thread
 * that was not written to cooperate (x86_64; elsewhere -EOPNOTSUPP).
 *
 * A session seizes one thread, stops it, saves its registers, runs any
 * number of syscalls in it, restores the registers and detaches. Only that
 * thread stops; the others run on. A session survives its injector: if
 * migd dies at any instant, the thread resumes where it was with its own
 * registers, signal mask and FPU state (ptrace.c explains how).
 * The sigmask is never changed through ptrace: a signal that arrives while
 * we hold the thread is delivered at once with the thread's own registers
 * (exactly as if we were not there), then the thread is stopped again and
 * the syscall retried. Changing the mask with PTRACE_SETSIGMASK would clear
 * TIF_RESTORE_SIGMASK and make a ppoll/pselect/epoll_pwait/sigsuspend
 * temporary mask permanent, so the design's "block all but SIGTRAP" was
 * dropped for this.
 *
 * A syscall that raises a userfaultfd event (madvise/munmap on a range
 * registered with EVENT_REMOVE/UNMAP) does not return until someone reads
 * the event from the uffd: the caller must have a reader on another thread.
 */
#ifndef MIG_PTRACE_H
#define MIG_PTRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct sock_filter;

#include "tenant.h"

/*
 * The ptrace backend's state per tenant (t->priv), which the session
 * uses to find its two code sequences in the tenant once and keep them.
 */
struct mig__ptrace_priv {
	int memfd;	   /* /proc/PID/mem, read-only: finding the code */
	uint64_t sysaddr;  /* cached address of `syscall; ret` (0f 05 c3) */
	uint64_t restorer; /* cached address of `mov $15, %rax; syscall` */
};

/*
 * A thread's seccomp filters (seccomp.c), read while it is stopped: what
 * they answer decides whether migd may inject a syscall there.
 */
struct mig__seccomp {
	int mode; /* the thread's "Seccomp:": 0 none, 1 strict, 2 filters, -1 unread */
	int err;  /* mode 2 and the filters could not be read: -errno */
	size_t n; /* filters read, the newest first */
	struct sock_filter **prog;
	unsigned *len;
};

/* Read the filters of thread tid of pid, which must be in a ptrace stop of ours. */
MIG_INTERNAL void mig__seccomp_load(pid_t pid, pid_t tid, struct mig__seccomp *sc);
MIG_INTERNAL void mig__seccomp_free(struct mig__seccomp *sc);
/* The filters' answer to syscall nr(args) made at ip, as the kernel would compute it. */
MIG_INTERNAL uint32_t mig__seccomp_run(const struct mig__seccomp *sc, long nr,
				       const uint64_t args[6], uint64_t ip);
/*
 * 0 when the filters let syscall nr(args) at ip run (ALLOW, LOG), else the
 * result to give instead of running it (an ERRNO answer's -errno, else
 * -EPERM), with the reason in why.
 */
MIG_INTERNAL int mig__seccomp_check(const struct mig__seccomp *sc, long nr, const uint64_t args[6],
				    uint64_t ip, char *why, size_t wlen);

struct mig__inject {
	struct mig_tenant *t;
	pid_t tid;
	bool child;	   /* the tenant is our child: leave its exit status alone */
	bool stopped;	   /* between begin and end */
	uint64_t sysaddr;  /* address of `syscall; ret` in the tenant */
	uint64_t restorer; /* address of an rt_sigreturn sequence in the tenant */
	uint64_t t0;	   /* CLOCK_MONOTONIC ns when the thread stopped */
	/*
	 * The restore frame below the thread's stack pointer (ptrace.c):
	 * [frame_lo, frame_lo + frame_len) holds it while frame_old holds
	 * the bytes it covers; stub_sp is the stack pointer the injected
	 * syscall runs with. injected: the thread's registers are the
	 * stub's, not saved.
	 */
	uint64_t frame_lo, stub_sp;
	size_t frame_len;
	uint8_t *frame_old;
	bool injected;
	/*
	 * Optional: called once the injected syscall has run (or did not),
	 * before a signal is delivered to the thread. With once set, a
	 * syscall a signal got ahead of is not run again: -EINTR.
	 */
	void (*before_signal)(void *ud);
	void *hook_ud;
	bool once;
	/*
	 * The thread's seccomp filters, read when it stopped: a syscall they
	 * do not allow is not run, its result is the filters' answer
	 * (seccomp.c). denied: why the last one was not.
	 */
	struct mig__seccomp sc;
	char denied[200];
#ifdef __x86_64__
	struct user_regs_struct saved;
#endif
};

/*
 * Seize and stop the tenant's main thread. Returns 0; -ESRCH (gone),
 * -EBUSY (already traced), -EPERM, -EOPNOTSUPP (not x86_64, or a 32-bit
 * tenant). On failure nothing is left attached.
 */
MIG_INTERNAL int mig__inject_begin(struct mig_tenant *t, struct mig__inject *s);

/*
 * The thread mig__inject_begin would seize now (the main thread, or the
 * first live one when it has exited), or -ESRCH.
 */
MIG_INTERNAL pid_t mig__inject_thread(struct mig_tenant *t);

/*
 * The thread a zap session should seize: mig__inject_thread's when it is
 * asleep in a syscall, else another thread that is (mig__proc_thread_idle:
 * no seccomp filter, no tracer), else mig__inject_thread's. Stopping a
 * thread that sleeps takes no CPU's work from the tenant; stopping a busy
 * main thread (an event loop) stalls it for the session. Under t->op_lock.
 */
MIG_INTERNAL pid_t mig__inject_idle_thread(struct mig_tenant *t);

/* mig__inject_begin on thread tid of the tenant (from mig__inject_thread). */
MIG_INTERNAL int mig__inject_begin_thread(struct mig_tenant *t, pid_t tid, struct mig__inject *s);

/*
 * Run syscall nr with up to six arguments in the stopped thread.
 * *ret_result gets the syscall's return value (negative: -errno of the
 * syscall in the tenant). Returns 0, or -ESRCH etc. when the session broke
 * (then call mig__inject_end anyway).
 */
MIG_INTERNAL int mig__inject_syscall(struct mig__inject *s, long nr, const uint64_t args[6],
				     int64_t *ret_result);

/* Restore registers, detach, account the stop time. Returns 0 or -errno. */
MIG_INTERNAL int mig__inject_end(struct mig__inject *s);

/*
 * Wait until the seized thread sits in our interrupt stop and save its
 * registers (for the stop set, which seizes threads itself). A
 * signal-delivery-stop met on the way is let through and the thread
 * interrupted again; nowait returns -EINPROGRESS when no stop is there
 * yet. Returns 0, -ESRCH (gone), -EAGAIN (a signal storm), or -errno.
 */
MIG_INTERNAL int mig__inject_acquire_stop(struct mig__inject *s, bool nowait);

/*
 * Options every PTRACE_SEIZE of libmig uses: TRACESYSGOOD, and never
 * EXITKILL (a dying migd must leave its tenants running).
 */
#define MIG__PTRACE_OPTIONS PTRACE_O_TRACESYSGOOD

#endif /* MIG_PTRACE_H */
