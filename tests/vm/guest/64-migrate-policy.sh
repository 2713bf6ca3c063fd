#!/bin/sh
# The tenant's own VMA memory policy: a region under mbind(MPOL_BIND,
# node 0) and a region without a VMA policy, both on node 0 with a writer
# thread running, are migrated to node 1. The bound region's present pages
# are reported -EXDEV and stay on node 0; the other region's pages end on
# node 1; the tenant verifies every page (migrate_policy.c).
# Automatic NUMA balancing would move pages on its own; switch it off as
# the other migrate guest tests do.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
start=$(date +%s)
build/tests/integration/migrate_policy
rc=$?
echo "# migrate_policy in the guest: $(($(date +%s) - start)) s"
exit $rc
