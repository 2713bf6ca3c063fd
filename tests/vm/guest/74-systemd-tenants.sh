#!/bin/sh
# Issue 15 in the --systemd guest (systemd as PID 1, 2 nodes), the host
# left as Debian ships it: vm.unprivileged_userfaultfd = 0 and
# /dev/userfaultfd mode 0600, asserted before and after.
#   1. By policy: services in tenants.slice that run as User=nobody and as
#      DynamicUser=yes, which a policies.d file names by cgroup, are moved
#      to node 1 by migd on its own (ptrace; migd hands /dev/userfaultfd in).
#   2. attach = auto takes the agent: a third such service, DynamicUser=yes
#      with LD_PRELOAD=libmig-agent.so, is moved through its agent (migctl
#      tenants shows agent true; TracerPid is 0 all through its job).
#   3. On demand: two more services (nobody, DynamicUser=yes) that no
#      policy names are moved by `migctl migrate PID --to 1`.
#   4. Refusals carry the reason to migctl and to the journal: a range
#      with no anonymous memory (libmig's reason, a failed job), and a
#      client of uid nobody acting on the DynamicUser tenant.
# No tenant keeps /dev/userfaultfd open; each one's own check of every
# page passes. Figures start with "# ".
[ "$MIGD_VM_FLAVOUR" = systemd ] || { echo "needs the systemd guest"; exit 77; }
nodes=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
[ "$nodes" -ge 2 ] || { echo "needs 2 NUMA nodes, the guest has $nodes"; exit 77; }
command -v setpriv >/dev/null || { echo "needs setpriv (util-linux)"; exit 77; }

ROOT=${MIGD_VM_ROOT:-$(pwd)}
TENANT=$ROOT/build/tests/tenants/demo_tenant
AGENT=$ROOT/build/libmig-agent.so
# The buffer is larger than min_region, the 8 MiB thread stacks are not
# (as in 70: whole-process jobs are for migrate_wholeproc).
MIB=12
UNITS="migd-pol-nobody migd-pol-dyn migd-pol-agent migd-od-nobody migd-od-dyn"
fail=0
# bad, wait_for, install_migd, pages_on, present, on_node1, stop_tenant,
# start_tenant, ready
. "$ROOT/tests/vm/guest-lib.sh"

cleanup() {
	# Only what this test started, by unit name.
	for u in $UNITS; do systemctl stop "$u" 2>/dev/null; done
	systemctl stop migd 2>/dev/null
	rm -f /etc/migd/policies.d/uids.ini /run/migd-74.done
}
die() {
	echo "FAIL: $*"
	systemctl status migd --no-pager 2>&1 | sed 's/^/  | /'
	journalctl -u migd --no-pager -n 40 -o cat 2>&1 | sed 's/^/  | /'
	cleanup
	exit 1
}
host_uffd() {
	echo "$(cat /proc/sys/vm/unprivileged_userfaultfd) $(stat -c '%a %U' /dev/userfaultfd)"
}

# The tenant's entry in migctl --json tenants.
entry() { migctl --json tenants 2>/dev/null | tr '{' '\n' | grep "\"pid\":$1,"; }
job_done() {
	e=$(entry "$1")
	case $e in *'"state":"idle"'*'"jobs":'[1-9]*) return 0 ;; esac
	return 1
}
moved_by_policy() { job_done "$1" && on_node1 "$1" "$2"; }
no_device() {
	n=$(find "/proc/$1/fd" -lname /dev/userfaultfd 2>/dev/null | wc -l)
	[ "$n" = 0 ] || bad "pid $1 holds /dev/userfaultfd ($n fds)"
}

