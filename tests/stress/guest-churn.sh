#!/usr/bin/env bash
# guest-churn - the churn loop (churn.sh) in the 2-node qemu guests:
# Linux 6.12 (UFFDIO_MOVE zap and madvise) and 6.1 (madvise, agent), the
# migrations going node 0 -> 1 -> 0 ... GUEST_RUNS runs per kind (default 50).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
runs=${GUEST_RUNS:-50}
# qemu TCG runs a job 20-50 times slower than the host: a smaller tenant
# with two threads churns just as hard per page, and a run may take long.
# The guest gets no environment of ours: env passes it.
genv=(env STRESS_MIB="${STRESS_MIB:-4}" STRESS_THREADS="${STRESS_THREADS:-2}"
	CHURN_TIMEOUT="${CHURN_TIMEOUT:-900}")
rc=0
tests/vm/run --timeout 14400 -- "${genv[@]}" tests/stress/churn.sh "$runs" 5 "move madvise" || rc=1
tests/vm/run --kernel 6.1 --timeout 14400 -- "${genv[@]}" tests/stress/churn.sh "$runs" 5 "madvise agent" || rc=1
exit $rc
