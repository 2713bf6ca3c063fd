/*
 * relocate_common.h - shared by the relocate_* tests: start
 * build/tests/tenants/relocate_tenant with pipes, talk to it, read VMAs,
 * PFNs and nodes of its pages. Only the tenants started here are ever
 * signalled, by pidfd.
 */
#ifndef RELOCATE_COMMON_H
#define RELOCATE_COMMON_H

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
#include <unistd.h>

#include "mig.h"
#include "integration/proc_util.h"

#define RPAGE 4096UL
#define RPMD  (2UL << 20)

struct rtenant {
	pid_t pid;
	int pidfd;
	FILE *in, *out;
	uint64_t a, d, size;
	size_t npages; /* per block */
};

/* Start relocate_tenant with the given arguments (NULL-terminated). */
static inline void rtenant_start(struct rtenant *t, ...)
{
	const char *argv[16];
	char line[256];
	int n = 1;
	va_list ap;

	memset(t, 0, sizeof(*t));
	va_start(ap, t);
	for (const char *s; n < 15 && (s = va_arg(ap, const char *));)
		argv[n++] = s;
	va_end(ap);
	argv[n] = NULL;
	test_spawn("relocate_tenant", argv, &t->pid, &t->pidfd, &t->in, &t->out);
	while (fgets(line, sizeof(line), t->out)) {
		unsigned long v;

		if (!strncmp(line, "ready", 5)) {
			t->npages = t->size / RPAGE;
			return;
		}
		if (sscanf(line, "a 0x%lx", &v) == 1)
			t->a = v;
		else if (sscanf(line, "d 0x%lx", &v) == 1)
			t->d = v;
		else if (sscanf(line, "size %lu", &v) == 1)
			t->size = v;
		else
			fprintf(stderr, "tenant: %s", line);
	}
	FAIL("tenant %d ended before it was ready", (int)t->pid);
}

static inline const char *rtenant_say(struct rtenant *t, const char *fmt, ...)
{
	static char line[256];
	va_list ap;

	va_start(ap, fmt);
	vfprintf(t->in, fmt, ap);
	va_end(ap);
	fputc('\n', t->in);
	fflush(t->in);
	if (!fgets(line, sizeof(line), t->out))
		return "eof";
	return line;
}

static inline bool rtenant_verify(struct rtenant *t)
{
	const char *r = rtenant_say(t, "verify");

	if (strncmp(r, "ok", 2)) {
		fprintf(stderr, "tenant %d: %s", (int)t->pid, r);
		return false;
	}
	return true;
}

static inline int rtenant_finish(struct rtenant *t)
{
	int st = 0;

	fclose(t->in);
	fclose(t->out);
	if (waitpid(t->pid, &st, 0) < 0)
		return -1;
	close(t->pidfd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The VMAs of pid that intersect [start, end). */
static inline size_t vmas_in(pid_t pid, uint64_t start, uint64_t end, struct mig_vma *out,
			     size_t max)
{
	struct mig_vma *v = NULL;
	size_t n = 0, k = 0;

	CHECK(mig_read_vmas(pid, &v, &n) == 0, "mig_read_vmas");
	for (size_t i = 0; i < n; i++)
		if (v[i].end > start && v[i].start < end && k < max)
			out[k++] = v[i];
	free(v);
	return k;
}

/* pagemap and node of n pages from addr (malloc'd). */
static inline struct mig_pageinfo *pages_of(pid_t pid, uint64_t addr, size_t n)
{
	struct mig_pageinfo *pi = calloc(n, sizeof(*pi));
	int r;

	CHECK(pi, "calloc");
	r = mig_query_pages(pid, addr, n, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, pi);
	CHECK(r == 0, "mig_query_pages(0x%lx, %zu): %d", (unsigned long)addr, n, r);
	return pi;
}

static inline size_t count_heads(const struct mig_pageinfo *pi, size_t n, unsigned order)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if ((pi[i].flags & MIG_PAGE_HEAD) && pi[i].order == order)
			c++;
	return c;
}

static inline bool host_has_move(void)
{
	/* UFFDIO_MOVE is in Linux 6.8 and later. */
	FILE *f = fopen("/proc/sys/kernel/osrelease", "re");
	int maj = 0, min = 0;

	if (f) {
		if (fscanf(f, "%d.%d", &maj, &min) != 2)
			maj = 0;
		fclose(f);
	}
	return maj > 6 || (maj == 6 && min >= 8);
}

static inline void print_result(const char *what, const struct mig_relocate_result *r)
{
	printf("# %s: pages %llu moved %llu copied %llu remapped %llu absent %llu; "
	       "THP %llu -> %llu, mTHP %llu -> %llu, collapsed %llu; VMAs %llu -> %llu; "
	       "stopped %.2f ms; uncounted %llu; runs:",
	       what, (unsigned long long)r->pages, (unsigned long long)r->pages_moved,
	       (unsigned long long)r->pages_copied, (unsigned long long)r->pages_remapped,
	       (unsigned long long)r->pages_absent, (unsigned long long)r->thp_before,
	       (unsigned long long)r->thp_after, (unsigned long long)r->mthp_before,
	       (unsigned long long)r->mthp_after, (unsigned long long)r->collapsed,
	       (unsigned long long)r->vmas_before, (unsigned long long)r->vmas_after,
	       (double)r->stopped_ns / 1e6, (unsigned long long)r->moved_uncounted);
	for (size_t i = 0; i < r->nruns && i < 8; i++)
		printf(" %s:%lluK", mig_relocate_path_name(r->runs[i].path),
		       (unsigned long long)(r->runs[i].end - r->runs[i].start) >> 10);
	printf("%s\n", r->nruns > 8 ? " ..." : "");
}

/* Every run took path. */
static inline bool all_runs(const struct mig_relocate_result *r, int path)
{
	for (size_t i = 0; i < r->nruns; i++)
		if (r->runs[i].path != path)
			return false;
	return r->nruns > 0;
}

#endif /* RELOCATE_COMMON_H */
