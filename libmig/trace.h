/*
 * trace.h - a debug trace (trace.c): with MIG_TRACE=FILE in the
 * environment, the process appends one line per window start and end,
 * tenant event, fault served, zap step, fill and page marked gone to
 * FILE, with a monotonic timestamp and the thread id. Inert otherwise
 * (one load and a branch per point), like MIG_CRASH_AT. For following
 * one page through a failing churn run: docs/engine.md, "Debug trace".
 */
#ifndef MIG_TRACE_H
#define MIG_TRACE_H

#include <stdbool.h>

#include "util.h"

MIG_INTERNAL bool mig__trace_on(void);
MIG_INTERNAL void mig__trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define MIG_TRACE(...)                           \
	do {                                     \
		if (mig__trace_on())             \
			mig__trace(__VA_ARGS__); \
	} while (0)

#endif /* MIG_TRACE_H */
