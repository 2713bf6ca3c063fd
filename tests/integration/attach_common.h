/*
 * attach_common.h - helpers for the attach_* integration tests: start a
 * tenant program with pipes, talk to it by lines, snapshot its maps and
 * fd table, and a uffd reader thread that serves MISSING faults with
 * UFFDIO_COPY of the tenant's known pattern and acknowledges events.
 * Header-only: each test is its own executable.
 */
#ifndef ATTACH_COMMON_H
#define ATTACH_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/test_common.h"
#include "mig.h"
#include "uffd.h"

struct tenant {
	pid_t pid;
	FILE *in, *out; /* its stdin (we write), its stdout (we read) */
	uint64_t addr, len;
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void need_root(void)
{
	if (geteuid() != 0)
		SKIP("needs root (ptrace, pidfd_getfd of other processes)");
#ifndef __x86_64__
	SKIP("ptrace injection is x86_64 only");
#endif
}

/* Path of a built test program next to this one: build/tests/<dir>/<name>. */
static inline void prog_path(char *buf, size_t size, const char *self, const char *rel)
{
	const char *slash = strrchr(self, '/');
	int n = slash ? (int)(slash - self) : 1;

	snprintf(buf, size, "%.*s/../%s", n, slash ? self : ".", rel);
}

/*
 * For the agent tests: agent gets the absolute path of build/libmig-agent.so,
 * sock a fresh socket path named after tag, *ret_lfd the listening socket,
 * and MIGD_AGENT_SOCKET points there for the tenants we start.
 */
static inline void agent_setup(const char *self, const char *tag, char *agent, size_t asize,
			       char *sock, size_t ssize, int *ret_lfd)
{
	static char env[160];
	char rel[4096], *abs;
	int r;

	prog_path(rel, sizeof(rel), self, "../libmig-agent.so");
	abs = realpath(rel, NULL);
	if (!abs)
		FAIL("%s: %m", rel);
	snprintf(agent, asize, "%s", abs);
	free(abs);
	snprintf(sock, ssize, "/tmp/migd-%s-%d.sock", tag, getpid());
	r = mig_agent_listen(sock, ret_lfd);
	if (r < 0)
		FAIL("listen %s: %s", sock, mig_errno_name(r));
	snprintf(env, sizeof(env), "MIGD_AGENT_SOCKET=%s", sock);
	putenv(env);
}

/* Start argv with its stdin/stdout on pipes; if ready, read its READY line. */
static inline void tenant_start(struct tenant *t, char *const argv[], bool ready)
{
	int in[2], out[2];
	char line[256];

	memset(t, 0, sizeof(*t));
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		FAIL("pipe: %m");
	t->pid = fork();
	if (t->pid < 0)
		FAIL("fork: %m");
	if (t->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		/*
		 * Under SANITIZE=1 a tenant may run with the agent preloaded or
		 * under strace, where LeakSanitizer cannot work.
		 */
		setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0", 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	t->in = fdopen(in[1], "w");
	t->out = fdopen(out[0], "r");
	setvbuf(t->in, NULL, _IOLBF, 0);
	if (!ready)
		return;
	if (!fgets(line, sizeof(line), t->out))
		FAIL("tenant %s printed nothing", argv[0]);
	if (sscanf(line, "READY %" SCNx64 " %" SCNu64, &t->addr, &t->len) != 2)
		FAIL("tenant said '%s'", line);
}

/* Send a command line, return the first answer line (static buffer). */
static inline const char *tenant_ask(struct tenant *t, const char *cmd)
{
	static char line[512];

	fprintf(t->in, "%s\n", cmd);
	fflush(t->in);
	if (!fgets(line, sizeof(line), t->out))
		FAIL("tenant %d gave no answer to '%s'", t->pid, cmd);
	line[strcspn(line, "\n")] = 0;
	return line;
}

static inline const char *tenant_line(struct tenant *t)
{
	static char line[512];

	if (!fgets(line, sizeof(line), t->out))
		FAIL("tenant %d closed its output", t->pid);
	line[strcspn(line, "\n")] = 0;
	return line;
}

/* Ask it to exit and check its status. */
static inline void tenant_stop(struct tenant *t)
{
	int st;

	fprintf(t->in, "exit\n");
	fflush(t->in);
	if (waitpid(t->pid, &st, 0) != t->pid)
		FAIL("waitpid: %m");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "tenant status 0x%x", st);
	fclose(t->in);
	fclose(t->out);
}

static inline char *slurp(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		FAIL("%s: %m", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strdup(buf);
}

/*
 * The maps of pid as seen by its thread tid (tid 0: the process). A
 * process whose main thread has exited shows empty maps and fds at
 * /proc/PID: look through a live thread then.
 */
static inline char *maps_of_task(pid_t pid, pid_t tid)
{
	char path[64];

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/maps", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	return slurp(path);
}

static inline char *maps_of(pid_t pid)
{
	return maps_of_task(pid, 0);
}

/* "0->target\n1->target\n..." — the fd numbers, sorted, with their targets. */
static inline char *fds_of_task(pid_t pid, pid_t tid)
{
	char path[64], buf[8192] = "", ln[600];
	struct dirent **ents;
	int n;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/fd", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	n = scandir(path, &ents, NULL, versionsort);
	if (n < 0)
		FAIL("%s: %m", path);
	for (int i = 0; i < n; i++) {
		char link[400], target[256] = "";
		ssize_t k;

		if (ents[i]->d_name[0] != '.') {
			snprintf(link, sizeof(link), "%s/%s", path, ents[i]->d_name);
			k = readlink(link, target, sizeof(target) - 1);
			if (k > 0)
				target[k] = 0;
			snprintf(ln, sizeof(ln), "%s->%s\n", ents[i]->d_name, target);
			strncat(buf, ln, sizeof(buf) - strlen(buf) - 1);
		}
		free(ents[i]);
	}
	free(ents);
	return strdup(buf);
}

static inline char *fds_of(pid_t pid)
{
	return fds_of_task(pid, 0);
}

/* State letter of pid's thread tid from /proc (R, S, T, t, Z...). */
static inline char task_state(pid_t pid, pid_t tid)
{
	char path[64], *st, *p, c = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	st = slurp(path);
	p = strrchr(st, ')');
	if (p)
		c = p[2];
	free(st);
	return c;
}

/* The tenant_data pattern of the page at offset off of its area. */
static inline void pattern_page(uint8_t *page, uint64_t off)
{
	for (size_t i = 0; i < 4096; i += 8) {
		uint64_t v = ((off + i) * 0x9e3779b97f4a7c15ull) ^ 0x5a5a5a5a5a5a5a5aull;

		memcpy(page + i, &v, 8);
	}
}

struct reader {
	pthread_t th;
	int uffd;
	uint64_t base;	     /* start of the tenant's pattern area */
	const uint8_t *snap; /* if set: serve faults from this copy of [base, ...) */
	volatile int stop;
	unsigned long faults, events, removes, forks;
	int fork_fd; /* the child's uffd from the last UFFD_EVENT_FORK, or -1 */
	int err;
};

/*
 * Serve the tenant's uffd: MISSING faults get the pattern with
 * UFFDIO_COPY (-EEXIST: already there, wake), events are read (which is
 * all an injected zap waits for).
 */
static inline void *reader_main(void *arg)
{
	struct reader *r = arg;
	static uint8_t page[4096] __attribute__((aligned(4096)));

	while (!r->stop) {
		struct pollfd p = { .fd = r->uffd, .events = POLLIN };
		struct uffd_msg msgs[16];
		int n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = mig__uffd_read(r->uffd, msgs, 16);
		if (n == -EAGAIN)
			continue;
		if (n < 0) {
			r->err = n;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct uffd_msg *m = &msgs[i];
			uint64_t a, done;
			int e;

			switch (m->event) {
			case UFFD_EVENT_PAGEFAULT:
				/* Count first: the copy wakes the tenant, which may answer at once.
				 */
				__atomic_add_fetch(&r->faults, 1, __ATOMIC_SEQ_CST);
				a = m->arg.pagefault.address & ~4095ull;
				if (r->snap)
					memcpy(page, r->snap + (a - r->base), 4096);
				else
					pattern_page(page, a - r->base);
				e = mig__uffd_copy(r->uffd, a, page, 4096, 0, &done);
				/* EEXIST: already there; EAGAIN: let it fault again. */
				if (e == -EEXIST || e == -EAGAIN)
					e = mig__uffd_wake(r->uffd, a, 4096);
				if (e < 0 && e != -EAGAIN)
					r->err = e;
				break;
			case UFFD_EVENT_FORK:
				/* The child's own uffd, now in our fd table; the test serves it. */
				__atomic_store_n(&r->fork_fd, (int)m->arg.fork.ufd,
						 __ATOMIC_SEQ_CST);
				__atomic_add_fetch(&r->forks, 1, __ATOMIC_SEQ_CST);
				__atomic_add_fetch(&r->events, 1, __ATOMIC_SEQ_CST);
				break;
			case UFFD_EVENT_REMOVE:
				__atomic_add_fetch(&r->removes, 1, __ATOMIC_SEQ_CST);
				__atomic_add_fetch(&r->events, 1, __ATOMIC_SEQ_CST);
				break;
			default:
				r->events++;
				break;
			}
		}
	}
	return NULL;
}

static inline void reader_start(struct reader *r, int uffd, uint64_t base)
{
	memset(r, 0, sizeof(*r));
	r->uffd = uffd;
	r->base = base;
	r->fork_fd = -1;
	pthread_create(&r->th, NULL, reader_main, r);
}

/*
 * Wait until the reader counted n REMOVE events: the kernel lets the
 * tenant go as soon as the event is read, before the reader counts it.
 */
static inline unsigned long reader_wait_removes(struct reader *r, unsigned long n)
{
	for (int i = 0; i < 2000 && __atomic_load_n(&r->removes, __ATOMIC_SEQ_CST) < n; i++)
		usleep(1000);
	return __atomic_load_n(&r->removes, __ATOMIC_SEQ_CST);
}

static inline void reader_stop(struct reader *r)
{
	r->stop = 1;
	pthread_join(r->th, NULL);
}

#endif /* ATTACH_COMMON_H */
