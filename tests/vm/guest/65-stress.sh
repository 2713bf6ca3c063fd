#!/bin/sh
# The adversarial stress test across real nodes: a tenant whose threads
# write, read, DONTNEED, re-map, munmap, mprotect and mremap their own
# pages without pause while it is migrated again and again between node
# 0 and node 1 (tests/integration/stress_chaos.c). On 6.12 the zap is a
# UFFDIO_MOVE; on 6.1 it is a madvise run with the tenant's other threads
# stopped (docs/engine.md, "The zap"). Every operation runs on both. The
# tenant checks every read and every page at the end.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
start=$(date +%s)
STRESS_SECS=${STRESS_SECS:-20} build/tests/integration/stress_chaos
r=$?
echo "# stress_chaos: exit $r, $(($(date +%s) - start)) s"
exit $r
