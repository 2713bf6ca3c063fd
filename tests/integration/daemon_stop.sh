#!/usr/bin/env bash
# daemon_stop.sh - SIGTERM while a migration runs: migd lets the current
# window finish, detaches, exits 0, and the tenant keeps running,
# unblocked and not traced, with its memory intact.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
write_config
start_migd
start_tenant 512
"$MIGCTL" --quiet migrate "$TENANT_PID" --to 0 --force --window 2M --range "$TENANT_RANGE" >"$T/job.out" 2>&1 &
CTL=$!
sleep 0.3
kill -TERM "$MIGD_PID"
wait "$MIGD_PID"; rc=$?
[ $rc = 0 ] || fail "migd exited $rc on SIGTERM"
wait "$CTL"
echo "# migctl during the stop: $(tr '\n' ' ' <"$T/job.out")"
[ -e "$T/migd.sock" ] && fail "socket left behind"
grep -q "TracerPid:[[:space:]]*0" "/proc/$TENANT_PID/status" || fail "tenant still traced"
state=$(awk '/^State:/ {print $2}' "/proc/$TENANT_PID/status")
case $state in S|R) ;; *) fail "tenant state $state" ;; esac
stop_tenant "$TENANT_PID"
echo PASS
