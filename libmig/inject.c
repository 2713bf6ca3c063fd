/*
 * inject.c - the ptrace backend: syscall injection into an unmodified
 * tenant (x86_64), and the in-tenant operations built on it (create the
 * uffd, zap, map/unmap, UFFDIO_MOVE, close).
 *
 * Recipe (DESIGN.md section 1): PTRACE_SEIZE + PTRACE_INTERRUPT one thread,
 * save its registers, point rip at an existing `syscall` instruction found
 * through /proc/PID/mem (no code is patched), set the syscall registers with
 * orig_rax = -1 so the kernel's restart logic leaves our call alone,
 * PTRACE_SINGLESTEP over it, read rax, restore, detach. A thread stopped in
 * a restartable syscall resumes correctly because the saved registers still
 * carry its -ERESTART* and orig_rax. Arguments that need memory go through
 * a scratch page mapped and unmapped inside the same session.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "inject.h"
#include "util.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* How often a signal storm may push us off the thread before we give up. */
#define MAX_RETRIES 64

struct ptrace_priv {
	int memfd;	  /* /proc/PID/mem, read-only: finding `syscall` */
	uint64_t sysaddr; /* cached address of 0f 05 */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifdef __x86_64__

/* TracerPid of pid from /proc, 0 when untraced, -errno. */
static int tracer_pid(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %d", &r) == 1)
			break;
	fclose(f);
	return r;
}

/* Parent pid of pid from /proc/PID/stat, or -errno. */
static int parent_pid(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	safe_close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -EIO;
	return ppid;
}

/* The state letter of thread tid of pid (R, S, D, T, t, Z, X...), or 0. */
static char thread_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	char st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	safe_close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c", &st) != 1)
		return 0;
	return st;
}

static bool thread_live(pid_t pid, pid_t tid)
{
	char st = thread_state(pid, tid);

	return st && st != 'Z' && st != 'X';
}

/*
 * The thread to seize: the main thread, or, when it has exited
 * (pthread_exit in main while other threads run: it stays a zombie that
 * cannot be traced and has no mm or files), the first live thread from
 * /proc/PID/task. Returns a tid or -ESRCH.
 */
static pid_t live_thread(pid_t pid)
{
	char path[64];
	struct dirent *d;
	pid_t tid = -ESRCH;
	DIR *dir;

	if (thread_live(pid, pid))
		return pid;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while (tid < 0 && (d = readdir(dir)))
		if (d->d_name[0] != '.' && thread_live(pid, atoi(d->d_name)))
			tid = atoi(d->d_name);
	closedir(dir);
	return tid;
}

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
static int acquire_stop_how(struct mig__inject *s, bool drop_trap, bool nowait)
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
	return acquire_stop_how(s, drop_trap, false);
}

pid_t mig__inject_thread(struct mig_tenant *t)
{
	return live_thread(t->pid);
}

int mig__inject_begin(struct mig_tenant *t, struct mig__inject *s)
{
	return mig__inject_begin_thread(t, 0, s);
}

