#!/usr/bin/env bash
# Builds the intercomd .deb for each Debian architecture given (default:
# armhf arm64 amd64) from the binaries `make cross` left in dist/, with nfpm
# run as a pinned `go run` (it is a build tool, not a dependency in go.mod).
#
#   packaging/mkdeb.sh [armhf] [arm64] [amd64]
#   DIST=dist NFPM_VERSION=v2.45.2 GO=go
#
# Output: $DIST/deb/intercomd_<version>-1_<arch>.deb
set -euo pipefail

cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
GO=${GO:-go}
NFPM_VERSION=${NFPM_VERSION:-v2.45.2}
arches=("$@")
if [ ${#arches[@]} -eq 0 ]; then
	arches=(armhf arm64 amd64)
fi

log() { printf '>> %s\n' "$*"; }

# Debian architecture -> dist/ directory of `make cross`. armhf carries the
# ARMv6 build: Raspberry Pi OS "armhf" also runs on the ARM1176 of the Pi
# Zero/1, where an ARMv7 binary dies with SIGILL.
bindir_for() {
	case "$1" in
	armhf) echo "$DIST/linux-armv6" ;;
	arm64) echo "$DIST/linux-arm64" ;;
	amd64) echo "$DIST/linux-amd64" ;;
	*)
		echo "mkdeb: unsupported architecture $1 (armhf, arm64, amd64)" >&2
		return 1
		;;
	esac
}

example=cmd/intercomd/intercomd.example.yaml
if [ ! -f "$example" ]; then
	echo "mkdeb: $example is missing; it becomes the package's conffile" >&2
	exit 1
fi

DEB_VERSION=$(packaging/version.sh)
# Reproducible: file times and the changelog date come from the commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export DEB_VERSION SOURCE_DATE_EPOCH

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Architecture-independent generated files.
gzip -9n <packaging/man/intercomd.8 >"$stage/intercomd.8.gz"
gzip -9n <packaging/man/intercomctl.1 >"$stage/intercomctl.1.gz"
{
	echo "intercomd (${DEB_VERSION}-1) unstable; urgency=medium"
	echo
	echo "  * Package built from $(git describe --tags --always --dirty 2>/dev/null || echo 'a source tree') with nfpm."
	echo
	echo " -- intercomd maintainers <maintainers@intercomd.example.org>  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$stage/changelog.Debian.gz"

# The project's own licence goes into the first Files paragraph.
license_file=""
for f in LICENSE LICENSE.md LICENSE.txt COPYING; do
	if [ -f "$f" ]; then
		license_file=$f
		break
	fi
done
{
	if [ -n "$license_file" ]; then
		echo "License: ${INTERCOMD_LICENSE:-MIT}"
		# DEP-5 continuation lines: one leading space, "." for blank lines.
		sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' "$license_file"
	else
		echo "License: LicenseRef-intercomd"
		echo " No licence file has been published with this source tree yet."
	fi
} >"$stage/license-paragraph"
awk -v lic="$stage/license-paragraph" '
	$0 == "@INTERCOMD_LICENSE@" { while ((getline l < lic) > 0) print l; next }
	{ print }
' packaging/copyright.in >"$stage/copyright"

mkdir -p "$DIST/deb"
for arch in "${arches[@]}"; do
	bin=$(bindir_for "$arch")
	for b in intercomd intercomctl; do
		if [ ! -x "$bin/$b" ]; then
			echo "mkdeb: $bin/$b missing; run make cross first" >&2
			exit 1
		fi
	done
	cp "$bin/intercomd" "$bin/intercomctl" "$stage/"
	out="$DIST/deb/intercomd_${DEB_VERSION}-1_${arch}.deb"
	rm -f "$out"
	log "nfpm $NFPM_VERSION: $out"
	DEB_ARCH=$arch STAGE=$stage \
		"$GO" run "github.com/goreleaser/nfpm/v2/cmd/nfpm@${NFPM_VERSION}" \
		package --config packaging/nfpm.yaml --packager deb --target "$out"
done
ls -l "$DIST/deb"
