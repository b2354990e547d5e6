#!/usr/bin/env bash
# Optional cgo build of intercomd with the software encoder (build tag
# `swenc`, e.g. mediadevices' x264 codec) for arm64 and armv7, with Debian's
# cross compilers. Not part of CI. ARMv6 is deliberately absent: Debian's
# armhf cgo output uses ARMv7 instructions and crashes on the ARM1176 of the
# Pi Zero/1, so that target stays pure Go.
#
#   make cross-swenc            # or packaging/cross-swenc.sh [arm64] [armv7]
#   SWENC_DEV_PKGS=""  extra target -dev packages (multiarch): libx264-dev for -tags swenc_x264; openh264 needs none
#
# Output: $DIST/linux-arm64-swenc/intercomd, $DIST/linux-armv7-swenc/intercomd.
# Smoke test without -L: qemu-user 7.2 mixes the host's and the cross glibc
# when given `-L /usr/<triplet>`; with the multiarch libc6:<arch> installed
# the binary finds its loader under /lib by itself:
#   qemu-aarch64 -cpu cortex-a53 dist/linux-arm64-swenc/intercomd -version
set -euo pipefail

cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
LDFLAGS=${LDFLAGS:--s -w -X main.version=$VERSION}
SWENC_DEV_PKGS=${SWENC_DEV_PKGS-}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(arm64 armv7)

log() { printf '>> %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_install() {
	if ! apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends "$@"; then
		if [ "$updated" = 0 ]; then
			apt-get update
			updated=1
		fi
		apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends "$@"
	fi
}

for t in "${targets[@]}"; do
	case "$t" in
	arm64) debarch=arm64 triplet=aarch64-linux-gnu goarch=arm64 goarm= ;;
	armv7) debarch=armhf triplet=arm-linux-gnueabihf goarch=arm goarm=7 ;;
	*)
		echo "cross-swenc: unknown target $t (arm64, armv7)" >&2
		exit 1
		;;
	esac
	pkgs=("gcc-$triplet" "g++-$triplet" "libc6-dev:$debarch")
	if ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
		log "dpkg --add-architecture $debarch"
		dpkg --add-architecture "$debarch"
		updated=0
	fi
	for p in $SWENC_DEV_PKGS; do pkgs+=("$p:$debarch"); done
	log "apt-get install ${pkgs[*]}"
	apt_install "${pkgs[@]}"

	out="$DIST/linux-$t-swenc"
	mkdir -p "$out"
	log "$out: CGO_ENABLED=1 CC=$triplet-gcc CXX=$triplet-g++ GOARCH=$goarch GOARM=$goarm -tags swenc"
	CGO_ENABLED=1 CC="$triplet-gcc" CXX="$triplet-g++" GOOS=linux GOARCH="$goarch" GOARM="$goarm" \
		PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig" \
		GOFLAGS="${PKG_GOFLAGS:--mod=mod}" \
		"$GO" build -tags swenc -trimpath -ldflags "$LDFLAGS" -o "$out/" ./cmd/intercomd
	ls -l "$out/intercomd"
done
