# crash_lib.sh - sourced by crash_recover.sh (host) and the guests'
# 66-crash.sh: kill migd in the middle of a migration, start it again, and
# check that the tenant is alive, writes again within 2 s of the restart,
# and verifies every page; the journal must be gone (docs/engine.md,
# "After a crash"). Needs daemon_lib.sh sourced first. Only processes
# started here are signalled, by pid.
# shellcheck shell=bash

WRITER=$top/build/tests/tenants/writer
CRASH_MIB=${CRASH_MIB:-64}
# CRASH_WRITER_THP: the writer's THP option (default --thp-half; empty: 4 KiB
# pages only, so that every window of a move-first job moves first).
# Node 1 where there is one (the guests); on one node every step still
# runs with --force to node 0.
# There the writer fills its memory bound to node 0: left to first touch,
# a writer whose main thread ran on node 1's CPU had its pages on the
# target already, the job skipped them all, and a crash point such as
# window:fill@2 was never reached ("migd did not die", stop 23's CI).
if [ -d /sys/devices/system/node/node1 ]; then
	CRASH_TO=(--to 1)
	CRASH_WRITER_NODE=(--node 0)
else
	CRASH_TO=(--to 0 --force)
	CRASH_WRITER_NODE=()
fi
RUNS=0 DEAD=0 TRAPPED=0 HUNG=0 BAD=0 NOCRASH=0 FAILED=0 PAGES=0
# migd's deaths by signal: all of them, and those while a job was in flight.
KILLED=0 KILLED_MID=0 ABRTED=0 ABRTED_MID=0
# SIGABRT must not leave a core file of migd per round.
ulimit -c 0
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

# With CRASH_AGENT=1: wait (up to 10 s: the agent retries after 1, 2, 4 s)
# until the writer's agent is connected to this migd, so that the job
# takes the agent (attach = auto), not ptrace.
crash_agent_connected() {
	[ -n "${CRASH_AGENT:-}" ] || return 0
	local i
	for i in $(seq 200); do
		grep -q "pid $WPID (uid [0-9]*): agent connected" "$T/migd.log" && return 0
		sleep 0.05
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
	# Niced (by itself: the guests' busybox has no nice): the two writers
	# spin on every CPU, and neither migd nor the test's own steps may
	# starve behind them (under emulation a 32 MiB job took 34 s).
	# CRASH_AGENT=1: with the agent preloaded (docs/engine.md, "The agent").
	# CRASH_WRITER_ARGS: more writer options (--fork-child).
	if [ -n "${CRASH_AGENT:-}" ]; then
		LD_PRELOAD=$top/build/libmig-agent.so MIGD_AGENT_SOCKET=$T/agent.sock \
			"$WRITER" --size "${CRASH_MIB}M" --threads 2 ${CRASH_WRITER_THP---thp-half} "${CRASH_WRITER_NODE[@]}" --nice 10 ${CRASH_WRITER_ARGS:-} <"$T/w.in" >"$T/w.pipe" 2>&1 &
	else
		"$WRITER" --size "${CRASH_MIB}M" --threads 2 ${CRASH_WRITER_THP---thp-half} "${CRASH_WRITER_NODE[@]}" --nice 10 ${CRASH_WRITER_ARGS:-} <"$T/w.in" >"$T/w.pipe" 2>&1 &
	fi
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

# Where each thread of pid $1 waits (for a tenant that stays blocked).
crash_wchans() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "    thread ${t##*/}: $(cat "$t/wchan" 2>/dev/null) $(awk '{print $3}' "$t/stat" 2>/dev/null)"
	done
}

