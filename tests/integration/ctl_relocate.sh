#!/usr/bin/env bash
# ctl_relocate.sh - migctl compact, relocate and migrate --huge-pages
# against a real migd and tests/tenants/relocate_tenant (blocks 0 and 1
# are neighbouring VMAs that do not merge; block 2 lies elsewhere).
# Asserts the VMAs before and after, the path the reply names (move on
# 6.8+, copy with --copy or before), the tenant's own data check, and for
# huge_pages: skip leaves every large-folio page (same PFN), split leaves
# no THP, keep keeps them; the reply's large folios per size
# (large_before, large_after) are the placement's, migctl prints them.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
RTENANT=$top/build/tests/tenants/relocate_tenant
write_config
start_migd

kmaj=$(uname -r | cut -d. -f1) kmin=$(uname -r | cut -d. -f2)
best=copy
{ [ "$kmaj" -gt 6 ] || { [ "$kmaj" = 6 ] && [ "$kmin" -ge 8 ]; }; } && best=move

# rstart ARGS...: a relocate_tenant as a coprocess; sets RPID A D SIZE.
rstart() {
	coproc RT { exec "$RTENANT" "$@"; }
	RPID=$RT_PID
	PIDS+=("$RPID")
	while read -r k v <&"${RT[0]}"; do
		case $k in
		a) A=$v ;; d) D=$v ;; size) SIZE=$v ;; ready) return 0 ;;
		esac
	done
	fail "relocate_tenant did not get ready"
}
rsay() { echo "$*" >&"${RT[1]}"; read -r REPLY <&"${RT[0]}"; }
rverify() { rsay verify; case $REPLY in ok*) ;; *) fail "tenant: $REPLY" ;; esac; }
# vmas START END: how many VMAs of the tenant intersect [START, END).
vmas() {
	local r rest n=0
	while read -r r rest; do
		(( 0x${r#*-} > $1 && 0x${r%-*} < $2 )) && n=$((n + 1))
	done <"/proc/$RPID/maps"
	echo $n
}
hex() { printf '0x%x' "$1"; }
# pfns: the PFNs of block 0's pages (pagemap, root), comma-separated.
pfns() {
	python3 - "$RPID" "$A" "$SIZE" <<'PY'
import struct,sys
pid,a,n=int(sys.argv[1]),int(sys.argv[2],0),int(sys.argv[3])//4096
with open(f"/proc/{pid}/pagemap","rb") as f:
    f.seek(a//4096*8); d=f.read(n*8)
print(",".join(str(x & ((1<<55)-1)) for x in struct.unpack(f"{n}Q",d)))
PY
}

for mode in best copy; do
	path=$best opt=
	[ $mode = copy ] && path=copy opt=--copy
	rstart -s 8M -m thp -w 2
	[ "$(vmas "$A" $((A + 2 * SIZE)))" = 2 ] || fail "expected two VMAs to start with"
	out=$("$MIGCTL" --json compact "$RPID" --range "$(hex "$A")-$(hex $((A + 2 * SIZE)))" $opt) ||
		fail "compact: $out"
	echo "# compact ($mode): $out" | cut -c1-300
	[ "$(echo "$out" | json path)" = "$path" ] || fail "compact took path $(echo "$out" | json path), want $path"
	[ "$(echo "$out" | json vmas_before)" = 2 ] && [ "$(echo "$out" | json vmas_after)" = 1 ] ||
		fail "compact: VMAs $(echo "$out" | json vmas_before) -> $(echo "$out" | json vmas_after)"
	[ "$(vmas "$A" $((A + 2 * SIZE)))" = 1 ] || fail "maps show $(vmas "$A" $((A + 2 * SIZE))) VMAs after compact"
	[ "$(echo "$out" | json thp_after)" = "$(echo "$out" | json thp_before)" ] || fail "compact lost THPs: $out"
	[ "$(echo "$out" | json large_after)" = "$(echo "$out" | json large_before)" ] &&
		[ "$(echo "$out" | json large_before 2048kB)" = "$(echo "$out" | json thp_before)" ] ||
		fail "compact: large folios per size $(echo "$out" | json large_before) -> $(echo "$out" | json large_after)"
	rverify

	out=$("$MIGCTL" relocate "$RPID" "$(hex "$D")" "$SIZE" "$(hex $((A + 2 * SIZE)))" $opt) ||
		fail "relocate: $out"
	echo "$out" | grep -q "^job .*: path $path, VMAs" || fail "relocate (human): $out"
	rsay "moved $((2 * SIZE / 4096)) $((SIZE / 4096)) $(hex $((A + 2 * SIZE)))"
	[ "$(vmas "$A" $((A + 3 * SIZE)))" = 1 ] || fail "maps show $(vmas "$A" $((A + 3 * SIZE))) VMAs after relocate"
	[ "$(vmas "$D" $((D + SIZE)))" = 0 ] || fail "the source is still mapped"
	rverify

	# Onto a mapping: refused with the reason, nothing touched.
	"$MIGCTL" relocate "$RPID" "$(hex "$A")" "$SIZE" "$(hex $((A + 2 * SIZE)))" 2>"$T/err"; rc=$?
	[ $rc = 1 ] && grep -q "is mapped" "$T/err" || fail "relocate onto a mapping: exit $rc, $(cat "$T/err")"
	rverify
	exec {RT[1]}>&-
	wait "$RPID" || fail "tenant found its memory changed ($mode)"
done

# huge_pages: keep, split, skip on a THP-backed block (node 0, forced).
for h in keep split skip; do
	rstart -s 8M -m thp
	r="$(hex "$A")-$(hex $((A + SIZE)))"
	pm0=$(pfns)
	huge0=$("$MIGCTL" --json placement "$RPID" --range "$r" | json huge)
	[ "$huge0" -ge 512 ] || { exec {RT[1]}>&-; wait "$RPID"; skip "no THP formed in a MADV_HUGEPAGE block ($huge0 huge pages)"; }
	out=$("$MIGCTL" --json migrate "$RPID" --to 0 --force --range "$r" --huge-pages $h) || fail "migrate $h: $out"
	huge1=$("$MIGCTL" --json placement "$RPID" --range "$r" | json huge)
	skipped=$(echo "$out" | json large_skipped_pages)
	lb=$(echo "$out" | json large_before) la=$(echo "$out" | json large_after)
	echo "# huge_pages=$h: huge pages $huge0 -> $huge1, moved $(echo "$out" | json pages_moved), large_skipped_pages $skipped, large_skipped $(echo "$out" | json large_skipped), huge_kept $(echo "$out" | json huge_kept), large folios per size $lb -> $la"
	case $h in
	keep) [ "$huge1" = "$huge0" ] || fail "keep: huge pages $huge0 -> $huge1" ;;
	split) [ "$huge1" = 0 ] || fail "split: $huge1 huge pages left" ;;
	skip)
		[ "$skipped" = "$huge0" ] || fail "skip: $skipped skipped, $huge0 in large folios"
		[ "$(echo "$out" | json large_skipped)" = "{\"2048kB\": $((huge0 / 512))}" ] ||
			fail "skip: large_skipped $(echo "$out" | json large_skipped), want $((huge0 / 512)) THPs"
		"$MIGCTL" migrate "$RPID" --to 0 --force --range "$r" --huge-pages skip >"$T/human" || fail "migrate skip (human)"
		grep -q "^large folios left where they are: 2048kB $((huge0 / 512)) ($huge0 pages)$" "$T/human" ||
			fail "migctl migrate skip: no per-size line: $(cat "$T/human")"
		pm1=$(pfns)
		[ "$pm1" = "$pm0" ] || fail "skip: pages of large folios changed their PFN"
		[ "$huge1" = "$huge0" ] || fail "skip: huge pages $huge0 -> $huge1" ;;
	esac
	# Per size: the THPs of the block (placement's huge pages / 512) before and after;
	# skip left them out of the job, which then met none.
	if [ $h = skip ]; then
		[ "$lb" = "{}" ] && [ "$la" = "{}" ] || fail "skip: large folios per size $lb -> $la, want none"
	else
		[ "$lb" = "{\"2048kB\": $((huge0 / 512))}" ] && [ "$la" = "{\"2048kB\": $((huge1 / 512))}" ] ||
			fail "$h: large folios per size $lb -> $la, placement $huge0 -> $huge1 huge pages"
		[ "$(echo "$out" | json thp_before)" = $((huge0 / 512)) ] && [ "$(echo "$out" | json thp_after)" = $((huge1 / 512)) ] ||
			fail "$h: thp_before/thp_after $(echo "$out" | json thp_before) -> $(echo "$out" | json thp_after)"
	fi
	if [ $h = keep ]; then
		"$MIGCTL" migrate "$RPID" --to 0 --force --range "$r" >"$T/human" || fail "migrate (human)"
		grep -q "^large folios per size: 2048kB $((huge1 / 512)) -> $((huge1 / 512))$" "$T/human" ||
			fail "migctl migrate: no per-size line: $(cat "$T/human")"
	fi
	rverify
	exec {RT[1]}>&-
	wait "$RPID" || fail "tenant found its memory changed (huge_pages=$h)"
done
"$MIGCTL" migrate 1 --to 0 --huge-pages sometimes; rc=$?
[ $rc = 2 ] || fail "bad --huge-pages: exit $rc, want 2"
exit 0
