/*
 * agent.c - libmig-agent.so, loaded into a cooperating tenant (LD_PRELOAD
 * or linked). A constructor starts one helper thread that connects to
 * migd's agent socket ($MIGD_AGENT_SOCKET, default /run/migd/agent.sock),
 * says hello, and then runs the few operations migd needs inside the
 * tenant: create a full-mode userfaultfd and hand it over with
 * SCM_RIGHTS, madvise(DONTNEED), mmap/munmap a scratch area, UFFDIO_MOVE
 * (the kernel allows it only from the tenant's own mm), close that uffd,
 * and stop the tenant's other threads while pages are taken out (stop.c:
 * a signal handler of ours, never ptrace).
 *
 * It must not disturb its host: the helper thread blocks every signal (it
 * never takes one meant for the host), the stop signal is a real-time one
 * the host does not handle (stop.c), every fd it makes is close-on-exec,
 * and when migd is absent it retries quietly with a growing pause. It
 * prints nothing and never exits the process. Only libc and pthread are
 * used. MIGD_AGENT_DISABLE=1 turns it off.
 *
 * Fork: a forked child closes the inherited connection and uffd at once
 * (in a pthread_atfork handler; a lock keeps the helper from creating
 * either while a fork copies the fd table) and runs with no agent thread.
 * It does not start one by itself, for three reasons: only
 * async-signal-safe calls are allowed in the child of a multithreaded
 * process until it execs; most children exec at once; and a child that
 * stays single-threaded may rely on it (unshare(CLONE_NEWUSER), setns into
 * a mount namespace, some daemonising code). migd loses nothing: with
 * UFFD_FEATURE_EVENT_FORK it receives the child's own uffd through the
 * parent's (UFFD_EVENT_FORK) and serves the child's faults there, and
 * in-tenant operations in the child can go through ptrace injection. A
 * child that wants its own agent calls mig_agent_start() (the child's
 * copy of the agent is reset to "not started").
 *
 * When the connection drops (migd stopped or crashed) the uffd stays open:
 * closing the last fd of a uffd with pages still zapped would make the
 * tenant read zeros later; kept open, the tenant at worst waits for a new
 * migd, which finds the fd number in the next hello.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/major.h>

#include "agentproto.h"
#include "compat.h"
#include "stop.h"

#define EXPORT __attribute__((visibility("default")))

static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int conn = -1; /* connection to migd, helper thread only */
static int uffd = -1; /* the uffd we created, or -1 */
/*
 * The /dev/userfaultfd migd sent with the request being served, or -1;
 * closed once the request is served (and in a forked child at once).
 */
static int dev_handed = -1;
static int started, atfork_done;
/*
 * Held by the helper while it creates an fd and records it in conn/uffd,
 * and by a forking thread (atfork prepare): the child's fd table never
 * holds an agent fd the child does not know about.
 */
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * True when fd is a misc character device, as /dev/userfaultfd is: the
 * only kind of file the agent runs USERFAULTFD_IOC_NEW on. Its node may
 * be missing from the tenant's /dev (PrivateDevices=yes), so the device
 * is not looked up by name.
 */
static int is_misc_chardev(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == MISC_MAJOR;
}

/*
 * A full-mode uffd for this process. userfaultfd(2) first: it works for
 * root and where vm.unprivileged_userfaultfd = 1. Where it is refused (any
 * other user on a stock host), the /dev/userfaultfd migd opened and sent
 * with CREATE (dev_handed; its permission was checked at migd's open),
 * else our own open of it (mode 0600: root only). Called with fd_lock held.
 */
static int create_uffd(void)
{
	struct rlimit rl;
	int fd, dev, high;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;

		dev = dev_handed >= 0 && is_misc_chardev(dev_handed)
			      ? dev_handed
			      : open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev < 0) {
			errno = e;
			return -e;
		}
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		e = errno;
		if (dev != dev_handed)
			close(dev);
		if (fd < 0)
			return -e;
	}
	/* Out of the host's way: a high, close-on-exec number (as with ptrace). */
	high = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t lim = rl.rlim_cur > 1024 ? 1024 : rl.rlim_cur;

		high = lim > 64 ? (int)lim - 32 : 0;
	}
	if (high > fd) {
		int h = fcntl(fd, F_DUPFD_CLOEXEC, high);

		if (h >= 0) {
			close(fd);
			fd = h;
		}
	}
	return fd;
}

static int64_t do_move(const struct mig_agent_req *q, uint64_t *moved)
{
	struct uffdio_move m = { .dst = q->arg[0],
				 .src = q->arg[1],
				 .len = q->arg[2],
				 .mode = q->arg[3] };
	int64_t r = 0;

	if (uffd < 0)
		return -EBADF;
	if (ioctl(uffd, UFFDIO_MOVE, &m) < 0)
		r = -errno;
	*moved = m.move > 0 ? (uint64_t)m.move : 0;
	return r;
}

