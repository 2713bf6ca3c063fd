#!/bin/sh
# Placement of a 256 MiB tenant, half of it moved to node 1: counts checked,
# time printed as a "# " figure.
# The arrangement must hold while it is checked: NUMA balancing would
# migrate the tenant's pages meanwhile (and a page under migration reads
# -ENOENT from move_pages, which is probably how one run of 44 on 6.1
# failed: "move_pages status -2, wanted node 0").
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
exec build/tests/integration/proc_numa time
