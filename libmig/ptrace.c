/*
 * ptrace.c - one ptrace session: seize one thread of an unmodified tenant
 * (x86_64), stop it, run syscalls in it, restore it and leave, in a way
 * that survives the injector.
 *
 * Recipe: PTRACE_SEIZE (TRACESYSGOOD, never EXITKILL) + PTRACE_INTERRUPT
 * one thread and save its registers (R0). Before the first syscall, write
 * a restore frame below the thread's red zone: an rt_sigreturn frame
 * (ucontext) that holds R0, the thread's signal mask and its FPU/xsave
 * state. Then point the thread at an existing `syscall; ret` (found
 * through /proc/PID/mem; no code is patched) with the stack pointer on
 * that frame, whose first word is the address of an existing
 * `mov $15, %rax; syscall` (libc's rt_sigreturn restorer). The thread
 * runs the syscall under PTRACE_SYSCALL; at its exit stop we read rax.
 * The next syscall is set up from that stop; at the end R0 is put back
 * with PTRACE_SETREGS and we detach. No single-step, so no SIGTRAP.
 *
 * What a dying migd leaves, instant by instant (the kernel detaches the
 * tracee, clears our pending traps and wakes it with TIF_SIGPENDING set):
 * - seized, interrupt pending or taken, registers R0: the thread just
 *   goes on (get_signal finds nothing; the restart logic sees R0's
 *   -ERESTART* and orig_rax, as after any stop). The stop set's threads
 *   are always in this state.
 * - frame written, registers still R0: the same; the bytes below the red
 *   zone are free stack by the ABI (signal frames go there too).
 * - stub registers set, in the syscall, at its entry or exit stop: the
 *   thread finishes the syscall, `ret` pops the restorer, rt_sigreturn
 *   loads R0, the mask and the FPU state from the frame. A syscall stop
 *   leaves exit_code SIGTRAP|0x80 behind, which is no signal
 *   (TRACESYSGOOD; without it the kernel would send SIGTRAP).
 * - R0 put back at any stop: as in the first case.
 * rt_sigreturn skips the kernel's restart logic, so the frame holds R0
 * with the restart already applied as the kernel applies it when no
 * handler runs (rip back on the syscall instruction, rax = orig_rax;
 * -ERESTART_RESTARTBLOCK becomes restart_syscall, which after a
 * sigreturn returns -EINTR, as for a caught signal). The mask is
 * PTRACE_GETSIGMASK's, which is the saved mask while a ppoll-like call
 * has a temporary one (Linux 5.0+). Only after a crash, and only if a
 * signal is handled in that instant, is an interrupted pause-like call
 * restarted instead of returning EINTR.
 *
 * A thread stopped in a restartable syscall resumes correctly in the
 * normal path because the saved registers carry its -ERESTART* and
 * orig_rax and every stop we leave it in is followed by the kernel's
 * restart logic (a syscall exit stop included: detaching sets
 * TIF_SIGPENDING).
 */
#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashpoint.h"
#include "engine.h"
#include "procfs.h"
#include "ptrace.h"
#include "trace.h"
#include "util.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* How often a signal storm may push us off the thread before we give up. */
#define MAX_RETRIES 64

#ifdef __x86_64__

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* The kernel's restart codes (include/linux/errno.h), never seen by user space. */
#define ERESTARTSYS	      512
#define ERESTARTNOINTR	      513
#define ERESTARTNOHAND	      514
#define ERESTART_RESTARTBLOCK 516

/*
 * The x86_64 rt_sigreturn frame (arch/x86/include/uapi/asm/sigcontext.h,
 * ucontext.h; arch/x86/kernel/signal_64.c): what rt_sigreturn reads at
 * rsp - 8. Written out here because glibc's ucontext_t is not the
 * kernel's (its sigset_t is 128 bytes).
 */
struct frame_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t di, si, bp, bx, dx, ax, cx, sp, ip, flags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2;
	uint64_t fpstate; /* 64-byte aligned xsave (or fxsave) image */
	uint64_t reserved1[8];
};

