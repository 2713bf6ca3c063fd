#!/usr/bin/env bash
# crash_inject - the injector killed at CRASH_KILLS random moments (default
# 200) of an injection; the tenant must go on untouched (see
# tests/integration/crash_inject.c).
top=$(cd "$(dirname "$0")/../.." && pwd)
exec "$top/build/tests/integration/crash_inject" "${CRASH_KILLS:-200}"
