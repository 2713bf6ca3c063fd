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

# The refusals are in migd's log too, with who asked and libmig's reason.
for want in "refused 'placement' of uid 65534 (pid [0-9]*): EPERM: uid 65534 may not act on pid $TENANT_PID (owned by uid 0)" \
	"refused 'migrate' of uid 65534 (pid [0-9]*): EPERM: uid 65534 may not act on pid $TENANT_PID (owned by uid 0)" \
	"refused 'reload' of uid 65534 (pid [0-9]*): EPERM: 'reload' is for root only" \
	"refused 'migrate' of uid 65534 (pid [0-9]*): EPERM: pid $NP is not named by any policy"; do
	grep -q "$want" "$T/migd.log" || fail "not in migd's log: $want"
done
echo "# logged: $(grep -c '^migd: refused' "$T/migd.log") refusals, e.g. $(grep -m1 "^migd: refused 'placement'" "$T/migd.log")"
# 40 refusals (a pid that does not exist) on one connection at once: the
# log takes 10 of any 10 s.
before=$(grep -c '^migd: refused' "$T/migd.log")
python3 - "$T/migd.sock" <<'PY' || fail "40 refused requests"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
req = lambda i: json.dumps({"id": i, "cmd": "placement", "pid": 4194303}) + "\n"
s.sendall("".join(req(i) for i in range(40)).encode())
n = 0
for line in s.makefile("rb"):
    o = json.loads(line)
    assert not o["ok"] and o["errno"] == "ESRCH" and "4194303" in o["reason"], o
    n += 1
    if n == 40:
        break
PY
after=$(grep -c '^migd: refused' "$T/migd.log")
echo "# 40 refusals at once: $((after - before)) logged"
[ $((after - before)) -le 10 ] || fail "$((after - before)) of 40 refusals logged: no limit"
[ $((after - before)) -ge 1 ] || [ "$before" -ge 10 ] || fail "none of 40 refusals logged"
stop_tenant "$TENANT_PID"
echo PASS
