#!/usr/bin/env bash
# ctl_commands.sh - every control command through migctl against a real
# migd and a real tenant: status, tenants, policies, placement, migrate,
# cancel, reload, stats; human and --json output, exit codes.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
write_config
printf '[policy]\ncgroup = /migd-test-none.slice/*\nnodes = 0\ntrigger = manual\n' >"$T/policies.d/none.ini"
start_migd
start_tenant 64

"$MIGCTL" status | grep -q '^policies *1$' || fail "status: no policy count"
[ "$("$MIGCTL" --json status | json policies)" = 1 ] || fail "status --json"
[ "$("$MIGCTL" --json policies | json policies 0 name)" = none ] || fail "policies"
"$MIGCTL" policies | grep -q '^none ' || fail "policies (human)"

out=$("$MIGCTL" --json placement "$TENANT_PID" --range "$TENANT_RANGE") || fail "placement"
pages=$(echo "$out" | json nodes 0)
[ "$pages" -ge 16000 ] || fail "placement: $pages pages on node 0, expected the 16384 written"
echo "# placement before: $out"

out=$("$MIGCTL" --json migrate "$TENANT_PID" --to 0 --force --range "$TENANT_RANGE") || fail "migrate: $out"
moved=$(echo "$out" | json pages_moved)
[ "$moved" -ge 16000 ] || fail "migrate moved $moved pages: $out"
for k in pages_skipped pages_failed failures bytes_per_sec max_stall_us huge_kept job; do
	echo "$out" | json "$k" >/dev/null || fail "migrate summary lacks $k: $out"
done
echo "# migrate 64 MiB: $(echo "$out" | json bytes_per_sec) B/s, max stall $(echo "$out" | json max_stall_us) us"

"$MIGCTL" migrate "$TENANT_PID" --to 0 --force --range "$TENANT_RANGE" | grep -q 'pages moved' || fail "migrate (human)"

[ "$("$MIGCTL" --json tenants | json tenants 0 pid)" = "$TENANT_PID" ] || fail "tenants: the named pid is listed"
"$MIGCTL" cancel 9999; rc=$?
[ $rc = 1 ] || fail "cancel of an unknown job: exit $rc, want 1"
"$MIGCTL" cancel 2; rc=$?
[ $rc = 1 ] || fail "cancel of a finished job: exit $rc, want 1"
[ "$("$MIGCTL" --json reload | json policies)" = 1 ] || fail "reload"
[ "$("$MIGCTL" --json stats | json jobs_succeeded)" = 2 ] || fail "stats: 2 jobs succeeded"

"$MIGCTL" migrate "$TENANT_PID"; rc=$?
[ $rc = 2 ] || fail "migrate without --to: exit $rc, want 2"
"$MIGCTL" frobnicate; rc=$?
[ $rc = 2 ] || fail "unknown command: exit $rc, want 2"
"$MIGCTL" migrate --help | grep -q -- '--window' || fail "migrate --help"
MIGD_SOCKET=$T/nothing.sock "$MIGCTL" status; rc=$?
[ $rc = 3 ] || fail "unreachable migd: exit $rc, want 3"
"$MIGCTL" placement 12abc; rc=$?
[ $rc = 2 ] || fail "bad pid: exit $rc, want 2"
"$MIGCTL" --json placement 4194303 | grep -q ESRCH || fail "placement of a missing pid: ESRCH"

stop_tenant "$TENANT_PID"
echo PASS
