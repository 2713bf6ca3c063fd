/*
 * crashpoint.h - fault injection for crash tests (crashpoint.c): named
 * points in libmig where the process kills itself with SIGKILL when the
 * environment asks for it. Always compiled in, inert unless
 * MIG_CRASH_AT is set.
 */
#ifndef MIG_CRASHPOINT_H
#define MIG_CRASHPOINT_H

#include <stdbool.h>

#include "util.h"

/*
 * If MIG_CRASH_AT (read once per process) names this point, raise
 * SIGKILL. MIG_CRASH_AT is a comma-separated list of "area:step" or
 * "area:step@N" (the N-th time the point is passed, counting from 1),
 * each optionally followed by ":abrt" (SIGABRT instead) or ":pauseMS"
 * (sleep MS milliseconds instead, each time unless @N is given).
 * Points: see docs/engine.md, "Crash points".
 */
MIG_INTERNAL void mig__crash_point(const char *point);

/*
 * A fault point: true when MIG_CRASH_AT names it with ":fault" (the
 * N-th time and every time after, with "@N"), so a test can make libmig
 * see a kernel answer it cannot provoke at will. Never true otherwise.
 */
MIG_INTERNAL bool mig__fault_point(const char *point);

#endif /* MIG_CRASHPOINT_H */
