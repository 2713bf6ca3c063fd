#!/bin/sh
# Socket activation in the --systemd guest: with migd.socket listening and
# migd.service stopped, the first migctl request starts migd, which takes
# the socket from systemd (sd_listen_fds) and answers; stopping the
# service leaves the socket listening for the next request.
[ "$MIGD_VM_FLAVOUR" = systemd ] || { echo "needs the systemd guest"; exit 77; }
ROOT=${MIGD_VM_ROOT:-$(pwd)}
fail=0
# bad, install_migd
. "$ROOT/tests/vm/guest-lib.sh"

install_migd || exit 1
systemctl stop migd 2>/dev/null

systemctl start migd.socket || { systemctl status migd.socket --no-pager; exit 1; }
echo "socket: $(systemctl is-active migd.socket), service: $(systemctl is-active migd)"
[ "$(systemctl is-active migd)" = inactive ] || bad "migd runs before anyone asked"
ls -l /run/migd/migd.sock
case $(stat -c %a /run/migd/migd.sock) in 660) ;; *) bad "socket mode is not 0660" ;; esac

out=$(migctl status)
rc=$?
echo "migctl status: exit $rc"
echo "$out" | sed 's/^/  /'
[ $rc = 0 ] || bad "migctl status through the activated socket exited $rc"
[ "$(systemctl is-active migd)" = active ] || bad "migd.service was not started by the socket"
pid=$(systemctl show migd -p MainPID --value)
journalctl -u migd "_PID=$pid" --no-pager -o cat | sed 's/^/  journal: /'
journalctl -u migd "_PID=$pid" --no-pager -o cat | grep -q '(socket activation)' ||
	bad "migd did not take the socket from systemd"

systemctl stop migd
echo "after stopping migd: socket $(systemctl is-active migd.socket), service $(systemctl is-active migd)"
[ "$(systemctl is-active migd.socket)" = active ] || bad "the socket went away with the service"
migctl status >/dev/null || bad "the second activation failed"
[ "$(systemctl is-active migd)" = active ] || bad "migd.service was not started again"
systemctl stop migd.socket migd
[ $fail = 0 ] && echo "all checks passed"
exit $fail
