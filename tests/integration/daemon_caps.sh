#!/usr/bin/env bash
# daemon_caps.sh - migd with exactly the capabilities its unit gives it
# (CapabilityBoundingSet= of systemd/migd.service, NoNewPrivileges=yes),
# not full root, on a host as Debian ships it (vm.unprivileged_userfaultfd
# = 0, /dev/userfaultfd 0600): root migrates on demand a tenant of uid
# nobody by ptrace and another one through its agent, reads their
# placement, and each tenant's own check of every page passes. Under the
# unit migd once lacked CAP_DAC_OVERRIDE (/proc/PID/mem of another uid:
# EACCES) and took a live tenant of another uid for exited (its liveness
# check was a signal 0, which needs CAP_KILL); the systemd guest's
# 74-systemd-tenants found both, this shows them on the host.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
need_stock_uffd
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$top/systemd/migd.service")
[ -n "$caps" ] || fail "no CapabilityBoundingSet= in systemd/migd.service"
bset=-all
for c in $caps; do
	c=${c#CAP_}
	bset="$bset,+$(echo "$c" | tr 'A-Z' 'a-z')"
done
AGENT=$MIG_BUILD/libmig-agent.so
write_config
chmod 0755 "$T"

setpriv --bounding-set="$bset" --inh-caps=-all --no-new-privs -- \
	"$MIGD" --foreground --config "$T/migd.ini" >"$T/migd.log" 2>&1 &
MIGD_PID=$!
PIDS+=("$MIGD_PID")
for _ in $(seq 100); do
	[ -S "$T/migd.sock" ] && break
	kill -0 "$MIGD_PID" 2>/dev/null || fail "migd exited at start"
	sleep 0.05
done
[ -S "$T/migd.sock" ] || fail "migd did not create its socket"
eff=$(awk '/^CapEff:/ { print $2 }' "/proc/$MIGD_PID/status")
bnd=$(awk '/^CapBnd:/ { print $2 }' "/proc/$MIGD_PID/status")
echo "# migd with the unit's capabilities ($caps): CapEff $eff, CapBnd $bnd"
[ "$eff" = "$bnd" ] || fail "CapEff $eff is not the bounding set $bnd"

# start_nobody MIB [VAR=VALUE...]: a demo tenant of uid nobody.
start_nobody() {
	TENANT_WRAP=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
	start_tenant "$@"
	TENANT_WRAP=()
}

start_nobody 32
PT=$TENANT_PID
PT_RANGE=$TENANT_RANGE
start_nobody 32 LD_PRELOAD="$AGENT" MIGD_AGENT_SOCKET="$T/agent.sock"
AT=$TENANT_PID
AT_RANGE=$TENANT_RANGE
for _ in $(seq 100); do grep -q "pid $AT (uid 65534): agent connected" "$T/migd.log" && break; sleep 0.1; done
grep -q "pid $AT (uid 65534): agent connected" "$T/migd.log" || fail "the agent of pid $AT did not connect"

for t in "$PT $PT_RANGE ptrace" "$AT $AT_RANGE agent"; do
	set -- $t
	out=$("$MIGCTL" --json placement "$1" --range "$2") || fail "placement of nobody's pid $1: $out"
	out=$("$MIGCTL" --json migrate "$1" --to 0 --force --range "$2")
	rc=$?
	echo "# nobody's tenant $1 ($3): rc=$rc pages_moved $(echo "$out" | json pages_moved 2>/dev/null)," \
		"attach $(echo "$out" | json attach 2>/dev/null)"
	[ $rc = 0 ] || [ $rc = 4 ] || fail "migrating nobody's tenant $1 ($3): rc $rc: $out"
	[ "$(echo "$out" | json attach)" = "$3" ] || fail "pid $1 not attached by $3: $out"
	[ "$(echo "$out" | json pages_moved)" -gt 0 ] || fail "nothing moved of pid $1: $out"
	[ "$(find "/proc/$1/fd" -lname /dev/userfaultfd | wc -l)" = 0 ] || fail "pid $1 kept /dev/userfaultfd"
done
kill "$PT" "$AT"
for p in "$PT" "$AT"; do
	wait "$p" || fail "tenant $p: data check failed: $(cat "$T/tenant.$p")"
	grep '^data check' "$T/tenant.$p"
done
echo PASS
