#!/bin/sh
# Whole-process migration node 0 -> node 1 (every writable anonymous VMA:
# heap, stacks, TLS, anonymous mmaps): a single-threaded C tenant blocked
# in read(2) into its data while the test feeds it, and the writer tenant
# with its threads, directly and through the agent. The python3 cases
# skip here (busybox guest).
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
start=$(date +%s)
build/tests/integration/migrate_wholeproc c-read
rc=$?
[ $rc -eq 0 ] && { build/tests/integration/migrate_wholeproc writer; rc=$?; }
[ $rc -eq 0 ] && { build/tests/integration/migrate_wholeproc agent-writer; rc=$?; }
echo "# migrate_wholeproc in the guest: $(($(date +%s) - start)) s"
exit $rc
