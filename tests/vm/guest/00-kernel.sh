#!/bin/sh
# The guest runs the kernel series tests/vm/run was asked for.
release=$(uname -r)
echo "kernel: $(uname -srvm)"
case $release in
"$MIGD_VM_KERNEL".*) ;;
*) echo "expected a $MIGD_VM_KERNEL kernel, got $release"; exit 1 ;;
esac
