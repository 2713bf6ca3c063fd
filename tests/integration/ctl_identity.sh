#!/usr/bin/env bash
# ctl_identity.sh - a queued job acts on the process its request named, or
# on none: a request for pid P waits behind a long job, P exits and its
# number goes to a new process (forced with ns_last_pid in a pid namespace
# of the test's own); when the job starts it fails with ESRCH and a reason,
# and the new process is never touched (no uffd, no tracer, data intact).
set -u
if [ -z "${MIGD_TEST_PIDNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (pid namespace, ns_last_pid)"; exit 77; }
	command -v unshare >/dev/null || { echo "SKIP: unshare (util-linux) missing"; exit 77; }
	# migd, the tenants and this script share a new pid namespace, where
	# nothing else forks: pid numbers are ours to steer.
	MIGD_TEST_PIDNS=1 exec unshare --pid --fork --mount-proc "$0" "$@"
fi
. "$(dirname "$0")/daemon_lib.sh"
need_root
[ -w /proc/sys/kernel/ns_last_pid ] || skip "/proc/sys/kernel/ns_last_pid is not writable"
write_config "max_jobs = 1"
start_migd

# A: the long job that holds the only slot (64 MiB at 4 MiB/s, about 16 s).
start_tenant 64
A=$TENANT_PID
A_RANGE=$TENANT_RANGE
python3 - "$T/migd.sock" "$A" "$A_RANGE" >"$T/a.out" 2>&1 <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
req = {"id": 1, "cmd": "migrate", "pid": int(sys.argv[2]), "to": "0", "force": True,
       "ranges": [sys.argv[3]], "rate_limit": "4M"}
s.sendall((json.dumps(req) + "\n").encode())
f = s.makefile("rb")
for line in f:
    o = json.loads(line)
    if o.get("event") == "started":
        print("started", flush=True)
    if "event" not in o:
        print(json.dumps(o))
        break
PY
ACLIENT=$!
PIDS+=("$ACLIENT")
for _ in $(seq 200); do grep -q '^started' "$T/a.out" && break; sleep 0.05; done
grep -q '^started' "$T/a.out" || fail "job A did not start: $(cat "$T/a.out")"

# B: the request for pid P, queued behind A.
start_tenant 16
P=$TENANT_PID
python3 - "$T/migd.sock" "$P" >"$T/b.out" 2>&1 <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
req = {"id": 2, "cmd": "migrate", "pid": int(sys.argv[2]), "to": "0", "force": True}
s.sendall((json.dumps(req) + "\n").encode())
f = s.makefile("rb")
for line in f:
    o = json.loads(line)
    if o.get("event") == "queued":
        print("queued", o["job"], flush=True)
    if "event" not in o:
        print(json.dumps(o), flush=True)
        break
PY
BCLIENT=$!
PIDS+=("$BCLIENT")
for _ in $(seq 100); do grep -q '^queued' "$T/b.out" && break; sleep 0.05; done
grep -q '^queued' "$T/b.out" || fail "request for pid $P was not queued: $(cat "$T/b.out")"

# P exits and is reaped; a new process takes the number P.
kill "$P"
wait "$P" 2>/dev/null
NEW=
for _ in $(seq 20); do
	echo $((P - 1)) >/proc/sys/kernel/ns_last_pid
	start_tenant 16
	[ "$TENANT_PID" = "$P" ] && { NEW=$TENANT_PID; break; }
	kill "$TENANT_PID"; wait "$TENANT_PID" 2>/dev/null
done
[ -n "$NEW" ] || fail "could not get pid $P again"
[ "$("$MIGCTL" --json status | json jobs_running)" = 1 ] ||
	fail "job A ended before the pid was reused; the test proves nothing"
echo "# pid $P exited and was reused while its job was queued behind job A"

wait "$BCLIENT"
out=$(tail -n 1 "$T/b.out")
echo "# reply: $out"
[ "$(echo "$out" | json errno)" = ESRCH ] || fail "job for the old pid $P: want ESRCH, got $out"
echo "$out" | json reason | grep -q "now names another process" || fail "no reason in $out"
grep -q "migrate pid $P failed (ESRCH): pid $P exited and its number now names another process" \
	"$T/migd.log" || fail "the reason is not in migd's log"
grep -q "TracerPid:[[:space:]]*0" "/proc/$NEW/status" || fail "new pid $NEW is traced"
if ls -l "/proc/$NEW/fd" | grep -q userfaultfd; then fail "new pid $NEW holds a userfaultfd"; fi

"$MIGCTL" cancel 1 >/dev/null 2>&1
wait "$ACLIENT"
stop_tenant "$NEW"
stop_tenant "$A"
echo PASS
