#!/usr/bin/env bash
# crash_agent.sh - crash_recover.sh for a tenant attached through its
# LD_PRELOAD agent (libmig-agent.so; the job zaps with madvise through the
# agent's helper thread and no ptrace session is open): migd dies at the
# crash points of a window (SIGKILL and SIGABRT), during recovery, and
# CRASH_RANDOM (default 2) times per signal at random moments of a
# migration, and starts again. The tenant must come back like a ptrace
# tenant: alive, writing again within 2 s of the restart, every page
# verified, no journal left; its agent connects to the new migd.
CRASH_MIB=${CRASH_MIB:-32}
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/crash_lib.sh"
need_root
[ -f "$top/build/libmig-agent.so" ] || fail "no build/libmig-agent.so"
write_config
CRASH_AGENT=1

crash_calibrate
[ "$CRASH_ATTACH" = agent ] || fail "the job did not use the agent (attach ${CRASH_ATTACH:-?})"
crash_points ${CRASH_POINTS:-window:stage window:zap window:fill@2 window:zap:abrt}
CRASH_AGAIN=recovery:refill crash_round "zap+recovery" 0 MIG_CRASH_AT=window:zap
crash_random_rounds "${CRASH_RANDOM:-2}"
crash_report
