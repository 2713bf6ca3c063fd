# shellcheck shell=bash
#
# Shared helpers for the qemu NUMA test harness (tests/vm/run, check,
# selftest): host package installation, the cache directory, the Debian
# mirror derived from this machine's own apt configuration, and fetching
# Debian kernels with a private apt configuration so that the host's apt
# state is never changed.
#
# Sourced, never executed. Callers have `set -euo pipefail`.

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT=$(cd "$VM_DIR/../.." && pwd)
VM_CACHE=${MIGD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/migd-vm}

# Debian suites the two supported kernel series come from.
declare -A VM_KERNEL_SUITE=([6.12]=bookworm-backports [6.1]=bookworm)

vm_log() { printf '[vm] %s\n' "$*" >&2; }
vm_die() { printf '[vm] error: %s\n' "$*" >&2; exit 1; }

# vm_need CMD:PACKAGE... installs, with apt-get, the packages whose
# command is missing. Silent when nothing is missing.
vm_need() {
	local spec missing=()
	for spec in "$@"; do
		command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) -eq 0 ]] || vm_die "missing packages: ${missing[*]} (install them as root)"
	vm_log "installing host packages: ${missing[*]}"
	apt-get update -qq >/dev/null ||
		vm_die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || vm_die "apt-get install ${missing[*]} failed"
}

vm_need_host_tools() {
	vm_need qemu-system-x86_64:qemu-system-x86 cpio:cpio dpkg-deb:dpkg \
		flock:util-linux cc:gcc
	# The guest needs the static busybox (the dynamic "busybox" package
	# conflicts with it and has fewer applets).
	vm_need_pkg busybox-static
}

# vm_need_pkg PACKAGE... installs packages that dpkg does not report as
# installed (for packages without a characteristic command).
vm_need_pkg() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	vm_log "installing host packages: ${missing[*]}"
	apt-get update -qq >/dev/null || vm_die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || vm_die "apt-get install ${missing[*]} failed"
}

file_is_static() {
	! LC_ALL=C ldd "$1" >/dev/null 2>&1
}

# vm_mirror prints the URI of the Debian archive that this machine's apt
# configuration uses for the bookworm suite (deb822 .sources files first,
# then one-line sources.list files). We never hard-code a host name.
vm_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		uri=$(awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ && uris != "") {
					split(uris, u, " "); print u[1]; found = 1; exit
				}
				types = ""; suites = ""; uris = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^[ \t]*#/ { next }
			tolower($1) == "types:"  { $1 = ""; types = $0 " " }
			tolower($1) == "suites:" { $1 = ""; suites = $0 " " }
			tolower($1) == "uris:"   { $1 = ""; uris = $0 }
			END { if (!found) flush() }
		' "$f" | sed 's/^ *//')
		[[ -n $uri ]] && { printf '%s\n' "${uri%/}"; return 0; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -r $f ]] || continue
		uri=$(sed -E 's/\[[^]]*\]//' "$f" |
			awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
		[[ -n $uri ]] && { printf '%s\n' "${uri%/}"; return 0; }
	done
	vm_die "no 'deb ... bookworm' source in /etc/apt: cannot derive a Debian mirror"
}

# Private apt configuration under the cache: bookworm and
# bookworm-backports from the machine's own mirror. Its lists are
# refreshed at most once a day.
VM_APT_DIR=$VM_CACHE/apt
vm_apt() {
	apt-get -q \
		-o Dir::Etc::SourceList="$VM_APT_DIR/sources.list" \
		-o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State::Lists="$VM_APT_DIR/lists" \
		-o Dir::State::Status="$VM_APT_DIR/status" \
		-o Dir::Cache="$VM_APT_DIR/cache" \
		-o APT::Get::List-Cleanup=0 \
		-o Debug::NoLocking=1 \
		"$@"
}
vm_apt_cache() {
	apt-cache \
		-o Dir::Etc::SourceList="$VM_APT_DIR/sources.list" \
		-o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State::Lists="$VM_APT_DIR/lists" \
		-o Dir::State::Status="$VM_APT_DIR/status" \
		-o Dir::Cache="$VM_APT_DIR/cache" \
		"$@"
}

