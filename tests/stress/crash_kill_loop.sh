#!/usr/bin/env bash
# crash_kill_loop.sh - the long form of tests/integration/crash_recover.sh
# for make check-stress: every crash point with SIGKILL and with SIGABRT,
# then CRASH_KILLS (default 60) kill -9 of migd at random moments of a
# migration of a 256 MiB tenant whose two writers never pause. After each
# restart the tenant must write again within 2 s, verify every page, and
# no journal may be left (docs/engine.md, "After a crash").
CRASH_MIB=${CRASH_MIB:-256}
source "$(dirname "$0")/../integration/daemon_lib.sh"
source "$(dirname "$0")/../integration/crash_lib.sh"
need_root
write_config

for p in freeze stage zap step fill; do
	crash_round "window:$p" 0 MIG_CRASH_AT="window:$p@2"
	crash_round "window:$p:abrt" 0 MIG_CRASH_AT="window:$p@3:abrt"
done
CRASH_AGAIN=recovery:refill crash_round "zap+recovery" 0 MIG_CRASH_AT=window:zap@5
CRASH_AGAIN=recovery:refill:abrt crash_round "fill+recovery:abrt" 0 MIG_CRASH_AT=window:fill@3
for i in $(seq "${CRASH_KILLS:-60}"); do
	d=$(printf '0.%03d' $((RANDOM % 600 + 5)))
	crash_round "kill $i @${d}s" "$d"
done
crash_report
