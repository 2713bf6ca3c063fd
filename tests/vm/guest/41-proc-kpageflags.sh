#!/bin/sh
# kpageflags decoding on this kernel: 2 MiB THPs (order 9, one head,
# contiguous PFNs), small pages, the zero page (move_pages -EFAULT, absent
# for placement). Then the pagemap unit suite on this kernel: the THP
# short cut (PAGEMAP_SCAN, 6.7+) and a page's node from its PFN's memory
# block against move_pages (tests/unit/test_pagemap.c).
build/tests/integration/proc_numa kpf || exit $?
CK_RUN_SUITE=pagemap exec build/tests/unit-tests
