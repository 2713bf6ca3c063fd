#!/bin/sh
# Hardened services under seccomp filters, in the --systemd guest
# (systemd as PID 1, 2 nodes). migd's own unit puts it under no filter
# (asserted: Seccomp 0), so it can read its tenants' filters, and before
# each syscall it injects it runs the thread's filters and injects only
# what they allow (libmig/seccomp.c):
#   1. SystemCallFilter=~userfaultfd (a deny-list: the kernel kills with
#      SIGSYS), User=nobody: not run; the uffd comes by /dev/userfaultfd's
#      handoff, and `migctl migrate PID --to 1` moves it all.
#   2. SystemCallFilter=@system-service (an allow-list that kills) with
#      systemd's other filter-made hardening (MemoryDenyWriteExecute=,
#      RestrictNamespaces=, RestrictAddressFamilies=, LockPersonality=,
#      SystemCallArchitectures=native), DynamicUser=yes: moved.
#   3. SystemCallFilter=~userfaultfd socketpair: the handoff cannot be
#      made either: migctl refuses with a reason that names seccomp, the
#      service runs on.
# Every tenant is alive afterwards and its own check of every page passes
# (before this, migd's injected userfaultfd(2) killed service 1).
[ "$MIGD_VM_FLAVOUR" = systemd ] || { echo "needs the systemd guest"; exit 77; }
nodes=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
[ "$nodes" -ge 2 ] || { echo "needs 2 NUMA nodes, the guest has $nodes"; exit 77; }

ROOT=${MIGD_VM_ROOT:-$(pwd)}
TENANT=$ROOT/build/tests/tenants/demo_tenant
MIB=12
UNITS="migd-sc-deny migd-sc-allow migd-sc-refuse"
fail=0
# bad, wait_for, install_migd, pages_on, present, on_node1, stop_tenant,
# start_tenant, ready
. "$ROOT/tests/vm/guest-lib.sh"

cleanup() {
	for u in $UNITS; do systemctl stop "$u" 2>/dev/null; done
	systemctl stop migd 2>/dev/null
}
die() {
	echo "FAIL: $*"
	journalctl -u migd --no-pager -n 40 -o cat 2>&1 | sed 's/^/  | /'
	cleanup
	exit 1
}
alive() {
	[ "$(systemctl is-active "$1")" = active ] || bad "$1 is not running: $(systemctl show -p Result,ExecMainCode,ExecMainStatus "$1" | tr '\n' ' ')"
}

[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
install_migd || die "install"
rm -f /etc/migd/policies.d/*.ini
systemctl start migd || die "systemctl start migd"
mp=$(systemctl show -p MainPID --value migd)
sc=$(awk '/^Seccomp:/ { print $2 }' "/proc/$mp/status")
echo "# migd (pid $mp): Seccomp $sc"
[ "$sc" = 0 ] || bad "migd runs under a seccomp filter (Seccomp $sc): it cannot read its tenants'"

start_tenant migd-sc-deny -p User=nobody -p SystemCallFilter=~userfaultfd
start_tenant migd-sc-allow -p DynamicUser=yes -p SystemCallFilter=@system-service \
	-p MemoryDenyWriteExecute=yes -p RestrictNamespaces=yes -p RestrictAddressFamilies=AF_UNIX \
	-p LockPersonality=yes -p SystemCallArchitectures=native
start_tenant migd-sc-refuse -p User=nobody -p "SystemCallFilter=~userfaultfd socketpair"
info=$(ready migd-sc-deny) || die "migd-sc-deny did not get ready"
p1=${info% *} r1=${info#* }
info=$(ready migd-sc-allow) || die "migd-sc-allow did not get ready"
p2=${info% *} r2=${info#* }
info=$(ready migd-sc-refuse) || die "migd-sc-refuse did not get ready"
p3=${info% *} r3=${info#* }
for p in $p1 $p2 $p3; do
	echo "tenant pid $p: uid $(awk '/^Uid:/ { print $2 }' "/proc/$p/status"), Seccomp $(awk '/^Seccomp:/ { print $2 }' "/proc/$p/status"), $(awk '/^Seccomp_filters:/ { print $2 }' "/proc/$p/status") filters"
	[ "$(awk '/^Seccomp:/ { print $2 }' "/proc/$p/status")" = 2 ] || bad "pid $p has no seccomp filter"
done

# 1 and 2: moved whole.
for p in "$p1 $r1 migd-sc-deny" "$p2 $r2 migd-sc-allow"; do
	set -- $p
	out=$(migctl --json migrate "$1" --to 1 --range "$2")
	rc=$?
	echo "# $3: migctl migrate $1 --to 1: exit $rc: $(echo "$out" | grep -o '"pages_moved":[0-9]*,.*"pages_failed":[0-9]*')"
	[ $rc = 0 ] || bad "$3: migctl migrate exited $rc: $out"
	on_node1 "$1" "$2" || bad "$3: pid $1 is not on node 1: $(migctl --json placement "$1" --range "$2")"
	alive "$3"
done

# 3: refused, with the reason.
msg=$(migctl migrate "$p3" --to 1 --range "$r3" 2>&1)
rc=$?
echo "migd-sc-refuse: migctl migrate $p3: exit $rc:"
echo "$msg" | sed 's/^/  | /'
[ $rc = 1 ] || bad "migd-sc-refuse: migctl migrate exited $rc, not 1"
echo "$msg" | grep -q 'seccomp filter would kill' || bad "migd-sc-refuse: migctl does not name the filter: $msg"
alive migd-sc-refuse

for u in $UNITS; do stop_tenant "$u"; done
[ $fail = 0 ] || journalctl -u migd --no-pager -n 40 -o cat 2>&1 | sed 's/^/  | /'
cleanup
[ $fail = 0 ] && echo "all checks passed"
exit $fail
