/*
 * agentconn.c - libmig's side of the agent: the listening socket, taking
 * an agent's connection, and the agent backend of the in-tenant operations
 * (each one a request the agent's helper thread runs inside the tenant).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "agentproto.h"
#include "compat.h"
#include "engine.h"
#include "procfs.h"
#include "stopset.h"
#include "tenant.h"
#include "trace.h"
#include "util.h"

/* How long CREATE may take before we call the agent unresponsive. */
#define CREATE_TIMEOUT_MS 5000
/*
 * An in-tenant stop: each STOP request waits this long in the agent; held
 * faults are released after STOP_RELEASE_MS (a thread held in a
 * kernel-mode fault cannot take the signal); after STOP_GIVEUP_MS (a
 * thread that blocks the signal, or sits in vfork) ptrace stops them,
 * and keeps doing so for the rest of the attachment (ptrace_stops): each
 * try queues one more real-time signal on a thread that blocks it, and a
 * tenant's queue is bounded by its RLIMIT_SIGPENDING, which is the
 * tenant's own, not ours to use up; a second try would also cost every
 * window another second.
 */
#define STOP_STEP_MS	5
#define STOP_RELEASE_MS 20
#define STOP_GIVEUP_MS	1000

struct agent_priv {
	int conn; /* our dup of the caller's connection */
	uint64_t seq;
	bool stopped;	   /* the agent has the tenant's threads stopped */
	bool ptrace_stops; /* the agent could not stop them once: ptrace from now on */
};

