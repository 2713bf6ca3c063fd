#!/bin/sh
# migd killed in the middle of a migration from node 0 to node 1 and
# started again, with the tenant's writers running
# (tests/integration/crash_recover.sh): each crash point once, a crash
# during recovery, a few kill -9 at random moments. On 6.12 the zap is a
# UFFDIO_MOVE; on 6.1 (no UFFDIO_MOVE) it is a madvise, whose content
# then exists only in the staging file until the fill.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
build/tests/integration/staging_place || exit 1
start=$(date +%s)
CRASH_RANDOM=${CRASH_RANDOM:-3} bash tests/integration/crash_recover.sh
r=$?
echo "# crash_recover: exit $r, $(($(date +%s) - start)) s"
exit $r
