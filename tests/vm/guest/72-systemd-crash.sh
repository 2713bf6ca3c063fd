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
# What a blocked tenant is doing (the guest keeps no files): its threads:
# state, wchan, kernel stack and syscall, its uffds, and migd's journal.
diag() {
	[ -n "$diag_done" ] && return
	diag_done=1
	echo "# tenant $1: $(grep -E '^(State|TracerPid|SigBlk|SigPnd|ShdPnd)' "/proc/$1/status" 2>/dev/null | tr '\n\t' '  ')"
	for t in /proc/"$1"/task/*; do
		echo "#  task ${t##*/}: $(grep -E '^(State|TracerPid)' "$t/status" 2>/dev/null | tr '\n\t' '  ')wchan $(cat "$t/wchan" 2>/dev/null) syscall $(cat "$t/syscall" 2>/dev/null)"
		sed 's/^/#    /' "$t/stack" 2>/dev/null
	done
	for f in /proc/"$1"/fd/*; do
		case $(readlink "$f") in *userfaultfd*)
			echo "#  fd ${f##*/}: $(readlink "$f"): $(tr '\n\t' '  ' <"/proc/$1/fdinfo/${f##*/}")" ;;
		esac
	done
	# VMAs registered with a uffd (VmFlags um: missing, uw: wp, ui: minor)
	awk '/^[0-9a-f]+-[0-9a-f]+ / { vma = $1 } /^VmFlags:/ && / u[mwi]( |$)/ { print "#  uffd vma " vma ":" substr($0, 9) }' "/proc/$1/smaps" 2>/dev/null
	echo "#  migctl tenants: $(migctl tenants 2>&1 | tr '\n' ' ')"
	echo "# migd's journal:"
	journalctl -u migd --no-pager -o short-monotonic 2>&1 | tail -n 120 | sed 's/^/#  /'
	ls -la /var/lib/migd /run/migd /run/migd/staging 2>&1 | sed 's/^/#  /'
	if [ -s /run/migd/trace ]; then
		echo "# trace: $(wc -l </run/migd/trace) lines; FILLSTOPPED $(grep -c FILLSTOPPED /run/migd/trace)"
		tail -n 150 /run/migd/trace | sed 's/^/#  trace /'
	fi
}
restarted() { [ "$(systemctl show migd -p MainPID --value)" != "$1" ] && [ "$(systemctl is-active migd)" = active ]; }
# migd PID's start line has reached the journal: its recovery lines came before it.
logged() { journalctl -u migd --no-pager -o cat _PID="$1" | grep -q ' started: config'; }

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
	migctl migrate "$pid" --to "$2" >/run/migd-c1.ctl 2>&1 &
	ctl=$!
	sleep "0.$3"
	systemctl kill -s "$1" migd
	wait "$ctl"
	t0=$(date +%s)
	wait_for 30 restarted "$old" || { bad "kill $n: migd not restarted by systemd"; continue; }
	new=$(systemctl show migd -p MainPID --value)
	# journald may not have the new migd's lines yet: "no journal" only once it has.
	wait_for 10 logged "$new" || echo "# kill $n: migd $new's start line not in the journal after 10 s"
	line=$(journalctl -u migd --no-pager -o cat _PID="$new" |
		grep -E 'recovered after a crash|dropped|NOT recovered' | tail -n 1)
	echo "# kill $n (SIG$1 at 0.$3 s of a job to node $2): back in $(($(date +%s) - t0)) s: ${line:-no journal (killed before the job made one, or after it ended)}"
	echo "#   migctl: $(grep -vE '^ *(throughput|max stall|windows|large folios|huge pages)' /run/migd-c1.ctl | head -n 3 | tr '\n' ' ')"
	case $line in *"NOT recovered"*) bad "kill $n: $line" ;; esac
	ls /var/lib/migd/*.journal >/dev/null 2>&1 && bad "kill $n: journal left: $(ls /var/lib/migd)"
	st=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
	case $st in "" | Z | X | t | T) bad "kill $n: tenant in state '${st:-gone}'" ;; esac
	a=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)
	sleep 2
	b=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)
	if [ "${b:-0}" -le "${a:-0}" ]; then
		# Slow (a starved guest) or blocked for good: 3 s more tell.
		sleep 3
		c=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)
		bad "kill $n: tenant got no CPU time in 2 s (blocked; CPU ticks $a, $b, 3 s later ${c:-none})"
		diag "$pid"
	fi
done
echo "# restarts: $(systemctl show migd -p NRestarts --value)"
[ "$fail" = 0 ] || diag "$pid"
systemctl stop migd-c1
out=$(grep '^data check' /run/migd-c1.out)
echo "tenant: $out"
case $out in "data check: OK"*) ;; *) bad "the tenant's data check did not pass" ;; esac
systemctl stop migd
rm -f /etc/systemd/system/migd.service /etc/systemd/system/migd.socket
exit $fail