int mig_agent_listen(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	struct stat st;

	if (!path || !ret_fd || !*path || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Replace a stale socket from an earlier run, never another kind of file. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if (unlink(path) < 0)
			return -errno;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	/* Tenants of every user may connect; each can only hand over its own uffd. */
	if (chmod(path, 0666) < 0 || listen(fd, 128) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static int peer_pid(int fd, pid_t *ret_pid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (uc.pid <= 0)
		return -EPROTO;
	*ret_pid = uc.pid;
	return 0;
}

int mig_agent_read_hello(int conn_fd, pid_t *ret_pid)
{
	struct mig_agent_hello h;
	pid_t pid = 0;
	ssize_t n;
	int r;

	if (conn_fd < 0 || !ret_pid)
		return -EINVAL;
	n = recv(conn_fd, &h, sizeof(h), MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	if (n != sizeof(h) || h.magic != MIG_AGENT_MAGIC)
		return -EPROTO;
	/* h.pid is in the agent's pid namespace: the kernel's word counts, not the agent's. */
	r = peer_pid(conn_fd, &pid);
	if (r < 0)
		return r;
	*ret_pid = pid;
	/* An agent of another version (an older libmig-agent.so still loaded): named, refused. */
	return h.version == MIG_AGENT_VERSION ? 0 : -EPROTONOSUPPORT;
}

int mig_agent_accept(int listen_fd, int timeout_ms, pid_t *ret_pid, int *ret_conn_fd)
{
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (listen_fd < 0 || !ret_pid || !ret_conn_fd)
		return -EINVAL;
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = wait_readable(fd, timeout_ms);
	if (r < 0)
		return r;
	/* Sets *ret_pid for an agent of another version too (-EPROTONOSUPPORT). */
	r = mig_agent_read_hello(fd, ret_pid);
	if (r < 0)
		return r;
	*ret_conn_fd = TAKE_FD(fd);
	return 0;
}

/*
 * Send one request, with send_fd (unless -1) as SCM_RIGHTS, and wait for
 * its answer; *ret_fd gets an SCM_RIGHTS fd of the answer.
 */
static int agent_call_fd(struct mig_tenant *t, struct mig_agent_req *req, int send_fd,
			 int timeout_ms, struct mig_agent_resp *ret_resp, int *ret_fd)
{
	struct agent_priv *p = t->priv;
	union mig_agent_fdbuf cm;
	struct mig_agent_resp resp;
	struct iovec iov = { .iov_base = &resp, .iov_len = sizeof(resp) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	size_t len = offsetof(struct mig_agent_req, runs) + req->nruns * sizeof(req->runs[0]);
	ssize_t n;
	int r;

	req->magic = MIG_AGENT_MAGIC;
	req->seq = ++p->seq;
	{
		struct iovec siov = { .iov_base = req, .iov_len = len };
		struct msghdr smh = { .msg_iov = &siov, .msg_iovlen = 1 };

		if (send_fd >= 0)
			mig_agent_attach_fd(&smh, &cm, send_fd);
		n = sendmsg(p->conn, &smh, MSG_NOSIGNAL);
	}
	if (n < 0) {
		r = errno == EPIPE || errno == ECONNRESET ? -ESRCH : -errno;
		MIG_TRACE("AGENT op=%u send: %d", (unsigned)req->op, r);
		return r;
	}
	for (;;) {
		/*
		 * Poll first, also with no timeout (-1): the caller's connection
		 * may be non-blocking (it shares the file with ours), and an
		 * EAGAIN taken for a failed request would hide what the agent did.
		 */
		r = wait_readable(p->conn, timeout_ms);
		if (r < 0)
			return r;
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		n = recvmsg(p->conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 || n == 0) {
			/* n == 0: the agent (or its process) is gone. */
			r = n == 0 || errno == ECONNRESET ? -ESRCH : -errno;
			MIG_TRACE("AGENT op=%u answer: %d (%s)", (unsigned)req->op, r,
				  n == 0 ? "connection closed" : "recvmsg");
			return r;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int fd;

				memcpy(&fd, CMSG_DATA(c), sizeof(fd));
				if (ret_fd && *ret_fd < 0)
					*ret_fd = fd;
				else
					safe_close(fd);
			}
		if (n != sizeof(resp) || resp.magic != MIG_AGENT_MAGIC)
			return -EPROTO;
		if (resp.seq == req->seq)
			break;
		/* An answer to an earlier request that timed out: drop it. */
	}
	*ret_resp = resp;
	return 0;
}

static int agent_call(struct mig_tenant *t, struct mig_agent_req *req, int timeout_ms,
		      struct mig_agent_resp *ret_resp, int *ret_fd)
{
	return agent_call_fd(t, req, -1, timeout_ms, ret_resp, ret_fd);
}

/* Check that fd is the very file the tenant holds at tenant_fd. */
static int verify_same_file(struct mig_tenant *t, int fd, int tenant_fd)
{
	_cleanup_close_ int theirs = -EBADF;
	struct stat a, b;

	theirs = (int)syscall(SYS_pidfd_getfd, t->pidfd, tenant_fd, 0);
	if (theirs < 0)
		/*
		 * Not allowed to look, or the main thread has exited and took
		 * the fd table view with it: trust SCM_RIGHTS.
		 */
		return errno == EPERM || errno == EBADF || errno == ESRCH ? 0 : -errno;
	if (fstat(fd, &a) < 0 || fstat(theirs, &b) < 0)
		return -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : -EPROTO;
}

/* True when pid sits in a job-control stop (SIGSTOP, SIGTSTP...). */
static bool job_stopped(pid_t pid)
{
	char path[64], buf[512], *p;
	char st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	safe_close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && sscanf(p + 1, " %c", &st) == 1 && st == 'T';
}

int mig__agent_attach(struct mig_tenant *t, int agent_fd)
{
	struct mig_agent_req req = { .op = MIG_AGENT_CREATE };
	struct mig_agent_resp resp;
	_cleanup_close_ int dev = -EBADF;
	struct agent_priv *p;
	pid_t pid = 0;
	int r, fd = -1, dev_errno = 0;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->conn = fcntl(agent_fd, F_DUPFD_CLOEXEC, 3);
	if (p->conn < 0) {
		r = -errno;
		free(p);
		mig__tenant_set_error("agent fd %d: %s", agent_fd, strerror(-r));
		return r;
	}
	t->priv = p;
	t->ops = &mig__agent_ops;
	r = peer_pid(p->conn, &pid);
	if (r < 0) {
		mig__tenant_set_error("agent fd %d is not a connected agent socket", agent_fd);
		return r;
	}
	if (pid != t->pid) {
		mig__tenant_set_error("the agent connection belongs to pid %d, not %d", (int)pid,
				      (int)t->pid);
		return -EPERM;
	}
	/*
	 * A stopped tenant's agent thread is stopped too. Resuming it is not
	 * ours to do (its owner stopped it), and waiting would only time out.
	 */
	if (job_stopped(t->pid)) {
		mig__tenant_set_error("pid %d is stopped (SIGSTOP or job control), so its agent "
				      "cannot answer; migd does not resume it: attach after "
				      "SIGCONT, or through ptrace",
				      (int)t->pid);
		return -EAGAIN;
	}
	/*
	 * The agent runs with the tenant's credentials: where its own
	 * userfaultfd(2) is refused (any user but root on a stock host), it
	 * makes the uffd with USERFAULTFD_IOC_NEW on the /dev/userfaultfd we
	 * open here (the mode is checked at open only) and send along, as
	 * the ptrace backend hands it in (backend_ptrace.c). The agent
	 * closes its copy once CREATE is served.
	 */
	if (t->no_device)
		dev_errno = EPERM;
	else if ((dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC)) < 0)
		dev_errno = errno;
	r = agent_call_fd(t, &req, dev, CREATE_TIMEOUT_MS, &resp, &fd);
	if (r < 0) {
		mig__tenant_set_error(
			"agent of pid %d did not answer: %s%s", (int)t->pid, strerror(-r),
			job_stopped(t->pid) ? " (it is stopped: SIGSTOP or job control)" : "");
		return r;
	}
	if (resp.ret < 0) {
		safe_close(fd);
		mig__tenant_set_error("the agent in pid %d cannot create a full-mode userfaultfd: "
				      "%s (userfaultfd(2), then /dev/userfaultfd %s%s). "
				      "UFFD_USER_MODE_ONLY is never used",
				      (int)t->pid, strerror((int)-resp.ret),
				      dev >= 0	     ? "handed in by migd"
				      : t->no_device ? "opened by the agent: migd does not "
						       "hand it in (hand_device = no)"
						     : "opened by the agent: migd "
						       "cannot open it: ",
				      dev >= 0 || t->no_device ? "" : strerror(dev_errno));
		return (int)resp.ret;
	}
	t->tenant_fd = resp.fd;
	t->kept = resp.val & MIG_AGENT_CREATE_KEPT;
	if (fd < 0) {
		mig__tenant_set_error("the agent of pid %d sent no fd", (int)t->pid);
		return -EPROTO;
	}
	t->uffd = fd;
	r = verify_same_file(t, fd, resp.fd);
	if (r < 0) {
		mig__tenant_set_error("the fd the agent of pid %d sent is not its fd %d",
				      (int)t->pid, resp.fd);
		return r;
	}
	return 0;
}

/*
 * The agent's helper threads (they name themselves "migd-agent"), up to
 * max of them. Returns how many were found.
 */
static size_t helper_threads(pid_t pid, pid_t *tids, size_t max)
{
	char path[320], comm[32];
	struct dirent *d;
	size_t n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while (n < max && (d = readdir(dir))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", pid, d->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, "migd-agent\n"))
			tids[n++] = atoi(d->d_name);
		fclose(f);
	}
	closedir(dir);
	return n;
}

/*
 * The stack mapping of thread tid (from its stack pointer while it waits
 * in a syscall; glibc keeps a thread's TLS and rseq area there too).
 */
/*
 * The stack mapping of a helper thread, found by its stack pointer. The
 * kernel shows the stack pointer only while the thread is in a system
 * call ("running" otherwise); the helper is between two requests, so it
 * is at most a few instructions away from its recv: ask again until it
 * is there. Left out, its stack would join the zap set, the helper would
 * madvise its own stack away and run on the staged copy of it, which
 * holds an earlier request: its answer then carries an old sequence
 * number and migd waits for the real one for ever (seen under load).
 * 1 found, 0 the thread is gone, -EAGAIN not seen in a system call
 * within STACK_WAIT_MS.
 */
#define STACK_WAIT_MS 1000

static int thread_stack(pid_t pid, pid_t tid, struct mig_range *ret)
{
	char path[96], line[512];
	unsigned long long sp = 0, s, e;
	uint64_t t0 = mig__now_ns();
	bool found = false;
	FILE *f;
	long nr;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
	for (;;) {
		f = fopen(path, "re");
		if (!f)
			return 0;
		/* "nr 6 args sp pc" in a system call, "-1 sp pc" blocked outside one. */
		if (!fgets(line, sizeof(line), f) ||
		    (sscanf(line, "%ld %*x %*x %*x %*x %*x %*x %llx", &nr, &sp) != 2 &&
		     (sscanf(line, "%ld %llx", &nr, &sp) != 2 || nr != -1)))
			sp = 0;
		fclose(f);
		if (sp)
			break;
		if (mig__now_ns() - t0 > STACK_WAIT_MS * 1000000ull)
			return -EAGAIN;
		usleep(100);
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/maps", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && sp >= s && sp < e) {
			*ret = (struct mig_range){ s, e };
			found = true;
		}
	fclose(f);
	return found ? 1 : -EAGAIN;
}

static int op_zap_threads(struct mig_tenant *t, pid_t *tids, size_t max)
{
	return (int)helper_threads(t->pid, tids, max);
}

/*
 * The helper threads are always ready. Their stack mappings (which hold
 * their TLS and rseq areas too) are kept out of the zap set: a helper
 * writes them while it receives and runs a request.
 */
static int op_zap_begin(struct mig_tenant *t, const pid_t *tids, size_t ntids, void **ret_x,
			struct mig_range *excl)
{
	size_t n = 0;

	*ret_x = NULL;
	for (size_t k = 0; k < ntids && n < MIG__ZAP_MAX_EXCL; k++) {
		int r = thread_stack(t->pid, tids[k], &excl[n]);

		if (r == -EAGAIN) {
			/* Never zap without its stack kept out: this window's zap waits. */
			mig__tenant_set_error("pid %d: the agent's helper thread %d was not seen "
					      "waiting for a request within %d ms",
					      (int)t->pid, (int)tids[k], STACK_WAIT_MS);
			return r;
		}
		if (r > 0)
			n++;
	}
	return (int)n;
}

/*
 * One request per step. The engine gives an agent madvise steps only
 * (migrate.c: the helper's libc could fault on a page a MOVE step just
 * took out, under the engine's lock).
 */
static int op_zap_step(struct mig_tenant *t, void *x, const struct mig__zap_step *st,
		       void (*unlock)(void *ud), void *ud, int64_t *ret_val, uint64_t *ret_moved)
{
	struct mig_agent_resp resp;
	int r;

	(void)x;
	if (st->op == MIG__ZAP_MOVE) {
		struct mig_agent_req mq = { .op = MIG_AGENT_MOVE,
					    .arg = { st->dst, st->start, st->len, st->mode } };

		r = agent_call(t, &mq, -1, &resp, NULL);
	} else {
		struct mig_agent_req req = { .op = MIG_AGENT_ZAP, .nruns = 1 };

		req.runs[0].start = st->start;
		req.runs[0].end = st->start + st->len;
		r = agent_call(t, &req, -1, &resp, NULL);
	}
	if (unlock)
		unlock(ud);
	if (r < 0)
		return r;
	*ret_val = resp.ret;
	*ret_moved = st->op == MIG__ZAP_MOVE && resp.val > 0 ? (uint64_t)resp.val : 0;
	return 0;
}

static int op_zap_end(struct mig_tenant *t, void *x)
{
	(void)t;
	(void)x;
	return 0;
}

static int agent_resume(struct mig_tenant *t)
{
	struct agent_priv *p = t->priv;
	struct mig_agent_req req = { .op = MIG_AGENT_RESUME };
	struct mig_agent_resp resp;
	int r;

	if (!p->stopped)
		return 0;
	p->stopped = false;
	r = agent_call(t, &req, -1, &resp, NULL);
	return r < 0 ? r : (int)resp.ret;
}

/*
 * MIG__ZAP_STOP without ptrace: the agent stops the other threads in the
 * tenant (agent/stop.c), so an agent tenant is never traced. Where it
 * cannot (an agent before STOP, the host's own handler on its signal, a
 * thread that blocks it) the threads are stopped with ptrace as before.
 */
static int op_stop_others(struct mig_tenant *t, const pid_t *keep, size_t nkeep,
			  void (*release)(void *ud), void *ud, struct mig__stopset *set)
{
	struct agent_priv *p = t->priv;
	uint64_t t0 = mig__now_ns();
	bool released = false;
	int64_t ret;

	memset(set, 0, sizeof(*set));
	if (p->ptrace_stops)
		return mig__stop_threads(t, keep, nkeep, release, ud, set);
	for (;;) {
		struct mig_agent_req req = { .op = MIG_AGENT_STOP, .arg = { STOP_STEP_MS } };
		struct mig_agent_resp resp;
		uint64_t ms;
		int r = agent_call(t, &req, -1, &resp, NULL);

		if (r < 0)
			return r;
		ret = resp.ret;
		if (ret == 0 || ret == -EINPROGRESS)
			p->stopped = true;
		if (ret != -EINPROGRESS)
			break;
		ms = (mig__now_ns() - t0) / 1000000;
		if (!released && ms >= STOP_RELEASE_MS) {
			release(ud);
			released = true;
		}
		if (ms >= STOP_GIVEUP_MS)
			break;
	}
	if (ret == 0)
		return 0;
	/* The agent could not stop them all: let its own go, stop them all with ptrace. */
	(void)agent_resume(t);
	p->ptrace_stops = true;
	return mig__stop_threads(t, keep, nkeep, released ? NULL : release, ud, set);
}

static int op_resume_others(struct mig_tenant *t, struct mig__stopset *set)
{
	int r = mig__resume_threads(set), q = agent_resume(t);

	return r < 0 ? r : q;
}

static int op_map_scratch(struct mig_tenant *t, size_t len, uint64_t *ret_addr)
{
	struct mig_agent_req req = { .op = MIG_AGENT_MAP,
				     .arg = { len, mig__far_hint(t->pid, len) } };
	struct mig_agent_resp resp;
	int r = agent_call(t, &req, -1, &resp, NULL);

	if (r < 0)
		return r;
	if (resp.ret < 0)
		return (int)resp.ret;
	*ret_addr = resp.val;
	return 0;
}

static int op_unmap(struct mig_tenant *t, uint64_t addr, size_t len)
{
	struct mig_agent_req req = { .op = MIG_AGENT_UNMAP, .arg = { addr, len } };
	struct mig_agent_resp resp;
	int r = agent_call(t, &req, -1, &resp, NULL);

	return r < 0 ? r : (int)resp.ret;
}

static int op_move(struct mig_tenant *t, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
		   uint64_t *ret_moved)
{
	struct mig_agent_req req = { .op = MIG_AGENT_MOVE, .arg = { dst, src, len, mode } };
	struct mig_agent_resp resp;
	int r = agent_call(t, &req, -1, &resp, NULL);

	if (r < 0)
		return r;
	if (ret_moved)
		*ret_moved = resp.val;
	return (int)resp.ret;
}

static int op_close_fd(struct mig_tenant *t, int fd)
{
	struct mig_agent_req req = { .op = MIG_AGENT_CLOSE, .arg = { (uint64_t)fd } };
	struct mig_agent_resp resp;
	int r = agent_call(t, &req, CREATE_TIMEOUT_MS, &resp, NULL);

	return r < 0 ? r : (int)resp.ret;
}

static void op_release(struct mig_tenant *t)
{
	struct agent_priv *p = t->priv;

	if (!p)
		return;
	safe_close(p->conn);
	free(p);
	t->priv = NULL;
}

const struct mig__tenant_ops mig__agent_ops = {
	.name = "agent",
	.zap_threads = op_zap_threads,
	.zap_begin = op_zap_begin,
	.zap_step = op_zap_step,
	.zap_end = op_zap_end,
	.stop_others = op_stop_others,
	.resume_others = op_resume_others,
	.map_scratch = op_map_scratch,
	.unmap = op_unmap,
	.move = op_move,
	.close_fd = op_close_fd,
	.release = op_release,
};
