#!/bin/sh
# 66-crash for a tenant attached through its agent (crash_agent.sh, a
# short slice: two crash points and one random kill per signal): it comes
# back like a ptrace tenant, and its agent connects to the new migd.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
start=$(date +%s)
CRASH_RANDOM=1 CRASH_POINTS="window:zap window:fill@2:abrt" bash tests/integration/crash_agent.sh
a=$?
echo "# crash_agent: exit $a, $(($(date +%s) - start)) s"
exit $a
