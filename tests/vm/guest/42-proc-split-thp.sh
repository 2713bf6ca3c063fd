#!/bin/sh
# mig_split_large_at on a PMD THP cut at an edge (the neighbour stays huge,
# data unchanged), then mig_collapse re-forms it.
exec build/tests/integration/proc_split thp
