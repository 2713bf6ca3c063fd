#!/usr/bin/env bash
# ctl_limits.sh - what a request may cost and the reasons a refused one
# carries: 1800 overlapping ranges are merged into one, too many disjoint
# ranges are refused, a 1 TiB range costs migd no per-page memory over its
# span, a window above max_window is refused, a connection has at most two
# placement reads in flight, a FIFO in policies.d is skipped at reload
# without blocking, and refusals say why (non-anonymous range, missing pid,
# another uid's process, a process libmig may not attach to) in --json's
# "reason" and in migctl's human output.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
command -v setpriv >/dev/null || skip "setpriv (util-linux) missing"
write_config "max_window = 8M"
start_migd
start_tenant 64
rss() { awk '/^VmRSS/ {print $2}' "/proc/$MIGD_PID/status"; }
start=$((${TENANT_RANGE%-*}))
end=$((${TENANT_RANGE#*-}))

# 1800 overlapping ranges (what fits in a request line): one range, each page asked for once.
python3 - "$T/migd.sock" "$TENANT_PID" "$start" "$end" <<'PY' || fail "overlapping ranges"
import json, socket, sys
path, pid, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rs = [f"{start + (i % 16) * 4096:#x}-{end - (i % 8) * 4096:#x}" for i in range(1800)]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
f = s.makefile("rb")
def ask(req):
    s.sendall((json.dumps(req, separators=(",", ":")) + "\n").encode())
    for line in f:
        o = json.loads(line)
        if "event" not in o:
            return o
r = ask({"id": 1, "cmd": "migrate", "pid": pid, "to": "0", "force": True, "ranges": rs})
assert r["ok"], r
assert r["pages_total"] == (end - start) // 4096, r
print(f"# 1800 overlapping ranges: merged, pages_total {r['pages_total']}, moved {r['pages_moved']}")
rs = [f"{start + i * 8192:#x}+4K" for i in range(1100)]
r = ask({"id": 2, "cmd": "placement", "pid": pid, "ranges": rs})
assert not r["ok"] and r["errno"] == "E2BIG" and "after merging" in r["reason"], r
print(f"# 1100 disjoint ranges: {r['errno']}: {r['reason']}")
PY

# A 1 TiB range over the tenant: the work follows what is mapped.
before=$(rss)
big="0x$(printf %x $((start & ~((1 << 30) - 1))))+1T"
out=$("$MIGCTL" --json placement "$TENANT_PID" --range "$big") || fail "placement of 1 TiB: $out"
[ "$(echo "$out" | json nodes 0)" -ge 16000 ] || fail "placement of 1 TiB lost the tenant: $out"
# Exit 4 (some pages failed, e.g. EBUSY on a page the tenant holds) is a finished job too.
out=$("$MIGCTL" --json migrate "$TENANT_PID" --to 0 --force --range "$big"); rc=$?
[ $rc = 0 ] || [ $rc = 4 ] || fail "migrate 1 TiB: rc=$rc $out"
after=$(rss)
echo "# 1 TiB range: pages_total $(echo "$out" | json pages_total), pages_not_anon $(echo "$out" | json pages_not_anon); migd RSS ${before} -> ${after} KiB"
[ "$(echo "$out" | json pages_total)" -lt 1048576 ] || fail "1 TiB: the job counted the span, not the mapped memory: $out"
[ $((after - before)) -lt 32768 ] || fail "a 1 TiB range cost migd $((after - before)) KiB"

out=$("$MIGCTL" --json migrate "$TENANT_PID" --to 0 --window 64M); rc=$?
[ $rc = 1 ] && [ "$(echo "$out" | json errno)" = EINVAL ] && echo "$out" | json reason | grep -q max_window ||
	fail "window above max_window: rc=$rc $out"

# Three placement reads at once on one connection: the third waits its turn.
python3 - "$T/migd.sock" "$TENANT_PID" <<'PY' || fail "placement in flight"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
req = lambda i: json.dumps({"id": i, "cmd": "placement", "pid": int(sys.argv[2])}) + "\n"
s.sendall("".join(req(i) for i in range(3)).encode())
got = {}
for line in s.makefile("rb"):
    o = json.loads(line)
    got[o["id"]] = o
    if len(got) == 3:
        break
assert got[0]["ok"] and got[1]["ok"], got
assert not got[2]["ok"] and got[2]["errno"] == "EBUSY", got[2]
print(f"# third placement read in flight: {got[2]['errno']}: {got[2]['reason']}")
PY

# Reasons. A file mapping of the tenant: refused before any attach.
file_range=$(awk '$6 ~ /demo_tenant/ {print $1; exit}' "/proc/$TENANT_PID/maps")
out=$("$MIGCTL" --json migrate "$TENANT_PID" --to 0 --range "0x${file_range%-*}-0x${file_range#*-}"); rc=$?
echo "# non-anonymous range: $out"
[ $rc = 1 ] && [ "$(echo "$out" | json errno)" = EFAULT ] || fail "file range: rc=$rc $out"
echo "$out" | json reason | grep -q "hold.* no anonymous private memory" || fail "file range reason: $out"
grep -q "hold.* no anonymous private memory" "$T/migd.log" || fail "file range reason not logged"
err=$("$MIGCTL" migrate "$TENANT_PID" --to 0 --range "0x${file_range%-*}-0x${file_range#*-}" 2>&1 >/dev/null)
echo "$err" | grep -q "reason: .*no anonymous private memory" || fail "human output lacks the reason: $err"

out=$("$MIGCTL" --json placement 4194303); rc=$?
[ $rc = 1 ] && echo "$out" | json reason | grep -q "no such process: 4194303" || fail "missing pid: $out"

chmod 0666 "$T/migd.sock"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$MIGCTL" --json placement "$TENANT_PID"); rc=$?
[ $rc = 1 ] && echo "$out" | json reason | grep -q "uid 65534 may not act on pid $TENANT_PID (owned by uid 0)" ||
	fail "nobody on root's tenant: $out"

# A tenant of another uid: attach either works or fails with libmig's reason.
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$TENANT" 16 >"$T/nobody.out" 2>&1 &
NT=$!
PIDS+=("$NT")
for _ in $(seq 100); do grep -q '^ready' "$T/nobody.out" && break; sleep 0.05; done
out=$("$MIGCTL" --json migrate "$NT" --to 0 --force); rc=$?
echo "# root migrates a tenant of uid nobody: rc=$rc $out"
# Since any uid can be attached (issue 15) this is a migration; migctl
# exits 4 when some pages stayed (the executor's own, EBUSY). A refusal
# (an "error" in the reply) must carry libmig's reason.
if echo "$out" | grep -q '"error"'; then
	reason=$(echo "$out" | json reason)
	[ "$reason" != "Operation not permitted" ] && echo "$reason" | grep -q "pid $NT" ||
		fail "the refusal lacks libmig's reason: $out"
	grep -qF "$reason" "$T/migd.log" || fail "the reason is not in the log"
elif [ $rc != 0 ] && [ $rc != 4 ]; then
	fail "migrating the nobody tenant: rc $rc: $out"
else
	moved=$(echo "$out" | json pages_moved)
	[ "${moved:-0}" -gt 0 ] || fail "nothing moved of the nobody tenant: $out"
fi

# A FIFO in the policy directory: skipped with a warning, the reload does not block.
mkfifo "$T/policies.d/pipe.ini"
timeout 10 "$MIGCTL" reload >/dev/null || fail "reload with a FIFO in policies.d"
grep -q "pipe.ini: not a regular file, skipped" "$T/migd.log" || fail "no warning for the FIFO"
echo "# FIFO in policies.d: skipped at reload"
stop_tenant "$TENANT_PID"
echo PASS
