# tests/vm/guest-lib.sh: helpers the systemd guest tests share, sourced
# (POSIX sh) as
#   . "$ROOT/tests/vm/guest-lib.sh"
# bad MSG sets fail=1; the caller starts with fail=0 and exits $fail.
# Paths are relative to $MIGD_VM_ROOT, where guest-suite runs the tests.

bad() {
	echo "FAIL: $*"
	fail=1
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds. sh has no
# locals: the counter has a name no caller uses (72's kill count is n).
wait_for() {
	_wait_for_left=$1
	shift
	while [ "$_wait_for_left" -gt 0 ]; do
		"$@" && return 0
		sleep 1
		_wait_for_left=$((_wait_for_left - 1))
	done
	"$@"
}

# install_migd: once systemd is up, install migd and migctl from build/
# into /usr/sbin, its units into /etc/systemd/system and the default
# configuration into /etc/migd, as a package would, and reload systemd.
# Fails when the programs cannot be installed.
install_migd() {
	systemctl is-system-running --wait >/dev/null
	install -m 755 build/migd build/migctl /usr/sbin/ || return 1
	install -m 644 systemd/migd.service systemd/migd.socket /etc/systemd/system/
	mkdir -p /etc/migd/policies.d
	install -m 644 conf/migd.ini /etc/migd/migd.ini
	# MIGD_GUEST_WINDOW=classic: the systemd tests with classic windows
	# (migd's default is movefirst).
	if [ -n "${MIGD_GUEST_WINDOW:-}" ]; then
		sed -i "s/^# window_protocol = movefirst\$/window_protocol = $MIGD_GUEST_WINDOW/" \
			/etc/migd/migd.ini
		grep -q "^window_protocol = $MIGD_GUEST_WINDOW\$" /etc/migd/migd.ini || return 1
		echo "# migd.ini: window_protocol = $MIGD_GUEST_WINDOW"
	fi
	systemctl daemon-reload
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

# stop_tenant UNIT: SIGTERM to a tenant service that writes /run/UNIT.out;
# the tenant checks every page and says so.
stop_tenant() {
	systemctl stop "$1"
	out=$(grep '^data check' "/run/$1.out")
	echo "$1: $out"
	case $out in "data check: OK"*) ;; *) bad "$1's data check did not pass" ;; esac
}

# start_tenant UNIT PROPERTY...: a $TENANT (demo_tenant) service of $MIB
# MiB in tenants.slice on node 0's CPU and memory, its output in
# /run/UNIT.out; the caller's die ends the test when systemd-run fails.
start_tenant() {
	_st_unit=$1
	shift
	rm -f "/run/$_st_unit.out"
	systemd-run --quiet --unit="$_st_unit" --slice=tenants.slice \
		-p StandardOutput="file:/run/$_st_unit.out" -p StandardError=journal "$@" \
		numactl --cpunodebind=0 --preferred=0 "$TENANT" "$MIB" || die "systemd-run $_st_unit failed"
}

# ready UNIT: prints "PID RANGE" once the tenant filled its memory.
ready() {
	wait_for 90 grep -q '^ready ' "/run/$1.out" || return 1
	awk '/^ready / { print $2, $3; exit }' "/run/$1.out"
}
