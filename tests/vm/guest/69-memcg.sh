#!/bin/sh
# A tenant at its memory cgroup limit is never OOM-killed by a migration
# (tests/integration/daemon_memcg.sh): the guests mount cgroup v2, where
# the host has the v1 memory controller. On 6.12 move first (migd's
# default) and whole-THP staging are held back by the limit; on 6.1 the
# windows are classic.
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
bash tests/integration/daemon_memcg.sh