vm_apt_update() {
	local mirror stamp=$VM_APT_DIR/updated
	mkdir -p "$VM_APT_DIR/lists/partial" "$VM_APT_DIR/cache/archives/partial"
	: >>"$VM_APT_DIR/status"
	if [[ -e $stamp ]] && [[ -z $(find "$stamp" -mmin +1440) ]]; then
		return 0
	fi
	mirror=$(vm_mirror)
	cat >"$VM_APT_DIR/sources.list" <<-EOF
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-backports main
	EOF
	vm_log "updating private apt lists (bookworm, bookworm-backports) from the host's mirror"
	if ! vm_apt update -qq >"$VM_APT_DIR/update.log" 2>&1; then
		cat "$VM_APT_DIR/update.log" >&2
		vm_log "apt-get update (private lists) failed"
		return 1
	fi
	touch "$stamp"
}

# vm_kernel SERIES prints the path of a cached vmlinuz for the newest
# Debian kernel of SERIES (6.12 or 6.1), downloading it if needed. The
# cache is keyed by the package name and version.
vm_kernel() {
	local series=$1 suite pkg ver dir deb tmp
	suite=${VM_KERNEL_SUITE[$series]:-}
	[[ -n $suite ]] || vm_die "unknown kernel series '$series' (known: ${!VM_KERNEL_SUITE[*]})"
	mkdir -p "$VM_CACHE/kernels"
	(
		flock 9
		if ! vm_apt_update; then
			# Offline with a warm cache: use the newest kernel we have.
			dir=$(find "$VM_CACHE/kernels" -mindepth 1 -maxdepth 1 \
				-name "linux-image-${series}[.-]*" | LC_ALL=C sort -V | tail -n 1)
			[[ -n $dir && -s $dir/vmlinuz ]] || vm_die "cannot fetch a $series kernel"
			vm_log "using the cached $(cat "$dir/version")"
			printf '%s\n' "$dir/vmlinuz"
			exit 0
		fi
		# The metapackage of the suite depends on the versioned image.
		pkg=$(vm_apt_cache show "linux-image-amd64/$suite" 2>/dev/null |
			awk -F': ' '$1 == "Depends" { print; exit }' |
			grep -oE "linux-image-${series}[.0-9+a-z-]*-amd64" | head -n1) ||
			true
		[[ -n $pkg ]] || vm_die "no linux-image-$series* in $suite"
		ver=$(vm_apt_cache show "$pkg/$suite" 2>/dev/null |
			awk -F': ' '$1 == "Version" { print $2; exit }')
		dir=$VM_CACHE/kernels/${pkg}_${ver//:/%}
		if [[ ! -s $dir/vmlinuz ]]; then
			vm_log "downloading $pkg $ver ($suite)"
			tmp=$(mktemp -d "$VM_CACHE/kernels/.dl.XXXXXX")
			(cd "$tmp" && vm_apt download -qq "$pkg/$suite" >/dev/null 2>"$tmp/err") ||
				{ cat "$tmp/err" >&2; rm -rf "$tmp"; vm_die "apt-get download $pkg failed"; }
			deb=$(echo "$tmp"/*.deb)
			mkdir "$tmp/x"
			dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' ||
				{ rm -rf "$tmp"; vm_die "no vmlinuz in $deb"; }
			mkdir -p "$dir"
			mv "$tmp"/x/boot/vmlinuz-* "$dir/vmlinuz"
			printf '%s %s\n' "$pkg" "$ver" >"$dir/version"
			rm -rf "$tmp"
		fi
		printf '%s\n' "$dir/vmlinuz"
	) 9>"$VM_CACHE/kernels/.lock"
}

# Bump when the layout of the base images changes.
VM_IMAGE_FORMAT=2

# vm_copy_closure STAGE DIR...: copy the shared-library closure of every
# ELF file under each DIR (as seen by the host's ldd) into STAGE, at the
# libraries' canonical directories (so /lib -> usr/lib symlinks in the
# image keep working).
vm_copy_closure() {
	local stage=$1 lib dir magic
	shift
	find "$@" -type f -print0 2>/dev/null |
		while IFS= read -r -d '' elf; do
			# The magic read by bash itself: three processes per file
			# made this minutes long for a build tree on a loaded host.
			magic=
			LC_ALL=C IFS= read -r -d '' -n 4 magic <"$elf" 2>/dev/null || true
			if [[ $magic == $'\x7fELF' ]]; then
				LC_ALL=C ldd "$elf" 2>/dev/null || true
			fi
		done |
		{ grep -oE '/[^ ]+' || true; } | LC_ALL=C sort -u |
		while IFS= read -r lib; do
			[[ -e $lib ]] || continue
			dir=$(realpath "$(dirname "$lib")")
			mkdir -p "$stage$dir"
			if [[ ! -e $stage$dir/${lib##*/} ]]; then
				cp -L "$lib" "$stage$dir/${lib##*/}"
			fi
		done
}

