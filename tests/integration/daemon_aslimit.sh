#!/usr/bin/env bash
# daemon_aslimit.sh - a tenant run under an address-space limit (`ulimit -v`,
# RLIMIT_AS) a little above its size, as services are: the MOVE zap's
# scratch area (4 MiB and more, mapped inside the tenant) does not fit.
# The job used to end -ENOMEM with "Cannot allocate memory" and no page
# moved (the failed scratch set-up's errno stopped the window loop before
# its first window). Now:
#   - the job runs with the madvise zap and moves every page; its summary
#     says zap madvise and why (zap_fallback, naming RLIMIT_AS) where the
#     kernel has UFFDIO_MOVE, migctl prints it, migd logs it;
#   - with window_protocol = movefirst the job runs classic windows and
#     window_protocol_fallback names RLIMIT_AS too;
#   - a tenant without a limit still zaps with MOVE (UFFDIO_MOVE kernels);
#   - every tenant checks its own data.
set -u
. "$(dirname "$0")/daemon_lib.sh"
need_root
sh -c 'ulimit -v 1000000' 2>/dev/null || skip "this sh has no 'ulimit -v'"

write_config "window_protocol = movefirst"
start_migd

# The tenant's size with nothing of ours in it yet.
start_tenant 32
size_kb=$(awk '/^VmSize:/ {print $2}' "/proc/$TENANT_PID/status")
stop_tenant "$TENANT_PID" >/dev/null
limit_kb=$((size_kb + 1024))
echo "# tenant VmSize $size_kb KiB, limit $limit_kb KiB"

# 1. Under the limit: madvise zap, every page moved, the reason named.
# shellcheck disable=SC2016
TENANT_WRAP=(sh -c 'ulimit -v "$0" && exec "$@"' "$limit_kb")
start_tenant 32
TIGHT=$TENANT_PID
# shellcheck disable=SC2034 # read by start_tenant
TENANT_WRAP=()
out=$("$MIGCTL" --json migrate "$TIGHT" --to 0 --force --range "$TENANT_RANGE") ||
	fail "migrate under RLIMIT_AS: $out"
total=$(echo "$out" | jnum pages_present)
moved=$(echo "$out" | jnum pages_moved)
if [ "$moved" = 0 ] || [ "$moved" != "$total" ]; then fail "not every page moved: $out"; fi
[ "$(echo "$out" | jstr zap)" = madvise ] || fail "zap is not madvise: $out"
why=$(echo "$out" | jstr zap_fallback)
proto_why=$(echo "$out" | jstr window_protocol_fallback)
if has_move; then
	case $why in *RLIMIT_AS*) ;; *) fail "zap_fallback does not name RLIMIT_AS: $out" ;; esac
	case $proto_why in *RLIMIT_AS*) ;; *) fail "window_protocol_fallback: '$proto_why'" ;; esac
	[ "$(echo "$out" | jstr window_protocol)" = classic ] || fail "not classic: $out"
	grep -qF "pid $TIGHT: zapped with madvise, not MOVE: $why" "$T/migd.log" ||
		fail "migd did not log the madvise zap"
	"$MIGCTL" migrate "$TIGHT" --to 0 --force --range "$TENANT_RANGE" >"$T/human" ||
		fail "migrate (human): $(cat "$T/human")"
	grep -q '^zap: madvise (not MOVE: .*RLIMIT_AS' "$T/human" ||
		fail "migctl does not say why: $(cat "$T/human")"
else
	[ -z "$why" ] || fail "zap_fallback without UFFDIO_MOVE: $out"
fi
echo "# under RLIMIT_AS: $moved of $total pages moved, zap madvise: ${why:-no UFFDIO_MOVE}"

# 2. Without a limit: the MOVE zap where the kernel has it, nothing to explain.
start_tenant 32
FREE=$TENANT_PID
out=$("$MIGCTL" --json migrate "$FREE" --to 0 --force --range "$TENANT_RANGE") ||
	fail "migrate without a limit: $out"
[ -z "$(echo "$out" | jstr zap_fallback)" ] || fail "zap_fallback without a limit: $out"
if has_move; then
	[ "$(echo "$out" | jstr zap)" = move ] || fail "zap is not move: $out"
fi
echo "# without a limit: zap $(echo "$out" | jstr zap)"

stop_tenant "$TIGHT"
stop_tenant "$FREE"
echo PASS