[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
uffd_before=$(host_uffd)
echo "# host: vm.unprivileged_userfaultfd, /dev/userfaultfd mode and owner: $uffd_before"
[ "$uffd_before" = "0 600 root" ] || die "the guest is not set as Debian ships it: $uffd_before"

install_migd || die "install"
rm -f /etc/migd/policies.d/*.ini
systemctl start migd || die "systemctl start migd"

# The tenants first, the policy when they have filled their memory and the
# agent has connected (attach = auto takes ptrace for a tenant whose agent
# is not connected yet).
start_tenant migd-pol-nobody -p User=nobody
start_tenant migd-pol-dyn -p DynamicUser=yes
start_tenant migd-pol-agent -p DynamicUser=yes -p Environment=LD_PRELOAD="$AGENT"
start_tenant migd-od-nobody -p User=nobody
start_tenant migd-od-dyn -p DynamicUser=yes
info=$(ready migd-pol-nobody) || die "migd-pol-nobody did not get ready"
pn=${info% *} rpn=${info#* }
info=$(ready migd-pol-dyn) || die "migd-pol-dyn did not get ready"
pd=${info% *} rpd=${info#* }
info=$(ready migd-pol-agent) || die "migd-pol-agent did not get ready"
pa=${info% *} rpa=${info#* }
info=$(ready migd-od-nobody) || die "migd-od-nobody did not get ready"
on=${info% *} ron=${info#* }
info=$(ready migd-od-dyn) || die "migd-od-dyn did not get ready"
od=${info% *} rod=${info#* }
for p in $pn $pd $pa $on $od; do
	echo "tenant pid $p: uid $(awk '/^Uid:/ { print $2 }' "/proc/$p/status"), cgroup $(sed -n 's/^0:://p' "/proc/$p/cgroup")"
done
[ "$(awk '/^Uid:/ { print $2 }' "/proc/$pn/status")" = 65534 ] || bad "migd-pol-nobody does not run as nobody"
dyn=$(awk '/^Uid:/ { print $2 }' "/proc/$pd/status")
[ "$dyn" -ge 61184 ] && [ "$dyn" -le 65519 ] || bad "migd-pol-dyn's uid $dyn is not a dynamic one"
grep -q 'libmig-agent\.so' "/proc/$pa/maps" || bad "LD_PRELOAD did not load the agent into $pa"
ua=$(awk '/^Uid:/ { print $2 }' "/proc/$pa/status")
agent_in() { journalctl -u migd --no-pager -o cat | grep -q "pid $pa (uid $ua): agent connected"; }
wait_for 60 agent_in || bad "the journal does not show pid $pa's agent connecting"

# The agent tenant's TracerPid until its job is over (shell builtins: no
# fork per sample).
(
	while [ ! -e /run/migd-74.done ]; do
		while read -r k v; do [ "$k" = TracerPid: ] && echo "$v"; done <"/proc/$pa/status"
	done
) >/run/migd-74.tracer 2>/dev/null &
sampler=$!

# 1 and 2. The policy takes the three migd-pol-* tenants.
t0=$(date +%s)
cat >/etc/migd/policies.d/uids.ini <<'EOF'
# The migd-pol-* services of tenants.slice go to node 1 once, when found;
# the agent's when it is connected (attach = auto), else by ptrace.
[policy]
cgroup = /tenants.slice/migd-pol-*.service
nodes = 1
trigger = on-attach
min_region = 10M
vmas = heap,anon
attach = auto
EOF

systemctl reload migd || die "systemctl reload migd"
# 3. On demand, while the policy jobs run: the two tenants no policy names.
for p in "$on $ron" "$od $rod"; do
	set -- $p
	out=$(migctl --json migrate "$1" --to 1 --range "$2")
	rc=$?
	echo "# migctl migrate $1 --to 1: exit $rc: $(echo "$out" | grep -o '"pages_moved":[0-9]*,.*"pages_failed":[0-9]*'), $(echo "$out" | grep -o '"elapsed_us":[0-9]*'), $(echo "$out" | grep -o '"attach":"[a-z]*"')"
	[ $rc = 0 ] || [ $rc = 4 ] || bad "migctl migrate $1 exited $rc: $out"
	moved=$(echo "$out" | sed -n 's/.*"pages_moved":\([0-9]*\).*/\1/p')
	[ "${moved:-0}" -gt 0 ] || bad "migctl migrate $1 moved no pages: $out"
	on_node1 "$1" "$2" || bad "pid $1 is not on node 1 after migctl migrate: $(migctl --json placement "$1" --range "$2")"
done
# The policy's jobs ran at the same time: one deadline for the three.
for p in "$pn $rpn" "$pd $rpd" "$pa $rpa"; do
	set -- $p
	left=$((t0 + 150 - $(date +%s)))
	if wait_for $((left > 1 ? left : 1)) moved_by_policy "$1" "$2"; then
		echo "# pid $1 seen on node 1, moved by policy, $(($(date +%s) - t0)) s after the reload (looked at after the on-demand moves; the journal has the job's own times)"
	else
		bad "pid $1 was not moved to node 1 by its policy: $(entry "$1") $(migctl --json placement "$1" --range "$2")"
	fi
done
touch /run/migd-74.done
wait "$sampler"
journalctl -u migd --no-pager -o short-precise | grep -E "pid ($pn|$pd|$pa)[ :)]" | sed 's/^/  journal: /'
migctl tenants | sed 's/^/  tenants: /'
entry "$pn" | grep -q '"policy":"uids"' || bad "pid $pn is not listed under policy uids"
entry "$pd" | grep -q '"policy":"uids"' || bad "pid $pd is not listed under policy uids"
entry "$pa" | grep -q '"agent":true' || bad "pid $pa is not an agent tenant: $(entry "$pa")"
entry "$pn" | grep -q '"agent":false' || bad "pid $pn should have no agent: $(entry "$pn")"
total=$(wc -l </run/migd-74.tracer)
traced=$(grep -cv '^0$' /run/migd-74.tracer)
echo "# agent tenant $pa: TracerPid samples until its job was over: $total, nonzero: $traced"
[ "$total" -gt 0 ] || bad "no TracerPid sample of pid $pa"
[ "$traced" = 0 ] || bad "pid $pa was traced during its agent job ($traced samples)"

# 4. Refusals, with their reasons in migctl and in the journal.
file=$(awk -v t="$TENANT" '$6 == t { print $1; exit }' "/proc/$on/maps")
[ -n "$file" ] || die "no mapping of $TENANT in pid $on"
msg=$(migctl migrate "$on" --to 1 --range "0x${file%-*}-0x${file#*-}" 2>&1)
rc=$?
echo "migctl migrate of a file range: exit $rc:"
echo "$msg" | sed 's/^/  | /'
[ $rc = 1 ] || bad "migctl migrate of a file range exited $rc, not 1"
reason=$(echo "$msg" | sed -n 's/^migctl: reason: //p')
case $reason in *"no anonymous private memory"*) ;; *) bad "migctl gave no reason for the file range: $msg" ;; esac
journalctl -u migd --no-pager -o cat | grep -F "$reason" | sed 's/^/  journal: /'
journalctl -u migd --no-pager -o cat | grep -qF "$reason" || bad "the journal lacks the reason: $reason"

