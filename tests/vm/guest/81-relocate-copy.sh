#!/bin/sh
# Issue 14: the copy path (MIG_RELOCATE_NO_MOVE) of compact and relocate
# still merges, and each copy lands on the node its page was on (blocks on
# the last node); THPs are re-formed with MADV_COLLAPSE afterwards.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
exec build/tests/integration/relocate_basic copy
