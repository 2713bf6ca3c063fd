#!/bin/sh
# /proc readers across nodes: a tenant's pages are arranged on nodes 0 and 1
# with move_pages(2) (small pages, every other page written; then one whole
# 2 MiB THP); mig_placement and mig_query_pages must report exactly that.
# The arrangement must hold while it is checked: NUMA balancing would
# migrate the tenant's pages meanwhile (and a page under migration reads
# -ENOENT from move_pages, which is probably how one run of 44 on 6.1
# failed: "move_pages status -2, wanted node 0").
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
exec build/tests/integration/proc_numa placement
