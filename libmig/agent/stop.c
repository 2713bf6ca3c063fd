/*
 * stop.c - the agent stops the tenant's other threads itself, for the
 * moment migd takes pages out with madvise (docs/engine.md, "The zap"):
 * the helper sends each thread MIG_AGENT_STOP_SIGNAL; its handler marks
 * the thread stopped and waits on a futex until RESUME. No ptrace, so an
 * agent tenant is never traced (its TracerPid stays 0).
 *
 * A thread stops the way a ptrace stop would take it: only on its way
 * back to user mode, so after its own mapping change is complete and its
 * event read; a stopped thread runs nothing but the handler's futex wait
 * and cannot clone, so /proc/self/task is listed again until no new
 * thread appears. It counts as stopped only once the helper sees it
 * blocked in that wait (waits_in_handler): until then it still writes
 * its stack. Threads that are gone (exited, or the zombie of a main
 * thread that called pthread_exit) are not waited for.
 *
 * Only async-signal-safe calls in the handler; no malloc in the helper
 * while threads are stopped (one of them may hold a malloc lock): the task
 * list is read with getdents64 into a stack buffer.
 *
 * What the host sees: its threads run our handler for the length of a
 * zap; a call that a handler interrupts and that is never restarted (see
 * signal(7): poll, epoll_wait, select, nanosleep, sem_wait...) returns
 * EINTR, as with any other signal. The signal is not installed when the
 * host already has a handler for it, and a stop answers -EOPNOTSUPP when
 * the host replaced ours: migd then stops the threads with ptrace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "stop.h"

/* Real-time, so the host's standard signals are never taken. */
#define MIG_AGENT_STOP_SIGNAL (SIGRTMAX - 7)

/* A thread not stopped after this long is signalled again (tid reuse). */
#define RESEND_MS 200

/*
 * SIGNALLED: sent the signal; STOPPED: its handler says so; WAITING: seen
 * by the helper blocked in the handler's futex wait; GONE: exited.
 */
enum { SLOT_SIGNALLED, SLOT_STOPPED, SLOT_WAITING, SLOT_GONE };

static struct mig_agent_stopctl *ctl;
static int installed;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_stop_signal(int sig, siginfo_t *si, void *uc)
{
	struct mig_agent_stopctl *c = __atomic_load_n(&ctl, __ATOMIC_ACQUIRE);
	int saved = errno;

	(void)sig;
	(void)uc;
	/* Only the helper's own signal; anyone else's does nothing. */
	if (!c || si->si_code != SI_TKILL || si->si_pid != getpid())
		return;
	__atomic_add_fetch(&c->inside, 1, __ATOMIC_SEQ_CST);
	/*
	 * go before active: RESUME bumps go, then clears active. A handler
	 * that saw active saw the go of this stop, or a newer one and so
	 * does not wait.
	 */
	int go = __atomic_load_n(&c->go, __ATOMIC_SEQ_CST);

	if (__atomic_load_n(&c->active, __ATOMIC_SEQ_CST)) {
		pid_t tid = (pid_t)syscall(SYS_gettid);
		int n = __atomic_load_n(&c->n, __ATOMIC_ACQUIRE);

		for (int k = 0; k < n; k++) {
			if (__atomic_load_n(&c->slot[k].tid, __ATOMIC_RELAXED) != tid)
				continue;
			__atomic_store_n(&c->slot[k].state, SLOT_STOPPED, __ATOMIC_RELEASE);
			while (__atomic_load_n(&c->go, __ATOMIC_SEQ_CST) == go)
				syscall(SYS_futex, &c->go, FUTEX_WAIT_PRIVATE, go, NULL, NULL, 0);
			break;
		}
	}
	__atomic_sub_fetch(&c->inside, 1, __ATOMIC_SEQ_CST);
	errno = saved;
}

void mig_agent_stop_install(void)
{
	struct sigaction sa, old;

	if (sigaction(MIG_AGENT_STOP_SIGNAL, NULL, &old) < 0 || old.sa_handler != SIG_DFL)
		return; /* the host's own: leave it, migd falls back to ptrace */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_stop_signal;
	/* Restart what can be restarted; no other handler on top while stopped. */
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(MIG_AGENT_STOP_SIGNAL, &sa, NULL) == 0)
		installed = 1;
}

