#!/bin/sh
# Issue 14, large mappings, node 0 -> node 1: a THP-backed 256 MiB range
# with 2 writers keeps >= 90 % of its AnonHugePages; on 6.12 (UFFDIO_MOVE)
# the THPs are placed whole with PMD moves (>= 90 %, MADV_COLLAPSE for at
# most 5 %), on 6.1 copied and re-formed with MADV_COLLAPSE; with
# huge_pages = split none is re-formed. Then a range cutting two THPs (and
# on 6.12 two 64 KiB mTHPs) moves exactly its pages: the pages outside
# keep node and PFN, no large folio is left at the edges.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
build/tests/integration/migrate_thp keep || exit $?
build/tests/integration/migrate_thp split || exit $?
exec build/tests/integration/proc_split edges
