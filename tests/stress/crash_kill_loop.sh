#!/usr/bin/env bash
# crash_kill_loop.sh - the long form of tests/integration/crash_recover.sh
# (issue 13's acceptance): migd dies at every crash point of a window, of
# an injection and of recovery itself, each with SIGKILL and with SIGABRT
# (what systemd's watchdog sends), then CRASH_KILLS (default 120; make
# check-stress: 200) times at random moments of a migration, half by
# SIGKILL and half by SIGABRT, of a CRASH_MIB (default 256) MiB tenant
# whose two writers never pause.
# The moments spread over 1.2 x the time an uninterrupted migration takes
# (measured first), so a slow guest is covered like the host. After each
# restart the tenant must be alive, write again within 2 s, verify every
# page, and no journal may be left (docs/engine.md, "After a crash").
# CRASH_PHASES (default "points random") picks the parts: "random" alone
# runs only the random kills, so a slow guest's loop can be split into
# slices run side by side (tests/stress/guest-crash.sh GUEST_CRASH_SLICES).
# The guests run it through tests/stress/guest-crash.sh.
# run-suite-timeout: 21600
CRASH_MIB=${CRASH_MIB:-256}
source "$(dirname "$0")/../integration/daemon_lib.sh"
source "$(dirname "$0")/../integration/crash_lib.sh"
need_root
write_config ${CRASH_WINDOW:+"window_protocol = $CRASH_WINDOW"}

crash_calibrate
# Every point a migd passes during a migration: the window's steps, and
# the ptrace session it opens in the tenant (seize, interrupt, the
# injected syscall's entry and exit, the restore). "@N": the Nth time.
points="window:freeze window:stage window:zap window:step window:fill window:fill@3 window:zap@5
	inject:seized inject:interrupted inject:stopped inject:frame inject:regs inject:entry
	inject:exit inject:restore inject:restored inject:exit@3 inject:entry@7"
# A move-first window has no FREEZE and no STAGE (a writer of 4 KiB pages
# only, CRASH_WRITER_THP=, never reaches them: migd would not die there).
[ "$CRASH_MF" = 1 ] && points=${points//window:freeze window:stage /}
phases=" ${CRASH_PHASES:-points random} "
if [[ $phases == *" points "* ]]; then
	for p in ${CRASH_POINTS:-$points}; do
		crash_round "$p" 0 MIG_CRASH_AT="$p"
		crash_round "$p:abrt" 0 MIG_CRASH_AT="$p:abrt"
	done
	CRASH_AGAIN=recovery:refill crash_round "zap+recovery" 0 MIG_CRASH_AT=window:zap@5
	CRASH_AGAIN=recovery:refill:abrt crash_round "fill+recovery:abrt" 0 MIG_CRASH_AT=window:fill@3
fi
[[ $phases == *" random "* ]] && crash_random_rounds $(((${CRASH_KILLS:-120} + 1) / 2))
crash_report
