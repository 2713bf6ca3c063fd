#!/bin/sh
# The userfaultfd facts the engine stands on, on this guest's kernel (6.1
# and 6.12; the host checks 6.18): the uffd wrappers, and what the fault
# thread's settle() needs before it stops (an event on its way shows as
# mmap_changing until read, a VMA moved by mremap stays registered at its
# new place), and that a /proc/PID/mem read of a missing registered page
# fails at once (the fault thread's slot reads; tests/unit/test_uffd.c).
CK_RUN_SUITE=uffd exec build/tests/unit-tests
