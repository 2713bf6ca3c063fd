#!/usr/bin/env bash
# The guest half of the migration bench: boots the 2-node qemu guest and
# runs build/tests/bench/migrate there: 256 MiB of 4 KiB and of THP
# tenants moved node 0 -> 1 with writers running, move_pages(2) and
# migrate_pages(2) timed on the same kind of tenant in the same run, the
# floor chain and memcpy, and the table with the ratios. Kernels: MIG_BENCH_KERNELS
# (default "6.12 6.1"). Skips when no guest can be booted here.
# Automatic NUMA balancing would move the tenants' pages on its own while
# they are timed, so the guest switches it off first (docs/engine.md).
cd "$(dirname "$0")/../.." || exit 1
rc=0 ran=0
for kernel in ${MIG_BENCH_KERNELS:-6.12 6.1}; do
	echo "# bench-vm: kernel $kernel, 2 nodes (qemu)"
	tests/vm/run --kernel "$kernel" --nodes 2 --timeout 1200 -- sh -c \
		'[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing; exec build/tests/bench/migrate' |
		sed "s/^# bench/# bench-vm-$kernel/"
	r=${PIPESTATUS[0]}
	case $r in
	0) ran=$((ran + 1)) ;;
	1 | 125 | 126) echo "# bench-vm: kernel $kernel: the guest did not run (tests/vm/run exit $r)" ;;
	*) rc=$r ;;
	esac
done
if [ $ran -eq 0 ] && [ $rc -eq 0 ]; then
	echo "SKIP: the qemu guest did not run"
	exit 77
fi
exit $rc
