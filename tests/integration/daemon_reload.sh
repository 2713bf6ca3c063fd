#!/usr/bin/env bash
# daemon_reload.sh - --check-config reports each error with file:line;
# a broken policy on reload (migctl reload and SIGHUP) is refused with the
# reason and the old policies stay in force; a fixed one is taken.
set -u
. "$(dirname "$0")/daemon_lib.sh"
write_config
printf '[policy]\ncgroup = /migd-test-a.slice/*\nnodes = 0\ntrigger = manual\n' >"$T/policies.d/a.ini"

"$MIGD" --check-config >/dev/null || fail "the embedded default does not check"
out=$("$MIGD" --check-config --config "$T/migd.ini") || fail "check-config: $out"
echo "$out" | grep -q '^cgroup = /migd-test-a.slice/\*$' || fail "check-config did not print the policy: $out"

start_migd
printf '[policy]\ncgroup = /b\nnodes = 0-\nspeed = 11\n' >"$T/policies.d/b.ini"
out=$("$MIGD" --check-config --config "$T/migd.ini" 2>&1); rc=$?
[ $rc = 1 ] || fail "check-config of a broken policy: exit $rc"
echo "$out" | grep -q "b.ini:3: nodes must be" || fail "no file:line for nodes: $out"
echo "$out" | grep -q "b.ini:4: unknown key 'speed'" || fail "no file:line for the key: $out"

out=$("$MIGCTL" --json reload); rc=$?
[ $rc = 1 ] || fail "reload of a broken policy: exit $rc ($out)"
echo "$out" | grep -q "b.ini:3" || fail "reload reply does not say why: $out"
[ "$("$MIGCTL" --json policies | json policies 0 name)" = a ] || fail "old policy not kept"
kill -HUP "$MIGD_PID"
sleep 0.3
grep -q "reload failed, keeping the old configuration" "$T/migd.log" || fail "SIGHUP: no log of the refusal"
kill -0 "$MIGD_PID" || fail "migd died on SIGHUP"
[ "$("$MIGCTL" --json policies | json policies 0 name)" = a ] || fail "SIGHUP: old policy not kept"

printf '[policy]\ncgroup = /b\nnodes = 0\n' >"$T/policies.d/b.ini"
kill -HUP "$MIGD_PID"
sleep 0.3
[ "$("$MIGCTL" --json status | json policies)" = 2 ] || fail "fixed policy not loaded on SIGHUP"
[ "$("$MIGCTL" --json stats | json reload_failures)" = 2 ] || fail "reload_failures count"
echo PASS
