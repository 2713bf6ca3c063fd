#!/bin/sh
# migd killed in the middle of a migration from node 0 to node 1 and
# started again, with the tenant's writers running
# (tests/integration/crash_recover.sh): each crash point once, a crash
# during recovery, a few kills by SIGKILL and by SIGABRT at random
# moments; then a slice of the same for an agent tenant (crash_agent.sh). On 6.12 the zap is a
# UFFDIO_MOVE; on 6.1 (no UFFDIO_MOVE) it is a madvise, whose content
# then exists only in the staging file until the fill.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
build/tests/integration/staging_place || exit 1
start=$(date +%s)
CRASH_RANDOM=${CRASH_RANDOM:-3} bash tests/integration/crash_recover.sh
r=$?
echo "# crash_recover: exit $r, $(($(date +%s) - start)) s"
# The same for a tenant attached through its agent (a short slice).
start=$(date +%s)
CRASH_RANDOM=1 CRASH_POINTS="window:zap window:fill@2:abrt" bash tests/integration/crash_agent.sh
a=$?
echo "# crash_agent: exit $a, $(($(date +%s) - start)) s"
[ $r = 0 ] && r=$a
exit $r