# crash_round LABEL DELAY [ENV=VALUE...]: one migration killed by a crash
# point (ENV) or, with DELAY > 0, by a signal after DELAY seconds
# (CRASH_SIG, default KILL; ABRT is what systemd's watchdog sends). With
# CRASH_AGAIN set, the first restart gets that MIG_CRASH_AT (a crash
# during recovery) and a second restart follows.
crash_round() {
	local label=$1 delay=$2 t0 t1 ms rms rc line wstat mid=0
	shift 2
	RUNS=$((RUNS + 1))
	: >"$T/migd.log"
	crash_start_writer || { crash_fail "$label: writer did not start"; return; }
	crash_start_migd "$@" || { crash_fail "$label: migd did not start"; crash_writer_gone; return; }
	crash_agent_connected || crash_fail "$label: the agent did not connect"
	"$MIGCTL" --quiet migrate "$WPID" "${CRASH_TO[@]}" >"$T/migctl.out" 2>&1 &
	local ctl=$!
	if [ "$delay" != 0 ]; then
		sleep "$delay"
		kill -"${CRASH_SIG:-KILL}" "$MIGD_PID" 2>/dev/null
	fi
	if ! crash_wait_migd 60; then
		crash_fail "$label: migd did not die"
		# What the job did instead (its reply, migd's last words).
		kill -0 "$ctl" 2>/dev/null || sed 's/^/    migctl| /' "$T/migctl.out"
		tail -n 5 "$T/migd.log" | sed 's/^/    migd| /'
		kill -9 "$MIGD_PID" 2>/dev/null
		crash_wait_migd 5
	fi
	wait "$ctl" 2>/dev/null
	rc=$MIGD_RC
	if ! ls "$T"/state/*.journal >/dev/null 2>&1; then
		# The job ended before the kill: nothing to recover.
		NOCRASH=$((NOCRASH + 1))
	else
		mid=1
	fi
	case $rc in
	137) KILLED=$((KILLED + 1)) KILLED_MID=$((KILLED_MID + mid)) ;;
	134) ABRTED=$((ABRTED + 1)) ABRTED_MID=$((ABRTED_MID + mid)) ;;
	esac
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
	crash_start_migd || {
		crash_fail "$label: migd did not restart"
		tail -n 20 "$T/migd.log" | sed 's/^/    migd| /'
		crash_writer_gone
		return
	}
	# migd recovers before it listens: from here on the tenant must write.
	t0=$(crash_now_ns)
	rms=$(sed -n 's/.*recovered after a crash of migd in \([0-9]*\)\..*/\1/p' "$T/migd.log" | tail -n 1)
	if [ -n "$rms" ]; then
		# Where recovery's time went (refill, settle, release in the tenant).
		grep -a "recovered after a crash of migd" "$T/migd.log" | tail -n 1 | sed 's/^/    migd| /'
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
		crash_wchans "$WPID"
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
		[[ $line =~ pages=([0-9]+) ]] && PAGES=$((PAGES + BASH_REMATCH[1]))
		exec 7>&- 8<&-
		wait "$WPID" 2>/dev/null
	fi
	[[ $line == "VERIFY OK"* ]] || grep -v '^#' "$T/w.out" | tail -n 5 | sed 's/^/    tenant| /'
	kill "$MIGD_PID" 2>/dev/null
	crash_wait_migd 30
	[ -n "${CRASH_VERBOSE:-}" ] && sed "s/^/    migd| /" "$T/migd.log"
	echo "  $label: migd exit $rc, recovery ${rms:--} ms, blocked ${ms:-?} ms after migd was back; $line"
}

