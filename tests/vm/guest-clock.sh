# shellcheck shell=sh
# tests/vm/guest-clock.sh: the guest's clock against the emulated RTC,
# which qemu keeps on the host's clock. Sourced (POSIX sh) by guest-init
# and guest-run-systemd: clock_start before the command, clock_check after
# it. A guest whose clock ran more than 3 times too fast (plus 10 s) prints
# $MIGD_VM_CLOCK_MARKER, and tests/vm/run boots it once more: under
# emulation on a loaded host a guest now and then calibrates its timers
# wrong and its clock runs many times too fast, so every time limit in it
# fires early. Without an RTC nothing is checked.

clock_start() {
	clock_r0='' clock_u0=''
	[ -r /sys/class/rtc/rtc0/since_epoch ] || return 0
	read -r clock_r0 </sys/class/rtc/rtc0/since_epoch
	read -r clock_u0 _ </proc/uptime
}

clock_check() {
	[ -n "$clock_r0" ] && [ -n "$MIGD_VM_CLOCK_MARKER" ] || return 0
	read -r clock_r1 </sys/class/rtc/rtc0/since_epoch || return 0
	read -r clock_u1 _ </proc/uptime
	clock_g=$((${clock_u1%.*} - ${clock_u0%.*}))
	clock_h=$((clock_r1 - clock_r0))
	if [ "$clock_g" -gt $((3 * clock_h + 10)) ]; then
		echo "$MIGD_VM_CLOCK_MARKER guest ${clock_g} s for host ${clock_h} s"
	fi
}