int mig__inject_begin_thread(struct mig_tenant *t, pid_t tid, struct mig__inject *s)
{
	struct ptrace_priv *p = t->priv;
	int r, tp;

	memset(s, 0, sizeof(*s));
	s->t = t;
	/* The pidfd pins the process: while it is alive its pid is not reused. */
	if (syscall(SYS_pidfd_send_signal, t->pidfd, 0, NULL, 0) < 0 ||
	    (s->tid = tid > 0 ? tid : live_thread(t->pid)) < 0) {
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
	s->child = parent_pid(t->pid) == getpid();

	if (ptrace(PTRACE_SEIZE, s->tid, NULL, NULL) < 0) {
		r = -errno;
		if (r == -EPERM && (tp = tracer_pid(s->tid)) > 0) {
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
	s->t0 = now_ns();
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

/* True when a signal the thread does not block is pending for it or its process. */
static bool signal_pending(pid_t tid)
{
	char path[64], line[256];
	unsigned long long pnd = 0, shd = 0, blk = 0, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", tid, tid);
	f = fopen(path, "re");
	if (!f)
		return true;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "SigPnd: %llx", &v) == 1)
			pnd = v;
		else if (sscanf(line, "ShdPnd: %llx", &v) == 1)
			shd = v;
		else if (sscanf(line, "SigBlk: %llx", &v) == 1)
			blk = v;
	}
	fclose(f);
	return ((pnd | shd) & ~blk) != 0;
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
		if (nr == nrs[i] && !signal_pending(s->tid)) {
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
		dt = now_ns() - s->t0;
		s->t->stop_ns += dt;
		s->t->stop_max_ns = MAX(s->t->stop_max_ns, dt);
	}
	if (ptrace(PTRACE_DETACH, s->tid, NULL, NULL) < 0 && r == 0)
		r = ptrace_err();
	return r;
}

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
		    !thread_live(t->pid, tid))
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
		if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
			r = -errno;
			if (r == -ESRCH || !thread_live(t->pid, tid)) {
				r = 0; /* exited meanwhile */
				continue;
			}
			if (r == -EPERM && (tp = tracer_pid(tid)) > 0) {
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
	bool child = parent_pid(t->pid) == getpid(), released = !release;
	uint64_t t0 = now_ns();

	memset(set, 0, sizeof(*set));
	for (;;) {
		bool waiting = false;
		size_t added;
		int r = seize_new(t, keep, nkeep, child, set, &added);

		if (r < 0)
			return r;
		for (size_t k = 0; k < set->n; k++) {
			struct mig__inject *s = &set->s[k];

			if (s->stopped || s->tid <= 0)
				continue;
			r = acquire_stop_how(s, false, true);
			if (r == 0) {
				s->stopped = true;
				s->t0 = now_ns();
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
			if (!released && now_ns() - t0 > STOP_RELEASE_NS) {
				release(ud);
				released = true;
			}
			usleep(20);
		}
	}
	/* Stopped after the pid was checked: still the same process? */
	if (syscall(SYS_pidfd_send_signal, t->pidfd, 0, NULL, 0) < 0)
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
			q = acquire_stop(s, false);
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

#endif /* __x86_64__ */

int mig__zap_stop(struct mig_tenant *t, const pid_t *keep, size_t nkeep,
		  const struct mig__zap_ctl *ctl, const struct mig__zap_step *st,
		  struct mig__stopset *others)
{
	int r = others->n ? 0 : mig__stop_threads(t, keep, nkeep, ctl->release, ctl->ud, others);

	if (r < 0) {
		/* Let the ones seized go now: they may wait for held faults. */
		if (ctl->release)
			ctl->release(ctl->ud);
		(void)mig__resume_threads(others);
	}
	ctl->done(ctl->ud, st, r, 0);
	return r;
}

#ifndef __x86_64__

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

#endif /* __x86_64__ */

/* One syscall; result < 0 is the syscall's -errno. */
static int sys(struct mig__inject *s, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
	       uint64_t a4, uint64_t a5, int64_t *ret)
{
	const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };

	return mig__inject_syscall(s, nr, args, ret);
}

/* Map one scratch page in the tenant for syscall arguments. */
static int scratch_map(struct mig__inject *s, uint64_t *ret_addr)
{
	int64_t a;
	int r = sys(s, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, (uint64_t)-1, 0, &a);

	if (r < 0)
		return r;
	if (a < 0 && a > -4096)
		return (int)a;
	*ret_addr = (uint64_t)a;
	return 0;
}

static int scratch_unmap(struct mig__inject *s, uint64_t addr)
{
	int64_t x;

	return sys(s, SYS_munmap, addr, 4096, 0, 0, 0, 0, &x);
}

static int tenant_io(pid_t pid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0)
			  : process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/*
 * The fd number the tenant's uffd moves to: high, so it stays out of the
 * way of the tenant's own numbering, but below the soft RLIMIT_NOFILE and
 * not so high that the tenant's fd table grows large.
 */
static int high_fd_base(pid_t pid)
{
	struct rlimit rl;

	if (prlimit(pid, RLIMIT_NOFILE, NULL, &rl) < 0)
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1024)
		rl.rlim_cur = 1024;
	return rl.rlim_cur > 64 ? (int)rl.rlim_cur - 32 : 0;
}

