/*
 * backend_ptrace.c - the ptrace backend's operations behind tenant.h, for
 * an unmodified tenant: create the uffd, zap, map/unmap, UFFDIO_MOVE and
 * close inside the tenant, each through injected syscalls (ptrace.c).
 * Arguments that need memory go through a scratch page mapped and
 * unmapped inside the same session.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compat.h"
#include "procfs.h"
#include "ptrace.h"
#include "stopset.h"
#include "trace.h"
#include "util.h"

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
	int r = sys(s, SYS_mmap, mig__far_hint(s->t->pid, 4096), 4096, PROT_READ | PROT_WRITE,
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
 * not so high that the tenant's fd table grows large. The limit is read
 * from /proc/PID/limits: prlimit(2) on another user's process needs
 * CAP_SYS_RESOURCE, which migd does not have.
 */
static int high_fd_base(pid_t pid)
{
	char path[64], line[256];
	unsigned long long cur = 0;
	char soft[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Max open files %31s", soft) == 1)
			break;
	fclose(f);
	if (!strcmp(soft, "unlimited"))
		cur = 1024;
	else if (sscanf(soft, "%llu", &cur) != 1)
		return 0;
	cur = MIN(cur, 1024);
	return cur > 64 ? (int)cur - 32 : 0;
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

/* The uid a tenant runs as (for error messages), or -1. */
static long tenant_uid(pid_t pid)
{
	char path[64], line[256];
	long uid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %*d %ld", &uid) == 1)
			break;
	fclose(f);
	return uid;
}

/* Where the handoff keeps its recvmsg arguments in the scratch page. */
struct handoff_page {
	int32_t sv[2];
	uint8_t byte;
	struct iovec iov;
	struct msghdr msg;
	uint64_t cmsg[8]; /* CMSG_SPACE(sizeof(int)), 8-byte aligned */
};

/* Close the tenant's fds in fds[n] (-1 entries skipped). */
static int close_in_tenant(struct mig__inject *s, const int64_t *fds, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		int64_t x;

		if (fds[i] >= 0 && sys(s, SYS_close, (uint64_t)fds[i], 0, 0, 0, 0, 0, &x) < 0)
			r = -ESRCH;
	}
	return r;
}

/*
 * A full-mode uffd for a tenant that may not make one itself: migd (root)
 * opens /dev/userfaultfd, whose permission is checked at open only; the
 * tenant makes a socketpair, migd takes one end with pidfd_getfd and sends
 * the open file over it; the tenant's recvmsg gets it and its
 * ioctl(USERFAULTFD_IOC_NEW) makes a uffd bound to the tenant's own mm.
 * Everything but the uffd is closed again in the tenant. *ret_fd gets
 * the uffd's fd in the tenant or the -errno of the step that failed,
 * with that step named in why. Returns 0, or -errno when the session
 * broke.
 */
static int uffd_by_handoff(struct mig__inject *s, int64_t *ret_fd, char *why, size_t wlen)
{
	struct handoff_page hp = { .sv = { -1, -1 } };
	_cleanup_close_ int dev = -EBADF, ours = -EBADF;
	int64_t x, tfd = -1, fd = -EIO;
	uint64_t page = 0;
	struct cmsghdr *cm;
	int r, q;

	*ret_fd = -EIO;
	if (s->t->no_device) {
		*ret_fd = -EPERM;
		snprintf(why, wlen, "not tried: hand_device = no in migd.conf");
		return 0;
	}
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		*ret_fd = -errno;
		snprintf(why, wlen, "migd cannot open /dev/userfaultfd: %s", strerror(errno));
		return 0;
	}
	r = scratch_map(s, &page);
	if (r < 0)
		return r;
	r = sys(s, SYS_socketpair, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
		page + offsetof(struct handoff_page, sv), 0, 0, &x);
	if (r == 0 && x < 0) {
		fd = x;
		snprintf(why, wlen, "socketpair in the tenant: %s", strerror((int)-x));
		goto out;
	}
	if (r == 0)
		r = tenant_io(s->tid, page, &hp.sv, sizeof(hp.sv), false);
	if (r < 0)
		goto out;
	ours = getfd(s->t, s->tid, hp.sv[1]);
	if (ours < 0) {
		fd = ours;
		snprintf(why, wlen, "pidfd_getfd of the tenant's socket: %s", strerror(-ours));
		goto out;
	}
	{
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} u = { 0 };
		struct iovec iov = { .iov_base = &hp.byte, .iov_len = 1 };
		struct msghdr m = { .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf) };

		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &dev, sizeof(int));
		if (sendmsg(ours, &m, MSG_DONTWAIT) != 1) {
			fd = -errno;
			snprintf(why, wlen, "sending /dev/userfaultfd to the tenant: %s",
				 strerror(errno));
			goto out;
		}
	}
	/* The tenant's recvmsg arguments, pointing into the scratch page. */
	hp.iov = (struct iovec){ (void *)(uintptr_t)(page + offsetof(struct handoff_page, byte)),
				 1 };
	hp.msg = (struct msghdr){
		.msg_iov = (void *)(uintptr_t)(page + offsetof(struct handoff_page, iov)),
		.msg_iovlen = 1,
		.msg_control = (void *)(uintptr_t)(page + offsetof(struct handoff_page, cmsg)),
		.msg_controllen = CMSG_SPACE(sizeof(int)),
	};
	r = tenant_io(s->tid, page, &hp, sizeof(hp), true);
	if (r == 0)
		r = sys(s, SYS_recvmsg, (uint64_t)hp.sv[0],
			page + offsetof(struct handoff_page, msg), MSG_CMSG_CLOEXEC | MSG_DONTWAIT,
			0, 0, 0, &x);
	if (r == 0 && x != 1) {
		fd = x < 0 ? x : -EPROTO;
		snprintf(why, wlen, "recvmsg in the tenant: %s", strerror((int)-fd));
		goto out;
	}
	if (r == 0)
		r = tenant_io(s->tid, page, &hp, sizeof(hp), false);
	if (r < 0)
		goto out;
	/* The tenant's copy of the fd migd sent: the kernel wrote the cmsg. */
	hp.msg.msg_control = hp.cmsg;
	cm = CMSG_FIRSTHDR(&hp.msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
		fd = -EPROTO;
		snprintf(why, wlen, "recvmsg in the tenant brought no fd");
		goto out;
	}
	memcpy(&q, CMSG_DATA(cm), sizeof(q));
	tfd = q;
	r = sys(s, SYS_ioctl, (uint64_t)tfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK, 0, 0, 0,
		&fd);
	if (r == 0 && fd < 0)
		snprintf(why, wlen, "ioctl(USERFAULTFD_IOC_NEW) in the tenant: %s",
			 strerror((int)-fd));
