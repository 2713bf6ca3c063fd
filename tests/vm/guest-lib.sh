# tests/vm/guest-lib.sh: helpers the systemd guest tests share, sourced
# (POSIX sh) as
#   . "$ROOT/tests/vm/guest-lib.sh"
# bad MSG sets fail=1; the caller starts with fail=0 and exits $fail.

bad() {
	echo "FAIL: $*"
	fail=1
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 1
		n=$((n - 1))
	done
	"$@"
}

# The pages of PID's range on node N (0 if none), from migctl's JSON.
pages_on() {
	migctl --json placement "$1" --range "$2" 2>/dev/null |
		sed -n 's/.*"nodes":{\([^}]*\)}.*/\1/p' | tr ',' '\n' |
		sed -n "s/^\"$3\":\([0-9]*\)$/\1/p"
}
present() {
	migctl --json placement "$1" --range "$2" 2>/dev/null |
		sed -n 's/.*"nodes":{\([^}]*\)}.*/\1/p' | tr ',' '\n' |
		awk -F: '{ s += $2 } END { print s + 0 }'
}
# At least 99.9% of the range's present pages on node 1.
on_node1() {
	p=$(present "$1" "$2")
	o=$(pages_on "$1" "$2" 1)
	[ "${p:-0}" -gt 0 ] && [ "$((${o:-0} * 1000))" -ge "$((p * 999))" ]
}