void mig_agent_stop_init(struct mig_agent_stopctl *c)
{
	memset(c, 0, sizeof(*c));
	__atomic_store_n(&ctl, c, __ATOMIC_RELEASE);
}

/*
 * Read /proc/self/task/TID/FILE into buf (NUL-terminated). No stdio here:
 * a stopped thread may hold one of its locks. Returns the length, or
 * -errno (the file cannot be opened or read).
 */
static ssize_t read_task_file(pid_t tid, const char *file, char *buf, size_t size)
{
	char path[64] = "/proc/self/task/", digits[16];
	size_t len = strlen(path), nd = 0;
	ssize_t n;
	int fd;

	do
		digits[nd++] = (char)('0' + tid % 10);
	while ((tid /= 10) > 0 && nd < sizeof(digits));
	while (nd > 0)
		path[len++] = digits[--nd];
	path[len++] = '/';
	memcpy(path + len, file, strlen(file) + 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

/*
 * Still a live thread of ours? 1 yes, 0 exited or a zombie, -errno when
 * we cannot tell (out of fds): never taken for gone.
 */
static int thread_live(pid_t tid)
{
	char buf[256], *p;
	ssize_t n = read_task_file(tid, "stat", buf, sizeof(buf));

	if (n <= 0)
		return n == 0 || n == -ENOENT || n == -ESRCH ? 0 : (int)n;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/*
 * Is thread tid blocked in the handler's futex wait on word? 1 yes, 0 not
 * (yet: it runs, or waits elsewhere), -errno when we cannot tell. The
 * kernel shows a blocked thread's system call in /proc/self/task/TID/
 * syscall as "nr arg0 ... sp pc", "running" while it runs. Between
 * marking itself stopped and that wait the handler still writes its stack
 * (the call's return address, a spilled argument): a page there that migd
 * staged and write-protected takes that write, then the zap drops it and
 * the fill puts the staged page back, and the thread returns through a
 * stale frame (churn agent whole, 6.1 guest: the tenant died). So a
 * thread counts as stopped only once it waits there, and writes nothing
 * until RESUME.
 */
static int waits_in_handler(pid_t tid, const int *word)
{
	char buf[256], *p;
	ssize_t n = read_task_file(tid, "syscall", buf, sizeof(buf));
	long nr;

	if (n < 0)
		return (int)n;
	nr = strtol(buf, &p, 10);
	if (p == buf || nr != SYS_futex)
		return 0;
	return strtoull(p, NULL, 16) == (unsigned long long)(uintptr_t)word;
}

static int signal_slot(struct mig_agent_stopctl *c, int k)
{
	c->slot[k].sent_ms = now_ms();
	if (syscall(SYS_tgkill, getpid(), c->slot[k].tid, MIG_AGENT_STOP_SIGNAL) < 0) {
		if (errno != ESRCH && errno != EAGAIN)
			return -errno;
		if (errno == ESRCH)
			__atomic_store_n(&c->slot[k].state, SLOT_GONE, __ATOMIC_RELAXED);
	}
	return 0;
}

static int known(const struct mig_agent_stopctl *c, pid_t tid)
{
	for (int k = 0; k < c->n; k++)
		if (c->slot[k].tid == tid)
			return 1;
	return 0;
}

/* Signal the threads not seen yet; *added counts them. */
static int signal_new(struct mig_agent_stopctl *c, int *added)
{
	char buf[4096];
	pid_t self = (pid_t)syscall(SYS_gettid);
	int fd, r = 0;
	long n;

	*added = 0;
	fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (r == 0 && (n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n && r == 0;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			pid_t tid = (pid_t)atoi(d->d_name);

			off += d->d_reclen;
			if (tid <= 0 || tid == self || known(c, tid))
				continue;
			if (c->n == MIG_AGENT_STOP_MAX) {
				r = -E2BIG;
				break;
			}
			__atomic_store_n(&c->slot[c->n].tid, tid, __ATOMIC_RELAXED);
			__atomic_store_n(&c->slot[c->n].state, SLOT_SIGNALLED, __ATOMIC_RELAXED);
			/* The handler looks the thread up only once it is counted. */
			__atomic_store_n(&c->n, c->n + 1, __ATOMIC_RELEASE);
			(*added)++;
			r = signal_slot(c, c->n - 1);
		}
	}
	if (n < 0 && r == 0)
		r = -errno;
	close(fd);
	return r;
}

int64_t mig_agent_stop(struct mig_agent_stopctl *c, unsigned wait_ms)
{
	struct sigaction cur;
	uint64_t until = now_ms() + wait_ms;

	if (!c || !installed)
		return -EOPNOTSUPP;
	if (sigaction(MIG_AGENT_STOP_SIGNAL, NULL, &cur) < 0 || !(cur.sa_flags & SA_SIGINFO) ||
	    cur.sa_sigaction != on_stop_signal)
		return -EOPNOTSUPP; /* the host installed its own since */
	if (!__atomic_load_n(&c->active, __ATOMIC_SEQ_CST)) {
		/*
		 * A handler of the last stop still inside (mig_agent_resume
		 * waits for them 1 s at most) may have read that stop's go:
		 * were active set now, it would find its slot in this stop,
		 * mark itself stopped and return at once, and this stop would
		 * count a running thread as stopped. So this stop begins only
		 * once none is left; meanwhile it is not complete. A handler
		 * that enters later reads go after the last resume bumped it.
		 */
		while (__atomic_load_n(&c->inside, __ATOMIC_SEQ_CST)) {
			struct timespec pause = { 0, 200 * 1000 };

			syscall(SYS_futex, &c->go, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
			if (now_ms() >= until)
				return -EINPROGRESS;
			nanosleep(&pause, NULL);
		}
		__atomic_store_n(&c->n, 0, __ATOMIC_RELEASE);
		c->t0 = now_ms();
		__atomic_store_n(&c->active, 1, __ATOMIC_SEQ_CST);
	}
	for (;;) {
		struct timespec pause = { 0, 50 * 1000 };
		int added = 0, pending = 0;
		int r = signal_new(c, &added);

		if (r < 0) {
			mig_agent_resume(c);
			return r;
		}
		for (int k = 0; k < c->n; k++) {
			int state = __atomic_load_n(&c->slot[k].state, __ATOMIC_ACQUIRE);
			int live, w;

			if (state != SLOT_SIGNALLED && state != SLOT_STOPPED)
				continue;
			live = thread_live(c->slot[k].tid);
			if (live < 0) {
				mig_agent_resume(c);
				return live;
			}
			if (!live) {
				__atomic_store_n(&c->slot[k].state, SLOT_GONE, __ATOMIC_RELAXED);
				continue;
			}
			if (state == SLOT_STOPPED) {
				/* In the handler: stopped once it waits (waits_in_handler). */
				w = waits_in_handler(c->slot[k].tid, &c->go);
				if (w < 0) {
					mig_agent_resume(c);
					return w;
				}
				if (w > 0)
					__atomic_store_n(&c->slot[k].state, SLOT_WAITING,
							 __ATOMIC_RELAXED);
				else
					pending++;
				continue;
			}
			pending++;
			if (now_ms() - c->slot[k].sent_ms >= RESEND_MS && signal_slot(c, k) < 0) {
				mig_agent_resume(c);
				return -EIO;
			}
		}
		if (!pending && !added)
			return 0;
		if (now_ms() >= until)
			return -EINPROGRESS;
		nanosleep(&pause, NULL);
	}
}

int64_t mig_agent_resume(struct mig_agent_stopctl *c)
{
	uint64_t t0 = now_ms();

	if (!c || !__atomic_load_n(&c->active, __ATOMIC_SEQ_CST))
		return 0;
	__atomic_add_fetch(&c->go, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&c->active, 0, __ATOMIC_SEQ_CST);
	/*
	 * Wake until every handler has left the block, so the next stop
	 * starts clean (bounded: a handler only has its return left).
	 */
	do {
		struct timespec pause = { 0, 50 * 1000 };

		syscall(SYS_futex, &c->go, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
		if (!__atomic_load_n(&c->inside, __ATOMIC_SEQ_CST))
			break;
		nanosleep(&pause, NULL);
	} while (now_ms() - t0 < 1000);
	return 0;
}
