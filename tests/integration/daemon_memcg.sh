#!/usr/bin/env bash
# daemon_memcg.sh - a tenant at its memory cgroup limit is never killed by
# a migration (docs/engine.md, "A tenant at its memory limit").
#
# Every copy migd makes is charged to the tenant's memory cgroup, and an
# order-0 charge that reclaim cannot satisfy wakes the memcg OOM killer,
# which kills the tenant. Move-first windows hold a window's old pages in
# the tenant until they are filled, whole THPs are staged into huge slots
# inside the tenant, and even a classic window's freed THP is not
# uncharged at once: before memcg.c, a 64 MiB writer (two threads, half
# THPs) whose limit was its usage + 256 KiB was OOM-killed with either
# window protocol (host 6.18, cgroup v1: oom_kill 1).
#
# A writer tenant (64 MiB, 2 threads, --thp-half) is put into a cgroup of
# its own whose limit is its usage plus a slack, then migrated with migctl:
#   - slack 256 KiB, each window protocol: no room for any window, so the
#     pages stay, failed EDQUOT; windows_memcg counts them; migd logs it;
#     the tenant is alive, never OOM-killed, and verifies every page;
#   - slack 16 MiB, 8 MiB windows, move first (the default): room for
#     classic windows but not for move first: pages move, windows classic
#     (windows_memcg);
#   - slack 64 MiB: every window moves first, windows_memcg 0;
#   - relocation with --copy (tests/tenants/relocate_tenant, 8 MiB blocks)
#     at its usage + 256 KiB: the copies, charged while the originals stay,
#     do not fit, so the pages are mremapped instead; the tenant lives and
#     its data checks (before: OOM-killed).
# cgroup v2 (memory.max) or v1 (memory.limit_in_bytes), whichever holds the
# memory controller; skipped with the reason where neither does.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
WRITER=$MIG_BUILD/tests/tenants/writer

# The memory controller: MC_DIR (a parent for our cgroup), MC_V (1 or 2).
MC_DIR=
# mount_of FSTYPE [OPTION]: the mount point of the first such mount, from
# mountinfo (busybox's stat has no -f %T for cgroup2_root); the fields
# after the optional ones start at "-": type, source, super options.
mount_of() {
	awk -v t="$1" -v o="${2:-}" '{
		for (i = 7; i <= NF && $i != "-"; i++) ;
		if ($(i + 1) == t && (o == "" || index("," $(i + 3) ",", "," o ","))) { print $5; exit }
	}' /proc/self/mountinfo
}
d=$(mount_of cgroup2)
if [ -n "$d" ] && grep -qw memory "$d/cgroup.controllers" 2>/dev/null; then
	# Ours below the root: the root must hand the controller down.
	grep -qw memory "$d/cgroup.subtree_control" ||
		echo +memory >"$d/cgroup.subtree_control" 2>/dev/null
	grep -qw memory "$d/cgroup.subtree_control" && MC_DIR=$d MC_V=2
fi
if [ -z "$MC_DIR" ]; then
	d=$(mount_of cgroup memory)
	[ -n "$d" ] && [ -f "$d/memory.limit_in_bytes" ] && MC_DIR=$d MC_V=1
fi
[ -n "$MC_DIR" ] || skip "no memory cgroup controller (neither cgroup v2 memory nor a v1 memory mount)"
if [ "$MC_V" = 2 ]; then
	LIMIT=memory.max USAGE=memory.current
	oom_kills() { sed -n 's/^oom_kill //p' "$1/memory.events"; }
else
	LIMIT=memory.limit_in_bytes USAGE=memory.usage_in_bytes
	oom_kills() { sed -n 's/^oom_kill //p' "$1/memory.oom_control"; }
fi
echo "# memory cgroup v$MC_V under $MC_DIR"

# run_case NAME SLACK_KIB [MIGCTL_ARG...]: a writer at its limit + SLACK,
# migrated; sets OUT (migctl's JSON) and CG; fails on a dead, killed or
# wrong tenant.
run_case() {
	local name=$1 slack=$2 use i line
	shift 2
	CG=$MC_DIR/migd-test.$$.$name
	mkdir "$CG" || fail "$name: cannot make $CG"
	CGROUPS+=("$CG")
	rm -f "$T/w.in" "$T/w.out"
	mkfifo "$T/w.in"
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec "$WRITER" --size 64M --threads 2 --thp-half --nice 10 <"$T/w.in" >"$T/w.out" 2>&1) &
	WPID=$!
	PIDS+=("$WPID")
	exec 7>"$T/w.in"
	for i in $(seq 200); do grep -q '^READY' "$T/w.out" && break; sleep 0.05; done
	grep -q '^READY' "$T/w.out" || fail "$name: writer did not start: $(cat "$T/w.out")"
	sleep 0.5
	use=$(cat "$CG/$USAGE")
	echo $((use + slack * 1024)) >"$CG/$LIMIT" || fail "$name: cannot set $LIMIT"
	OUT=$("$MIGCTL" --json migrate "$WPID" --to 0 --force "$@" 2>&1)
	case $? in 0 | 4) ;; *) kill -0 "$WPID" 2>/dev/null || echo "# $name: the writer is gone" ;; esac
	kill -0 "$WPID" 2>/dev/null ||
		fail "$name: the tenant died during the migration (oom_kill $(oom_kills "$CG")): $OUT"
	[ "$(oom_kills "$CG")" = 0 ] || fail "$name: OOM kill in the tenant's cgroup: $OUT"
	echo stop >&7
	exec 7>&-
	wait "$WPID"
	i=$?
	line=$(grep '^VERIFY' "$T/w.out")
	[ $i = 0 ] && [[ $line == "VERIFY OK"* ]] || fail "$name: tenant exit $i, $line: $(cat "$T/w.out")"
	echo "# $name: usage $((use / 1024)) KiB, limit +$slack KiB: moved $(echo "$OUT" | jnum pages_moved)," \
		"failed $(echo "$OUT" | jnum pages_failed) $(echo "$OUT" | sed -n 's/.*"failures": *\({[^}]*}\).*/\1/p')," \
		"windows $(echo "$OUT" | jnum windows), move first $(echo "$OUT" | jnum windows_movefirst)," \
		"held back by the limit $(echo "$OUT" | jnum windows_memcg); oom_kill 0, $line"
	rmdir "$CG" 2>/dev/null
}

