#!/usr/bin/env bash
# churn - the churn-safety stress loop: stress_chaos (a tenant whose threads
# write, read, DONTNEED, re-map, munmap, mprotect, mremap, MADV_FREE and fork
# their own pages without pause, checking every read) run many times with
# random seeds, for each zap kind:
#   move     UFFDIO_MOVE zap, ptrace tenant (skipped where the kernel has no MOVE)
#   madvise  injected madvise zap, ptrace tenant
#   agent    madvise zap through libmig-agent.so
#   movefirst  move-first windows (MIG_WINDOW_MOVEFIRST, UFFDIO_MOVE zap, ptrace)
# The kind sets STRESS_WINDOW (classic for the first three): one left in
# the environment for the movefirst kind does not make the others skip.
# Each run asks for the data area, random pieces of it (overlapping,
# repeated, cutting THPs) or the whole process, in turn.
#
#   tests/stress/churn.sh [RUNS [SECS [KINDS]]]      defaults: 200 5 "move madvise agent"
#   CHURN_TIMEOUT=s            one run's limit (default 60 x SECS + 300; a hung job
#                              fails sooner: stress_chaos's STRESS_HANG_S watchdog)
#   STRESS_MIB, STRESS_THREADS the tenant's size and threads (stress_chaos)
#   CHURN_TAIL=n               lines of a failing run's log shown (default 15)
#   CHURN_TRACE="agent ..."    kinds whose runs write a MIG_TRACE file next to
#                              their log; a failing run prints the trace lines
#                              that name its first bad page's address (a rare
#                              failure then says more than its seed), and
#                              fail where the trace shows LEFTOVER or FILLNOENT
#                              (states the design rules out; window.c)
# A failing run also prints the tenant's VMAs within 1 MiB of its first bad
# read, with their VmFlags ("um uw": registered with migd's uffd), as the
# tenant wrote them (stress_tenant.c, dump_flags).
#   CHURN_RANGES="data random" the ranges the runs take in turn (default
#                              "data random whole")
#   STRESS_SEEDS="s1 s2 ..."   fixed seeds run first for every kind (regressions),
#                              with the operations STRESS_SEED_OPS when set; an
#                              entry SEED:OPS:RANGES (OPS or RANGES may be empty)
#                              names its own operations and ranges
#
# Prints per kind: runs, failures, tenant operations, bad reads and the seed
# of every failing run (STRESS_SEED=... reproduces its choices); exits 1 if
# any run failed. Must run as root from the top of the tree after `make`.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
runs=${1:-200} secs=${2:-5} kinds=${3:-move madvise agent}
prog=build/tests/integration/stress_chaos
logdir=build/test-logs/stress
mkdir -p "$logdir"
[ -x "$prog" ] || { echo "churn: $prog missing (run make)"; exit 1; }
if [ "$(id -u)" != 0 ]; then echo "SKIP: churn needs root (ptrace, kpageflags)"; exit 77; fi

