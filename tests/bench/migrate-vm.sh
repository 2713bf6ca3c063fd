#!/bin/sh
# The guest half of the migration bench: boots the 2-node qemu guest
# (kernel 6.12) and runs build/tests/bench/migrate there: 256 MiB moved
# node 0 -> 1 with writers running, move_pages(2) and migrate_pages(2)
# timed on the same kind of tenant in the same run, and the ratios.
# Skips when the guest cannot be booted here.
cd "$(dirname "$0")/../.." || exit 1
kernel=${MIG_BENCH_KERNEL:-6.12}
tests/vm/run --kernel "$kernel" --nodes 2 -q --timeout 1200 -- build/tests/bench/migrate
rc=$?
case $rc in
1 | 125 | 126)
	echo "SKIP: the qemu guest did not run (tests/vm/run exit $rc)"
	exit 77
	;;
esac
exit $rc
