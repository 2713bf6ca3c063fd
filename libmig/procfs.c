/*
 * procfs.c - what libmig reads about a tenant's threads from /proc: the
 * tracer, the parent, each thread's state, a live thread to act through,
 * and whether a signal is pending. The ptrace session and the stop set
 * use these; their callers decide what the answers mean.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "procfs.h"
#include "util.h"

int mig__proc_status_int(pid_t pid, pid_t tid, const char *key, int *ret_val)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *f;
	int r = -ENOENT;

	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (r == -ENOENT && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':')
			r = sscanf(line + klen + 1, "%d", ret_val) == 1 ? 0 : -EPROTO;
	fclose(f);
	return r;
}

/* TracerPid of pid from /proc, 0 when untraced, -errno. */
int mig__proc_tracer_pid(pid_t pid)
{
	int v, r = mig__proc_status_int(pid, 0, "TracerPid", &v);

	return r < 0 ? r : v;
}

/*
 * The soft RLIMIT_AS of pid (/proc/PID/limits, readable without the
 * rights prlimit(2) asks for) and its VmSize, in bytes. Returns 1 when a
 * limit is set, 0 when it is unlimited, or -errno.
 */
int mig__proc_as_limit(pid_t pid, uint64_t *ret_limit, uint64_t *ret_size)
{
	char path[64], line[256];
	unsigned long long v;
	int r = -ENOENT;
	FILE *f;

	*ret_limit = *ret_size = 0;
	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Max address space", 17))
			continue;
		if (sscanf(line + 17, " %llu", &v) == 1) {
			*ret_limit = v;
			r = 1;
		} else
			r = 0;
		break;
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return r;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %llu kB", &v) == 1) {
			*ret_size = v * 1024;
			break;
		}
	fclose(f);
	return r;
}

/* Parent pid of pid from /proc/PID/stat, or -errno. */
int mig__proc_parent_pid(pid_t pid)
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
char mig__proc_thread_state(pid_t pid, pid_t tid)
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

bool mig__proc_thread_live(pid_t pid, pid_t tid)
{
	char st = mig__proc_thread_state(pid, tid);

	return st && st != 'Z' && st != 'X';
}

/*
 * The thread to seize: the main thread, or, when it has exited
 * (pthread_exit in main while other threads run: it stays a zombie that
 * cannot be traced and has no mm or files), the first live thread from
 * /proc/PID/task. Returns a tid or -ESRCH.
 */
pid_t mig__proc_live_thread(pid_t pid)
{
	char path[64];
	struct dirent *d;
	pid_t tid = -ESRCH;
	DIR *dir;

	if (mig__proc_thread_live(pid, pid))
		return pid;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while (tid < 0 && (d = readdir(dir)))
		if (d->d_name[0] != '.' && mig__proc_thread_live(pid, atoi(d->d_name)))
			tid = atoi(d->d_name);
	closedir(dir);
	return tid;
}

bool mig__proc_thread_idle(pid_t pid, pid_t tid)
{
	char path[64], line[256];
	bool sleeping = false, clean = false, untraced = false;
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		int v;

		if (!strncmp(line, "State:", 6))
			sleeping = strstr(line, "(sleeping)");
		else if (sscanf(line, "Seccomp: %d", &v) == 1)
			clean = v == 0;
		else if (sscanf(line, "TracerPid: %d", &v) == 1)
			untraced = v == 0;
	}
	fclose(f);
	if (!sleeping || !clean || !untraced)
		return false;
	/*
	 * In a syscall ("NR args... sp pc"), not in a page fault ("-1 sp
	 * pc") nor running: a thread held in a fault is one the job may
	 * have to serve before the thread can stop.
	 */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
	if (nr < 0)
		return false;
	/* Nor in a fault a syscall took on user memory (read(2) into a page that is out). */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	return !strstr(line, "userfault");
}

uint64_t mig__proc_thread_runtime(pid_t pid, pid_t tid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

pid_t mig__proc_idle_thread(pid_t pid, pid_t skip, size_t max)
{
	char path[64];
	struct dirent *d;
	pid_t tid = -ESRCH;
	size_t seen = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return -ESRCH;
	while (tid < 0 && seen < max && (d = readdir(dir))) {
		pid_t t;

		if (d->d_name[0] == '.')
			continue;
		seen++;
		t = atoi(d->d_name);
		if (t != skip && mig__proc_thread_idle(pid, t))
			tid = t;
	}
	closedir(dir);
	return tid;
}

/* True when a signal the thread does not block is pending for it or its process. */
bool mig__proc_signal_pending(pid_t tid)
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

ssize_t mig__mem_readv(pid_t pid, const struct iovec *l, const struct iovec *r, size_t n)
{
	_cleanup_close_ int fd = -EBADF;
	char path[64];
	ssize_t got = 0;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			errno = ESRCH;
		return -1;
	}
	for (size_t k = 0; k < n;) {
		size_t e = k + 1, want = l[k].iov_len;
		ssize_t m;

		/* One preadv for remote pieces that follow each other. */
		while (e < n && e - k < IOV_MAX &&
		       (uintptr_t)r[e].iov_base == (uintptr_t)r[e - 1].iov_base + r[e - 1].iov_len)
			want += l[e++].iov_len;
		m = preadv(fd, l + k, (int)(e - k), (off_t)(uintptr_t)r[k].iov_base);
		if (m < 0)
			return got > 0 ? got : -1;
		got += m;
		if ((size_t)m < want)
			break;
		k = e;
	}
	return got;
}
