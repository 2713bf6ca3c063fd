# daemon_lib.sh - sourced by the daemon_*.sh and ctl_*.sh integration tests:
# start a private migd (temporary socket, policy dir and cgroup), start
# tenants, and clean up only what the test started, by pid.
# shellcheck shell=bash

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# MIG_BUILD: another build tree, e.g. a SANITIZE=1 build in build-san
# (tests/stress/ctl_load.sh's ASan run) next to the plain one.
MIG_BUILD=${MIG_BUILD:-$top/build}
MIGD=$MIG_BUILD/migd
MIGCTL=$MIG_BUILD/migctl
TENANT=$MIG_BUILD/tests/tenants/demo_tenant

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -n "${T:-}" ] && [ -f "$T/migd.log" ] && sed 's/^/  migd| /' "$T/migd.log"; exit 1; }
# A host as Debian ships it, where a tenant of uid nobody cannot make a
# uffd itself (and setpriv to start one).
need_stock_uffd() {
	command -v setpriv >/dev/null || skip "setpriv (util-linux) missing"
	[ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 0 ] ||
		skip "vm.unprivileged_userfaultfd is not 0 (a nobody tenant could make its own uffd)"
	[ "$(stat -c %a /dev/userfaultfd 2>/dev/null)" = 600 ] || skip "/dev/userfaultfd is not mode 0600"
}
need_root() { [ "$(id -u)" = 0 ] || skip "needs root (ptrace, pidfd_getfd, cgroups)"; }

T=$(mktemp -d /tmp/migd-test.XXXXXX)
chmod 0755 "$T"
export MIGD_SOCKET=$T/migd.sock
PIDS=()
CGROUPS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for p in "${CGROUPS[@]}"; do rmdir "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

cgroup2_root() {
	local d
	for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
		[ "$(stat -f -c %T "$d" 2>/dev/null)" = cgroup2fs ] && { echo "$d"; return 0; }
	done
	return 1
}

# write_config [extra [migd] lines...]
write_config() {
	mkdir -p "$T/policies.d"
	{
		echo "[migd]"
		echo "socket = $T/migd.sock"
		echo "policy_dir = $T/policies.d"
		echo "state_dir = $T/state"
		echo "runtime_dir = $T/run"
		echo "scan_interval = 200ms"
		for l in "$@"; do echo "$l"; done
	} >"$T/migd.ini"
}

start_migd() {
	"$MIGD" --foreground --config "$T/migd.ini" >"$T/migd.log" 2>&1 &
	MIGD_PID=$!
	PIDS+=("$MIGD_PID")
	for _ in $(seq 100); do
		[ -S "$T/migd.sock" ] && return 0
		kill -0 "$MIGD_PID" 2>/dev/null || fail "migd exited at start"
		sleep 0.05
	done
	fail "migd did not create its socket"
}

# start_tenant MIB [VAR=VALUE...] -> sets TENANT_PID, TENANT_RANGE; output in
# $T/tenant.$pid. The variables are set for the tenant only; the command in
# the array TENANT_WRAP (e.g. setpriv ... --), if any, runs it.
TENANT_WRAP=()
start_tenant() {
	local out=$T/tenant.$RANDOM
	"${TENANT_WRAP[@]}" env "${@:2}" "$TENANT" "$1" >"$out" 2>&1 &
	TENANT_PID=$!
	PIDS+=("$TENANT_PID")
	for _ in $(seq 200); do
		if grep -q '^ready' "$out"; then
			TENANT_RANGE=$(awk '/^ready/ {print $3}' "$out")
			mv "$out" "$T/tenant.$TENANT_PID"
			return 0
		fi
		sleep 0.05
	done
	fail "tenant did not get ready: $(cat "$out")"
}

# stop_tenant PID: SIGTERM, wait, and require its own data check to pass.
stop_tenant() {
	kill "$1"
	wait "$1"
	local rc=$?
	cat "$T/tenant.$1"
	[ $rc = 0 ] || fail "tenant $1: data check failed (exit $rc)"
}

# json FIELD... : read one JSON object on stdin, print a field path.
json() {
	python3 -c 'import json,sys
o=json.load(sys.stdin)
for k in sys.argv[1:]:
    o=o[k] if not isinstance(o,list) else o[int(k)]
print(json.dumps(o) if isinstance(o,(dict,list)) else o)' "$@"
}

# jstr KEY, jnum KEY: a string or number field of the JSON reply on stdin
# (sed, not python: these run in the busybox guests too).
jstr() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }
jnum() { sed -n "s/.*\"$1\": *\([0-9-]*\).*/\1/p" | head -n 1; }
# has_move: the running kernel has UFFDIO_MOVE (Linux 6.8+).
has_move() {
	local v maj min
	v=$(uname -r)
	v=${v%%-*}
	maj=${v%%.*} min=${v#*.}
	min=${min%%.*}
	[ "$maj" -gt 6 ] || { [ "$maj" = 6 ] && [ "$min" -ge 8 ]; }
}
