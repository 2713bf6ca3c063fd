#!/usr/bin/env bash
# ctl_flood.sh - a client that sends requests and never reads its replies:
# migd stops at CLIENT_MAX_QUEUED of unread replies, drops the client with
# a log line, and its memory comes back (RSS before, at the peak, after).
# Meanwhile other clients are served.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
write_config
start_migd
rss() { awk '/^VmRSS/ {print $2}' "/proc/$MIGD_PID/status"; }
"$MIGCTL" status >/dev/null || fail "status"
before=$(rss)

python3 - "$T/migd.sock" "$MIGD_PID" >"$T/flood.out" 2>&1 <<'PY' || fail "flooder: $(cat "$T/flood.out")"
import socket, sys, time
path, pid = sys.argv[1], sys.argv[2]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"):
            return int(l.split()[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(path)
s.settimeout(0.5)
line = b'{"id":1,"cmd":"status"}\n' * 1000
sent, peak, t0 = 0, 0, time.time()
dropped = False
while time.time() - t0 < 60:
    try:
        sent += s.send(line)
    except socket.timeout:
        pass  # migd is not reading us (yet): look again
    except (BrokenPipeError, ConnectionResetError):
        dropped = True
        break
    peak = max(peak, rss())
print(f"sent {sent} bytes in {time.time() - t0:.1f}s, dropped={dropped}, peak_rss_kb={peak}")
sys.exit(0 if dropped else 1)
PY
cat "$T/flood.out"
peak=$(sed -n 's/.*peak_rss_kb=\([0-9]*\).*/\1/p' "$T/flood.out")
grep -q "replies unread, dropping it" "$T/migd.log" || fail "no log line for the dropped client"
"$MIGCTL" status >/dev/null || fail "migd does not answer after the flood"
sleep 0.5
after=$(rss)
echo "# flood: migd RSS before ${before} KiB, peak ${peak} KiB, after the drop ${after} KiB"
[ $((peak - before)) -lt 16384 ] || fail "RSS grew by $((peak - before)) KiB during the flood"
[ $((after - before)) -lt 4096 ] || fail "RSS stayed $((after - before)) KiB up after the drop"
[ "$("$MIGCTL" --json stats | json clients_dropped)" = 1 ] || fail "clients_dropped"
echo PASS
