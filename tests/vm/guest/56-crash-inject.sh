#!/bin/sh
# Issue 13 on the guest kernels: an injector killed at each named point of
# a ptrace session (and at random moments, by SIGKILL and SIGABRT) leaves
# its tenant running, untraced, with its own registers, FPU state and
# signal mask (tests/integration/crash_inject.c). Two main-thread modes
# and a few random kills keep it short under emulation.
CRASH_MODES=2 build/tests/integration/crash_inject 6
