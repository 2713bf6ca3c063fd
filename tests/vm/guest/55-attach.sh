#!/bin/sh
# Issue 5 on the guest kernels: the tenant-access integration programs
# (ptrace injection, the agent, fork, migd restart, blocked syscalls, signals, exit,
# stopped tenants, a zombie main thread, where our mappings go, seccomp-filtered
# tenants) run as they are in the guest.
# attach_python (no python3 in the guest) and attach_traced (no strace)
# are host-only. Where the kernel lacks UFFD_FEATURE_MOVE (6.1) the move
# parts print why they are skipped and everything else must pass.
progs="attach_ptrace attach_agent attach_agent_fork attach_agent_restart attach_blocked
attach_signal attach_exit attach_stopped attach_farhint attach_seccomp"
passed=0 skipped=0 failed=
for p in $progs; do
	echo "== $p"
	build/tests/integration/$p >/tmp/$p.out 2>&1
	rc=$?
	cat /tmp/$p.out
	case $rc in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed="$failed $p(exit $rc)" ;;
	esac
done
echo "# attach programs on $(uname -r): $passed passed, $skipped skipped"
[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
[ "$passed" -gt 0 ] || { echo "every attach program skipped"; exit 77; }
exit 0