mode=$(stat -c %a /run/migd/migd.sock)
chmod 0666 /run/migd/migd.sock # the uid check is behind the socket's mode
msg=$(setpriv --reuid=nobody --regid=nogroup --clear-groups -- migctl migrate "$pd" --to 0 2>&1)
rc=$?
chmod "$mode" /run/migd/migd.sock
echo "migctl migrate $pd as nobody: exit $rc:"
echo "$msg" | sed 's/^/  | /'
want="uid 65534 may not act on pid $pd (owned by uid $dyn)"
[ $rc = 1 ] || bad "nobody's migctl migrate of pid $pd exited $rc, not 1"
echo "$msg" | grep -qF "$want" || bad "migctl does not say: $want"
line=$(journalctl -u migd --no-pager -o cat | grep -F "$want" | tail -n 1)
echo "  journal: $line"
case $line in "refused 'migrate' of uid 65534 (pid "*"): EPERM: $want") ;;
*) bad "the journal does not have the refusal of nobody's request" ;;
esac

# Nothing of the hand-over stays in the tenants; their data checks.
for p in $pn $pd $pa $on $od; do no_device "$p"; done
for u in $UNITS; do stop_tenant "$u"; done
uffd_after=$(host_uffd)
echo "# host after: $uffd_after"
[ "$uffd_after" = "$uffd_before" ] || bad "the host's userfaultfd setting changed: $uffd_before -> $uffd_after"
[ $fail = 0 ] || journalctl -u migd --no-pager -n 40 -o cat 2>&1 | sed 's/^/  | /'
cleanup
[ $fail = 0 ] && echo "all checks passed"
exit $fail