/* Create the uffd in the tenant; returns the tenant's fd number or -errno. */
static int create_uffd(struct mig__inject *s, int high)
{
	static const char dev[] = "/dev/userfaultfd";
	int64_t fd, dfd, h, x;
	uint64_t page = 0;
	int r;

	r = sys(s, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0, &fd);
	if (r < 0)
		return r;
	if (fd < 0) {
		int e1 = (int)fd;

		r = scratch_map(s, &page);
		if (r < 0)
			return r;
		r = tenant_io(s->tid, page, (void *)dev, sizeof(dev), true);
		if (r == 0)
			r = sys(s, SYS_openat, (uint64_t)AT_FDCWD, page, O_RDWR | O_CLOEXEC, 0, 0,
				0, &dfd);
		if (r == 0 && dfd >= 0) {
			r = sys(s, SYS_ioctl, (uint64_t)dfd, USERFAULTFD_IOC_NEW,
				O_CLOEXEC | O_NONBLOCK, 0, 0, 0, &fd);
			if (sys(s, SYS_close, (uint64_t)dfd, 0, 0, 0, 0, 0, &x) < 0 && r == 0)
				r = -ESRCH;
		} else if (r == 0) {
			fd = dfd;
		}
		if (scratch_unmap(s, page) < 0 && r == 0)
			r = -ESRCH;
		if (r < 0)
			return r;
		if (fd < 0) {
			mig__tenant_set_error(
				"pid %d cannot create a full-mode userfaultfd: userfaultfd(2): %s; "
				"/dev/userfaultfd: %s. UFFD_USER_MODE_ONLY is never used "
				"(kernel-mode "
				"faults would fail with EFAULT in the tenant)",
				s->tid, strerror((int)-e1), strerror((int)-fd));
			return -EPERM;
		}
	}
	if (high > fd) {
		r = sys(s, SYS_fcntl, (uint64_t)fd, F_DUPFD_CLOEXEC, (uint64_t)high, 0, 0, 0, &h);
		if (r < 0)
			return r;
		if (h >= 0) {
			r = sys(s, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &x);
			if (r < 0)
				return r;
			fd = h;
		}
	}
	return (int)fd;
}

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

/*
 * Copy the tenant's fd into migd. pidfd_getfd reads the fd table of the
 * pidfd's task, the main thread, which has none once it has exited
 * (-EBADF; -ESRCH since Linux 6.10); then a thread pidfd (PIDFD_THREAD, Linux 6.9) of the live
 * thread tid is used. Older kernels have no way to name that thread.
 */
static int getfd(struct mig_tenant *t, pid_t tid, int fd)
{
	int r, tfd, pfd;

	r = (int)syscall(SYS_pidfd_getfd, t->pidfd, fd, 0);
	if (r >= 0)
		return r;
	r = -errno;
	if ((r == -EBADF || r == -ESRCH) && tid != t->pid) {
		pfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
		if (pfd < 0) {
			mig__tenant_set_error(
				"the main thread of pid %d has exited, and this kernel cannot take "
				"an fd from another thread (pidfd_open PIDFD_THREAD: %s; needs "
				"Linux 6.9): use the agent for this tenant",
				t->pid, strerror(errno));
			return -EOPNOTSUPP;
		}
		tfd = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
		r = tfd < 0 ? -errno : tfd;
		safe_close(pfd);
		if (r >= 0)
			return r;
	}
	mig__tenant_set_error("pidfd_getfd(pid %d, fd %d): %s", t->pid, fd, strerror(-r));
	return r;
}

