#!/bin/sh
# The target node is full: pages that do not fit stay on node 0 and are
# reported -ENOMEM, the tenant verifies every page, nothing is OOM-killed.
# Automatic NUMA balancing pulls pages back toward the node of the CPU
# that touches them and would fight the migration under test; the guest
# is ours, so switch it off here (docs/engine.md).
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
exec build/tests/integration/migrate_full
