#!/usr/bin/env bash
# daemon_handdev.sh - migd.conf hand_device = no: migd never hands
# /dev/userfaultfd to a tenant. On a host as Debian ships it
# (vm.unprivileged_userfaultfd = 0, /dev/userfaultfd 0600) a tenant of uid
# nobody then cannot be attached, by ptrace or through its agent: the job
# fails with a reason that names the key, the tenant keeps running with no
# uffd and no device open, and its own check of every page passes. A bad
# value of the key is refused by --check-config.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
need_stock_uffd
AGENT=$MIG_BUILD/libmig-agent.so

write_config "hand_device = maybe"
out=$("$MIGD" --check-config --config "$T/migd.ini" 2>&1) && fail "--check-config took hand_device = maybe: $out"
echo "$out" | grep -q "hand_device must be yes or no" || fail "no clear error for hand_device = maybe: $out"

write_config "hand_device = no"
chmod 0755 "$T"
start_migd
TENANT_WRAP=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
start_tenant 16
PT=$TENANT_PID PT_RANGE=$TENANT_RANGE
start_tenant 16 LD_PRELOAD="$AGENT" MIGD_AGENT_SOCKET="$T/agent.sock"
AT=$TENANT_PID AT_RANGE=$TENANT_RANGE
TENANT_WRAP=()
for _ in $(seq 100); do grep -q "pid $AT (uid 65534): agent connected" "$T/migd.log" && break; sleep 0.1; done
grep -q "pid $AT (uid 65534): agent connected" "$T/migd.log" || fail "the agent of pid $AT did not connect"

for t in "$PT $PT_RANGE ptrace" "$AT $AT_RANGE agent"; do
	set -- $t
	out=$("$MIGCTL" --json migrate "$1" --to 0 --force --range "$2")
	rc=$?
	reason=$(echo "$out" | json reason 2>/dev/null)
	echo "# hand_device = no, nobody's tenant $1 ($3): rc=$rc reason: $reason"
	[ $rc = 0 ] && fail "pid $1 ($3) was migrated although migd may not hand it the device: $out"
	case $reason in *"hand_device = no"*) ;; *) fail "the reason does not name hand_device: $out" ;; esac
	kill -0 "$1" || fail "tenant $1 died"
	[ "$(find "/proc/$1/fd" -lname /dev/userfaultfd | wc -l)" = 0 ] || fail "pid $1 has /dev/userfaultfd open"
	[ "$(find "/proc/$1/fd" -lname 'anon_inode:*userfaultfd*' | wc -l)" = 0 ] ||
		fail "pid $1 kept a userfaultfd after the failed attach"
done
stop_tenant "$PT"
stop_tenant "$AT"
echo PASS