# crash_calibrate: one migration that nobody kills; CRASH_JOB_MS gets
# how long it took (at least 100), so that random kills spread over a
# whole job on a fast host and in a slow guest alike. The tenant must
# verify afterwards like any other.
crash_calibrate() {
	local t0 line
	: >"$T/migd.log"
	CRASH_JOB_MS=100
	CRASH_MF=0
	crash_start_writer || { crash_fail "calibrate: writer did not start"; return; }
	crash_start_migd || { crash_fail "calibrate: migd did not start"; crash_writer_gone; return; }
	crash_agent_connected || crash_fail "calibrate: the agent did not connect"
	t0=$(crash_now_ns)
	# Exit 4: done, some pages failed (written throughout: -EAGAIN, -EBUSY).
	"$MIGCTL" --json migrate "$WPID" "${CRASH_TO[@]}" >"$T/migctl.out" 2>&1
	case $? in 0 | 4) ;; *) crash_fail "calibrate: migctl migrate failed: $(cat "$T/migctl.out")" ;; esac
	CRASH_ATTACH=$(sed -n 's/.*"attach": *"\([a-z]*\)".*/\1/p' "$T/migctl.out" | head -n 1)
	# The windows it ran (migd's default and CRASH_WINDOW=movefirst: move
	# first unless the kernel has no UFFDIO_MOVE or the tenant is an
	# agent's; CRASH_WINDOW=classic: classic). CRASH_MF=1: move first.
	CRASH_PROTOCOL=$(sed -n 's/.*"window_protocol": *"\([a-z]*\)".*/\1/p' "$T/migctl.out" | head -n 1)
	CRASH_MF=0
	[ "$CRASH_PROTOCOL" = movefirst ] && CRASH_MF=1
	CRASH_PROTOCOL="${CRASH_PROTOCOL:-?}, $(sed -n 's/.*"windows_movefirst": *\([0-9]*\).*/\1/p' "$T/migctl.out" | head -n 1) windows begun move first"
	t0=$((($(crash_now_ns) - t0) / 1000000))
	[ "$t0" -gt "$CRASH_JOB_MS" ] && CRASH_JOB_MS=$t0
	line=$(crash_wcmd stop VERIFY 60) || line="(no answer)"
	[[ $line == "VERIFY OK"* ]] || crash_fail "calibrate: $line"
	exec 7>&- 8<&-
	wait "$WPID" 2>/dev/null
	kill "$MIGD_PID" 2>/dev/null
	crash_wait_migd 30
	echo "# crash: an uninterrupted migration of ${CRASH_MIB} MiB took ${CRASH_JOB_MS} ms (attach ${CRASH_ATTACH:-?}, windows ${CRASH_PROTOCOL})"
}

# crash_random_delay: a moment in [5 ms, 1.2 x CRASH_JOB_MS], as seconds.
crash_random_delay() {
	local ms=$((5 + (RANDOM * 32768 + RANDOM) % (${CRASH_JOB_MS:-600} * 12 / 10)))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# crash_points POINT...: one round killed at each crash point (MIG_CRASH_AT).
crash_points() {
	local p
	for p in "$@"; do
		crash_round "$p" 0 MIG_CRASH_AT="$p"
	done
}

# crash_random_rounds N: N rounds killed by SIGKILL and N by SIGABRT, in
# turn, each at a random moment of the migration.
crash_random_rounds() {
	local i s d
	for i in $(seq "$1"); do
		for s in KILL ABRT; do
			d=$(crash_random_delay)
			CRASH_SIG=$s crash_round "SIG$s $i @${d}s" "$d"
		done
	done
}

# crash_max NAME: the largest of the array NAME's numbers (0 when empty).
crash_max() {
	local -n arr=$1
	local m=0 v
	for v in "${arr[@]}"; do [ "$v" -gt "$m" ] && m=$v; done
	echo "$m"
}

crash_report() {
	echo "# crash: $RUNS kills ($NOCRASH with no journal: before the first window or after the job, nothing to recover), tenants dead $DEAD, killed by SIGTRAP $TRAPPED (migd died mid-injection), hung $HUNG, bad data $BAD"
	echo "# crash: migd died of SIGKILL $KILLED times ($KILLED_MID mid-job), of SIGABRT $ABRTED times ($ABRTED_MID mid-job); pages verified $PAGES"
	echo "# crash: recovery in migd max $(crash_max MIGD_MS) ms over ${#MIGD_MS[@]}; a tenant write blocked after migd was back: max $(crash_max RECOVERY_MS) ms over ${#RECOVERY_MS[@]}"
	[ "$FAILED" = 0 ]
}