out:
	/* Nothing of the handoff stays in the tenant (unless it is gone). */
	if (r != -ESRCH) {
		const int64_t fds[3] = { tfd, hp.sv[0], hp.sv[1] };

		if (close_in_tenant(s, fds, 3) < 0 && r == 0)
			r = -ESRCH;
		if (scratch_unmap(s, page) < 0 && r == 0)
			r = -ESRCH;
	}
	if (r == 0)
		*ret_fd = fd;
	return r;
}

/*
 * Create the uffd in the tenant; returns the tenant's fd number or -errno.
 * userfaultfd(2) runs with the tenant's credentials: it gives a full-mode
 * uffd to root, to a tenant with CAP_SYS_PTRACE, or with
 * vm.unprivileged_userfaultfd = 1. Where it refuses (EPERM for any other
 * user on a stock host), migd hands /dev/userfaultfd in (above). Never
 * UFFD_USER_MODE_ONLY: kernel-mode faults would fail with EFAULT in the
 * tenant.
 */
static int create_uffd(struct mig__inject *s, int high)
{
	char why[256] = "", first[sizeof(s->denied) + 64], more[sizeof(s->denied) + 16] = "";
	int64_t fd, h, x;
	int r, e1;

	r = sys(s, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0, &fd);
	if (r < 0)
		return r;
	if (fd < 0) {
		e1 = (int)fd;
		/* Not run where the tenant's seccomp filter does not allow it (seccomp.c). */
		if (s->denied[0])
			snprintf(first, sizeof(first), "not run (%s)", s->denied);
		else
			snprintf(first, sizeof(first), "%s%s", strerror(-e1),
				 e1 == -EPERM ? " (vm.unprivileged_userfaultfd = 0 and no "
						"CAP_SYS_PTRACE)"
					      : "");
		s->denied[0] = 0;
		r = uffd_by_handoff(s, &fd, why, sizeof(why));
		if (r < 0)
			return r;
		if (fd < 0) {
			if (s->denied[0])
				snprintf(more, sizeof(more), " (not run: %s)", s->denied);
			mig__tenant_set_error(
				"%s: tenant %d (uid %ld) cannot create a full-mode userfaultfd: "
				"userfaultfd(2): %s; /dev/userfaultfd handed in by migd: %s%s. "
				"UFFD_USER_MODE_ONLY is never used (kernel-mode faults would fail "
				"with EFAULT in the tenant)",
				mig_errno_name((int)fd), s->t->pid, tenant_uid(s->t->pid), first,
				why, more);
			return (int)fd;
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

/* A thread's mem file keeps the mm even after that thread exits. */
static int open_mem(pid_t pid, pid_t tid)
{
	char path[64];
	int fd, r;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/mem", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENOENT ? -ESRCH : -errno;
		mig__tenant_set_error("cannot open %s: %s", path, strerror(-r));
		return r;
	}
	return fd;
}

int mig__ptrace_attach(struct mig_tenant *t)
{
	struct mig__ptrace_priv *p;
	struct mig__inject s;
	int r, fd, high;
	pid_t tid = mig__proc_live_thread(t->pid);

	if (tid < 0) {
		mig__tenant_set_error("pid %d has no live thread", t->pid);
		return -ESRCH;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->memfd = open_mem(t->pid, tid);
	if (p->memfd < 0) {
		r = p->memfd;
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

int mig__ptrace_release(pid_t pid, int pidfd, uint64_t sysaddr, uint64_t restorer,
			uint64_t unmap_addr, size_t unmap_len, int fd, int *ret_closed)
{
	struct mig__ptrace_priv p = { .memfd = -EBADF, .sysaddr = sysaddr, .restorer = restorer };
	struct mig_tenant t = {
		.pid = pid,
		.pidfd = pidfd,
		.uffd = -EBADF,
		.tenant_fd = -1,
		.method = MIG_ATTACH_PTRACE,
		.ops = &mig__ptrace_ops,
		.priv = &p,
	};
	struct mig__inject s;
	int64_t x = 0;
	int r;
	pid_t tid = mig__proc_live_thread(pid);

	*ret_closed = -ENOEXEC;
	if (tid < 0) {
		mig__tenant_set_error("pid %d has no live thread", pid);
		return -ESRCH;
	}
	p.memfd = open_mem(pid, tid);
	if (p.memfd < 0)
		return p.memfd;
	r = mig__inject_begin(&t, &s);
	if (r == 0) {
		if (unmap_len)
			r = sys(&s, SYS_munmap, unmap_addr, unmap_len, 0, 0, 0, 0, &x);
		if (r == 0 && fd >= 0) {
			r = sys(&s, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &x);
			if (r == 0)
				*ret_closed = (int)x;
		}
		if (mig__inject_end(&s) < 0 && r == 0)
			r = -ESRCH;
	}
	safe_close(p.memfd);
	return r;
}

/* Bytes below the stack pointer a signal frame (with xsave state) may use. */
#define SIGFRAME_ZONE (32UL << 10)

/*
 * What the kernel writes on behalf of the stopped thread while we run
 * syscalls in it: its rseq area (refreshed on every return to user mode,
 * and every injected syscall returns to it), and the stack just below its
 * stack pointer (the restore frame of the session, ptrace.c, and the
 * frame of a signal we let through). Fills excl[2]; returns how many.
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
 * The executor: the thread mig__inject_begin_thread will seize, one
 * asleep in a syscall where there is one (mig__inject_idle_thread).
 */
static int op_zap_threads(struct mig_tenant *t, pid_t *tids, size_t max)
{
	pid_t tid = mig__inject_idle_thread(t);

	MIG_TRACE("EXECUTOR tid=%d main=%d", tid, t->pid);

	if (tid == -EOPNOTSUPP)
		return 0; /* no injection on this architecture: zap_begin says why */
	if (tid < 0) {
		mig__tenant_set_error("pid %d has no live thread", t->pid);
		return -ESRCH;
	}
	if (max < 1)
		return -EINVAL;
	tids[0] = tid;
	return 1;
}

/*
 * Seize and stop the executor. Once stopped it cannot fault, so writers
 * held on the zap set cannot block it (zap.c: the zap protocol).
 */
static int op_zap_begin(struct mig_tenant *t, const pid_t *tids, size_t ntids, void **ret_x,
			struct mig_range *excl)
{
	struct mig__inject *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	r = ntids ? mig__inject_begin_thread(t, tids[0], s) : mig__inject_begin(t, s);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret_x = s;
	return (int)executor_writes(s, excl);
}

/*
 * One step in the stopped thread. unlock is called as soon as the
 * syscall has run and before a signal is delivered (the session's
 * before_signal), so the engine's lock is never held while the thread
 * can fault. A step a signal got ahead of is not run: -EINTR.
 */
static int op_zap_step(struct mig_tenant *t, void *x, const struct mig__zap_step *st,
		       void (*unlock)(void *ud), void *ud, int64_t *ret_val, uint64_t *ret_moved)
{
	struct mig__inject *s = x;
	struct uffdio_move m = { 0 };
	int64_t v = 0;
	int r;

	s->before_signal = unlock;
	s->hook_ud = ud;
	s->once = true;
	if (st->op == MIG__ZAP_MOVE) {
		m = (struct uffdio_move){ .dst = st->dst,
					  .src = st->start,
					  .len = st->len,
					  .mode = st->mode };
		r = tenant_io(s->tid, st->arg_page, &m, sizeof(m), true);
		if (r == 0)
			r = sys(s, SYS_ioctl, (uint64_t)t->tenant_fd, UFFDIO_MOVE, st->arg_page, 0,
				0, 0, &v);
		if (unlock)
			unlock(ud);
		if (r == 0 && tenant_io(s->tid, st->arg_page, &m, sizeof(m), false) < 0)
			m.move = 0;
	} else {
		r = sys(s, SYS_madvise, st->start, st->len, MADV_DONTNEED, 0, 0, 0, &v);
		if (unlock)
			unlock(ud);
	}
	s->before_signal = NULL;
	s->once = false;
	if (r < 0)
		return r;
	*ret_val = v;
	*ret_moved = m.move > 0 ? (uint64_t)m.move : 0;
	return 0;
}

static int op_zap_end(struct mig_tenant *t, void *x)
{
	struct mig__inject *s = x;
	int r = mig__inject_end(s);

	(void)t;
	free(s);
	return r;
}

/*
 * One syscall in its own session, on a thread asleep where the tenant has
 * one (mig__inject_idle_thread); *ret gets its result.
 */
static int single(struct mig_tenant *t, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		  uint64_t a4, int64_t *ret)
{
	struct mig__inject s;
	int r;

	r = mig__inject_begin_thread(t, mig__inject_idle_thread(t), &s);
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
	int r = single(t, SYS_mmap, mig__far_hint(t->pid, len), len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, &a);

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

static int op_advise(struct mig_tenant *t, uint64_t addr, size_t len, int advice)
{
	int64_t x = 0;
	int r = single(t, SYS_madvise, addr, len, (uint64_t)advice, 0, 0, &x);

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

	r = mig__inject_begin_thread(t, mig__inject_idle_thread(t), &s);
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

static int op_resume_others(struct mig_tenant *t, struct mig__stopset *set)
{
	(void)t;
	return mig__resume_threads(set);
}

static void op_release(struct mig_tenant *t)
{
	struct mig__ptrace_priv *p = t->priv;

	if (!p)
		return;
	safe_close(p->memfd);
	free(p);
	t->priv = NULL;
}

const struct mig__tenant_ops mig__ptrace_ops = {
	.name = "ptrace",
	.zap_threads = op_zap_threads,
	.zap_begin = op_zap_begin,
	.zap_step = op_zap_step,
	.zap_end = op_zap_end,
	.stop_others = mig__stop_threads,
	.resume_others = op_resume_others,
	.map_scratch = op_map_scratch,
	.unmap = op_unmap,
	.advise = op_advise,
	.move = op_move,
	.close_fd = op_close_fd,
	.release = op_release,
};
