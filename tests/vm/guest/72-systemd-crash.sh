#!/bin/sh
# migd under systemd killed in the middle of a migration (docs/engine.md,
# "After a crash"), in the --systemd guest with 2 nodes: systemd starts it
# again (Restart=on-failure), the new migd recovers the tenant from its
# journal in /var/lib/migd and its staging file in /run/migd/staging
# (RuntimeDirectoryPreserve=yes), and the tenant keeps running and
# writing. Three kills with SIGKILL and one with SIGABRT (what the
# watchdog sends) at different moments of migrations back and forth;
# then the tenant's own check of every page must pass.
[ "$MIGD_VM_FLAVOUR" = systemd ] || { echo "SKIP: needs the systemd guest"; exit 77; }
nodes=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
[ "$nodes" -ge 2 ] || { echo "SKIP: needs 2 NUMA nodes, the guest has $nodes"; exit 77; }

ROOT=${MIGD_VM_ROOT:-$(pwd)}
TENANT=$ROOT/build/tests/tenants/demo_tenant
fail=0
# bad, wait_for, install_migd
. "$ROOT/tests/vm/guest-lib.sh"
restarted() { [ "$(systemctl show migd -p MainPID --value)" != "$1" ] && [ "$(systemctl is-active migd)" = active ]; }

[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
install_migd || exit 1
systemctl start migd || { echo "FAIL: systemctl start migd"; exit 1; }

rm -f /run/migd-c1.out
systemd-run --quiet --unit=migd-c1 -p StandardOutput=file:/run/migd-c1.out \
	numactl --cpunodebind=0 --preferred=0 "$TENANT" 96 || exit 1
wait_for 60 grep -q '^ready ' /run/migd-c1.out || { echo "FAIL: tenant not ready"; exit 1; }
pid=$(awk '/^ready / { print $2; exit }' /run/migd-c1.out)
echo "tenant pid $pid"

n=0
for k in "KILL 1 1" "KILL 0 3" "ABRT 1 2" "KILL 0 5"; do
	set -- $k
	n=$((n + 1))
	old=$(systemctl show migd -p MainPID --value)
	migctl --quiet migrate "$pid" --to "$2" >/dev/null 2>&1 &
	ctl=$!
	sleep "0.$3"
	systemctl kill -s "$1" migd
	wait "$ctl"
	t0=$(date +%s)
	wait_for 30 restarted "$old" || { bad "kill $n: migd not restarted by systemd"; continue; }
	line=$(journalctl -u migd --no-pager -o cat _PID="$(systemctl show migd -p MainPID --value)" |
		grep -E 'recovered after a crash|dropped|NOT recovered' | tail -n 1)
	echo "# kill $n (SIG$1 at 0.$3 s of a job to node $2): back in $(($(date +%s) - t0)) s: ${line:-no journal (the job had ended)}"
	case $line in *"NOT recovered"*) bad "kill $n: $line" ;; esac
	ls /var/lib/migd/*.journal >/dev/null 2>&1 && bad "kill $n: journal left: $(ls /var/lib/migd)"
	st=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
	case $st in "" | Z | X | t | T) bad "kill $n: tenant in state '${st:-gone}'" ;; esac
	a=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)
	sleep 2
	b=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)
	[ "${b:-0}" -gt "${a:-0}" ] || bad "kill $n: tenant got no CPU time in 2 s (blocked)"
done
echo "# restarts: $(systemctl show migd -p NRestarts --value)"
systemctl stop migd-c1
out=$(grep '^data check' /run/migd-c1.out)
echo "tenant: $out"
case $out in "data check: OK"*) ;; *) bad "the tenant's data check did not pass" ;; esac
systemctl stop migd
rm -f /etc/systemd/system/migd.service /etc/systemd/system/migd.socket
exit $fail