struct frame_ucontext {
	uint64_t uc_flags, uc_link;
	uint64_t ss_sp;
	int32_t ss_flags, ss_pad;
	uint64_t ss_size;
	struct frame_sigcontext mc;
	uint64_t uc_sigmask;
};

struct rt_frame {
	uint64_t pretcode; /* popped by the stub's `ret`: the restorer */
	struct frame_ucontext uc;
	uint8_t info[128]; /* siginfo: unused, but inside the kernel's access_ok */
};

_Static_assert(sizeof(struct frame_sigcontext) == 256, "sigcontext layout");
_Static_assert(sizeof(struct frame_ucontext) == 304, "ucontext layout");

#define UC_FP_XSTATE	     0x1
#define UC_SIGCONTEXT_SS     0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FP_XSTATE_MAGIC1     0x46505853U
#define FP_XSTATE_MAGIC2     0x46505845U
#define RED_ZONE	     128
#define FXSAVE_SIZE	     512
#define XSAVE_HDR_SIZE	     64
#define XSTATE_MAX	     (64 * 1024)

/* The software-reserved tail of the fxsave area (struct _fpx_sw_bytes). */
struct fpx_sw_bytes {
	uint32_t magic1, extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size, padding[7];
};

/* The code the session runs in the tenant, found in its executable mappings. */
static const uint8_t syscall_ret[] = { 0x0f, 0x05, 0xc3 };
static const uint8_t restorer_q[] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };
static const uint8_t restorer_l[] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };

static bool bytes_at(int memfd, uint64_t addr, const uint8_t *want, size_t len)
{
	uint8_t b[16];

	return len <= sizeof(b) && pread(memfd, b, len, (off_t)addr) == (ssize_t)len &&
	       memcmp(b, want, len) == 0;
}

static bool restorer_at(int memfd, uint64_t addr)
{
	return bytes_at(memfd, addr, restorer_q, sizeof(restorer_q)) ||
	       bytes_at(memfd, addr, restorer_l, sizeof(restorer_l));
}

/*
 * Find `syscall; ret` (0f 05 c3) and an rt_sigreturn restorer
 * (`mov $15, %rax; syscall`, as glibc's and musl's __restore_rt, or its
 * `mov $15, %eax` form) in the tenant's executable mappings. The bytes
 * need not be an instruction boundary of the code they sit in: we jump
 * straight to them. [vsyscall] is emulated, never used. Returns 0 or
 * -ENOEXEC (not both found), -ESRCH, -ENOMEM.
 */