for proto in movefirst classic; do
	write_config "window_protocol = $proto"
	start_migd
	run_case "full-$proto" 256
	[ "$(echo "$OUT" | jnum windows_memcg)" -gt 0 ] || fail "full-$proto: no window held back: $OUT"
	echo "$OUT" | grep -q '"EDQUOT": *[1-9]' || fail "full-$proto: no page failed EDQUOT: $OUT"
	grep -q "too little room under the tenant's memory limit" "$T/migd.log" ||
		fail "full-$proto: migd did not log the limit"
	kill "$MIGD_PID"
	wait "$MIGD_PID"
	rm -f "$T/migd.sock"
done

write_config
start_migd
# 8 MiB windows: classic needs 8 + 4 MiB of room, move first 16 + 4 (the
# job itself takes 1-2 MiB of the slack before its first window in the
# 6.12 guest): most windows run classic, and the pages move. Before the
# huge staging slots counted as room, 3 THPs staged by a pass that took
# nothing out held 6 MiB for the rest of the job, and 10 of 14 windows
# failed EDQUOT. Every page not moved is accounted for (EDQUOT, or EBUSY
# and EAGAIN for the pages the writers keep busy).
run_case tight 16384 --window 8M
[ "$(echo "$OUT" | jnum pages_moved)" -gt 8000 ] || fail "tight: too little moved: $OUT"
if has_move; then
	[ "$(echo "$OUT" | jnum windows_memcg)" -gt 0 ] || fail "tight: no window held back: $OUT"
fi
echo "$OUT" | sed -n 's/.*"failures": *{\([^}]*\)}.*/\1/p' | tr ',' '\n' |
	grep -v '^$' | grep -qv '"E\(DQUOT\|BUSY\|AGAIN\)"' && fail "tight: other failures: $OUT"
run_case roomy 65536
[ "$(echo "$OUT" | jnum pages_moved)" -gt 8000 ] || fail "roomy: too little moved: $OUT"
[ "$(echo "$OUT" | jnum windows_memcg)" = 0 ] || fail "roomy: windows held back: $OUT"

# Relocation: relocate_tenant's block at D (SIZE) onto A + 2 SIZE, copied.
CG=$MC_DIR/migd-test.$$.relocate
mkdir "$CG" || fail "relocate: cannot make $CG"
CGROUPS+=("$CG")
coproc RT { echo "$BASHPID" >"$CG/cgroup.procs" && exec "$MIG_BUILD/tests/tenants/relocate_tenant" -s 8M -m small; }
RPID=$RT_PID
PIDS+=("$RPID")
while read -r k v <&"${RT[0]}"; do
	case $k in a) A=$v ;; d) D=$v ;; size) SIZE=$v ;; ready) break ;; esac
done
[ -n "${SIZE:-}" ] || fail "relocate_tenant did not get ready"
use=$(cat "$CG/$USAGE")
echo $((use + 256 * 1024)) >"$CG/$LIMIT" || fail "relocate: cannot set $LIMIT"
OUT=$("$MIGCTL" --json relocate "$RPID" "$(printf 0x%x "$D")" "$SIZE" \
	"$(printf 0x%x $((A + 2 * SIZE)))" --copy 2>&1)
kill -0 "$RPID" 2>/dev/null || fail "relocate: the tenant died (oom_kill $(oom_kills "$CG")): $OUT"
[ "$(oom_kills "$CG")" = 0 ] || fail "relocate: OOM kill in the tenant's cgroup: $OUT"
echo "moved $((2 * SIZE / 4096)) $((SIZE / 4096)) $(printf 0x%x $((A + 2 * SIZE)))" >&"${RT[1]}"
read -r line <&"${RT[0]}"
echo verify >&"${RT[1]}"
read -r line <&"${RT[0]}"
case $line in ok*) ;; *) fail "relocate: tenant: $line ($OUT)" ;; esac
echo "# relocate --copy at usage + 256 KiB: path $(echo "$OUT" | jstr path), tenant $line, oom_kill 0"
echo PASS
