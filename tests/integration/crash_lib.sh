# crash_lib.sh - sourced by crash_recover.sh (host) and the guests'
# 66-crash.sh: kill migd in the middle of a migration, start it again, and
# check that the tenant is alive, writes again within 2 s of the restart,
# and verifies every page; the journal must be gone (docs/engine.md,
# "After a crash"). Needs daemon_lib.sh sourced first. Only processes
# started here are signalled, by pid.
# shellcheck shell=bash

WRITER=$top/build/tests/tenants/writer
CRASH_MIB=${CRASH_MIB:-64}
# The guests' busybox has no nice: there the writers run at normal priority.
NICE=
command -v nice >/dev/null && NICE="nice -n 10"
# Node 1 where there is one (the guests); on one node every step still
# runs with --force to node 0.
if [ -d /sys/devices/system/node/node1 ]; then
	CRASH_TO=(--to 1)
else
	CRASH_TO=(--to 0 --force)
fi
RUNS=0 DEAD=0 TRAPPED=0 HUNG=0 BAD=0 NOCRASH=0 FAILED=0
RECOVERY_MS=()
MIGD_MS=()
FAILURES=()

# Wall-clock nanoseconds (the guests' busybox date has no %N).
crash_now_ns() {
	local t=${EPOCHREALTIME/[.,]/}
	echo "${t}000"
}

