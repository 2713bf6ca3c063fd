#!/bin/sh
# migd killed in the middle of a migration from node 0 to node 1 and
# started again, with the tenant's writers running
# (tests/integration/crash_recover.sh): each crash point once, a crash
# during recovery, a few kills by SIGKILL and by SIGABRT at random
# moments. On 6.12 migd runs move-first windows (its default; the check
# step "other window protocol" runs classic ones, whose zap is a
# UFFDIO_MOVE); on 6.1 (no UFFDIO_MOVE) classic windows zap with
# madvise, whose content then exists only in the staging file until the
# fill. The agent tenant's slice is 68-crash-agent. A 32 MiB tenant (the
# host runs 64): under emulation on a loaded host one uninterrupted 64 MiB
# job took 62 s and this test passed every round but ran past the guest's
# 600 s limit per test.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
build/tests/integration/staging_place || exit 1
start=$(date +%s)
CRASH_MIB=${CRASH_MIB:-32} CRASH_RANDOM=${CRASH_RANDOM:-3} bash tests/integration/crash_recover.sh
r=$?
echo "# crash_recover: exit $r, $(($(date +%s) - start)) s"
exit $r