int mig__ptrace_attach(struct mig_tenant *t)
{
	struct ptrace_priv *p;
	struct mig__inject s;
	char path[64];
	int r, fd, high;
	pid_t tid = live_thread(t->pid);

	if (tid < 0) {
		mig__tenant_set_error("pid %d has no live thread", t->pid);
		return -ESRCH;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	/* A thread's mem file keeps the mm even after that thread exits. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/mem", t->pid, tid);
	p->memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->memfd < 0) {
		r = errno == ENOENT ? -ESRCH : -errno;
		mig__tenant_set_error("cannot open %s: %s", path, strerror(-r));
		free(p);
		return r;
	}
	t->priv = p;
	t->ops = &mig__ptrace_ops;
	high = high_fd_base(tid);

	r = mig__inject_begin(t, &s);
	if (r < 0)
		return r;
	fd = create_uffd(&s, high);
	r = mig__inject_end(&s);
	if (fd < 0)
		return fd == -ESRCH ? (mig__tenant_set_error("pid %d exited during attach", t->pid),
				       -ESRCH)
				    : fd;
	t->tenant_fd = fd;
	if (r < 0)
		return r;
	r = getfd(t, s.tid, fd);
	if (r < 0)
		return r;
	t->uffd = r;
	return 0;
}

/* Bytes below the stack pointer a signal frame (with xsave state) may use. */
#define SIGFRAME_ZONE (32UL << 10)

/*
 * What the kernel writes on behalf of the stopped thread while we run
 * syscalls in it: its rseq area (refreshed on every return to user mode,
 * and every PTRACE_SINGLESTEP is one), and the stack just below its stack
 * pointer (the frame of a signal we let through). Fills excl[2]; returns
 * how many.
 */
static size_t executor_writes(struct mig__inject *s, struct mig_range *excl)
{
	size_t n = 0;
#ifdef __x86_64__
	struct __ptrace_rseq_configuration rc = { 0 };
	uint64_t sp = s->saved.rsp;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, s->tid, sizeof(rc), &rc) > 0 &&
	    rc.rseq_abi_pointer && rc.rseq_abi_size)
		excl[n++] = (struct mig_range){
			ALIGN_DOWN(rc.rseq_abi_pointer, 4096),
			ALIGN_UP(rc.rseq_abi_pointer + rc.rseq_abi_size, 4096),
		};
	if (sp > SIGFRAME_ZONE)
		excl[n++] = (struct mig_range){ ALIGN_DOWN(sp - SIGFRAME_ZONE, 4096),
						ALIGN_UP(sp + 1, 4096) };
#else
	(void)s;
	(void)excl;
#endif
	return n;
}

/*
 * Run the steps ctl->next gives, one syscall each, in the stopped thread.
 * ctl->unlock is called as soon as a step's syscall has run and before a
 * signal is delivered (inject_syscall's before_signal), so the engine's
 * lock is never held while the thread can fault. A step a signal got
 * ahead of is reported -EINTR and asked for again.
 */
static int zap_steps(struct mig__inject *s, struct mig_tenant *t, const struct mig__zap_ctl *ctl,
		     struct mig__stopset *others)
{
	struct mig__zap_step st;
	int r;

	s->before_signal = ctl->unlock;
	s->hook_ud = ctl->ud;
	s->once = true;
	while ((r = ctl->next(ctl->ud, &st)) > 0) {
		struct uffdio_move m = { 0 };
		int64_t x = 0;

		if (st.op == MIG__ZAP_STOP) {
			r = mig__zap_stop(t, &s->tid, 1, ctl, &st, others);
			if (r == -ESRCH)
				break;
			continue;
		}
		if (st.op == MIG__ZAP_MOVE) {
			m = (struct uffdio_move){ .dst = st.dst,
						  .src = st.start,
						  .len = st.len,
						  .mode = st.mode };
			r = tenant_io(s->tid, ctl->arg_page, &m, sizeof(m), true);
			if (r == 0)
				r = sys(s, SYS_ioctl, (uint64_t)t->tenant_fd, UFFDIO_MOVE,
					ctl->arg_page, 0, 0, 0, &x);
			if (ctl->unlock)
				ctl->unlock(ctl->ud);
			if (r == 0 && tenant_io(s->tid, ctl->arg_page, &m, sizeof(m), false) < 0)
				m.move = 0;
		} else {
			r = sys(s, SYS_madvise, st.start, st.len, MADV_DONTNEED, 0, 0, 0, &x);
			if (ctl->unlock)
				ctl->unlock(ctl->ud);
		}
		if (r == -EINTR) {
			ctl->done(ctl->ud, &st, -EINTR, 0);
			continue;
		}
		if (r < 0) {
			ctl->done(ctl->ud, &st, r, 0);
			break;
		}
		ctl->done(ctl->ud, &st, x, m.move > 0 ? (uint64_t)m.move : 0);
	}
	s->before_signal = NULL;
	s->once = false;
	return r;
}

/*
 * The zap protocol (struct mig__zap_ctl): name the thread, stop it, and
 * only then let the engine fix the runs. While we wait for the stop the
 * engine holds none of that thread's faults, so a thread sitting in a
 * fault taken from kernel mode (where PTRACE_INTERRUPT cannot reach it)
 * is released, finishes its syscall's access and stops. Once stopped it
 * cannot fault, so holding writers on the runs cannot block it. The stop
 * spans only the madvise calls.
 */
