#!/usr/bin/env bash
# deps.sh - install the Debian packages a make target needs, and only those
# that are missing. Idempotent and silent when nothing is missing.
#
#   scripts/deps.sh [GROUP...]     groups: build test lint vm fuzz deb (default: build)
#
# Package hosts are never named here: apt uses the machine's own sources.
set -euo pipefail

declare -A GROUPS_PKGS=(
	[build]="build-essential pkg-config libuv1-dev libnuma-dev libinih-dev libsystemd-dev libjson-c-dev check"
	[test]="numactl python3 procps strace"
	[lint]="cppcheck clang-format clang-tidy"
	[fuzz]="clang libclang-rt-14-dev"
	[vm]="qemu-system-x86 busybox-static cpio debootstrap numactl util-linux dpkg"
	[deb]="dpkg-dev debhelper fakeroot lintian"
)

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(build)

want=()
for g in "${groups[@]}"; do
	if [ -z "${GROUPS_PKGS[$g]+set}" ]; then
		echo "deps.sh: unknown group '$g' (known: ${!GROUPS_PKGS[*]})" >&2
		exit 2
	fi
	# shellcheck disable=SC2206
	want+=(${GROUPS_PKGS[$g]})
done

missing=()
for p in "${want[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once per hour at most; a fresh machine has none.
stamp=/var/lib/apt/periodic/migd-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +60 2>/dev/null)" ]; then
	apt-get update -qq
	mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/migd-deps.log 2>&1; then
	cat /tmp/migd-deps.log >&2
	echo "deps.sh: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi
