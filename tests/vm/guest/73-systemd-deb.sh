#!/bin/sh
# Issue 15, the Debian package, in the --systemd guest (a clean bookworm
# with systemd as PID 1): `dpkg -i` of build/deb/migd_*.deb (`make deb`;
# tests/vm/check builds it before the systemd guest runs)
#   1. installs migd, migctl, the agent, the unit and the configuration
#      where the package says, and its postinst starts migd.service,
#   2. the service is active and `migctl status` answers,
#   3. a tenant started with `LD_PRELOAD=libmig-agent.so` (a bare name:
#      the agent is in the library path) is moved to node 1 by an
#      `attach = agent` policy, and is never traced (no TracerPid) while
#      its job runs,
#   4. `dpkg --purge` stops the service and leaves nothing behind.
[ "$MIGD_VM_FLAVOUR" = systemd ] || { echo "needs the systemd guest"; exit 77; }
ROOT=${MIGD_VM_ROOT:-$(pwd)}
set -- "$ROOT"/build/deb/migd_*.deb
[ -f "$1" ] || { echo "no build/deb/migd_*.deb (make deb builds it)"; exit 77; }
deb=$1
TENANT=$ROOT/build/tests/tenants/demo_tenant
fail=0
# bad, wait_for, on_node1
. "$ROOT/tests/vm/guest-lib.sh"

die() {
	echo "FAIL: $*"
	systemctl status migd --no-pager 2>&1 | sed 's/^/  | /'
	journalctl -u migd --no-pager -n 40 2>&1 | sed 's/^/  | /'
	systemctl stop migd-deb-t1 2>/dev/null
	exit 1
}

systemctl is-system-running --wait >/dev/null
# The tests before this one install migd by hand (/usr/sbin, units in
# /etc/systemd/system, which would shadow the package's): a clean system
# first, as a real host would be.
systemctl stop migd.service migd.socket 2>/dev/null
rm -f /usr/sbin/migd /usr/sbin/migctl /etc/systemd/system/migd.service \
	/etc/systemd/system/migd.socket
rm -rf /etc/migd
systemctl daemon-reload

# 1. Install.
t0=$(date +%s)
out=$(dpkg -i "$deb" 2>&1) || { echo "$out" | sed 's/^/  | /'; die "dpkg -i $deb failed"; }
echo "# dpkg -i $(basename "$deb") took $(($(date +%s) - t0)) s"
[ "$(dpkg-query -W -f='${db:Status-Status}' migd)" = installed ] || die "migd is not installed"
for f in /usr/sbin/migd /usr/bin/migctl /etc/migd/migd.ini /lib/systemd/system/migd.service \
	/lib/systemd/system/migd.socket /usr/share/man/man8/migd.8.gz; do
	[ -e "$f" ] || bad "the package did not install $f"
done
agent=$(dpkg -L migd | grep '/libmig-agent\.so$')
[ -n "$agent" ] || bad "the package has no libmig-agent.so"
echo "agent: $agent"

# 2. The postinst started the service.
wait_for 30 sh -c '[ "$(systemctl is-active migd)" = active ]' || die "migd.service is not active after dpkg -i"
echo "migd.service: $(systemctl is-enabled migd), $(systemctl is-active migd), MainPID $(systemctl show migd -p MainPID --value)"
st=$(command -v migctl)
[ "$st" = /usr/bin/migctl ] || bad "migctl is $st, not the package's /usr/bin/migctl"
st=$(migctl status 2>&1) || die "migctl status failed: $st"
echo "$st" | sed 's/^/  status: /'

# 3. An agent tenant, its agent found by name alone, moved to node 1 by
#    an attach = agent policy without ever being traced.
nodes=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
[ -x "$TENANT" ] || die "no $TENANT"
cat >/etc/migd/policies.d/agent.ini <<'EOP'
[policy]
cgroup = /tenants.slice/*.service
nodes = 1
trigger = interval
interval = 2s
min_region = 16M
vmas = heap,anon
attach = agent
EOP
systemctl reload migd || bad "systemctl reload migd failed"
rm -f /run/migd-deb-t1.out /run/migd-deb.done
systemd-run --quiet --unit=migd-deb-t1 --slice=tenants.slice \
	-p StandardOutput=file:/run/migd-deb-t1.out -p Environment=LD_PRELOAD=libmig-agent.so \
	numactl --cpunodebind=0 --preferred=0 "$TENANT" 24 || die "systemd-run failed"
wait_for 60 grep -q '^ready ' /run/migd-deb-t1.out || die "the tenant did not get ready"
t1=$(awk '/^ready / { print $2; exit }' /run/migd-deb-t1.out)
r1=$(awk '/^ready / { print $3; exit }' /run/migd-deb-t1.out)
grep -q 'libmig-agent\.so' "/proc/$t1/maps" || bad "LD_PRELOAD=libmig-agent.so did not load the agent"
# TracerPid of the tenant, sampled until its job is over.
(
	while [ ! -e /run/migd-deb.done ]; do
		sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$t1/status"
	done
) >/run/migd-deb.tracer 2>/dev/null &
sampler=$!
jobs_done() {
	migctl --json tenants 2>/dev/null | tr '{' '\n' | grep "\"pid\":$t1," |
		grep -q '"jobs":[1-9]'
}
if wait_for 180 jobs_done; then
	echo "# pid $t1: its policy's job ran: $(migctl --json tenants | tr '{' '\n' | grep "\"pid\":$t1,")"
else
	bad "no job ran for pid $t1: $(migctl tenants 2>&1)"
fi
touch /run/migd-deb.done
wait "$sampler"
journalctl -u migd --no-pager -o cat | grep "pid $t1" | sed 's/^/  journal: /'
journalctl -u migd --no-pager -o cat | grep -q "pid $t1 (uid 0): agent connected" ||
	bad "the agent of pid $t1 did not connect to the packaged migd"
migctl --json tenants | tr '{' '\n' | grep "\"pid\":$t1," | grep -q '"agent":true' ||
	bad "pid $t1 is not an agent tenant"
total=$(wc -l </run/migd-deb.tracer)
traced=$(grep -cv '^0$' /run/migd-deb.tracer)
echo "# TracerPid samples during the job: $total, nonzero: $traced"
[ "$total" -gt 0 ] || bad "no TracerPid sample"
[ "$traced" = 0 ] || bad "pid $t1 was traced during its agent job ($traced samples)"
if [ "$nodes" -ge 2 ]; then
	echo "# placement after: $(migctl --json placement "$t1" --range "$r1" 2>&1)"
	on_node1 "$t1" "$r1" || bad "pid $t1's buffer is not on node 1"
fi
systemctl stop migd-deb-t1
grep '^data check' /run/migd-deb-t1.out | sed 's/^/  tenant: /'
grep -q '^data check: OK' /run/migd-deb-t1.out || bad "the tenant's data check did not pass"
rm -f /etc/migd/policies.d/agent.ini

# 4. Purge: the service stops, the files go.
out=$(dpkg --purge migd 2>&1) || { echo "$out" | sed 's/^/  | /'; bad "dpkg --purge migd failed"; }
[ "$(systemctl is-active migd)" = active ] && bad "migd.service still active after purge"
for f in /usr/sbin/migd /usr/bin/migctl /etc/migd/migd.ini /lib/systemd/system/migd.service; do
	[ -e "$f" ] && bad "$f is left after purge"
done
[ $fail = 0 ] && echo "all checks passed"
exit $fail
