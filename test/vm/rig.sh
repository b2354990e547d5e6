#!/usr/bin/env bash
# The intercomd VM test rig: boots a stock Debian kernel under qemu (TCG) with
# the kernel's own simulated devices (vivid, gpio-sim, snd-aloop, vicodec) and
# runs a CGO_ENABLED=0 Go test binary inside it.
#
#   test/vm/rig.sh setup [amd64] [arm64]   install host tools, download/unpack
#                                          kernels, build gpio-sim and vicodec,
#                                          build the base initramfs (cached)
#   test/vm/rig.sh run BINARY [ARGS...]    boot the guest matching BINARY's
#                                          architecture and run it there; the
#                                          exit code is the binary's
#                                          (this is what `go test -exec` calls)
#   test/vm/rig.sh shell-cmd ARCH 'CMD'    run a shell command in the guest
#
# Nothing is installed on the host but ordinary tools from apt; kernels,
# headers, kernel sources and busybox are fetched with `apt-get download` and
# unpacked into the cache ($INTERCOMD_VM_CACHE, default
# ${XDG_CACHE_HOME:-~/.cache}/intercomd-vm). See test/vm/README.md.
set -euo pipefail

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${INTERCOMD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/intercomd-vm}
# The rig version: bump when the base image layout or /init changes so that a
# stale cache is rebuilt rather than trusted.
RIG_VERSION=5
RIG_WORK=
trap '[ -z "$RIG_WORK" ] || rm -rf "$RIG_WORK"' EXIT

log() { printf 'vm-rig: %s\n' "$*" >&2; }
die() { printf 'vm-rig: error: %s\n' "$*" >&2; exit 1; }

deb_arch() { case "$1" in amd64 | x86_64) echo amd64 ;; arm64 | aarch64) echo arm64 ;; *) die "unknown architecture $1 (want amd64 or arm64)" ;; esac; }

# ---------------------------------------------------------------- host tools
APT_UPDATED=
apt_update_once() {
	if [ -z "$APT_UPDATED" ]; then
		log "apt-get update"
		apt-get update -qq >&2
		APT_UPDATED=1
	fi
}

need_root_for_apt() {
	if [ "$(id -u)" != 0 ]; then
		die "missing host packages ($*); run as root or: sudo apt-get install $*"
	fi
}

install_host_tools() {
	local want=(qemu-system-x86 qemu-system-arm cpio kmod gcc make xz-utils gcc-aarch64-linux-gnu libc6-dev bc)
	local missing=()
	local p
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		need_root_for_apt dpkg --add-architecture arm64
		log "dpkg --add-architecture arm64 (for apt-get download of arm64 kernels and busybox)"
		dpkg --add-architecture arm64
		APT_UPDATED=
		apt_update_once
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		need_root_for_apt "${missing[@]}"
		apt_update_once
		log "apt-get install ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
}

