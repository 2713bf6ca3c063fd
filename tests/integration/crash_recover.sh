#!/usr/bin/env bash
# crash_recover.sh - migd killed in the middle of a migration and started
# again: the tenant (writer, 2 threads writing throughout) must be alive,
# write again within 2 s of the restart, verify every page, and the
# journal must be gone (docs/engine.md, "After a crash").
#
# Each crash point of a window once (MIG_CRASH_AT, SIGKILL; two with SIGABRT, what
# systemd's watchdog sends), two of an injection, a crash during recovery
# itself, then CRASH_RANDOM (default 3) kills by SIGKILL and as many by
# SIGABRT at random moments of a migration (spread over one uninterrupted
# migration's time). make check-stress runs the long loop
# (tests/stress/crash_kill_loop.sh; in the guests guest-crash.sh).
# It runs with migd's default window protocol, move first where the kernel
# has UFFDIO_MOVE (the calibrating job's summary says which: CRASH_MF);
# CRASH_WINDOW=classic or movefirst sets migd.conf's window_protocol
# (docs/engine.md, "Move first, copy after").
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/crash_lib.sh"
need_root
write_config ${CRASH_WINDOW:+"window_protocol = $CRASH_WINDOW"}

crash_calibrate
points=${CRASH_POINTS:-"window:freeze window:stage window:zap window:step window:fill window:zap:abrt window:fill@2:abrt inject:entry inject:restore:abrt"}
# A move-first window has no FREEZE and no STAGE: those points are never reached.
[ "$CRASH_MF" = 1 ] && points=${CRASH_POINTS:-"window:zap window:step window:fill window:zap:abrt window:fill@2:abrt inject:entry inject:restore:abrt"}
crash_points $points
# A tenant that forked: MOVE refuses the pages it has not written since, and
# a move-first window that meets them goes on classic (its journal then
# says so: recovery reads staging). Killed after such a classic zap.
[ "$CRASH_MF" = 1 ] &&
	CRASH_WRITER_ARGS=--fork-child crash_round "forked: window:switched" 0 MIG_CRASH_AT=window:switched
CRASH_AGAIN=recovery:refill crash_round "zap+recovery" 0 MIG_CRASH_AT=window:zap
crash_random_rounds "${CRASH_RANDOM:-3}"

# A tenant that cannot be brought back is named loudly and never migrated
# again: the staging file is removed after a crash between zap and fill,
# so the content of the pages taken out is nowhere. A move-first window
# keeps that content in the tenant's scratch area, not in staging: there
# this case does not arise, so it runs with classic windows.
if [ "$CRASH_MF" = 1 ]; then
	echo "# unrecoverable: with window_protocol = classic (move first keeps no content in staging)"
	write_config "window_protocol = classic"
fi
echo "unrecoverable: staging removed after a crash at zap"
: >"$T/migd.log"
crash_start_writer || fail "writer did not start"
crash_start_migd MIG_CRASH_AT=window:zap || fail "migd did not start"
"$MIGCTL" --quiet migrate "$WPID" "${CRASH_TO[@]}" >/dev/null 2>&1
crash_wait_migd 60 || fail "migd did not die at zap"
ls "$T"/state/*.journal >/dev/null 2>&1 || fail "no journal after a crash at zap"
rm -f "$T"/run/staging/*
crash_start_migd || fail "migd did not restart"
if ! grep -q "NOT recovered" "$T/migd.log" &&
	grep -q "recovered after a crash of migd .*: 0 pages put back" "$T/migd.log"; then
	# Nothing was out of the tenant when migd died (a slow guest can die at
	# zap before its first page left): nothing to lose, recovered. The
	# unrecoverable case did not arise in this run.
	echo "# unrecoverable: nothing was taken out at the crash; recovered, case not exercised"
	kill "$MIGD_PID"
	crash_wait_migd 30
	kill -9 "$WPID"
	wait "$WPID" 2>/dev/null
	exec 7>&- 8<&-
	crash_report
	exit
fi
grep -q "NOT recovered" "$T/migd.log" || fail "no error logged for the unrecoverable tenant"
out=$("$MIGCTL" tenants 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
[ $rc = 5 ] || fail "migctl tenants exited $rc, not 5 (unrecovered)"
echo "$out" | grep -q "unrecovered" || fail "migctl tenants does not say unrecovered"
"$MIGCTL" status >/dev/null 2>&1
rc=$?
[ $rc = 5 ] || fail "migctl status exited $rc, not 5"
out=$("$MIGCTL" migrate "$WPID" "${CRASH_TO[@]}" 2>&1)
rc=$?
echo "  | $out"
[ $rc = 1 ] && echo "$out" | grep -q "not recovered" || fail "migctl migrate of an unrecovered tenant: exit $rc"
ls "$T"/state/*.journal >/dev/null 2>&1 || fail "the journal of an unrecovered tenant was removed"
kill -9 "$WPID"
wait "$WPID" 2>/dev/null
exec 7>&- 8<&-
kill "$MIGD_PID"
crash_wait_migd 30
crash_start_migd || fail "migd did not restart"
grep -q "dropped: the tenant has exited" "$T/migd.log" || fail "journal of the exited tenant not dropped"
ls "$T"/state/*.journal >/dev/null 2>&1 && fail "journal of the exited tenant left"
kill "$MIGD_PID"
crash_wait_migd 30

crash_report
