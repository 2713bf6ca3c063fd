#!/bin/sh
# All the NUMA nodes that qemu was given are online and have memory.
online=$(cat /sys/devices/system/node/online)
n=$(find /sys/devices/system/node -maxdepth 1 -name "node[0-9]*" | wc -l)
echo "nodes online: $online ($n), expected $MIGD_VM_NODES"
[ "$n" -eq "$MIGD_VM_NODES" ] || exit 1
for d in /sys/devices/system/node/node[0-9]*; do
	kb=$(awk '/MemTotal/ { print $4 }' "$d/meminfo")
	echo "${d##*/}: ${kb} kB, cpus '$(cat "$d/cpulist")'"
	[ "$kb" -gt 0 ] || { echo "${d##*/} has no memory"; exit 1; }
done
