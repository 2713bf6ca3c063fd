#!/usr/bin/env bash
# daemon_movefirst.sh - migd.conf window_protocol, movefirst by default
# (docs/engine.md, "Move first, copy after"):
#   - the default is movefirst, classic is accepted (--check-config prints
#     each back), a bad value refused with a clear error;
#   - a ptrace tenant on a kernel with UFFDIO_MOVE (6.8+) is migrated with
#     move-first windows: the job's summary says window_protocol movefirst
#     and counts the windows begun move first (none where THP is "always":
#     a window with a PMD-mapped THP runs classic), migctl's human output
#     says it too;
#   - where move first cannot run (a kernel without UFFDIO_MOVE, a tenant
#     attached through its agent) the job runs the classic windows, its
#     summary says window_protocol classic and why
#     (window_protocol_fallback), and migd logs that line;
#   - window_protocol = classic: the same ptrace tenant runs classic
#     windows only, and no fallback is named (it was asked for);
#   - fault_priority (realtime by default, normal accepted, a bad value
#     refused): a move-first job's summary says its fault thread ran at
#     real-time priority, a classic one's that it did not, and with
#     fault_priority = normal a move-first job's neither;
#   - every tenant checks its own data.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
AGENT=$top/build/libmig-agent.so
[ -f "$AGENT" ] || fail "no $AGENT"

# check_key KEY DEFAULT OTHER BAD ERROR: --check-config prints KEY's default
# and OTHER back, and refuses BAD with ERROR.
check_key() {
	write_config
	"$MIGD" --check-config --config "$T/migd.ini" | grep -qx "$1 = $2" ||
		fail "the default $1 is not $2"
	write_config "$1 = $3"
	"$MIGD" --check-config --config "$T/migd.ini" | grep -qx "$1 = $3" ||
		fail "--check-config does not show $1 = $3"
	write_config "$1 = $4"
	"$MIGD" --check-config --config "$T/migd.ini" >"$T/bad" 2>&1 && fail "$1 = $4 accepted"
	grep -q "$5" "$T/bad" || fail "no clear error for a bad $1: $(cat "$T/bad")"
}
check_key window_protocol movefirst classic sideways "window_protocol must be classic or movefirst"
check_key fault_priority realtime normal urgent "fault_priority must be realtime or normal"
# The default: no window_protocol line.
write_config
start_migd

# 1. A ptrace tenant (no agent): move first where the kernel has UFFDIO_MOVE.
start_tenant 32
PLAIN=$TENANT_PID
PLAIN_RANGE=$TENANT_RANGE
out=$("$MIGCTL" --json migrate "$PLAIN" --to 0 --force --range "$PLAIN_RANGE") || fail "migrate: $out"
[ "$(echo "$out" | jstr attach)" = ptrace ] || fail "the tenant was not attached with ptrace: $out"
[ "$(echo "$out" | jnum pages_moved)" -gt 0 ] || fail "nothing moved: $out"
proto=$(echo "$out" | jstr window_protocol)
mf=$(echo "$out" | jnum windows_movefirst)
echo "# ptrace tenant, kernel $(uname -r): window_protocol $proto, $(echo "$out" | jnum windows)" \
	"windows, $mf begun move first, $(echo "$out" | jnum windows_switched) went on classic"
if has_move; then
	[ "$proto" = movefirst ] || fail "window_protocol = movefirst not used: $out"
	if grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
		echo "# THP always: the tenant's windows may all hold THPs (classic); not counted"
	else
		[ "$mf" -gt 0 ] || fail "no window begun move first: $out"
	fi
	[ -z "$(echo "$out" | jstr window_protocol_fallback)" ] || fail "a fallback named: $out"
	if [ "$mf" -gt 0 ]; then
		[ "$(echo "$out" | jstr fault_priority)" = realtime ] ||
			fail "move first, but the fault thread was not real time: $out"
		echo "# fault thread: $(echo "$out" | jstr fault_priority)"
	fi
	"$MIGCTL" migrate "$PLAIN" --to 0 --force --range "$PLAIN_RANGE" >"$T/human" ||
		fail "migrate (human): $(cat "$T/human")"
	grep -q '^windows: [0-9]*, movefirst ([0-9]* begun move first, [0-9]* went on classic)$' "$T/human" ||
		fail "migctl does not say movefirst: $(cat "$T/human")"
