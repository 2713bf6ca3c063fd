#!/usr/bin/env bash
# ctl_badinput.sh - what a broken or hostile client gets: malformed JSON,
# a 1 MiB line, an unknown command, wrong field types, and a client that
# disconnects in the middle of a migration (the job finishes, migd lives).
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
write_config
start_migd
start_tenant 256

python3 - "$T/migd.sock" <<'PY' || fail "bad-input client"
import json, socket, sys
path = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s, s.makefile("rb")

def ask(f, s, line):
    s.sendall(line)
    return json.loads(f.readline())

s, f = conn()
r = ask(f, s, b'{"id":1,"cmd":\n')
assert r["ok"] is False and r["errno"] == "EBADMSG", r
r = ask(f, s, b'not json at all\n')
assert r["ok"] is False and r["errno"] == "EBADMSG", r
r = ask(f, s, b'[1,2,3]\n')
assert r["ok"] is False and r["errno"] == "EINVAL", r
r = ask(f, s, b'{"id":2,"cmd":"frobnicate"}\n')
assert r["ok"] is False and r["errno"] == "EOPNOTSUPP" and r["id"] == 2, r
r = ask(f, s, b'{"id":2,"cmd":"relocate","pid":1,"src":"0x1000","len":"0x1001","dst":"0x9000"}\n')
assert r["ok"] is False and r["errno"] == "EINVAL" and "'len'" in r["error"], r
r = ask(f, s, b'{"id":3}\n')
assert r["ok"] is False and r["errno"] == "EINVAL", r
r = ask(f, s, b'{"id":4,"cmd":"migrate","pid":"12","to":"0"}\n')
assert r["ok"] is False and r["errno"] == "EINVAL", r
r = ask(f, s, b'{"id":5,"cmd":"migrate","pid":1,"to":"zero"}\n')
assert r["ok"] is False, r
r = ask(f, s, b'{"id":6,"cmd":"status"}\n')
assert r["ok"] is True and r["id"] == 6, r  # the connection survived all of that
print("# malformed, unknown, mistyped requests: error replies, connection kept")

s, f = conn()
big = b'{"id":7,"cmd":"status","pad":"' + b"x" * (1 << 20) + b'"}\n'
try:
    s.sendall(big)
except (BrokenPipeError, ConnectionResetError):
    pass  # migd stopped reading after 64 KiB and closed: expected.
r = json.loads(f.readline())
assert r["ok"] is False and r["errno"] == "EMSGSIZE", r
assert f.readline() == b"", "connection should be closed after an oversized line"
print("# 1 MiB line: EMSGSIZE reply, connection closed")
PY

# A client that asks for a migration and goes away at once.
python3 - "$T/migd.sock" "$TENANT_PID" "$TENANT_RANGE" <<'PY' || fail "vanishing client"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
req = {"id": 9, "cmd": "migrate", "pid": int(sys.argv[2]), "to": "0", "force": True,
       "ranges": [sys.argv[3]], "window": "2M"}
s.sendall((json.dumps(req) + "\n").encode())
s.close()
PY
for _ in $(seq 300); do
	st=$("$MIGCTL" --json stats) || fail "migd died after the client left"
	[ "$(echo "$st" | json jobs_succeeded)" = 1 ] && break
	[ "$(echo "$st" | json jobs_failed)" = 0 ] || fail "job failed: $st"
	sleep 0.1
done
[ "$(echo "$st" | json jobs_succeeded)" = 1 ] || fail "the abandoned job did not finish: $st"
[ "$(echo "$st" | json pages_moved)" -ge 65000 ] || fail "abandoned job moved too little: $st"
echo "# client gone mid-job: job finished, $(echo "$st" | json pages_moved) pages moved"
"$MIGCTL" status >/dev/null || fail "migd unusable after the client left"
stop_tenant "$TENANT_PID"
echo PASS