/* Run one request; the answer goes back on conn. */
static void serve(struct mig_agent_stopctl *stopctl, const struct mig_agent_req *q, size_t len)
{
	struct mig_agent_resp a = { .magic = MIG_AGENT_MAGIC,
				    .op = q->op,
				    .seq = q->seq,
				    .fd = -1 };
	union mig_agent_fdbuf cm;
	struct iovec iov = { .iov_base = &a, .iov_len = sizeof(a) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	void *p;

	switch (q->op) {
	case MIG_AGENT_CREATE:
		if (uffd >= 0)
			a.val = MIG_AGENT_CREATE_KEPT;
		if (uffd < 0) {
			int fd;

			pthread_mutex_lock(&fd_lock);
			fd = create_uffd();
			if (fd < 0)
				a.ret = fd;
			else
				uffd = fd;
			pthread_mutex_unlock(&fd_lock);
		}
		if (uffd >= 0) {
			/*
			 * A uffd kept from an earlier migd is handed over again
			 * (crash recovery), flagged: it may have had its
			 * UFFDIO_API already.
			 */
			a.fd = uffd;
			mig_agent_attach_fd(&mh, &cm, uffd);
		}
		break;
	case MIG_AGENT_ZAP:
		if (q->nruns > MIG_AGENT_MAX_RUNS ||
		    len < offsetof(struct mig_agent_req, runs) + q->nruns * sizeof(q->runs[0])) {
			a.ret = -EINVAL;
			break;
		}
		for (uint32_t i = 0; i < q->nruns; i++)
			if (madvise((void *)(uintptr_t)q->runs[i].start,
				    q->runs[i].end - q->runs[i].start, MADV_DONTNEED) < 0 &&
			    a.ret == 0)
				a.ret = -errno;
		break;
	case MIG_AGENT_MAP:
		/* arg[1]: migd's hint, away from holes we may be about to fill (0: none). */
		p = mmap((void *)(uintptr_t)q->arg[1], q->arg[0], PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			a.ret = -errno;
		else
			a.val = (uint64_t)(uintptr_t)p;
		break;
	case MIG_AGENT_UNMAP:
		if (munmap((void *)(uintptr_t)q->arg[0], q->arg[1]) < 0)
			a.ret = -errno;
		break;
	case MIG_AGENT_MOVE:
		a.ret = do_move(q, &a.val);
		break;
	case MIG_AGENT_STOP:
		a.ret = mig_agent_stop(stopctl, q->arg[0] > 1000 ? 1000 : (unsigned)q->arg[0]);
		break;
	case MIG_AGENT_RESUME:
		a.ret = mig_agent_resume(stopctl);
		break;
	case MIG_AGENT_CLOSE:
		/* Only the fd we made: never one of the host's own files. */
		pthread_mutex_lock(&fd_lock);
		if (uffd < 0 || (int64_t)q->arg[0] != uffd) {
			a.ret = -EBADF;
		} else {
			close(uffd);
			uffd = -1;
		}
		pthread_mutex_unlock(&fd_lock);
		break;
	default:
		a.ret = -EOPNOTSUPP;
		break;
	}
	while (sendmsg(conn, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void drop_conn(void)
{
	pthread_mutex_lock(&fd_lock);
	close(conn);
	conn = -1;
	pthread_mutex_unlock(&fd_lock);
}

/* Connect conn to migd and say hello; 0 or -1. */
static int connect_migd(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mig_agent_hello h = { .magic = MIG_AGENT_MAGIC,
				     .version = MIG_AGENT_VERSION,
				     .pid = getpid(),
				     .uffd_fd = uffd };
	memcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
	pthread_mutex_lock(&fd_lock);
	conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	pthread_mutex_unlock(&fd_lock);
	if (conn < 0)
		return -1;
	if (connect(conn, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(conn, &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h)) {
		drop_conn();
		return -1;
	}
	return 0;
}

/*
 * Never take fd_lock while the host's threads may be stopped (between
 * STOP and RESUME): a thread stopped inside fork() holds it (from
 * atfork_prepare until the fork returns), and the helper would wait for
 * it for good, with every thread stopped (stress_chaos agent kind, seed
 * 1883658766122481: a thread stopped in arch_fork, the helper in
 * drop_handed). Only the helper sets dev_handed, and only with CREATE,
 * which migd never sends during a stop: nothing handed, no lock.
 */
static void drop_handed(void)
{
	if (dev_handed < 0)
		return;
	pthread_mutex_lock(&fd_lock);
	if (dev_handed >= 0)
		close(dev_handed);
	dev_handed = -1;
	pthread_mutex_unlock(&fd_lock);
}

/*
 * Receive one request. An fd migd sends with it (CREATE: the open
 * /dev/userfaultfd) is taken into dev_handed under fd_lock, so a fork
 * copies it only into a child that closes it at once: the wait is a peek
 * without room for an fd (the kernel keeps the fd with the message), the
 * taking a second, non-blocking receive with the lock held, for CREATE
 * only (any other request may come while the host's threads are stopped,
 * and then the lock must not be taken: drop_handed). Returns the
 * request's length, 0 at the end, or -1 with errno.
 */
static ssize_t recv_req(struct mig_agent_req *q)
{
	union mig_agent_fdbuf cm;
	struct iovec iov = { .iov_base = q, .iov_len = sizeof(*q) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	bool create;

	n = recv(conn, q, sizeof(*q), MSG_PEEK);
	if (n <= 0)
		return n;
	create = n >= (ssize_t)offsetof(struct mig_agent_req, seq) && q->op == MIG_AGENT_CREATE;
	memset(&cm, 0, sizeof(cm));
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	if (create)
		pthread_mutex_lock(&fd_lock);
	n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(sizeof(int)))
			continue;
		/* Room for one: the kernel closed any more it had. */
		memcpy(&fd, CMSG_DATA(c), sizeof(fd));
		if (create && dev_handed < 0 && n >= (ssize_t)offsetof(struct mig_agent_req, seq) &&
		    q->op == MIG_AGENT_CREATE)
			dev_handed = fd;
		else
			close(fd);
	}
	if (create)
		pthread_mutex_unlock(&fd_lock);
	return n;
}

static void *helper(void *arg)
{
	/* In this thread's stack, which no zap takes out (stop.h). */
	struct mig_agent_stopctl stopctl;
	unsigned pause_s = 1;

	(void)arg;
	prctl(PR_SET_NAME, "migd-agent", 0, 0, 0);
	mig_agent_stop_init(&stopctl);
	for (;;) {
		struct mig_agent_req q;
		struct timespec t0, t1;
		ssize_t n;

		if (connect_migd() < 0) {
			/* migd is absent: wait quietly, longer each time. */
			struct timespec ts = { pause_s, 0 };

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			pause_s = pause_s < 32 ? pause_s * 2 : 60;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			n = recv_req(&q);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < (ssize_t)offsetof(struct mig_agent_req, runs) ||
			    q.magic != MIG_AGENT_MAGIC) {
				drop_handed();
				break;
			}
			serve(&stopctl, &q, (size_t)n);
			drop_handed();
		}
		/* migd is gone: never leave the threads it had us stop stopped. */
		mig_agent_resume(&stopctl);
		drop_conn();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= 2) {
			pause_s = 1;
		} else {
			/*
			 * Closed within a second or two of the hello: migd
			 * refused us (another protocol version) or is stopping.
			 * Not again at once: a refusal repeated without pause
			 * would spin in the tenant and in migd.
			 */
			struct timespec ts = { pause_s, 0 };

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			pause_s = pause_s < 32 ? pause_s * 2 : 60;
		}
	}
	return NULL;
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&fd_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&fd_lock);
}

/*
 * The child of a fork has no helper thread; the inherited connection and
 * uffd belong to the parent (a uffd is bound to the parent's mm), so the
 * child drops its copies. close() is async-signal-safe, as it must be here;
 * the forking thread took fd_lock in prepare and still owns it.
 */
static void atfork_child(void)
{
	if (conn >= 0)
		close(conn);
	if (uffd >= 0)
		close(uffd);
	if (dev_handed >= 0)
		close(dev_handed);
	conn = -1;
	uffd = -1;
	dev_handed = -1;
	started = 0;
	pthread_mutex_unlock(&fd_lock);
}

/* Start the agent (the constructor does it; linked programs may call it). */
EXPORT int mig_agent_start(void)
{
	const char *path = getenv(MIG_AGENT_SOCKET_ENV);
	const char *off = getenv("MIGD_AGENT_DISABLE");
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t th;
	int r;

	if (__atomic_exchange_n(&started, 1, __ATOMIC_SEQ_CST))
		return 0;
	if (off && *off && strcmp(off, "0"))
		return 0;
	if (!path || !*path)
		path = "/run/migd/agent.sock";
	if (strlen(path) >= sizeof(sock_path))
		return -ENAMETOOLONG;
	strcpy(sock_path, path);
	/* Once per process image: a child that calls us again must not add a second set. */
	if (!atfork_done) {
		atfork_done = 1;
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	}
	mig_agent_stop_install();
	/* The thread inherits this mask: it never takes one of the host's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 * 1024); /* stop.h: its control block */
	r = pthread_create(&th, &attr, helper, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

__attribute__((constructor)) static void agent_init(void)
{
	(void)mig_agent_start();
}
