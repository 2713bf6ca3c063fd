#!/bin/sh
# mig_split_large_at on a 64 KiB mTHP; skips where the kernel has no mTHP
# (6.1; mTHP exists since 6.8).
exec build/tests/integration/proc_split mthp