static int find_code(pid_t pid, pid_t tid, int memfd, uint64_t *ret_sys, uint64_t *ret_rest)
{
	char path[64], line[512];
	static const size_t chunk = 64 * 1024, overlap = 16;
	_cleanup_free_ uint8_t *buf = NULL;
	uint64_t sys = 0, rest = 0;
	FILE *f;

	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	/* Through a live thread: a zombie main thread's maps are empty. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/maps", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((!sys || !rest) && fgets(line, sizeof(line), f)) {
		unsigned long long start, end;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s", &start, &end, perms) != 3)
			continue;
		if (perms[2] != 'x' || strstr(line, "[vsyscall]"))
			continue;
		for (uint64_t a = start; a < end && (!sys || !rest); a += chunk - overlap) {
			ssize_t n = pread(memfd, buf, MIN(chunk, end - a), (off_t)a);

			if (n < (ssize_t)sizeof(syscall_ret))
				break;
			for (ssize_t i = 0; i + 2 < n; i++) {
				size_t left = (size_t)(n - i);

				if (!sys && !memcmp(buf + i, syscall_ret, sizeof(syscall_ret)))
					sys = a + (uint64_t)i;
				if (!rest && ((left >= sizeof(restorer_q) &&
					       !memcmp(buf + i, restorer_q, sizeof(restorer_q))) ||
					      (left >= sizeof(restorer_l) &&
					       !memcmp(buf + i, restorer_l, sizeof(restorer_l)))))
					rest = a + (uint64_t)i;
			}
			if ((size_t)n < MIN(chunk, end - a))
				break;
		}
	}
	fclose(f);
	if (!sys || !rest)
		return -ENOEXEC;
	*ret_sys = sys;
	*ret_rest = rest;
	return 0;
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

static int ptrace_err(void)
{
	return errno == ESRCH ? -ESRCH : -errno;
}

static int tenant_mem(pid_t tid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n = write ? process_vm_writev(tid, &local, 1, &remote, 1, 0)
			  : process_vm_readv(tid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/*
 * Put back the bytes the restore frame covered. Called with the thread's
 * own registers in place, so the frame is no longer needed by anyone.
 */
static int frame_drop(struct mig__inject *s)
{
	int r = 0;

	if (s->frame_old) {
		mig__crash_point("inject:restore");
		r = tenant_mem(s->tid, s->frame_lo, s->frame_old, s->frame_len, true);
		free(s->frame_old);
		s->frame_old = NULL;
	}
	return r;
}

/* Put the thread's own registers back (at any stop); the frame goes too. */
static int regs_restore(struct mig__inject *s)
{
	if (s->injected) {
		if (ptrace(PTRACE_SETREGS, s->tid, NULL, &s->saved) < 0)
			return ptrace_err();
		s->injected = false;
	}
	return frame_drop(s);
}

/*
 * Wait until the thread sits in our interrupt stop and save its registers.
 * A signal-delivery-stop met on the way is let through with the thread's
 * own registers (it is delivered exactly as without us), then we interrupt
 * again.
 */
int mig__inject_acquire_stop(struct mig__inject *s, bool nowait)
{
	for (int i = 0; i < MAX_RETRIES; i++) {
		int st, r;

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
		if (ptrace(PTRACE_CONT, s->tid, NULL, (void *)(uintptr_t)WSTOPSIG(st)) < 0)
			return ptrace_err();
		if (ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0)
			return ptrace_err();
	}
	return -EAGAIN;
}

pid_t mig__inject_thread(struct mig_tenant *t)
{
	return mig__proc_live_thread(t->pid);
}

/*
 * The tenant's threads are looked through for one asleep (256 at most)
 * when the one found last is not asleep any more, but only after 20 times
 * as long as the last look took since it ended: at most 5 % of the job's
 * time, whatever the number of threads (about every session for a tenant
 * of a few threads, every 40 ms for one of hundreds). A look that found
 * none is not kept for long: a thread that was on a CPU then (answering
 * a request) is likely asleep again a moment later.
 */
#define IDLE_SCAN_MAX	256
#define IDLE_SCAN_RATIO 20

pid_t mig__inject_idle_thread(struct mig_tenant *t)
{
	pid_t main, tid;
	uint64_t now, t0;

	/* The main thread asleep: the common case, one look at it. */
	if (mig__proc_thread_idle(t->pid, t->pid))
		return t->pid;
	main = mig__proc_live_thread(t->pid);
	if (main < 0)
		return main;
	/*
	 * The last one, asleep again, or not yet: released at the end of the
	 * last session, it has not had a CPU since to go back into the sleep
	 * the session interrupted (its run time is what it was then).
	 */
	if (t->idle_tid > 0 && t->idle_tid != main &&
	    (mig__proc_thread_idle(t->pid, t->idle_tid) ||
	     (t->idle_ran_ns && mig__proc_thread_runtime(t->pid, t->idle_tid) == t->idle_ran_ns)))
		return t->idle_tid;
	t0 = mig__now_ns();
	if (t->idle_scan_ns && t0 < t->idle_scan_ns)
		return main;
	tid = mig__proc_idle_thread(t->pid, main, IDLE_SCAN_MAX);
	now = mig__now_ns();
	t->idle_scan_ns = now + (now - t0) * IDLE_SCAN_RATIO;
	t->idle_tid = tid > 0 ? tid : 0;
	t->idle_ran_ns = 0; /* the run time kept was another thread's */
	return tid > 0 ? tid : main;
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
	if (mig__tenant_exited(t) || (s->tid = tid > 0 ? tid : mig__proc_live_thread(t->pid)) < 0) {
		mig__tenant_set_error("pid %d has exited", t->pid);
		return -ESRCH;
	}
	if (!p->sysaddr || !bytes_at(p->memfd, p->sysaddr, syscall_ret, sizeof(syscall_ret)) ||
	    !restorer_at(p->memfd, p->restorer)) {
		r = find_code(t->pid, s->tid, p->memfd, &p->sysaddr, &p->restorer);
		if (r < 0) {
			p->sysaddr = 0;
			mig__tenant_set_error(
				"pid %d: %s", t->pid,
				r == -ENOEXEC
					? "no `syscall; ret` and rt_sigreturn restorer found in "
					  "its executable mappings, so syscalls cannot be "
					  "injected safely: use the agent (libmig-agent.so)"
					: strerror(-r));
			return r == -ENOEXEC ? -EOPNOTSUPP : r;
		}
	}
	s->sysaddr = p->sysaddr;
	s->restorer = p->restorer;
	s->child = mig__proc_parent_pid(t->pid) == getpid();

	if (ptrace(PTRACE_SEIZE, s->tid, NULL, (void *)(uintptr_t)MIG__PTRACE_OPTIONS) < 0) {
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
	mig__crash_point("inject:seized");
	if (ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0) {
		r = ptrace_err();
		goto fail;
	}
	mig__crash_point("inject:interrupted");
	r = mig__inject_acquire_stop(s, false);
	if (r < 0)
		goto fail;
	s->t0 = mig__now_ns();
	s->stopped = true;
	mig__crash_point("inject:stopped");
	/* What the thread's seccomp filters allow (seccomp.c): read while it is stopped. */
	mig__seccomp_load(t->pid, s->tid, &s->sc);
	/* Seized after the pid was checked: make sure it is still the same process. */
	if (mig__tenant_exited(t)) {
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

/*
 * R0 as the thread will run it when nobody handles a signal: the kernel's
 * restart logic (arch_do_signal_or_restart) applied, because rt_sigreturn
 * skips it.
 */
static void fold_restart(struct user_regs_struct *r)
{
	if ((long long)r->orig_rax >= 0) {
		switch ((long long)r->rax) {
		case -ERESTARTSYS:
		case -ERESTARTNOINTR:
		case -ERESTARTNOHAND:
			r->rax = r->orig_rax;
			r->rip -= 2;
			break;
		case -ERESTART_RESTARTBLOCK:
			r->rax = SYS_restart_syscall;
			r->rip -= 2;
			break;
		}
	}
	r->orig_rax = (unsigned long long)-1;
}

/*
 * Size of the standard-format xsave image that holds the components in
 * features (CPUID leaf 0xd gives each component's offset and size).
 */
/* Where each xsave component ends (CPUID leaf 0xd; 0: none), asked once. */
static uint32_t xsave_end[64];
static pthread_once_t xsave_once = PTHREAD_ONCE_INIT;

static void xsave_end_read(void)
{
	for (unsigned i = 2; i < 64; i++) {
		unsigned a, b, c, d;

		if (__get_cpuid_count(0xd, i, &a, &b, &c, &d))
			xsave_end[i] = b + a;
	}
}

/*
 * The xsave image's size with these components. CPUID is asked once a
 * process: in a virtual machine each CPUID is an exit to the hypervisor,
 * and it was asked for every component at every injection session (about
 * 5 % of migd's CPU in the thp-idle bench on this host, issue 16).
 */
static uint32_t xsave_size(uint64_t features)
{
	uint32_t size = FXSAVE_SIZE + XSAVE_HDR_SIZE;

	(void)pthread_once(&xsave_once, xsave_end_read);
	for (unsigned i = 2; i < 64; i++)
		if (features & (UINT64_C(1) << i))
			size = MAX(size, xsave_end[i]);
	return size;
}

#define XFEATURE_XTILEDATA (UINT64_C(1) << 18) /* the one dynamic (AMX) component */

/*
 * The thread's FPU state as a sigreturn fpstate into buf (XSTATE_MAX
 * bytes): the xsave image with its software-reserved bytes and trailing
 * magic set as the kernel checks them, or the fxsave image where there
 * is no xsave. The kernel looks for the trailing magic at
 * fx_sw.xstate_size (up to 6.16) or at the task's own xsave size (later):
 * that is the size of every enabled user component but AMX tile data,
 * unless the task has been given AMX; we cannot see which from outside,
 * so the magic goes at both places. Returns the bytes used or -errno.
 */
static int fpstate_get(pid_t tid, uint8_t *buf)
{
	struct iovec iov = { .iov_base = buf, .iov_len = XSTATE_MAX - 64 }; /* a multiple of 8 */
	struct fpx_sw_bytes sw = { 0 };
	uint32_t lo, hi, dflt, max, size, magic2 = FP_XSTATE_MAGIC2;
	uint64_t bv, xcr0;

	memset(buf, 0, XSTATE_MAX);
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0 ||
	    iov.iov_len < FXSAVE_SIZE + XSAVE_HDR_SIZE) {
		if (errno == ESRCH)
			return -ESRCH;
		if (ptrace(PTRACE_GETFPREGS, tid, NULL, buf) < 0)
			return ptrace_err();
		memset(buf + 464, 0, sizeof(sw)); /* no magic1: an fxsave-only frame */
		return FXSAVE_SIZE;
	}
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	xcr0 = (uint64_t)hi << 32 | lo;
	memcpy(&bv, buf + FXSAVE_SIZE, sizeof(bv));
	dflt = xsave_size(xcr0 & ~XFEATURE_XTILEDATA);
	max = xsave_size(xcr0);
	if (max + sizeof(magic2) > XSTATE_MAX)
		return -E2BIG;
	size = bv & XFEATURE_XTILEDATA ? max : dflt;
	sw.magic1 = FP_XSTATE_MAGIC1;
	sw.extended_size = size + sizeof(magic2);
	sw.xfeatures = bv | 3; /* x87 and SSE always */
	sw.xstate_size = size;
	memcpy(buf + 464, &sw, sizeof(sw));
	memcpy(buf + dflt, &magic2, sizeof(magic2));
	memcpy(buf + max, &magic2, sizeof(magic2));
	return (int)(max + sizeof(magic2));
}

/*
 * Would the thread's seccomp filters let syscall nr(args) run from our
 * `syscall; ret`? Not: *ret_result gets their answer, it is not run, and
 * s->denied says why. A filter may kill for a syscall the tenant never
 * made (seccomp.c).
 */
static bool seccomp_denies(struct mig__inject *s, long nr, const uint64_t args[6],
			   int64_t *ret_result)
{
	char why[160];
	int r = mig__seccomp_check(&s->sc, nr, args, s->sysaddr + 2, why, sizeof(why));

	if (r == 0)
		return false;
	snprintf(s->denied, sizeof(s->denied), "thread %d: %s", s->tid, why);
	MIG_TRACE("SECCOMP tid=%d nr=%ld not run: %s", s->tid, nr, why);
	/* The reason, unless the caller gives a better one for its failed syscall. */
	mig__tenant_set_error("pid %d: %s: migd does not inject syscalls there", s->t->pid,
			      s->denied);
	*ret_result = r;
	return true;
}

/*
 * Write the restore frame for the thread's current R0 below its red zone
 * and remember the bytes it covers. The thread's registers stay R0.
 */
static int frame_write(struct mig__inject *s)
{
	_cleanup_free_ uint8_t *img = NULL, *old = NULL;
	struct user_regs_struct f = s->saved;
	struct rt_frame fr = { 0 };
	struct frame_sigcontext *mc = &fr.uc.mc;
	uint64_t top, fp, frame, mask = 0;
	int fplen, r;

	if (s->saved.rsp < 64 * 1024)
		return -EFAULT;
	/*
	 * Should migd die inside the session, the thread goes back to its
	 * own registers through rt_sigreturn (the restorer): a filter that
	 * does not allow it would kill the thread then. No syscall is run.
	 */
	{
		int64_t x;

		if (seccomp_denies(s, SYS_rt_sigreturn, NULL, &x))
			return -EPERM;
	}
	img = malloc(XSTATE_MAX);
	if (!img)
		return -ENOMEM;
	fplen = fpstate_get(s->tid, img);
	if (fplen < 0)
		return fplen;
	if (ptrace(PTRACE_GETSIGMASK, s->tid, (void *)sizeof(mask), &mask) < 0)
		return ptrace_err();

	top = s->saved.rsp - RED_ZONE;
	fp = ALIGN_DOWN(top - (uint64_t)fplen, 64);
	/* As the kernel lays out a frame: rsp + 8 is 16-byte aligned after the `ret`. */
	frame = ALIGN_DOWN(fp - sizeof(fr), 16) - 8;

	fold_restart(&f);
	fr.pretcode = s->restorer;
	fr.uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	/* ss_size 0 is refused by the kernel's sigaltstack: the thread's own stays. */
	mc->r8 = f.r8, mc->r9 = f.r9, mc->r10 = f.r10, mc->r11 = f.r11;
	mc->r12 = f.r12, mc->r13 = f.r13, mc->r14 = f.r14, mc->r15 = f.r15;
	mc->di = f.rdi, mc->si = f.rsi, mc->bp = f.rbp, mc->bx = f.rbx;
	mc->dx = f.rdx, mc->ax = f.rax, mc->cx = f.rcx, mc->sp = f.rsp;
	mc->ip = f.rip, mc->flags = f.eflags;
	mc->cs = (uint16_t)f.cs, mc->ss = (uint16_t)f.ss;
	mc->fpstate = fp;
	fr.uc.uc_sigmask = mask;

	s->frame_len = top - frame;
	old = malloc(s->frame_len);
	if (!old)
		return -ENOMEM;
	r = tenant_mem(s->tid, frame, old, s->frame_len, false);
	if (r < 0)
		return r == -EFAULT ? -ENOSPC : r;
	r = tenant_mem(s->tid, fp, img, (size_t)fplen, true);
	if (r == 0)
		r = tenant_mem(s->tid, frame, &fr, sizeof(fr), true);
	if (r < 0) {
		(void)tenant_mem(s->tid, frame, old, s->frame_len, true);
		return r == -EFAULT ? -ENOSPC : r;
	}
	s->frame_lo = frame;
	s->stub_sp = frame;
	s->frame_old = TAKE_PTR(old);
	mig__crash_point("inject:frame");
	return 0;
}

static bool is_restart(int64_t rv)
{
	return rv == -ERESTARTSYS || rv == -ERESTARTNOINTR || rv == -ERESTARTNOHAND ||
	       rv == -ERESTART_RESTARTBLOCK;
}

/*
 * A signal stopped the thread before our syscall completed. Deliver it
 * with the thread's own registers (exactly as without us), then stop the
 * thread again: R0 may be new after its handler ran.
 */
static int deliver_signal(struct mig__inject *s, int sig)
{
	int r = regs_restore(s);

	if (r < 0)
		return r;
	mig__crash_point("inject:signal");
	if (ptrace(PTRACE_CONT, s->tid, NULL, (void *)(uintptr_t)sig) < 0 ||
	    ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) < 0)
		return ptrace_err();
	return mig__inject_acquire_stop(s, false);
}

/*
 * Follow the thread through one injected syscall. Returns 1 with
 * *ret_result when it completed (the thread sits in its exit stop), 0
 * with *ret_sig when a signal stopped the thread first, or -errno.
 */
static int run_stub(struct mig__inject *s, int64_t *ret_result, int *ret_sig)
{
	for (int i = 0; i < 4 * MAX_RETRIES; i++) {
		struct __ptrace_syscall_info info;
		int st, r;

		if (ptrace(PTRACE_SYSCALL, s->tid, NULL, NULL) < 0)
			return ptrace_err();
		r = wait_stop_how(s, &st, false);
		if (r < 0)
			return r;
		if (!WIFSTOPPED(st))
			return -ESRCH;
		if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
			if ((st >> 16) == PTRACE_EVENT_STOP)
				continue; /* a group stop: go on */
			*ret_sig = WSTOPSIG(st);
			return 0;
		}
		if (ptrace(PTRACE_GET_SYSCALL_INFO, s->tid, (void *)sizeof(info), &info) < 0)
			return ptrace_err();
		if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
			mig__crash_point("inject:entry");
			continue;
		}
		if (info.op != PTRACE_SYSCALL_INFO_EXIT)
			continue;
		mig__crash_point("inject:exit");
		/* Interrupted: the kernel restarts it at `syscall`, or a signal stop follows. */
		if (is_restart(info.exit.rval))
			continue;
		*ret_result = info.exit.rval;
		return 1;
	}
	return -EAGAIN;
}

