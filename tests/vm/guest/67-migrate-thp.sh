#!/bin/sh
# Issue 14, large mappings, node 0 -> node 1: a THP-backed range (64 MiB
# here, MIG_TEST_SIZE; qemu TCG on a loaded host takes minutes per 64 MiB)
# with 2 writers, moved to node 1. 6.1 (no UFFDIO_MOVE): copied, and
# MADV_COLLAPSE tried for >= 90 % of the THPs (asserted; most of those
# collapses fail on 6.1, the AnonHugePages left are printed: open). 6.12:
# >= 90 % of the AnonHugePages kept and of the THPs back on node 1, placed whole with PMD moves or, where
# that falls back (most blocks in this guest, docs/engine.md), re-formed;
# the split is printed. With huge_pages = split none is re-formed. Then a
# range cutting two THPs (and on 6.12 two 64 KiB mTHPs) moves exactly its
# pages: the pages outside keep node and PFN, no large folio is left at
# the edges.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
case $(uname -r) in
6.1.*) mode=keep ;;
*) mode=keep-any ;;
esac
MIG_TEST_SIZE=${MIG_TEST_SIZE:-64M} build/tests/integration/migrate_thp $mode || exit $?
MIG_TEST_SIZE=${MIG_TEST_SIZE:-32M} build/tests/integration/migrate_thp split || exit $?
exec build/tests/integration/proc_split edges
