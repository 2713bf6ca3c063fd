#!/usr/bin/env bash
# ctl_auth.sh - SO_PEERCRED authorization with a real second uid: nobody
# may read status but is refused placement/migrate/cancel on root's tenant
# and reload; it sees only its own tenants, and may not name a process no
# policy names, even one it owns.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
command -v setpriv >/dev/null || skip "setpriv (util-linux) missing"
write_config
start_migd
start_tenant 16
[ "$(stat -c %a "$T/migd.sock")" = 660 ] || fail "socket mode is $(stat -c %a "$T/migd.sock"), want 660"
# The test opens the socket to nobody on purpose, to reach the uid check.
chmod 0666 "$T/migd.sock"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

as_nobody "$MIGCTL" --json status >/dev/null || fail "nobody: status should work"
out=$(as_nobody "$MIGCTL" --json placement "$TENANT_PID"); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q EPERM || fail "nobody: placement of root's tenant: rc=$rc $out"
out=$(as_nobody "$MIGCTL" --json migrate "$TENANT_PID" --to 0 --force); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q EPERM || fail "nobody: migrate of root's tenant: rc=$rc $out"
out=$(as_nobody "$MIGCTL" --json reload); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q EPERM || fail "nobody: reload: rc=$rc $out"

# nobody's own process, named by no policy: placement yes, migrate no.
setpriv --reuid=nobody --regid=nogroup --clear-groups -- sleep 30 &
NP=$!
PIDS+=("$NP")
sleep 0.2
as_nobody "$MIGCTL" --json placement "$NP" >/dev/null || fail "nobody: placement of its own process"
out=$(as_nobody "$MIGCTL" --json migrate "$NP" --to 0); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "not named by any policy" || fail "nobody: migrate unnamed: rc=$rc $out"
out=$("$MIGCTL" --json migrate "$TENANT_PID" --to 0 --force --range "$TENANT_RANGE") || fail "root: migrate"
RJOB=$(echo "$out" | json job)
n=$(as_nobody "$MIGCTL" --json tenants | json tenants | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 0 ] || fail "nobody sees $n tenants of root"
out=$(as_nobody "$MIGCTL" --json cancel "$RJOB"); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q ENOENT || fail "nobody: cancel root's job: rc=$rc $out"
stop_tenant "$TENANT_PID"
echo PASS
