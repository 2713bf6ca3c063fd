#!/usr/bin/env bash
# ctl_load.sh - migd under load: LOAD_TENANTS tenants (50) that keep
# writing, max_jobs = 8, LOAD_CLIENTS clients (20) sending status, tenants,
# stats, placement, migrate and cancel requests for LOAD_SECS (120) seconds.
# Passes when migd answers throughout and after (no deadlock), every job
# ends, every tenant's data checks out, migd's memory is back near where it
# started, and migd exits cleanly (with SANITIZE=1: no ASan/LSan report).
# Prints the control socket's latency (time to the first line of the
# answer) at p50, p99 and max.
set -u
. "$(dirname "$(readlink -f "$0")")/../integration/daemon_lib.sh"
need_root
NT=${LOAD_TENANTS:-50}
NC=${LOAD_CLIENTS:-20}
SECS=${LOAD_SECS:-120}
write_config "max_jobs = 8"
start_migd
rss() { awk '/^VmRSS/ {print $2}' "/proc/$MIGD_PID/status"; }

TPIDS=()
RANGES=()
for _ in $(seq "$NT"); do
	start_tenant 4
	TPIDS+=("$TENANT_PID")
	RANGES+=("$TENANT_RANGE")
done
"$MIGCTL" status >/dev/null || fail "status"
rss0=$(rss)

python3 - "$T/migd.sock" "$NC" "$SECS" "${TPIDS[*]}" "${RANGES[*]}" >"$T/load.out" 2>&1 <<'PY'
import json, random, socket, sys, threading, time
path, nclients, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pids = [int(p) for p in sys.argv[4].split()]
ranges = dict(zip(pids, sys.argv[5].split()))
lat, errors, counts, by_op = [], [], {}, {}
lock = threading.Lock()
deadline = time.time() + secs
# Answers a loaded migd may rightly give.
expected = {"EBUSY", "ECANCELED", "ENOENT", "EALREADY"}

def client(n):
    # A client whose answer does not come within its socket timeout (60 s),
    # or that fails in any other way, is an error, not a quietly dead thread.
    try:
        run_client(n)
    except Exception as e:
        with lock:
            errors.append(f"client {n}: {type(e).__name__}: {e}")

def run_client(n):
    rnd = random.Random(n)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(60)
    f = s.makefile("rb")
    i = 0
    while time.time() < deadline:
        i += 1
        pid = rnd.choice(pids)
        op = rnd.choices(["status", "tenants", "stats", "placement", "migrate", "cancel"],
                         [25, 10, 10, 20, 30, 5])[0]
        req = {"id": i, "cmd": op}
        if op == "placement":
            req["pid"] = pid
        elif op == "migrate":
            req.update(pid=pid, to="0", force=True, ranges=[ranges[pid]], window="2M")
        elif op == "cancel":
            req["job"] = rnd.randint(1, 400)
        t0 = time.monotonic()
        s.sendall((json.dumps(req) + "\n").encode())
        first = None
        while True:
            line = f.readline()
            if not line:
                with lock:
                    errors.append(f"client {n}: connection closed")
                return
            if first is None:
                first = time.monotonic() - t0
            o = json.loads(line)
            if "event" not in o:
                break
        with lock:
            lat.append(first)
            by_op.setdefault(op, []).append(first)
            key = op if o["ok"] else f"{op}:{o['errno']}"
            counts[key] = counts.get(key, 0) + 1
            if not o["ok"] and o["errno"] not in expected:
                errors.append(f"{op} pid {pid}: {o['errno']}: {o.get('reason')}")

threads = [threading.Thread(target=client, args=(n,)) for n in range(nclients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] * 1000
# A job's first line is its "queued" event (migrate) or its reply (placement,
# which waits its turn behind the reads running): "answers" are the rest.
answers = [x for op in ("status", "tenants", "stats", "cancel", "migrate") for x in by_op.get(op, [])]
print(f"requests {len(lat)} p50_ms {pct(lat, 0.50):.2f} p99_ms {pct(lat, 0.99):.2f} "
      f"max_ms {max(lat) * 1000:.2f}; without placement reads: p99_ms {pct(answers, 0.99):.2f}")
print("p99_ms_by_op", " ".join(f"{op}={pct(v, 0.99):.1f}" for op, v in sorted(by_op.items())))
print("counts", json.dumps(counts, sort_keys=True))
for e in errors[:20]:
    print("error", e)
sys.exit(1 if errors else 0)
PY
rc=$?
cat "$T/load.out"
[ $rc = 0 ] || fail "load clients saw errors"
# Every job ends and migd still answers at once.
for _ in $(seq 300); do
	st=$(timeout 5 "$MIGCTL" --json status) || fail "migd does not answer after the load"
	[ "$(echo "$st" | json jobs_running)" = 0 ] && [ "$(echo "$st" | json jobs_queued)" = 0 ] && break
	sleep 0.2
done
[ "$(echo "$st" | json jobs_running)" = 0 ] || fail "jobs still running: $st"
stats=$("$MIGCTL" --json stats)
rss1=$(rss)
for p in "${TPIDS[@]}"; do stop_tenant "$p" >/dev/null; done
kill -TERM "$MIGD_PID"
wait "$MIGD_PID"
mrc=$?
grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$T/migd.log" && fail "sanitizer report"
[ $mrc = 0 ] || fail "migd exited with $mrc"
l=$(head -n 1 "$T/load.out")
echo "# load: $NT tenants, max_jobs 8, $NC clients, ${SECS}s: $l"
echo "# load: $(sed -n 2p "$T/load.out")"
echo "# load: jobs succeeded $(echo "$stats" | json jobs_succeeded), failed $(echo "$stats" | json jobs_failed), cancelled $(echo "$stats" | json jobs_cancelled); migd RSS ${rss0} -> ${rss1} KiB"
# Under ASan freed memory sits in its quarantine: LeakSanitizer at exit is the check there.
if ! ldd "$MIGD" | grep -q libasan; then
	[ $((rss1 - rss0)) -lt 32768 ] || fail "migd RSS grew by $((rss1 - rss0)) KiB"
fi
echo PASS
