#!/bin/sh
# Issue 14: a tenant that mremapped a faulted THP block next to another
# shows one VMA after mig_compact, and after mig_relocate of a third block
# behind them; blocks 1 and 2 are put on the last node first, and every
# page must stay on its node (and, with UFFDIO_MOVE, keep its PFN and its
# THPs). 6.12 takes the MOVE path, 6.1 (no UFFDIO_MOVE) the copy path:
# the test asserts which.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
exec build/tests/integration/relocate_basic move
