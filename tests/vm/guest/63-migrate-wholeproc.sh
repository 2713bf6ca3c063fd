#!/bin/sh
# Whole-process migration node 0 -> node 1 (every writable anonymous VMA:
# heap, stacks, TLS, anonymous mmaps): a single-threaded C tenant blocked
# in read(2) into its data while the test feeds it, and the writer tenant
# with its threads, directly and through the agent. The python3 cases
# skip here (busybox guest). Then the agent's ptrace fallback
# (migrate_agent_stop): one thread blocks the agent's stop signal, or the
# host has its own handler for it (the other two cases, the agent alone
# and the signal ignored, run on the host).
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
start=$(date +%s)
build/tests/integration/migrate_wholeproc c-read
rc=$?
[ $rc -eq 0 ] && { build/tests/integration/migrate_wholeproc writer; rc=$?; }
[ $rc -eq 0 ] && { build/tests/integration/migrate_wholeproc agent-writer; rc=$?; }
echo "# migrate_wholeproc in the guest: $(($(date +%s) - start)) s"
[ $rc -eq 0 ] || exit $rc
start=$(date +%s)
build/tests/integration/migrate_agent_stop one-blocked
rc=$?
[ $rc -eq 0 ] && { build/tests/integration/migrate_agent_stop own-handler; rc=$?; }
echo "# migrate_agent_stop in the guest: $(($(date +%s) - start)) s"
exit $rc
