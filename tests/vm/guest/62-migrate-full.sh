#!/bin/sh
# The target node is full: pages that do not fit stay on node 0 and are
# reported -ENOMEM, the tenant verifies every page, nothing is OOM-killed.
exec build/tests/integration/migrate_full
