#!/bin/sh
# /proc readers across nodes: a tenant's pages are arranged on nodes 0 and 1
# with move_pages(2) (small pages, every other page written; then one whole
# 2 MiB THP); mig_placement and mig_query_pages must report exactly that.
exec build/tests/integration/proc_numa placement
