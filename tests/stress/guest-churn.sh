#!/usr/bin/env bash
# guest-churn - the churn loop (churn.sh) in the 2-node qemu guests:
# Linux 6.12 (UFFDIO_MOVE zap and madvise) and 6.1 (madvise, agent), the
# migrations going node 0 -> 1 -> 0 ... GUEST_RUNS runs per kind (default 50).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
runs=${GUEST_RUNS:-50}
rc=0
tests/vm/run --timeout 7200 -- tests/stress/churn.sh "$runs" 5 "move madvise" || rc=1
tests/vm/run --kernel 6.1 --timeout 7200 -- tests/stress/churn.sh "$runs" 5 "madvise agent" || rc=1
exit $rc
