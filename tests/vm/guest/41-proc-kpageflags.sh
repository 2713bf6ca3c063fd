#!/bin/sh
# kpageflags decoding on this kernel: 2 MiB THPs (order 9, one head,
# contiguous PFNs), small pages, the zero page (move_pages -EFAULT, absent
# for placement).
exec build/tests/integration/proc_numa kpf