static int inject_syscall(struct mig__inject *s, long nr, const uint64_t args[6],
			  int64_t *ret_result)
{
	if (seccomp_denies(s, nr, args, ret_result))
		return 0;
	for (int i = 0; i < MAX_RETRIES; i++) {
		struct user_regs_struct regs = s->saved;
		int sig = 0, r;

		if (!s->frame_old) {
			r = frame_write(s);
			if (r == -ENOSPC)
				mig__tenant_set_error(
					"thread %d of pid %d: no room below its stack "
					"pointer for the restore frame",
					s->tid, s->t->pid);
			if (r < 0)
				return r;
		}
		regs.rip = s->sysaddr;
		regs.rsp = s->stub_sp;
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
		s->injected = true;
		mig__crash_point("inject:regs");
		r = run_stub(s, ret_result, &sig);
		if (s->before_signal)
			s->before_signal(s->hook_ud);
		if (r != 0)
			return r < 0 ? r : 0;
		r = deliver_signal(s, sig);
		if (r < 0)
			return r;
		if (s->once)
			return -EINTR;
	}
	return -EAGAIN;
}

int mig__inject_syscall(struct mig__inject *s, long nr, const uint64_t args[6], int64_t *ret_result)
{
	int r = inject_syscall(s, nr, args, ret_result);

	if (r == -ESRCH)
		mig__tenant_set_error("pid %d exited during an injected syscall", s->tid);
	/* A session the filters refused (frame_write): seccomp_denies said why. */
	else if (r < 0 && r != -ENOSPC && !(r == -EPERM && s->denied[0]))
		mig__tenant_set_error("injecting syscall %ld into pid %d: %s", nr, s->tid,
				      strerror(-r));
	return r;
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
			s->injected = true; /* the registers to set are new */
			return;
		}
}

int mig__inject_end(struct mig__inject *s)
{
	int r = 0;

	if (s->stopped) {
		uint64_t dt;

		undo_our_eintr(s);
		r = regs_restore(s);
		mig__crash_point("inject:restored");
		s->stopped = false;
		dt = mig__now_ns() - s->t0;
		s->t->stop_ns += dt;
		s->t->stop_max_ns = MAX(s->t->stop_max_ns, dt);
	}
	free(s->frame_old);
	s->frame_old = NULL;
	mig__seccomp_free(&s->sc);
	if (ptrace(PTRACE_DETACH, s->tid, NULL, NULL) < 0 && r == 0)
		r = ptrace_err();
	if (s->tid == s->t->idle_tid)
		s->t->idle_ran_ns = mig__proc_thread_runtime(s->t->pid, s->tid);
	return r;
}

#else /* !__x86_64__ */

pid_t mig__inject_thread(struct mig_tenant *t)
{
	return -EOPNOTSUPP;
}

pid_t mig__inject_idle_thread(struct mig_tenant *t)
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

int mig__inject_acquire_stop(struct mig__inject *s, bool nowait)
{
	return -EOPNOTSUPP;
}

#endif /* __x86_64__ */
