#!/bin/sh
# mig_split_large_at on a 64 KiB mTHP, then (issue 14) every mTHP size the
# kernel has and 2 MiB THPs in one tenant moved to node 1: the large folios
# libmig reports per size before and after are the test's own kpageflags
# count, and every mTHP not on node 1 went there whole (proc_split sizes);
# huge_pages = skip leaves every large folio on its node and physical page
# and counts them per size (proc_split skip). 67-migrate-thp runs
# proc_split edges (a range cutting two 64 KiB mTHPs). Skips where the
# kernel has no mTHP (6.1; mTHP exists since 6.8).
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
build/tests/integration/proc_split mthp || exit $?
build/tests/integration/proc_split sizes || exit $?
exec build/tests/integration/proc_split skip
