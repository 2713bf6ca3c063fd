#!/bin/sh
# relocate_basic with every MOVE that moved its whole run answering
# -EEXIST, "nothing moved", as Linux 6.18 sometimes does: mig_compact
# and mig_relocate find the pages where they went (docs/engine.md,
# "Causes found under churn", 8). Skips where there is no UFFDIO_MOVE.
exec "$(dirname "$0")/../../build/tests/integration/relocate_basic" uncounted
