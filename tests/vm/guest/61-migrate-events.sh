#!/bin/sh
# Cross-node migration with running writers while the tenant munmaps,
# madvise(DONTNEED)s, mremaps, forks or exits mid-window, and with a copy
# engine that fails on chosen pages, and with the tenant putting a VMA
# migd cannot unregister (unreg_foreign) or moving a run away and back
# before a window registers (unreg_hole, move first). Each test verifies
# the tenant's data.
# Automatic NUMA balancing pulls pages back toward the node of the CPU
# that touches them and would fight the migration under test; the guest
# is ours, so switch it off here (docs/engine.md).
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
rc=0
for t in munmap dontneed mremap fork exit copyfail unreg_foreign unreg_hole; do
	start=$(date +%s)
	build/tests/integration/migrate_$t
	r=$?
	echo "# migrate_$t: exit $r, $(($(date +%s) - start)) s"
	[ $r -eq 0 ] || [ $r -eq 77 ] || rc=1
done
exit $rc
