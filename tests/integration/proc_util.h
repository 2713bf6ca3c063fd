/*
 * proc_util.h - helpers shared by the proc_* integration tests and the
 * placement bench: start build/tests/tenants/proc_tenant with pipes, read
 * what it reports, talk to it, and end it by pid.
 */
#ifndef MIG_PROC_UTIL_H
#define MIG_PROC_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/test_common.h"

struct tenant {
	pid_t pid;
	int pidfd;
	FILE *in;		       /* its stdin */
	FILE *out;		       /* its stdout */
	uint64_t start, end;	       /* the region */
	uint64_t file_start, file_end; /* -f: the file mapping */
	char file_path[PATH_MAX];
	int anon_name; /* -n: 1 named, 0 unsupported, -1 not asked */
};

/*
 * Start build/tests/tenants/NAME with argv[] (NULL-terminated, argv[0]
 * is replaced) on pipes: *in is its stdin, *out its stdout.
 */
static inline void test_spawn(const char *name, const char **argv, pid_t *pid, int *pidfd,
			      FILE **in, FILE **out)
{
	char exe[PATH_MAX], dir[PATH_MAX], prog[PATH_MAX + 32];
	int to[2], from[2];
	ssize_t l;

	l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(l > 0, "readlink");
	exe[l] = '\0';
	snprintf(dir, sizeof(dir), "%s", exe);
	snprintf(prog, sizeof(prog), "%s/../tenants/%s", dirname(dir), name);
	if (access(prog, X_OK) < 0)
		FAIL("tenant %s: %s", prog, strerror(errno));
	argv[0] = prog;
	CHECK(pipe2(to, O_CLOEXEC) == 0 && pipe2(from, O_CLOEXEC) == 0, "pipe");
	*pid = fork();
	CHECK(*pid >= 0, "fork");
	if (*pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	*in = fdopen(to[1], "w");
	*out = fdopen(from[0], "r");
	*pidfd = (int)syscall(SYS_pidfd_open, *pid, 0);
	CHECK(*pidfd >= 0, "pidfd_open: %s", strerror(errno));
}

/* Start proc_tenant with the given arguments (NULL-terminated) and wait for "ready". */
static inline void tenant_start(struct tenant *t, ...)
{
	char line[PATH_MAX + 64];
	const char *argv[16];
	int n = 1;
	va_list ap;

	memset(t, 0, sizeof(*t));
	t->anon_name = -1;
	va_start(ap, t);
	for (const char *a; n < 15 && (a = va_arg(ap, const char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	test_spawn("proc_tenant", argv, &t->pid, &t->pidfd, &t->in, &t->out);

	while (fgets(line, sizeof(line), t->out)) {
		unsigned long a, b;
		char word[16];

		if (strncmp(line, "ready", 5) == 0)
			return;
		if (sscanf(line, "region 0x%lx 0x%lx", &a, &b) == 2) {
			t->start = a;
			t->end = b;
		} else if (sscanf(line, "file 0x%lx 0x%lx %*s", &a, &b) == 2) {
			char *path = strchr(strchr(strchr(line, ' ') + 1, ' ') + 1, ' ') + 1;

			path[strcspn(path, "\n")] = '\0';
			t->file_start = a;
			t->file_end = b;
			snprintf(t->file_path, sizeof(t->file_path), "%s", path);
		} else if (sscanf(line, "anon-name %15s", word) == 1) {
			t->anon_name = strcmp(word, "ok") == 0;
		}
	}
	FAIL("tenant %d ended before it was ready", (int)t->pid);
}

/* Ask the tenant to check its pattern; returns true when intact. */
static inline bool tenant_verify(struct tenant *t)
{
	char line[64];

	fprintf(t->in, "verify\n");
	fflush(t->in);
	if (!fgets(line, sizeof(line), t->out))
		return false;
	if (strncmp(line, "ok", 2) != 0) {
		fprintf(stderr, "tenant %d says: %s", (int)t->pid, line);
		return false;
	}
	return true;
}

/* Close its stdin, wait for it; returns its exit status (0: memory intact). */
static inline int tenant_finish(struct tenant *t)
{
	int status = 0;

	fclose(t->in);
	fclose(t->out);
	if (waitpid(t->pid, &status, 0) < 0)
		return -1;
	close(t->pidfd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* End a tenant we started, by its pidfd (no pid reuse). */
static inline void tenant_kill(struct tenant *t)
{
	syscall(SYS_pidfd_send_signal, t->pidfd, SIGKILL, NULL, 0);
	tenant_finish(t);
}

static inline void need_root(void)
{
	if (geteuid() != 0)
		SKIP("needs root (pagemap PFNs, kpageflags, move_pages of another process)");
}

#endif /* MIG_PROC_UTIL_H */
