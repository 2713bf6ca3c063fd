#!/usr/bin/env bash
# daemon_discovery.sh - a tenant started in a cgroup a policy names is
# found and migrated on its own (trigger = on-attach); a process in a
# cgroup no policy names is never touched; a tenant that exits is dropped.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
root=$(cgroup2_root) || skip "no cgroup2 mount"
name=migd-test-$$
mkdir "$root/$name.slice" "$root/$name-other.slice" || skip "cannot create cgroups under $root"
CGROUPS+=("$root/$name.slice" "$root/$name-other.slice")
write_config
# Default VMA selection: heap and every anonymous mapping (whole process).
printf '[policy]\ncgroup = /%s.slice\nnodes = 0\ntrigger = on-attach\n' "$name" \
	>"$T/policies.d/far.ini"
start_migd

start_tenant 64
A=$TENANT_PID
echo "$A" >"$root/$name.slice/cgroup.procs"
start_tenant 16
B=$TENANT_PID
echo "$B" >"$root/$name-other.slice/cgroup.procs"

for _ in $(seq 100); do
	[ "$("$MIGCTL" --json stats | json jobs_succeeded)" -ge 1 ] && break
	sleep 0.1
done
"$MIGCTL" tenants
tj=$("$MIGCTL" --json tenants)
[ "$(echo "$tj" | json tenants 0 pid)" = "$A" ] || fail "tenant $A not found: $tj"
[ "$(echo "$tj" | json tenants 0 policy)" = far ] || fail "wrong policy: $tj"
echo "$tj" | grep -q "\"pid\":$B," && fail "pid $B in an unnamed cgroup became a tenant"
st=$("$MIGCTL" --json stats)
[ "$(echo "$st" | json jobs_succeeded)" = 1 ] || fail "policy job did not succeed: $st $(cat "$T/migd.log")"
echo "# on-attach policy job: $(echo "$st" | json pages_moved) pages moved (already on node 0 unless forced)"
grep -q "TracerPid:[[:space:]]*0" "/proc/$B/status" || fail "pid $B was traced"

stop_tenant "$A"
sleep 0.6
n=$("$MIGCTL" --json tenants | json tenants | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 0 ] || fail "exited tenant still listed"
stop_tenant "$B"
echo PASS
