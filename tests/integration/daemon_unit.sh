#!/usr/bin/env bash
# daemon_unit.sh - systemd/migd.service and migd.socket pass
# `systemd-analyze verify`. The binary path is pointed at build/migd and
# man pages are not looked up, since neither is installed on a build host.
set -u
. "$(dirname "$0")/daemon_lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze missing"
sed "s|/usr/sbin/migd|$MIGD|" "$top/systemd/migd.service" >"$T/migd.service"
cp "$top/systemd/migd.socket" "$T/migd.socket"
out=$(systemd-analyze verify --man=no "$T/migd.service" "$T/migd.socket" 2>&1)
rc=$?
echo "$out"
[ $rc = 0 ] && [ -z "$out" ] || fail "systemd-analyze verify is not clean"
grep -q '^Type=notify' "$top/systemd/migd.service" || fail "not Type=notify"
grep -q '^CapabilityBoundingSet=CAP_SYS_PTRACE CAP_SYS_NICE CAP_SYS_ADMIN CAP_DAC_OVERRIDE$' "$top/systemd/migd.service" ||
	fail "capability set changed"
echo PASS