# crash_start_migd [ENV=VALUE...]: a migd on $T/migd.ini, log appended.
crash_start_migd() {
	rm -f "$T/migd.sock"
	env "$@" "$MIGD" --foreground --config "$T/migd.ini" >>"$T/migd.log" 2>&1 &
	MIGD_PID=$!
	PIDS+=("$MIGD_PID")
	for _ in $(seq 1000); do
		[ -S "$T/migd.sock" ] && return 0
		kill -0 "$MIGD_PID" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

# Wait for migd (pid $MIGD_PID) to end within $1 s; MIGD_RC gets its status.
crash_wait_migd() {
	local i
	for i in $(seq $(($1 * 20))); do
		if ! kill -0 "$MIGD_PID" 2>/dev/null; then
			wait "$MIGD_PID" 2>/dev/null
			MIGD_RC=$?
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# The writer tenant: commands through a fifo on fd 7, answers read from
# a fifo on fd 8 (no polling: the writers keep both CPUs busy), kept in
# $T/w.out.
crash_start_writer() {
	local line
	rm -f "$T/w.in" "$T/w.pipe"
	: >"$T/w.out"
	mkfifo "$T/w.in" "$T/w.pipe"
	# Niced: the two writers spin on every CPU, and the test's own steps
	# must not be what the 2 s figure measures.
	$NICE "$WRITER" --size "${CRASH_MIB}M" --threads 2 --thp-half <"$T/w.in" >"$T/w.pipe" 2>&1 &
	WPID=$!
	PIDS+=("$WPID")
	exec 7>"$T/w.in" 8<"$T/w.pipe"
	# Filling 256 MiB niced on a loaded machine can take a while.
	crash_wline READY 120 >/dev/null && return 0
	sed 's/^/    writer| /' "$T/w.out"
	crash_writer_gone
	return 1
}

# End the writer of a failed round (ours, by pid) and close its fifos,
# so the next round starts clean.
crash_writer_gone() {
	kill -9 "$WPID" 2>/dev/null
	wait "$WPID" 2>/dev/null
	exec 7>&- 8<&-
}

# crash_wline PREFIX SECONDS: print the next line of the writer starting with PREFIX.
crash_wline() {
	local line end=$((SECONDS + $2))
	while [ $SECONDS -le $end ]; do
		IFS= read -r -t "$2" -u 8 line || return 1
		echo "$line" >>"$T/w.out"
		[[ $line == "$1"* ]] && { echo "$line"; return 0; }
	done
	return 1
}

# crash_wcmd CMD PREFIX SECONDS: send CMD, print its answer line starting with PREFIX.
crash_wcmd() {
	echo "$1" >&7 || return 1
	crash_wline "$2" "$3"
}

# Wait until every writer thread has written again (up to $1 s).
crash_progress() {
	local a b i n ok end=$((SECONDS + $1))
	a=$(crash_wcmd progress PROGRESS "$1") || return 1
	read -r -a A <<<"$a"
	n=${#A[@]}
	while [ $SECONDS -le $end ]; do
		b=$(crash_wcmd progress PROGRESS "$1") || return 1
		read -r -a B <<<"$b"
		ok=1
		for ((i = 1; i < n; i++)); do
			[ "${B[$i]}" -gt "${A[$i]}" ] || ok=0
		done
		[ $ok = 1 ] && return 0
		sleep 0.02
	done
	return 1
}

# crash_blocked_after T_NS: the longest a writer's write stayed blocked
# after wall-clock time T_NS, in ms, from the writer's stall log.
crash_blocked_after() {
	local line e s end max=0 d
	line=$(crash_wcmd stalls STALLS 5) || { echo 99999; return; }
	for e in ${line#STALLS}; do
		s=${e%%:*}
		end=${e##*:}
		[ "$end" -gt "$1" ] || continue
		[ "$s" -gt "$1" ] || s=$1
		d=$(((end - s) / 1000000))
		[ "$d" -gt "$max" ] && max=$d
	done
	echo "$max"
}

# The tenant died: of SIGTRAP (exit 133: a thread stopped mid-injection
# resumed with no tracer; issue 13's "injection that survives the
# injector", counted, a failure only with CRASH_STRICT_TRAP=1) or else.
crash_dead() {
	local wstat
	wait "$WPID"
	wstat=$?
	if [ "$wstat" = 133 ]; then
		TRAPPED=$((TRAPPED + 1))
		echo "  KNOWN: $1: tenant killed by SIGTRAP (migd died mid-injection, exit 133)"
		[ -n "${CRASH_STRICT_TRAP:-}" ] && crash_fail "$1: tenant killed by SIGTRAP"
	else
		DEAD=$((DEAD + 1))
		crash_fail "$1: tenant died (exit $wstat)"
	fi
	exec 7>&- 8<&-
	kill "$MIGD_PID" 2>/dev/null
	crash_wait_migd 30
}

# Alive and not a zombie?
crash_alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

crash_fail() {
	FAILED=$((FAILED + 1))
	FAILURES+=("$1")
	echo "  FAILED: $1"
}

# crash_round LABEL DELAY [ENV=VALUE...]: one migration killed by a crash
# point (ENV) or, with DELAY > 0, by kill -9 after DELAY seconds. With
# CRASH_AGAIN set, the first restart gets that MIG_CRASH_AT (a crash
# during recovery) and a second restart follows.
crash_round() {
	local label=$1 delay=$2 t0 t1 ms rms rc line wstat
	shift 2
	RUNS=$((RUNS + 1))
	: >"$T/migd.log"
	crash_start_writer || { crash_fail "$label: writer did not start"; return; }
	crash_start_migd "$@" || { crash_fail "$label: migd did not start"; crash_writer_gone; return; }
	"$MIGCTL" --quiet migrate "$WPID" "${CRASH_TO[@]}" >"$T/migctl.out" 2>&1 &
	local ctl=$!
	if [ "$delay" != 0 ]; then
		sleep "$delay"
		kill -9 "$MIGD_PID" 2>/dev/null
	fi
	if ! crash_wait_migd 60; then
		crash_fail "$label: migd did not die"
		kill -9 "$MIGD_PID" 2>/dev/null
		crash_wait_migd 5
	fi
	wait "$ctl" 2>/dev/null
	rc=$MIGD_RC
	if ! ls "$T"/state/*.journal >/dev/null 2>&1; then
		# The job ended before the kill: nothing to recover.
		NOCRASH=$((NOCRASH + 1))
	fi
	# A tenant thread left stopped mid-injection dies of SIGTRAP when its
	# tracer dies; give that a moment, and see a zombie as dead.
	sleep 0.2
	if ! crash_alive "$WPID"; then
		crash_dead "$label"
		return
	fi
	if [ -n "${CRASH_AGAIN:-}" ]; then
		if crash_start_migd MIG_CRASH_AT="$CRASH_AGAIN"; then
			# Recovery ended without reaching the point: nothing was left to put back.
			echo "  $label: recovery had nothing to put back, its crash point was not reached"
			kill "$MIGD_PID"
		fi
		crash_wait_migd 30 || { crash_fail "$label: migd did not end"; kill -9 "$MIGD_PID"; crash_wait_migd 5; }
	fi
	crash_start_migd || { crash_fail "$label: migd did not restart"; crash_writer_gone; return; }
	# migd recovers before it listens: from here on the tenant must write.
	t0=$(crash_now_ns)
	rms=$(sed -n 's/.*recovered after a crash of migd in \([0-9]*\)\..*/\1/p' "$T/migd.log" | tail -n 1)
	if [ -n "$rms" ]; then
		MIGD_MS+=("$rms")
		[ "$rms" -le 2000 ] || crash_fail "$label: recovery took ${rms} ms"
	fi
	if crash_progress 5; then
		# The tenant's own account: how long a write stayed blocked after t0.
		ms=$(crash_blocked_after "$t0")
		RECOVERY_MS+=("$ms")
		[ "$ms" -le 2000 ] || crash_fail "$label: a write stayed blocked ${ms} ms after migd was back"
	elif ! crash_alive "$WPID"; then
		# It died late (a SIGTRAP is delivered when the thread runs again).
		crash_dead "$label"
		return
	else
		HUNG=$((HUNG + 1))
		crash_fail "$label: tenant blocked after the restart"
		sed 's/^/    migd| /' "$T/migd.log" | tail -n 20
	fi
	if ls "$T"/state/*.journal >/dev/null 2>&1; then
		crash_fail "$label: journal left: $(ls "$T"/state)"
	fi
	if "$MIGCTL" tenants >/dev/null 2>&1; [ $? = 5 ]; then
		crash_fail "$label: migctl tenants lists an unrecovered tenant"
	fi
	line=$(crash_wcmd stop VERIFY 60) || line="(no answer)"
	if [[ $line == "(no answer)" ]]; then
		crash_fail "$label: the tenant did not answer stop"
		crash_writer_gone
	else
		[[ $line == "VERIFY OK"* ]] || { BAD=$((BAD + 1)); crash_fail "$label: $line"; }
		exec 7>&- 8<&-
		wait "$WPID" 2>/dev/null
	fi
	[[ $line == "VERIFY OK"* ]] || grep -v '^#' "$T/w.out" | tail -n 5 | sed 's/^/    tenant| /'
	kill "$MIGD_PID" 2>/dev/null
	crash_wait_migd 30
	[ -n "${CRASH_VERBOSE:-}" ] && sed "s/^/    migd| /" "$T/migd.log"
	echo "  $label: migd exit $rc, recovery ${rms:--} ms, blocked ${ms:-?} ms after migd was back; $line"
}

# crash_max NAME: the largest of the array NAME's numbers (0 when empty).
crash_max() {
	local -n arr=$1
	local m=0 v
	for v in "${arr[@]}"; do [ "$v" -gt "$m" ] && m=$v; done
	echo "$m"
}

crash_report() {
	echo "# crash: $RUNS kills ($NOCRASH after the job ended, nothing to recover), tenants dead $DEAD, killed by SIGTRAP $TRAPPED (migd died mid-injection), hung $HUNG, bad data $BAD"
	echo "# crash: recovery in migd max $(crash_max MIGD_MS) ms over ${#MIGD_MS[@]}; a tenant write blocked after migd was back: max $(crash_max RECOVERY_MS) ms over ${#RECOVERY_MS[@]}"
	[ "$FAILED" = 0 ]
}
