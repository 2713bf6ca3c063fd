/*
 * trace.c - MIG_TRACE=FILE (trace.h). The file is opened once, for
 * appending; each line is one write(2), so lines of several threads (and
 * of several processes sharing the file) do not mix.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int tfd = -1;

static void open_trace(void)
{
	const char *p = getenv("MIG_TRACE");

	if (p && *p)
		tfd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

bool mig__trace_on(void)
{
	pthread_once(&once, open_trace);
	return tfd >= 0;
}

void mig__trace(const char *fmt, ...)
{
	char buf[1024];
	struct timespec ts;
	va_list ap;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(buf, sizeof(buf), "%ld.%06ld %ld ", (long)ts.tv_sec, ts.tv_nsec / 1000,
		     (long)syscall(SYS_gettid));
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(tfd, buf, (size_t)n);
}
