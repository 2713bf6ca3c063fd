#!/bin/sh
# Issue 14, large mappings, node 0 -> node 1: a THP-backed range (64 MiB
# here, MIG_TEST_SIZE; qemu TCG on a loaded host takes minutes per 64 MiB)
# with 2 writers, moved to node 1 (migrate_thp keep: >= 90 % of the
# AnonHugePages kept and of the THPs on node 1; 6.12 places them whole
# with PMD moves, 6.1 copies and re-forms them with MADV_COLLAPSE). With
# huge_pages = split (migrate_thp split) migd places and re-forms none.
# By default the kernel's migration (move_pages(2)) takes the whole THPs
# (migrate_thp kernel: >= 90 % moved so and on node 1; keep asks for the
# userfaultfd paths above, opts.thp_uffd), also when the call fails after
# it moved them (kmove:fail).
# Then a range cutting two THPs (and on 6.12 two 64 KiB mTHPs) moves
# exactly its pages: the pages outside keep node and PFN, no partially
# mapped large folio is left at the edges (proc_split edges).
# MIG_THP_CASES picks cases (default "keep kernel split edges").
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 >/proc/sys/kernel/numa_balancing
cases=" ${MIG_THP_CASES:-keep kernel split edges} "

case $cases in *" keep "*)
	MIG_TEST_SIZE=${MIG_TEST_SIZE:-64M} build/tests/integration/migrate_thp keep || exit $?
	;;
esac
case $cases in *" kernel "*)
	MIG_TEST_SIZE=${MIG_TEST_SIZE:-64M} build/tests/integration/migrate_thp kernel || exit $?
	# The kernel's path keeps a rate limit too (one window a call then).
	MIG_TEST_SIZE=16M MIG_TEST_RATE=8M build/tests/integration/migrate_thp kernel || exit $?
	# A move_pages(2) call that fails after it moved some groups (a target
	# full mid-call): what it moved still counts as moved by the kernel,
	# not as "on the target already" (the fault point answers -ENOMEM
	# after a call that moved them all).
	MIG_CRASH_AT=kmove:fail:fault MIG_TEST_SIZE=16M \
		build/tests/integration/migrate_thp kernel || exit $?
	;;
esac

# khugepaged wakes every 10 s and a split job takes minutes here: it
# re-formed 75-81 % of the THPs migd had split as asked (0 with it asleep).
# That is the kernel's policy, not migd's work, so put it to sleep for
# this case and restore it afterwards (the guest is ours).
kh=/sys/kernel/mm/transparent_hugepage/khugepaged
sleep_ms= scan=
restore() {
	[ -n "$sleep_ms" ] || return 0
	echo "$scan" >$kh/pages_to_scan
	echo "$sleep_ms" >$kh/scan_sleep_millisecs
}
case $cases in *" split "*)
	if [ -w $kh/scan_sleep_millisecs ] && [ -w $kh/pages_to_scan ]; then
		sleep_ms=$(cat $kh/scan_sleep_millisecs)
		scan=$(cat $kh/pages_to_scan)
		trap restore EXIT
		echo "# khugepaged quiesced for the split case (it would re-form the THPs migd splits)"
		echo 8 >$kh/pages_to_scan
		echo 86400000 >$kh/scan_sleep_millisecs
	fi
	MIG_TEST_SIZE=${MIG_TEST_SIZE:-32M} build/tests/integration/migrate_thp split || exit $?
	restore
	trap - EXIT
	;;
esac

case $cases in *" edges "*)
	build/tests/integration/proc_split edges || exit $?
	;;
esac
exit 0
