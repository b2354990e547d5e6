#!/usr/bin/env bash
# Packs each cross-built target directory into a reproducible tarball with
# what a "copy the static binary" install needs (binaries, systemd unit,
# sysusers/udev files, example config, docs), and writes SHA256SUMS.
#
#   packaging/mkdist.sh linux-armv6 linux-armv7 linux-arm64 linux-amd64
#   DIST=dist VERSION=<git describe>
set -euo pipefail

cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

extras=(
	systemd/intercomd.service
	packaging/intercomd.sysusers
	packaging/60-intercomd-gpio.rules
	cmd/intercomd/intercomd.example.yaml
	docs/PACKAGING.md
)

rm -f "$DIST"/intercomd_*.tar.gz "$DIST/SHA256SUMS"
tarballs=()
for target in "$@"; do
	src="$DIST/$target"
	name="intercomd_${VERSION}_${target}"
	work=$(mktemp -d)
	mkdir "$work/$name"
	cp "$src/intercomd" "$src/intercomctl" "$work/$name/"
	for f in "${extras[@]}"; do
		if [ -f "$f" ]; then
			cp "$f" "$work/$name/"
		else
			echo "mkdist: note: $f not present, left out of $name" >&2
		fi
	done
	echo ">> $DIST/$name.tar.gz"
	tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		-C "$work" -cf - "$name" | gzip -9n >"$DIST/$name.tar.gz"
	rm -rf "$work"
	tarballs+=("$name.tar.gz")
done
(cd "$DIST" && sha256sum "${tarballs[@]}" >SHA256SUMS && cat SHA256SUMS)
