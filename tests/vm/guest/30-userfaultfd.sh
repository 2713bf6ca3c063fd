#!/bin/sh
# A full-mode userfaultfd can be created; UFFDIO_MOVE is reported exactly
# on kernels from 6.8 on (6.12 yes, 6.1 no).
major=$(uname -r | cut -d. -f1)
minor=$(uname -r | cut -d. -f2)
if [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 8 ]; }; then
	expect=--expect-move
else
	expect=--expect-no-move
fi
echo "kernel $major.$minor: $expect"
exec build/vm/vm-sanity uffd "$expect"
