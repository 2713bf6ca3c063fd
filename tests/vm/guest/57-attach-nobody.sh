#!/bin/sh
# Issue 15 on the guest kernels: root migrates a tenant running as uid
# 65534 from node 0 to node 1 with vm.unprivileged_userfaultfd = 0 and
# /dev/userfaultfd 0600 (migd hands the open device file in), data
# verified, the tenant's fd table as before
# (tests/integration/attach_nobody.c).
# NUMA balancing would move the pages itself (docs/engine.md).
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
echo 0 >/proc/sys/vm/unprivileged_userfaultfd || exit 1
chmod 0600 /dev/userfaultfd || exit 1
echo "# vm.unprivileged_userfaultfd = $(cat /proc/sys/vm/unprivileged_userfaultfd)," \
	"/dev/userfaultfd $(stat -c %a /dev/userfaultfd)"
build/tests/integration/attach_nobody
