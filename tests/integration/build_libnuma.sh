#!/usr/bin/env bash
# build_libnuma.sh - issue 15, "libnuma at the edges": migd and libmig.so
# are linked against libnuma (readelf -d lists it as NEEDED), and no raw
# move_pages, mbind or set_mempolicy system call is left in libmig/ or
# daemon/: node masks, memory policies and page moves go through libnuma.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*"; exit 1; }
command -v readelf >/dev/null || { echo "SKIP: readelf missing (binutils)"; exit 77; }
for f in build/migd build/libmig.so; do
	[ -f "$top/$f" ] || fail "no $f (make all)"
	readelf -d "$top/$f" | grep -q 'NEEDED.*\[libnuma\.so' || fail "$f does not link libnuma"
	echo "# $f: $(readelf -d "$top/$f" | sed -n 's/.*NEEDED.*\[\(libnuma[^]]*\)\].*/\1/p')"
done
raw=$(grep -rnE '(SYS|__NR)_(move_pages|mbind|set_mempolicy)\b' "$top/libmig" "$top/daemon")
[ -z "$raw" ] || fail "raw NUMA system calls left:
$raw"
echo "# no SYS_move_pages, SYS_mbind or SYS_set_mempolicy in libmig/ or daemon/"
echo PASS