# vm_base_image FLAVOUR prints the path of the cached base initramfs of
# FLAVOUR (busybox or systemd), building it if needed.
vm_base_image() {
	mkdir -p "$VM_CACHE/images"
	(
		flock 9
		case $1 in
		busybox) vm_busybox_image ;;
		systemd) vm_systemd_image ;;
		*) vm_die "unknown image flavour $1" ;;
		esac
	) 9>"$VM_CACHE/images/.lock"
}

# Host tools packed into the busybox guest, beyond busybox itself.
VM_GUEST_TOOLS=(bash numactl)

vm_busybox_image() {
	local t key out stage a
	vm_need numactl:numactl
	key=$(
		echo "$VM_IMAGE_FORMAT"
		for t in "$VM_DIR/guest-init" /bin/busybox "${VM_GUEST_TOOLS[@]}"; do
			[[ $t == /* ]] || t=$(command -v "$t")
			sha256sum "$(realpath "$t")"
		done | sha256sum | cut -c1-16
	)
	out=$VM_CACHE/images/busybox-${key//[^0-9a-f]/}.cpio
	if [[ ! -s $out ]]; then
		vm_log "building the busybox initramfs base"
		stage=$(mktemp -d "$VM_CACHE/images/.stage.XXXXXX")
		mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin} \
			"$stage"/{proc,sys,dev,tmp,run,root,mnt,etc/migd-vm,var/tmp}
		ln -s usr/lib "$stage/lib"
		ln -s usr/lib64 "$stage/lib64"
		mknod -m 600 "$stage/dev/console" c 5 1
		mknod -m 666 "$stage/dev/null" c 1 3
		cp /bin/busybox "$stage/bin/busybox"
		busybox --list-full | while IFS= read -r a; do
			[[ -e $stage/$a ]] || ln -s /bin/busybox "$stage/$a"
		done
		for t in "${VM_GUEST_TOOLS[@]}"; do
			t=$(command -v "$t")
			rm -f "$stage/usr/bin/${t##*/}" "$stage/bin/${t##*/}"
			cp -L "$t" "$stage/usr/bin/${t##*/}"
		done
		ln -sf /usr/bin/bash "$stage/bin/bash"
		vm_copy_closure "$stage" "$stage/usr/bin"
		install -m 755 "$VM_DIR/guest-init" "$stage/init"
		echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
		echo 'root:x:0:' >"$stage/etc/group"
		(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) \
			>"$out.tmp" || { rm -rf "$stage" "$out.tmp"; vm_die "packing the busybox image failed"; }
		rm -rf "$stage"
		# Old images go, but not ones another checkout built in the last
		# hours: a second worktree's guest may be booting from one now.
		find "$VM_CACHE/images" -maxdepth 1 -name 'busybox-*.cpio' -mmin +240 -delete
		mv "$out.tmp" "$out"
	fi
	printf '%s\n' "$out"
}

# Packages of the --systemd guest, on top of debootstrap's minbase.
# libuv1, libinih1 and libjson-c5: the dependencies of the migd package
# (73-systemd-deb.sh installs it with dpkg, which has no network there).
VM_SYSTEMD_PACKAGES=systemd-sysv,libnuma1,numactl,procps,libuv1,libinih1,libjson-c5
# Units that only slow the guest's boot down or print on its console.
VM_SYSTEMD_MASK=(serial-getty@ttyS0.service getty@tty1.service systemd-logind.service
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
	fstrim.timer man-db.timer systemd-tmpfiles-clean.timer)

# vm_systemd_image: a debootstrap'd minimal bookworm with systemd, as a
# cpio whose /init is systemd. Cached by package list and image format;
# the file name tells the systemd version inside.
vm_systemd_image() {
	local key out stage mirror u ver
	vm_need debootstrap:debootstrap
	key=$(printf '%s\n' "$VM_IMAGE_FORMAT" "$VM_SYSTEMD_PACKAGES" "${VM_SYSTEMD_MASK[@]}" |
		sha256sum | cut -c1-16)
	out=$(find "$VM_CACHE/images" -maxdepth 1 -name "systemd-*-$key.cpio" -size +1M | head -n 1)
	if [[ -z $out ]]; then
		mirror=$(vm_mirror)
		stage=$VM_CACHE/images/.stage-systemd
		rm -rf "$stage"
		vm_log "debootstrap'ing a minimal bookworm with systemd (about a minute)"
		if ! debootstrap --variant=minbase --include="$VM_SYSTEMD_PACKAGES" \
			bookworm "$stage" "$mirror" >"$VM_CACHE/images/debootstrap.log" 2>&1; then
			tail -n 20 "$VM_CACHE/images/debootstrap.log" >&2
			rm -rf "$stage"
			vm_die "debootstrap failed (log: $VM_CACHE/images/debootstrap.log)"
		fi
		rm -rf "$stage"/usr/share/{doc,man,info,locale}/* "$stage"/var/cache/apt/archives/*.deb \
			"$stage"/var/lib/apt/lists/*_Packages "$stage"/var/cache/apt/*.bin
		echo migd-vm >"$stage/etc/hostname"
		: >"$stage/etc/fstab"
		for u in "${VM_SYSTEMD_MASK[@]}"; do
			ln -sf /dev/null "$stage/etc/systemd/system/$u"
		done
		ln -sf /lib/systemd/system/multi-user.target "$stage/etc/systemd/system/default.target"
		ln -sf /lib/systemd/systemd "$stage/init"
		# shellcheck disable=SC2016 # a dpkg-query format, not a variable
		ver=$(chroot "$stage" dpkg-query -W -f='${Version}' systemd | tr -c '0-9a-zA-Z.+~\n' _)
		out=$VM_CACHE/images/systemd-${ver}-$key.cpio
		(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) \
			>"$out.tmp" || { rm -rf "$stage" "$out.tmp"; vm_die "packing the systemd image failed"; }
		rm -rf "$stage"
		# As with busybox images: another checkout's guest may boot from one.
		find "$VM_CACHE/images" -maxdepth 1 -name 'systemd-*.cpio' -mmin +240 -delete
		mv "$out.tmp" "$out"
		vm_log "built $(basename "$out") ($(du -m "$out" | cut -f1) MiB)"
	fi
	printf '%s\n' "$out"
}

# vm_systemd_run_layer STAGE: the unit that runs the command in the
# --systemd guest, added to the per-run initramfs layer.
vm_systemd_run_layer() {
	local stage=$1 sd=$1/etc/systemd/system
	mkdir -p "$sd/multi-user.target.wants"
	install -m 755 "$VM_DIR/guest-run-systemd" "$stage/etc/migd-vm/run"
	cat >"$sd/migd-vm-run.service" <<-'EOF'
		[Unit]
		Description=migd test harness: run the guest command
		After=multi-user.target

		[Service]
		# exec, not oneshot: the boot completes (is-system-running says
		# "running") while the command runs.
		Type=exec
		ExecStart=/etc/migd-vm/run
		StandardInput=null
		StandardOutput=tty
		StandardError=inherit
		TTYPath=/dev/console
		TTYReset=no
		TTYVHangup=no
		TimeoutStartSec=infinity

		[Install]
		WantedBy=multi-user.target
	EOF
	ln -sf ../migd-vm-run.service "$sd/multi-user.target.wants/migd-vm-run.service"
}
