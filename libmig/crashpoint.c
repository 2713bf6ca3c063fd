/*
 * crashpoint.c - MIG_CRASH_AT: kill this process at a named point, so a
 * test can show what a migd killed exactly there leaves behind. The
 * variable is read once; without it every point costs one load and a
 * branch. A point ending in ":abrt" raises SIGABRT instead (what
 * systemd's watchdog sends); one ending in ":pauseMS" sleeps MS
 * milliseconds there instead, every time it is passed (with @N: the N-th
 * time only), to widen a race window for a test.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crashpoint.h"

#define MAX_POINTS 16

struct point {
	char name[64];
	unsigned long nth; /* 0: the first time (a pause: every time) */
	int sig;
	unsigned pause_ms; /* ":pauseMS": sleep instead of a signal */
	atomic_ulong seen;
};

static struct point points[MAX_POINTS];
static size_t npoints;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void parse(void)
{
	const char *env = getenv("MIG_CRASH_AT");
	char buf[1024], *save = NULL;

	if (!env || !*env)
		return;
	strncpy(buf, env, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok && npoints < MAX_POINTS;
	     tok = strtok_r(NULL, ",", &save)) {
		struct point *p = &points[npoints];
		size_t len = strlen(tok);
		char *at, *pz;

		p->sig = SIGKILL;
		if (len > 5 && strcmp(tok + len - 5, ":abrt") == 0) {
			tok[len - 5] = 0;
			p->sig = SIGABRT;
		} else if (len > 6 && strcmp(tok + len - 6, ":fault") == 0) {
			tok[len - 6] = 0;
			p->sig = 0; /* a fault point: mig__fault_point answers */
		} else if ((pz = strstr(tok, ":pause")) && pz[6] >= '0' && pz[6] <= '9') {
			p->pause_ms = (unsigned)strtoul(pz + 6, NULL, 10);
			*pz = 0;
			p->sig = 0;
		}
		at = strchr(tok, '@');

		if (at) {
			*at = 0;
			p->nth = strtoul(at + 1, NULL, 10);
		}
		strncpy(p->name, tok, sizeof(p->name) - 1);
		npoints++;
	}
}

void mig__crash_point(const char *point)
{
	pthread_once(&once, parse);
	for (size_t i = 0; i < npoints; i++) {
		struct point *p = &points[i];

		if (strcmp(p->name, point) != 0)
			continue;
		if (p->pause_ms) {
			if (!p->nth || atomic_fetch_add(&p->seen, 1) + 1 == p->nth)
				nanosleep(
					&(struct timespec){ p->pause_ms / 1000,
							    (long)(p->pause_ms % 1000) * 1000000 },
					NULL);
			continue;
		}
		if (p->sig == 0)
			continue;
		if (atomic_fetch_add(&p->seen, 1) + 1 >= (p->nth ? p->nth : 1))
			raise(p->sig);
	}
}

bool mig__fault_point(const char *point)
{
	bool hit = false;

	pthread_once(&once, parse);
	for (size_t i = 0; i < npoints; i++) {
		struct point *p = &points[i];

		if (p->sig != 0 || p->pause_ms || strcmp(p->name, point) != 0)
			continue;
		hit |= atomic_fetch_add(&p->seen, 1) + 1 >= (p->nth ? p->nth : 1);
	}
	return hit;
}
