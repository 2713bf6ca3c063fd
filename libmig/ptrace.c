/*
 * ptrace.c - one ptrace session: seize one thread of an unmodified tenant
 * (x86_64), stop it, run syscalls in it, restore it and leave.
 *
 * Recipe (DESIGN.md section 1): PTRACE_SEIZE + PTRACE_INTERRUPT one thread,
 * save its registers, point rip at an existing `syscall` instruction found
 * through /proc/PID/mem (no code is patched), set the syscall registers with
 * orig_rax = -1 so the kernel's restart logic leaves our call alone,
 * PTRACE_SINGLESTEP over it, read rax, restore, detach. A thread stopped in
 * a restartable syscall resumes correctly because the saved registers still
 * carry its -ERESTART* and orig_rax.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "procfs.h"
#include "ptrace.h"
#include "util.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* How often a signal storm may push us off the thread before we give up. */
#define MAX_RETRIES 64

#ifdef __x86_64__

/*
 * Find a `syscall` instruction (0f 05) in an executable mapping of the
 * tenant. The bytes need not be an instruction boundary of the code they
 * sit in: we jump straight to them. [vsyscall] is emulated, never used.
 */
static int find_syscall_insn(pid_t pid, pid_t tid, int memfd, uint64_t *ret_addr)
{
	char path[64], line[512];
	static const size_t chunk = 64 * 1024;
	_cleanup_free_ uint8_t *buf = NULL;
	FILE *f;
	int r = -ENOEXEC;

	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	/* Through a live thread: a zombie main thread's maps are empty. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/maps", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (r == -ENOEXEC && fgets(line, sizeof(line), f)) {
		unsigned long long start, end;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s", &start, &end, perms) != 3)
			continue;
		if (perms[2] != 'x' || strstr(line, "[vsyscall]"))
			continue;
		for (uint64_t a = start; a < end && r == -ENOEXEC; a += chunk - 1) {
			size_t len = MIN(chunk, end - a);
			ssize_t n = pread(memfd, buf, len, (off_t)a);

			if (n < 2)
				break;
			for (ssize_t i = 0; i + 1 < n; i++)
				if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
					*ret_addr = a + (uint64_t)i;
					r = 0;
					break;
				}
		}
	}
	fclose(f);
	return r;
}

static bool insn_still_there(int memfd, uint64_t addr)
{
	uint8_t b[2];

	return pread(memfd, b, 2, (off_t)addr) == 2 && b[0] == 0x0f && b[1] == 0x05;
}

/*
 * Wait for the next ptrace stop of the thread. An exit is peeked at with
 * WNOWAIT first: when the tenant is our own child its status belongs to
 * our caller, otherwise we reap the ptrace side so the real parent gets it.
 */
static int wait_stop_how(struct mig__inject *s, int *ret_status, bool nowait)
{
	for (;;) {
		siginfo_t si = { 0 };
		int st = 0;

		if (waitid(P_PID, (id_t)s->tid, &si,
			   WSTOPPED | WEXITED | __WALL | WNOWAIT | (nowait ? WNOHANG : 0)) < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECHILD ? -ESRCH : -errno;
		}
		if (si.si_pid == 0)
			return -EINPROGRESS; /* nowait: no stop yet */
		if (si.si_code == CLD_TRAPPED || si.si_code == CLD_STOPPED) {
			if (waitpid(s->tid, &st, __WALL | WNOHANG) < 0)
				return errno == ECHILD ? -ESRCH : -errno;
			*ret_status = st;
			return 0;
		}
		if (!s->child)
			(void)waitpid(s->tid, &st, __WALL | WNOHANG);
		return -ESRCH;
	}
}

static int wait_stop(struct mig__inject *s, int *ret_status)
{
	return wait_stop_how(s, ret_status, false);
}

static int ptrace_err(void)
{
	return errno == ESRCH ? -ESRCH : -errno;
}

/*
 * Wait until the thread sits in our interrupt stop and save its registers.
 * A signal-delivery-stop met on the way is let through with the thread's
 * own registers (it is delivered exactly as without us), then we interrupt
 * again. drop_trap drops one single-step SIGTRAP that is ours.
 */
int mig__inject_acquire_stop(struct mig__inject *s, bool drop_trap, bool nowait)
{
	for (int i = 0; i < MAX_RETRIES; i++) {
		int st, sig, r;

		r = wait_stop_how(s, &st, nowait);
		if (r < 0)
			return r;
		if (!WIFSTOPPED(st))
			return -ESRCH;
		if ((st >> 16) == PTRACE_EVENT_STOP) {
			if (ptrace(PTRACE_GETREGS, s->tid, NULL, &s->saved) < 0)
				return ptrace_err();
			return 0;
		}
		sig = WSTOPSIG(st);
		if (sig == SIGTRAP && drop_trap) {
			siginfo_t si = { 0 };

			if (ptrace(PTRACE_GETSIGINFO, s->tid, NULL, &si) == 0 &&
			    si.si_code == TRAP_BRKPT) {
				sig = 0;
				drop_trap = false;
			}
		}
		if (ptrace(PTRACE_CONT, s->tid, NULL, (void *)(uintptr_t)sig) < 0)
			return ptrace_err();
		if (ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0)
			return ptrace_err();
	}
	return -EAGAIN;
}

static int acquire_stop(struct mig__inject *s, bool drop_trap)
{
	return mig__inject_acquire_stop(s, drop_trap, false);
}

pid_t mig__inject_thread(struct mig_tenant *t)
{
	return mig__proc_live_thread(t->pid);
}

int mig__inject_begin(struct mig_tenant *t, struct mig__inject *s)
{
	return mig__inject_begin_thread(t, 0, s);
}

int mig__inject_begin_thread(struct mig_tenant *t, pid_t tid, struct mig__inject *s)
{
	struct mig__ptrace_priv *p = t->priv;
	int r, tp;

	memset(s, 0, sizeof(*s));
	s->t = t;
	/* The pidfd pins the process: while it is alive its pid is not reused. */
	if (syscall(SYS_pidfd_send_signal, t->pidfd, 0, NULL, 0) < 0 ||
	    (s->tid = tid > 0 ? tid : mig__proc_live_thread(t->pid)) < 0) {
		mig__tenant_set_error("pid %d has exited", t->pid);
		return -ESRCH;
	}
	if (!p->sysaddr || !insn_still_there(p->memfd, p->sysaddr)) {
		r = find_syscall_insn(t->pid, s->tid, p->memfd, &p->sysaddr);
		if (r < 0) {
			mig__tenant_set_error("no syscall instruction found in pid %d: %s", t->pid,
					      strerror(-r));
			return r == -ENOEXEC ? -EOPNOTSUPP : r;
		}
	}
	s->sysaddr = p->sysaddr;
	s->child = mig__proc_parent_pid(t->pid) == getpid();

	if (ptrace(PTRACE_SEIZE, s->tid, NULL, NULL) < 0) {
		r = -errno;
		if (r == -EPERM && (tp = mig__proc_tracer_pid(s->tid)) > 0) {
			mig__tenant_set_error("pid %d is already traced by pid %d (a debugger or "
					      "strace?); detach it first",
					      t->pid, tp);
			return -EBUSY;
		}
		mig__tenant_set_error("cannot ptrace pid %d: %s", t->pid, strerror(-r));
		return r;
	}
	if (ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0) {
		r = ptrace_err();
		goto fail;
	}
	r = acquire_stop(s, false);
	if (r < 0)
		goto fail;
	s->t0 = mig__now_ns();
	s->stopped = true;
	/* Seized after the pid was checked: make sure it is still the same process. */
	if (syscall(SYS_pidfd_send_signal, t->pidfd, 0, NULL, 0) < 0) {
		r = -ESRCH;
		goto fail;
	}
	if (s->saved.cs != 0x33) {
		mig__tenant_set_error("pid %d runs in 32-bit mode: not supported", t->pid);
		r = -EOPNOTSUPP;
		goto fail;
	}
	return 0;
fail:
	if (r == -ESRCH)
		mig__tenant_set_error("pid %d exited while being attached", t->pid);
	(void)mig__inject_end(s);
	return r;
}

static int inject_syscall(struct mig__inject *s, long nr, const uint64_t args[6],
			  int64_t *ret_result);

int mig__inject_syscall(struct mig__inject *s, long nr, const uint64_t args[6], int64_t *ret_result)
{
	int r = inject_syscall(s, nr, args, ret_result);

	if (r == -ESRCH)
		mig__tenant_set_error("pid %d exited during an injected syscall", s->tid);
	else if (r < 0)
		mig__tenant_set_error("injecting syscall %ld into pid %d: %s", nr, s->tid,
				      strerror(-r));
	return r;
}

static int inject_syscall(struct mig__inject *s, long nr, const uint64_t args[6],
			  int64_t *ret_result)
{
	for (int i = 0; i < MAX_RETRIES; i++) {
		struct user_regs_struct regs = s->saved;
		int st, r;

		regs.rip = s->sysaddr;
		regs.rax = (unsigned long long)nr;
		regs.orig_rax = (unsigned long long)-1;
		regs.rdi = args[0];
		regs.rsi = args[1];
		regs.rdx = args[2];
		regs.r10 = args[3];
		regs.r8 = args[4];
		regs.r9 = args[5];
		regs.eflags &= ~(0x100ULL | 0x400ULL); /* TF, DF */
		if (ptrace(PTRACE_SETREGS, s->tid, NULL, &regs) < 0)
			return ptrace_err();
		if (ptrace(PTRACE_SINGLESTEP, s->tid, NULL, NULL) < 0)
			return ptrace_err();
		r = wait_stop(s, &st);
		if (s->before_signal)
			s->before_signal(s->hook_ud);
		if (r < 0)
			return r;
		if (ptrace(PTRACE_GETREGS, s->tid, NULL, &regs) < 0)
			return ptrace_err();
		if (regs.rip == s->sysaddr + 2) {
			*ret_result = (int64_t)regs.rax;
			if (WSTOPSIG(st) == SIGTRAP || (st >> 16) == PTRACE_EVENT_STOP)
				return 0;
			/*
			 * Another signal stopped the thread after our syscall ran:
			 * deliver it with the thread's own registers, drop our trap.
			 */
			if (ptrace(PTRACE_SETREGS, s->tid, NULL, &s->saved) < 0 ||
			    ptrace(PTRACE_CONT, s->tid, NULL, (void *)(uintptr_t)WSTOPSIG(st)) <
				    0 ||
			    ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0)
				return ptrace_err();
			return acquire_stop(s, true);
		}
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue;
		/*
		 * A signal arrived before our syscall ran. Deliver it as if we
		 * were not there, stop the thread again and retry.
		 */
		if (ptrace(PTRACE_SETREGS, s->tid, NULL, &s->saved) < 0 ||
		    ptrace(PTRACE_CONT, s->tid, NULL, (void *)(uintptr_t)WSTOPSIG(st)) < 0 ||
		    ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0)
			return ptrace_err();
		r = acquire_stop(s, false);
		if (r < 0)
			return r;
		if (s->once)
			return -EINTR;
	}
	return -EAGAIN;
}

/*
 * Our PTRACE_INTERRUPT sets TIF_SIGPENDING, and a few syscalls answer any
 * pending-signal wakeup with a plain -EINTR instead of an -ERESTART* code
 * (epoll_wait, semop, sigtimedwait: see signal(7) on stop signals). When no
 * real signal is waiting, that -EINTR is ours: rewind the thread to the
 * syscall so it simply waits again (with its full timeout), as the kernel
 * does for -ERESTARTNOHAND. With a real signal pending the -EINTR stands.
 */
static void undo_our_eintr(struct mig__inject *s)
{
	static const long nrs[] = { SYS_epoll_wait, SYS_epoll_pwait, 441 /* epoll_pwait2 */,
				    SYS_semop,	    SYS_semtimedop,  SYS_rt_sigtimedwait };
	long nr = (long)s->saved.orig_rax;

	if ((long long)s->saved.rax != -EINTR || nr < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(nrs); i++)
		if (nr == nrs[i] && !mig__proc_signal_pending(s->tid)) {
			s->saved.rax = s->saved.orig_rax;
			s->saved.rip -= 2;
			return;
		}
}

int mig__inject_end(struct mig__inject *s)
{
	int r = 0;

	if (s->stopped) {
		uint64_t dt;

		undo_our_eintr(s);
		if (ptrace(PTRACE_SETREGS, s->tid, NULL, &s->saved) < 0)
			r = ptrace_err();
		s->stopped = false;
		dt = mig__now_ns() - s->t0;
		s->t->stop_ns += dt;
		s->t->stop_max_ns = MAX(s->t->stop_max_ns, dt);
	}
	if (ptrace(PTRACE_DETACH, s->tid, NULL, NULL) < 0 && r == 0)
		r = ptrace_err();
	return r;
}

#else /* !__x86_64__ */

pid_t mig__inject_thread(struct mig_tenant *t)
{
	return -EOPNOTSUPP;
}

int mig__inject_begin_thread(struct mig_tenant *t, pid_t tid, struct mig__inject *s)
{
	return mig__inject_begin(t, s);
}

int mig__inject_begin(struct mig_tenant *t, struct mig__inject *s)
{
	mig__tenant_set_error("ptrace injection is implemented for x86_64 only; use the agent "
			      "(libmig-agent.so) on this architecture");
	return -EOPNOTSUPP;
}

int mig__inject_syscall(struct mig__inject *s, long nr, const uint64_t args[6], int64_t *ret_result)
{
	return -EOPNOTSUPP;
}

int mig__inject_end(struct mig__inject *s)
{
	return -EOPNOTSUPP;
}

int mig__inject_acquire_stop(struct mig__inject *s, bool drop_trap, bool nowait)
{
	return -EOPNOTSUPP;
}

#endif /* __x86_64__ */
