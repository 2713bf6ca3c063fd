#!/bin/sh
# kpageflags decoding on this kernel: 2 MiB THPs (order 9, one head,
# contiguous PFNs), small pages, the zero page (move_pages -EFAULT, absent
# for placement). Then the pagemap unit suite on this kernel: the THP
# short cut (PAGEMAP_SCAN, 6.7+) and a page's node from its PFN's memory
# block against move_pages (tests/unit/test_pagemap.c).
# The arrangement must hold while it is checked: NUMA balancing would
# migrate the tenant's pages meanwhile (and a page under migration reads
# -ENOENT from move_pages, which is probably how one run of 44 on 6.1
# failed: "move_pages status -2, wanted node 0").
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
build/tests/integration/proc_numa kpf || exit $?
CK_RUN_SUITE=pagemap exec build/tests/unit-tests