# apt_fetch PKG... : download .debs into $CACHE/debs (cached by file name).
apt_fetch() {
	mkdir -p "$CACHE/debs"
	# As root, apt would warn that its sandbox user cannot write the cache.
	local aptopt=()
	[ "$(id -u)" = 0 ] && aptopt=(-o APT::Sandbox::User=root)
	local p
	for p in "$@"; do
		local name=${p%%:*}
		local arch=amd64
		[[ $p == *:* ]] && arch=${p##*:}
		if [ -z "$(deb_file "$name" "$arch")" ]; then
			log "apt-get download $p"
			(cd "$CACHE/debs" && apt-get download -qq "${aptopt[@]}" "$p" >&2) || {
				apt_update_once
				(cd "$CACHE/debs" && apt-get download -qq "${aptopt[@]}" "$p" >&2)
			}
		fi
	done
}
deb_file() { # deb_file NAME ARCH
	ls "$CACHE/debs/${1}_"*"_${2}.deb" "$CACHE/debs/${1}_"*"_all.deb" 2>/dev/null | head -n1
}

# The kernel ABI name that bookworm serves now, found from the meta-package
# (e.g. linux-image-6.1.0-56-amd64), so the rig follows security updates.
kernel_abi() { # kernel_abi ARCH -> 6.1.0-56-amd64
	local a=$1 dep
	if [ -f "$CACHE/kver-$a" ]; then
		cat "$CACHE/kver-$a"
		return
	fi
	local meta="linux-image-$a"
	[ "$a" = arm64 ] && meta="linux-image-arm64:arm64"
	dep=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(6\.1\.[0-9]*-[0-9]*-'"$a"'\).*/\1/p' | head -n1)
	if [ -z "$dep" ]; then
		apt_update_once
		dep=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(6\.1\.[0-9]*-[0-9]*-'"$a"'\).*/\1/p' | head -n1)
	fi
	[ -n "$dep" ] || die "cannot find the kernel behind $meta (apt-cache depends $meta)"
	mkdir -p "$CACHE"
	echo "$dep" >"$CACHE/kver-$a"
	echo "$dep"
}

# ---------------------------------------------------------------- kernel
fetch_kernel() { # ARCH
	local a=$1 kver
	kver=$(kernel_abi "$a")
	local kdir="$CACHE/$a/kernel"
	if [ -f "$kdir/.done-$kver" ]; then return; fi
	rm -rf "$kdir"
	mkdir -p "$kdir"
	local pkg="linux-image-$kver"
	[ "$a" = arm64 ] && pkg="$pkg:arm64"
	apt_fetch "$pkg"
	log "unpacking $pkg"
	dpkg -x "$(deb_file "linux-image-$kver" "$a")" "$kdir/root"
	if [ "$a" = amd64 ]; then
		# Boot the uncompressed vmlinux through PVH: it halves the boot time.
		extract_vmlinux "$kdir/root/boot/vmlinuz-$kver" "$kdir/vmlinux"
	else
		cp "$kdir/root/boot/vmlinuz-$kver" "$kdir/vmlinux"
	fi
	touch "$kdir/.done-$kver"
}

extract_vmlinux() { # BZIMAGE OUT: the xz payload of a bzImage is the ELF vmlinux.
	local off
	off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$1" | head -n1 | cut -d: -f1)
	[ -n "$off" ] || die "no xz payload in $1"
	tail -c +$((off + 1)) "$1" | xz -dc 2>/dev/null >"$2.tmp" || true
	[ "$(head -c4 "$2.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] || die "could not extract vmlinux from $1"
	mv "$2.tmp" "$2"
}

# ---------------------------------------------------------------- gpio-sim
# Debian builds neither gpio-sim nor irq_sim. Build both into one out-of-tree
# module from linux-source-6.1, against the unpacked Debian headers.
fetch_sources() {
	local sdir="$CACHE/src"
	# .done-2: v4l2-mem2mem.c joined the list (amd64's Debian kernel lacks it).
	if [ -f "$sdir/.done-2" ]; then return; fi
	apt_fetch linux-source-6.1
	rm -rf "$sdir"
	mkdir -p "$sdir"
	log "extracting gpio-sim, irq_sim and the V4L2 test drivers from linux-source-6.1"
	dpkg -x "$(deb_file linux-source-6.1 all)" "$sdir/pkg"
	local tarball
	tarball=$(ls "$sdir"/pkg/usr/src/linux-source-6.1*.tar.* | head -n1)
	tar -C "$sdir" -xf "$tarball" --wildcards --strip-components=1 \
		'*/drivers/gpio/gpio-sim.c' '*/drivers/gpio/gpiolib.h' '*/kernel/irq/irq_sim.c' \
		'*/drivers/media/test-drivers/vicodec/*' '*/drivers/media/test-drivers/vim2m.c' \
		'*/drivers/media/v4l2-core/v4l2-mem2mem.c'
	rm -rf "$sdir/pkg"
	touch "$sdir/.done-2"
}

fetch_headers() { # ARCH -> sets up $CACHE/ARCH/headers with working scripts/tools links
	local a=$1 kver
	kver=$(kernel_abi "$a")
	local hdir="$CACHE/$a/headers"
	if [ -f "$hdir/.done-$kver" ]; then return; fi
	local common=${kver%-"$a"}
	local suffix=""
	[ "$a" = arm64 ] && suffix=":arm64"
	apt_fetch "linux-headers-$kver$suffix" "linux-headers-$common-common" linux-kbuild-6.1
	rm -rf "$hdir"
	mkdir -p "$hdir"
	dpkg -x "$(deb_file "linux-headers-$kver" "$a")" "$hdir"
	dpkg -x "$(deb_file "linux-headers-$common-common" all)" "$hdir"
	# The kbuild helpers are host (amd64) programs for both target architectures.
	dpkg -x "$(deb_file linux-kbuild-6.1 amd64)" "$hdir"
	local kb="$hdir/usr/lib/linux-kbuild-6.1"
	local src="$hdir/usr/src/linux-headers-$kver"
	ln -sfn "$kb/scripts" "$src/scripts"
	ln -sfn "$kb/tools" "$src/tools"
	# The arch headers point at the common tree with absolute /usr/src paths.
	local comdir="$hdir/usr/src/linux-headers-$common-common"
	sed -i "s|/usr/src/linux-headers-$common-common|$comdir|g" "$src/Makefile"
	for f in "$src"/*; do
		if [ -L "$f" ]; then
			local t
			t=$(readlink "$f")
			case "$t" in
			../linux-headers-*-common/*) ln -sfn "$comdir/${t#../linux-headers-*-common/}" "$f" ;;
			esac
		fi
	done
	touch "$hdir/.done-$kver"
}

build_modules() { # ARCH: gpio-sim (+ irq_sim), vicodec, and v4l2-mem2mem when Debian lacks it
	local a=$1 kver
	kver=$(kernel_abi "$a")
	local mdir="$CACHE/$a/extra"
	# -m2m: the stamp of the build that added vicodec (older caches rebuild).
	if [ -f "$mdir/.done-$kver-m2m" ]; then return; fi
	fetch_sources
	fetch_headers "$a"
	rm -rf "$mdir"
	mkdir -p "$mdir/gpio-sim"
	cp "$CACHE/src/drivers/gpio/gpio-sim.c" "$mdir/gpio-sim/gpio-sim-main.c"
	cp "$CACHE/src/drivers/gpio/gpiolib.h" "$mdir/gpio-sim/"
	# irq_sim calls handle_simple_irq(irq_to_desc()), which modules cannot
	# reach; generic_handle_irq() is exported and does the same here.
	sed 's/handle_simple_irq(irq_to_desc(\([a-z_]*\)))/generic_handle_irq(\1)/' \
		"$CACHE/src/kernel/irq/irq_sim.c" >"$mdir/gpio-sim/irq_sim.c"
	grep -q 'generic_handle_irq(' "$mdir/gpio-sim/irq_sim.c" || die "irq_sim.c patch did not apply"
	printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' >"$mdir/gpio-sim/Kbuild"
	local kbuild="$CACHE/$a/headers/usr/src/linux-headers-$kver"
	local mk=(make -s -C "$kbuild" M="$mdir/gpio-sim" -j"$(nproc)")
	[ "$a" = arm64 ] && mk+=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
	log "building gpio-sim for $a ($kver)"
	"${mk[@]}" modules >"$mdir/build.log" 2>&1 || {
		cat "$mdir/build.log" >&2
		die "gpio-sim build failed for $a"
	}
	# vicodec (the stateful FWHT codec: the M2M encoder API of the Pi's
	# bcm2835-codec) is not built by Debian. Its Kconfig selects
	# V4L2_MEM2MEM_DEV, VIDEOBUF2_VMALLOC, MEDIA_CONTROLLER(_REQUEST_API):
	# arm64 ships v4l2-mem2mem.ko, amd64 does not (no M2M driver enabled),
	# so there it is built from the same source next to vicodec.
	mkdir -p "$mdir/vicodec"
	cp "$CACHE/src/drivers/media/test-drivers/vicodec/"*.[ch] "$mdir/vicodec/"
	printf 'obj-m := vicodec.o\nvicodec-y := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o\n' >"$mdir/vicodec/Kbuild"
	local cfg="$CACHE/$a/kernel/root/boot/config-$kver"
	if ! grep -q '^CONFIG_V4L2_MEM2MEM_DEV=[ym]' "$cfg"; then
		cp "$CACHE/src/drivers/media/v4l2-core/v4l2-mem2mem.c" "$mdir/vicodec/"
		printf 'obj-m += v4l2-mem2mem.o\n' >>"$mdir/vicodec/Kbuild"
	fi
	mk=(make -s -C "$kbuild" M="$mdir/vicodec" -j"$(nproc)")
	[ "$a" = arm64 ] && mk+=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
	log "building vicodec for $a ($kver)"
	"${mk[@]}" modules >"$mdir/build-vicodec.log" 2>&1 || {
		cat "$mdir/build-vicodec.log" >&2
		die "vicodec build failed for $a"
	}
	touch "$mdir/.done-$kver-m2m"
}

# ---------------------------------------------------------------- initramfs
MODULES=(configfs gpio-sim vivid snd-aloop vicodec)

build_base() { # ARCH
	local a=$1 kver
	kver=$(kernel_abi "$a")
	local out="$CACHE/$a/base.cpio.gz"
	local stamp="$CACHE/$a/.base-$kver-v$RIG_VERSION-$(cksum <"$RIG_DIR/init" | cut -d' ' -f1)"
	if [ -f "$stamp" ] && [ -f "$out" ]; then return; fi
	fetch_kernel "$a"
	build_modules "$a"
	apt_fetch "busybox-static:$a"
	local root="$CACHE/$a/initramfs"
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,lib/modules,test}
	local bb
	bb=$(mktemp -d)
	dpkg -x "$(deb_file busybox-static "$a")" "$bb"
	cp "$bb/bin/busybox" "$root/bin/busybox"
	rm -rf "$bb"
	# Put gpio-sim into the unpacked module tree so depmod/modprobe order it
	# with the distribution modules.
	local mroot="$CACHE/$a/kernel/root"
	mkdir -p "$mroot/lib/modules/$kver/extra"
	cp "$CACHE/$a/extra/gpio-sim/gpio-sim.ko" "$CACHE/$a/extra/vicodec/"*.ko "$mroot/lib/modules/$kver/extra/"
	depmod -b "$mroot" "$kver"
	: >"$root/modules.list"
	local m line
	for m in "${MODULES[@]}"; do
		while read -r line; do
			case "$line" in
			insmod\ *)
				local ko
				ko=$(echo "$line" | awk '{print $2}')
				local base
				base=$(basename "$ko")
				if ! grep -qx "$base" "$root/modules.list"; then
					cp "$ko" "$root/lib/modules/$base"
					echo "$base" >>"$root/modules.list"
				fi
				;;
			esac
		done < <(modprobe -d "$mroot" -S "$kver" --show-depends "$m")
	done
	cp "$RIG_DIR/init" "$root/init"
	chmod 755 "$root/init"
	log "modules in the $a guest: $(tr '\n' ' ' <"$root/modules.list")"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 >"$out.tmp")
	# The per-run archive is appended uncompressed: the kernel only accepts it
	# when the gzip member before it ends on a 512-byte boundary.
	truncate -s %512 "$out.tmp"
	mv "$out.tmp" "$out"
	rm -f "$CACHE/$a"/.base-*
	touch "$stamp"
}

setup() {
	local arches=("$@")
	[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64)
	install_host_tools
	local a
	for a in "${arches[@]}"; do
		a=$(deb_arch "$a")
		build_base "$a"
	done
}

# ---------------------------------------------------------------- run
elf_arch() {
	local m
	m=$(od -An -tu2 -j18 -N2 "$1" | tr -d ' ')
	case "$m" in
	62) echo amd64 ;;
	183) echo arm64 ;;
	# 32-bit ARM runs in the arm64 guest through the kernel's compat layer,
	# as Raspberry Pi OS's armhf userland does on a 64-bit kernel: the
	# ioctl structs are checked against the kernel's 32-bit layouts.
	40) echo arm64 ;;
	*) die "$1: unsupported ELF machine $m (want x86_64, aarch64 or arm)" ;;
	esac
}

# qemu_args ARCH KERNEL INITRD: fills the QEMU array. No KVM on the hosts we
# run on, so TCG; cortex-a72 is the Pi 4's core and boots 4-5x faster than
# -cpu max (no pointer-authentication emulation).
qemu_args() {
	local a=$1 append="panic=-1 rdinit=/init quiet loglevel=1"
	case "$a" in
	amd64) QEMU=(qemu-system-x86_64 -M q35 -cpu max); append="console=ttyS0 $append" ;;
	arm64) QEMU=(qemu-system-aarch64 -M virt -cpu cortex-a72); append="console=ttyAMA0 $append" ;;
	esac
	QEMU+=(-accel tcg -smp 2 -m 1024M -nodefaults -display none -no-reboot
		-chardev stdio,id=con,signal=off -serial chardev:con
		-kernel "$2" -initrd "$3" -append "$append")
}

# make_initrd ARCH WORK BINARY ARGS...: the cached base plus an uncompressed
# cpio with the binary, its arguments and the INTERCOMD_TEST_* environment.
make_initrd() {
	local a=$1 work=$2 bin=$3
	shift 3
	mkdir -p "$work/root/test"
	cp "$bin" "$work/root/test/test.bin"
	chmod 755 "$work/root/test/test.bin"
	local arg v
	: >"$work/root/test/args"
	for arg in "$@"; do printf '%s\n' "$arg" >>"$work/root/test/args"; done
	# Pass through only the knobs a test may read; nothing else of the host's
	# environment belongs in the guest.
	: >"$work/root/test/env"
	for v in $(env | sed -n 's/^\(INTERCOMD_TEST_[A-Za-z0-9_]*\|GOTRACEBACK\|GODEBUG\)=.*/\1/p'); do
		printf 'export %s=%q\n' "$v" "${!v}" >>"$work/root/test/env"
	done
	# go test runs the binary in the package directory, and tests open
	# testdata/ relative to it or by absolute path: recreate that directory
	# (with its testdata) at the same path in the guest and run there.
	local pkgdir=$PWD
	mkdir -p "$work/root$pkgdir"
	if [ -d "$pkgdir/testdata" ]; then
		cp -a "$pkgdir/testdata" "$work/root$pkgdir/"
	fi
	printf '%s\n' "$pkgdir" >"$work/root/test/cwd"
	cp "$CACHE/$a/base.cpio.gz" "$work/initrd"
	(cd "$work/root" && find . | cpio -o -H newc --quiet >>"$work/initrd")
}

run() { # BINARY ARGS...
	[ $# -ge 1 ] || die "usage: rig.sh run BINARY [ARGS...]"
	local bin=$1
	shift
	[ -f "$bin" ] || die "no such binary: $bin"
	local a
	a=$(elf_arch "$bin")
	local base="$CACHE/$a/base.cpio.gz"
	local kernel="$CACHE/$a/kernel/vmlinux"
	[ -f "$base" ] && [ -f "$kernel" ] || die "the $a guest is not set up: run test/vm/rig.sh setup $a (or make test-hw)"

	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/intercomd-vm.XXXXXX")
	RIG_WORK=$work
	make_initrd "$a" "$work" "$bin" "$@"
	local timeout_s=${INTERCOMD_VM_TIMEOUT:-1200}
	qemu_args "$a" "$kernel" "$work/initrd"
	# The guest's console goes through awk: only what the test binary printed
	# (between the markers) reaches our stdout, with the tty's CRs removed; the
	# boot log is kept and shown only when the guest fails before the end marker.
	local rcfile="$work/rc"
	set +e
	timeout --foreground -k 10 "$timeout_s" "${QEMU[@]}" </dev/null 2>"$work/qemu.err" |
		tr -d '\r' | awk -v rcfile="$rcfile" -v bootlog="$work/boot.log" '
		BEGIN { state = 0 }
		state == 0 {
			if (index($0, "@@INTERCOMD-VM-BEGIN@@")) { state = 1; next }
			print > bootlog; next
		}
		state == 1 {
			p = index($0, "@@INTERCOMD-VM-EXIT=")
			if (p) {
				if (p > 1) { print substr($0, 1, p - 1); fflush() }
				rc = substr($0, p + 20); sub(/@@.*/, "", rc)
				print rc > rcfile; state = 2; next
			}
			print; fflush(); next
		}
		{ print > bootlog }'
	local qrc=${PIPESTATUS[0]}
	set -e
	if [ ! -s "$rcfile" ]; then
		{
			echo "vm-rig: the $a guest ended without reporting the test's exit code (qemu/timeout status $qrc)"
			echo "--- guest console ---"
			cat "$work/boot.log" 2>/dev/null || true
			echo "--- qemu stderr ---"
			cat "$work/qemu.err" 2>/dev/null || true
		} >&2
		exit 1
	fi
	local rc
	rc=$(cat "$rcfile")
	exit "$rc"
}

shell_cmd() { # ARCH CMD: a debugging aid; runs CMD in the guest as the test would run
	local a
	a=$(deb_arch "$1")
	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/intercomd-vm.XXXXXX")
	RIG_WORK=$work
	printf '#!/bin/sh\n%s\n' "$2" >"$work/cmd.sh"
	make_initrd "$a" "$work" "$work/cmd.sh"
	qemu_args "$a" "$CACHE/$a/kernel/vmlinux" "$work/initrd"
	"${QEMU[@]}" </dev/null | tr -d '\r'
}

case "${1:-}" in
setup)
	shift
	setup "$@"
	;;
run)
	shift
	run "$@"
	;;
shell-cmd)
	shift
	shell_cmd "$@"
	;;
*)
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
