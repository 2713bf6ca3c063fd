#!/bin/sh
# Placement of a 256 MiB tenant, half of it moved to node 1: counts checked,
# time printed as a "# " figure.
exec build/tests/integration/proc_numa time
