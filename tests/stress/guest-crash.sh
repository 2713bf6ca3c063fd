#!/usr/bin/env bash
# guest-crash - issue 13's acceptance in the 2-node qemu guests, Linux 6.12
# (UFFDIO_MOVE zap) and 6.1 (madvise zap, content only in staging until
# the fill): migd killed at every crash point and GUEST_CRASH_KILLS times
# per signal (default 50, SIGKILL and SIGABRT) at random moments of a
# migration with writers running (crash_kill_loop.sh, a 32 MiB tenant to
# keep the emulated guest's rounds short), and the injector killed at
# every named point with both signals and at GUEST_CRASH_KILLS random
# moments (crash_inject). Counts are printed per kernel;
# GUEST_CRASH_KERNELS (default "6.12 6.1") picks the kernels.
# run-suite-timeout: 21600
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
n=${GUEST_CRASH_KILLS:-50}
rc=0
for k in ${GUEST_CRASH_KERNELS:-6.12 6.1}; do
	echo "# guest $k"
	tests/vm/run --kernel "$k" --timeout 10800 -- env CRASH_KILLS="$((2 * n))" CRASH_MIB=32 \
		sh -c 'build/tests/integration/crash_inject "$0" && bash tests/stress/crash_kill_loop.sh' \
		"$((2 * n))" || rc=1
done
exit $rc