has_move() {
	# The kernel offers UFFDIO_MOVE from 6.8.
	local v; v=$(uname -r); v=${v%%-*}
	local maj=${v%%.*} min=${v#*.}; min=${min%%.*}
	[ "$maj" -gt 6 ] || { [ "$maj" = 6 ] && [ "$min" -ge 8 ]; }
}

total_fail=0
for kind in $kinds; do
	env=()
	case $kind in
	move) has_move || { echo "# churn move: SKIP (kernel $(uname -r) has no UFFDIO_MOVE)"; continue; }
	      env=(STRESS_ZAP=move STRESS_WINDOW=classic) ;;
	madvise) env=(STRESS_ZAP=madvise STRESS_WINDOW=classic) ;;
	agent) env=(STRESS_ATTACH=agent STRESS_WINDOW=classic) ;;
	movefirst) has_move || { echo "# churn movefirst: SKIP (kernel $(uname -r) has no UFFDIO_MOVE)"; continue; }
	      env=(STRESS_ZAP=move STRESS_WINDOW=movefirst) ;;
	*) echo "churn: unknown kind $kind"; exit 2 ;;
	esac
	n=0 fail=0 ops=0 bad=0 zw=0 lo=0 seeds=()
	# shellcheck disable=SC2206
	list=(${STRESS_SEEDS:-})
	for ((k = 0; k < runs; k++)); do list+=(random); done
	# shellcheck disable=SC2206
	rgs=(${CHURN_RANGES:-data random whole})
	for seed in "${list[@]}"; do
		rg=${rgs[$((n % ${#rgs[@]}))]}
		log=$logdir/$kind.$n.log
		# A fixed seed replays its run only with the operations it ran with.
		if [ "$seed" = random ]; then s=()
		else
			IFS=: read -r sd sops srg <<<"$seed"
			[ -n "${srg:-}" ] && rg=$srg
			s=(STRESS_SEED="$sd" STRESS_OPS="${sops:-${STRESS_SEED_OPS:-${STRESS_OPS:-}}}")
		fi
		# Appending, like a MIG_TRACE file opened on the same log
		# (MIG_TRACE=/proc/self/fd/2 where there is no /dev/stderr):
		# written at a shared offset, the test's and the tenant's own
		# lines would overwrite trace lines, and the other way round.
		: >"$log"
		tr=() trf=
		if [[ " ${CHURN_TRACE:-} " == *" $kind "* ]]; then
			trf=$log.trace
			: >"$trf"
			tr=(MIG_TRACE="$trf")
		fi
		env "${env[@]}" "${s[@]}" "${tr[@]}" STRESS_SECS="$secs" STRESS_RANGES=$rg \
			timeout -k 10 "${CHURN_TIMEOUT:-$((secs * 60 + 300))}" "$prog" >>"$log" 2>&1
		rc=$?
		o=$(sed -n 's/^# stress tenant: \([0-9]*\) ops.*/\1/p' "$log" | tail -1)
		b=$(grep -c '^BAD ' "$log")
		# With MIG_TRACE on the log: pages written while our madvise
		# dropped them (zap.c rule 6 broken, faults.c ZAPWRITE).
		z1=$(cat "$log" ${trf:+"$trf"} | grep -c ' ZAPWRITE ')
		zw=$((zw + z1))
		# Two states the design rules out, failures even when every
		# read was right: a registration left after a window's end
		# (window.c LEFTOVER: outside every window, its events go
		# astray), and a page taken out whose VMA is no longer
		# registered without an event saying so (FILLNOENT).
		l1=$(cat ${trf:+"$trf"} /dev/null | grep -c -E ' (LEFTOVER|FILLNOENT) ')
		lo=$((lo + l1))
		if [ "$rc" = 0 ] && [ "$l1" != 0 ]; then
			rc=1
			echo "LEFTOVER or FILLNOENT: $l1 times (trace)" >>"$log"
		fi
		used=$(sed -n 's/^# seed \([0-9]*\).*/\1/p' "$log" | head -1)
		ops=$((ops + ${o:-0})) bad=$((bad + b))
		if [ $rc != 0 ]; then
			fail=$((fail + 1)); seeds+=("$used($rg)")
			echo "# churn $kind run $n FAIL (exit $rc, seed $used, ranges $rg): $(grep -m1 -E '^(FAIL|BAD|HUNG|LEFTOVER or FILLNOENT)' "$log")"
			# The guests keep no files: what the tenant said (a crash
			# names its address and last operations) and the end of
			# the log say why.
			grep -E '^(# tenant |stress_tenant: [^v ]|  thread [0-9]+ op )' "$log" | head -n 40 |
				sed 's/^/#   t /'
			# The tenant's VMAs within 1 MiB of its first bad read, with
			# their VmFlags ("um uw": registered with migd's uffd).
			grep -E '^stress_tenant: (vma |  VmFlags)' "$log" | head -n 40 | sed 's/^/#   M /'
			tail -n "${CHURN_TAIL:-15}" "$log" | sed 's/^/#   | /'
			# The bad page's address in the data area, and where the
			# tenant read it (a page moved out by 'x' or 'g' is read
			# at its spare slot): the trace lines naming either.
			a=$(sed -n 's/^BAD page [0-9]* (0x\([0-9a-f]*\)).*/\1/p' "$log" | head -1)
			b=$(sed -n 's/^stress_tenant: [a-z ]* at 0x\([0-9a-f]*\);.*/\1/p' "$log" | head -1)
			if [ -n "$trf" ] && [ -n "$a" ]; then
				echo "#   trace lines naming $a${b:+ or $b} (all of them in $trf):"
				grep -a -e "$a" ${b:+-e "$b"} "$trf" | tail -n "${CHURN_TRACE_LINES:-40}" |
					sed 's/^/#   T /'
			fi
		elif [ "$z1" != 0 ]; then
			# Passed, but a page was written while its madvise ran
			# (zap.c rule 6 broken): keep the files, show the lines.
			echo "# churn $kind run $n: $z1 ZAPWRITE (seed $used, ranges $rg; kept: $log${trf:+ $trf})"
			cat "$log" ${trf:+"$trf"} | grep -a -B3 -A3 ' ZAPWRITE ' | tail -n 40 | sed 's/^/#   W /'
		else
			rm -f "$log" ${trf:+"$trf"}
		fi
		n=$((n + 1))
	done
	traced=${MIG_TRACE:-}
	[[ " ${CHURN_TRACE:-} " == *" $kind "* ]] && traced=1
	echo "# churn $kind: runs $n, failed $fail, tenant ops $ops, bad reads $bad${traced:+, writes during a zap (trace) $zw, LEFTOVER or FILLNOENT (trace) $lo}${seeds:+, failing seeds: ${seeds[*]}}"
	total_fail=$((total_fail + fail))
done
[ $total_fail = 0 ]
