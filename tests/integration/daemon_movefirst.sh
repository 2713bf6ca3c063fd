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
#   - every tenant checks its own data.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
AGENT=$top/build/libmig-agent.so
[ -f "$AGENT" ] || fail "no $AGENT"

write_config
"$MIGD" --check-config --config "$T/migd.ini" | grep -qx "window_protocol = movefirst" ||
	fail "the default window_protocol is not movefirst"
write_config "window_protocol = classic"
"$MIGD" --check-config --config "$T/migd.ini" | grep -qx "window_protocol = classic" ||
	fail "--check-config does not show window_protocol = classic"
write_config "window_protocol = sideways"
"$MIGD" --check-config --config "$T/migd.ini" >"$T/bad" 2>&1 &&
	fail "window_protocol = sideways accepted"
grep -q "window_protocol must be classic or movefirst" "$T/bad" ||
	fail "no clear error for a bad window_protocol: $(cat "$T/bad")"
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

# 3. window_protocol = classic: classic windows only, asked for, so no fallback.
kill "$MIGD_PID"
wait "$MIGD_PID"
rm -f "$T/migd.sock"
write_config "window_protocol = classic"
start_migd
out=$("$MIGCTL" --json migrate "$PLAIN" --to 0 --force --range "$PLAIN_RANGE") ||
	fail "migrate (classic): $out"
[ "$(echo "$out" | jnum pages_moved)" -gt 0 ] || fail "classic: nothing moved: $out"
[ "$(echo "$out" | jstr window_protocol)" = classic ] || fail "classic not used: $out"
[ "$(echo "$out" | jnum windows_movefirst)" = 0 ] || fail "classic: windows begun move first: $out"
[ -z "$(echo "$out" | jstr window_protocol_fallback)" ] || fail "classic: a fallback named: $out"
! grep -q "pid $PLAIN: classic windows, not move first" "$T/migd.log" ||
	fail "classic asked for, but logged as a fallback"
echo "# window_protocol = classic: $(echo "$out" | jnum windows) windows, all classic"

stop_tenant "$PLAIN"
echo PASS
