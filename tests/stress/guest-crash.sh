#!/usr/bin/env bash
# guest-crash - issue 13's acceptance in the 2-node qemu guests, Linux 6.12
# (UFFDIO_MOVE zap) and 6.1 (madvise zap, content only in staging until
# the fill): migd killed at every crash point and GUEST_CRASH_KILLS times
# per signal (default 50, SIGKILL and SIGABRT) at random moments of a
# migration with writers running (crash_kill_loop.sh, a GUEST_CRASH_MIB
# (default 32) MiB tenant to keep the emulated guest's rounds short), and
# the injector killed at every named point with both signals and at
# GUEST_CRASH_KILLS random moments (crash_inject). Counts are printed per
# kernel; GUEST_CRASH_KERNELS (default "6.12 6.1") picks the kernels.
# GUEST_CRASH_PARTS (default "inject points random") picks the parts.
# GUEST_CRASH_SLICES (default 1) boots that many guests per kernel side by
# side, the random kills split between them (the crash points and
# crash_inject run in the first): on a loaded host one emulated guest gets
# a small share of the CPUs, several get more. Each slice's log is in
# GUEST_CRASH_LOGS (default build/guest-crash), its "# crash:" lines are
# printed; add up the slices' counts. CRASH_WINDOW=movefirst (or classic)
# sets migd.conf's window_protocol for the kill loop (crash_kill_loop.sh).
# run-suite-timeout: 21600
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
n=${GUEST_CRASH_KILLS:-50}
slices=${GUEST_CRASH_SLICES:-1}
parts=" ${GUEST_CRASH_PARTS:-inject points random} "
logs=${GUEST_CRASH_LOGS:-build/guest-crash}
mkdir -p "$logs"
# Random kills per signal in each slice, rounded up.
per=$(((n + slices - 1) / slices))
rc=0
for k in ${GUEST_CRASH_KERNELS:-6.12 6.1}; do
	echo "# guest $k: $slices slice(s), $per random kills per signal each"
	pids=()
	for s in $(seq "$slices"); do
		phases="" inject=""
		[[ $parts == *" random "* ]] && phases="random"
		if [ "$s" = 1 ]; then
			[[ $parts == *" points "* ]] && phases="points $phases"
			[[ $parts == *" inject "* ]] && inject=1
		fi
		tests/vm/run --kernel "$k" --timeout 10800 -- \
			env CRASH_KILLS="$((2 * per))" CRASH_MIB="${GUEST_CRASH_MIB:-32}" \
			CRASH_WINDOW="${CRASH_WINDOW:-}" \
			CRASH_PHASES="${phases:-none}" INJECT="$inject" INJECT_KILLS="$((2 * n))" \
			sh -c '[ -z "$INJECT" ] || build/tests/integration/crash_inject "$INJECT_KILLS" || exit 1
				[ "$CRASH_PHASES" = none ] || bash tests/stress/crash_kill_loop.sh' \
			>"$logs/$k-$s.log" 2>&1 &
		pids+=($!)
	done
	for s in $(seq "$slices"); do
		wait "${pids[$((s - 1))]}"
		r=$?
		echo "# guest $k slice $s: exit $r"
		grep -a "# crash:\|# [0-9]* rounds (" "$logs/$k-$s.log" | sed "s/^/  /"
		[ $r = 0 ] || rc=1
	done
done
exit $rc