else
	[ "$proto" = classic ] || fail "move first without UFFDIO_MOVE: $out"
	[ "$mf" = 0 ] || fail "windows begun move first without UFFDIO_MOVE: $out"
	why=$(echo "$out" | jstr window_protocol_fallback)
	[ -n "$why" ] || fail "no fallback named: $out"
	case $why in *UFFDIO_MOVE*) ;; *) fail "fallback reason: '$why'" ;; esac
	grep -q "pid $PLAIN: classic windows, not move first: $why" "$T/migd.log" ||
		fail "the fallback was not logged"
	echo "# no UFFDIO_MOVE: classic windows, logged: $why"
fi

# 2. An agent tenant: classic windows (the agent zaps with madvise), said and logged.
start_tenant 16 LD_PRELOAD="$AGENT" MIGD_AGENT_SOCKET="$T/agent.sock"
AG=$TENANT_PID
AG_RANGE=$TENANT_RANGE
for _ in $(seq 100); do grep -q "pid $AG (uid 0): agent connected" "$T/migd.log" && break; sleep 0.1; done
grep -q "pid $AG (uid 0): agent connected" "$T/migd.log" || fail "the agent did not connect"
out=$("$MIGCTL" --json migrate "$AG" --to 0 --force --range "$AG_RANGE") || fail "migrate agent tenant: $out"
[ "$(echo "$out" | jstr attach)" = agent ] || fail "the agent was not used: $out"
[ "$(echo "$out" | jstr window_protocol)" = classic ] || fail "agent tenant not classic: $out"
[ "$(echo "$out" | jnum windows_movefirst)" = 0 ] || fail "agent tenant: windows begun move first: $out"
why=$(echo "$out" | jstr window_protocol_fallback)
# Without UFFDIO_MOVE that is the reason named first.
want="the tenant is attached through its agent"
has_move || want="the kernel has no UFFDIO_MOVE (Linux 6.8+)"
[ "$why" = "$want" ] || fail "agent tenant: fallback '$why', not '$want'"
grep -q "pid $AG: classic windows, not move first: $why" "$T/migd.log" ||
	fail "the agent tenant's fallback was not logged"
echo "# agent tenant: classic windows, logged: $why"

stop_tenant "$AG"

# restart_migrate LINE: migd again with LINE in its configuration, then
# the plain tenant migrated; its summary in $out.
restart_migrate() {
	kill "$MIGD_PID"
	wait "$MIGD_PID"
	rm -f "$T/migd.sock"
	write_config "$1"
	start_migd
	out=$("$MIGCTL" --json migrate "$PLAIN" --to 0 --force --range "$PLAIN_RANGE") ||
		fail "migrate ($1): $out"
}

# 3. window_protocol = classic: classic windows only, asked for, so no fallback.
restart_migrate "window_protocol = classic"
[ "$(echo "$out" | jnum pages_moved)" -gt 0 ] || fail "classic: nothing moved: $out"
[ "$(echo "$out" | jstr window_protocol)" = classic ] || fail "classic not used: $out"
[ "$(echo "$out" | jnum windows_movefirst)" = 0 ] || fail "classic: windows begun move first: $out"
[ -z "$(echo "$out" | jstr window_protocol_fallback)" ] || fail "classic: a fallback named: $out"
# Real time only for move-first windows: classic ones hold their writers anyway.
[ "$(echo "$out" | jstr fault_priority)" = normal ] ||
	fail "classic windows, but the fault thread was real time: $out"
! grep -q "pid $PLAIN: classic windows, not move first" "$T/migd.log" ||
	fail "classic asked for, but logged as a fallback"
echo "# window_protocol = classic: $(echo "$out" | jnum windows) windows, all classic"

# 4. fault_priority = normal: move first with the fault thread a normal thread.
if has_move && [ "$mf" -gt 0 ]; then
	restart_migrate "fault_priority = normal"
	[ "$(echo "$out" | jnum windows_movefirst)" -gt 0 ] || fail "normal: no move first: $out"
	[ "$(echo "$out" | jstr fault_priority)" = normal ] ||
		fail "fault_priority = normal, but: $out"
	echo "# fault_priority = normal: the fault thread stayed a normal thread"
fi

stop_tenant "$PLAIN"
echo PASS