static int op_zap(struct mig_tenant *t, const struct mig__zap_ctl *ctl)
{
	const struct mig_range *runs = NULL;
	struct mig_range excl[2];
	struct mig__inject s;
	size_t n = 0;
	int r, first = 0;
	pid_t tid = mig__inject_thread(t);

	if (tid < 0) {
		mig__tenant_set_error("pid %d has no live thread", t->pid);
		return tid == -EOPNOTSUPP ? mig__inject_begin(t, &s) : -ESRCH;
	}
	if (ctl->prepare)
		ctl->prepare(ctl->ud, &tid, 1);
	r = mig__inject_begin_thread(t, tid, &s);
	if (r < 0)
		return r;
	r = ctl->ready(ctl->ud, excl, executor_writes(&s, excl), &runs, &n);
	if (r >= 0 && ctl->next) {
		struct mig__stopset others = { 0 };

		r = zap_steps(&s, t, ctl, &others);
		if (mig__resume_threads(&others) < 0 && r == 0)
			r = -ESRCH;
		if (mig__inject_end(&s) < 0 && r == 0)
			r = -ESRCH;
		return r;
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		int64_t x;

		r = sys(&s, SYS_madvise, runs[i].start, runs[i].end - runs[i].start, MADV_DONTNEED,
			0, 0, 0, &x);
		if (r < 0)
			break;
		if (x < 0 && first == 0)
			first = (int)x;
	}
	if (mig__inject_end(&s) < 0 && r == 0)
		r = -ESRCH;
	return r < 0 ? r : first;
}

/* One syscall in its own session; *ret gets its result. */
static int single(struct mig_tenant *t, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		  uint64_t a4, int64_t *ret)
{
	struct mig__inject s;
	int r;

	r = mig__inject_begin(t, &s);
	if (r < 0)
		return r;
	r = sys(&s, nr, a0, a1, a2, a3, a4, 0, ret);
	if (mig__inject_end(&s) < 0 && r == 0)
		r = -ESRCH;
	return r;
}

static int op_map_scratch(struct mig_tenant *t, size_t len, uint64_t *ret_addr)
{
	int64_t a = 0;
	int r = single(t, SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       (uint64_t)-1, &a);

	if (r < 0)
		return r;
	if (a < 0 && a > -4096)
		return (int)a;
	*ret_addr = (uint64_t)a;
	return 0;
}

static int op_unmap(struct mig_tenant *t, uint64_t addr, size_t len)
{
	int64_t x = 0;
	int r = single(t, SYS_munmap, addr, len, 0, 0, 0, &x);

	return r < 0 ? r : (int)x;
}

static int op_move(struct mig_tenant *t, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
		   uint64_t *ret_moved)
{
	struct uffdio_move m = { .dst = dst, .src = src, .len = len, .mode = mode };
	struct mig__inject s;
	uint64_t page = 0;
	int64_t x = 0;
	int r;

	r = mig__inject_begin(t, &s);
	if (r < 0)
		return r;
	r = scratch_map(&s, &page);
	if (r == 0) {
		r = tenant_io(s.tid, page, &m, sizeof(m), true);
		if (r == 0)
			r = sys(&s, SYS_ioctl, (uint64_t)t->tenant_fd, UFFDIO_MOVE, page, 0, 0, 0,
				&x);
		if (r == 0)
			r = tenant_io(s.tid, page, &m, sizeof(m), false);
		if (scratch_unmap(&s, page) < 0 && r == 0)
			r = -ESRCH;
	}
	if (mig__inject_end(&s) < 0 && r == 0)
		r = -ESRCH;
	if (r < 0)
		return r;
	if (ret_moved)
		*ret_moved = m.move > 0 ? (uint64_t)m.move : 0;
	return (int)x;
}

static int op_close_fd(struct mig_tenant *t, int fd)
{
	int64_t x = 0;
	int r = single(t, SYS_close, (uint64_t)fd, 0, 0, 0, 0, &x);

	return r < 0 ? r : (int)x;
}

static void op_release(struct mig_tenant *t)
{
	struct ptrace_priv *p = t->priv;

	if (!p)
		return;
	safe_close(p->memfd);
	free(p);
	t->priv = NULL;
}

const struct mig__tenant_ops mig__ptrace_ops = {
	.name = "ptrace",
	.zap = op_zap,
	.map_scratch = op_map_scratch,
	.unmap = op_unmap,
	.move = op_move,
	.close_fd = op_close_fd,
	.release = op_release,
};
