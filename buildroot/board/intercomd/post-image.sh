#!/bin/sh
# Buildroot post-image script for the intercomd images: a FAT boot
# partition (firmware, config.txt, cmdline.txt, kernel, device trees and
# overlays) and the ext4 root filesystem, in one sdcard.img.
set -eu

BOARD_DIR=$(dirname "$0")
GENIMAGE_CFG="$BINARIES_DIR/genimage-intercomd.cfg"

install -m 0644 "$BOARD_DIR/cmdline.txt" "$BINARIES_DIR/rpi-firmware/cmdline.txt"

# Everything the firmware loads goes on the boot partition.
files=""
for f in "$BINARIES_DIR"/rpi-firmware/* "$BINARIES_DIR"/*.dtb "$BINARIES_DIR"/zImage "$BINARIES_DIR"/Image; do
	[ -e "$f" ] || continue
	case "$f" in
	*/rpi-firmware/*) name="rpi-firmware/$(basename "$f")" ;;
	*) name=$(basename "$f") ;;
	esac
	files="$files${files:+,
}			\"$name\""
done

cat >"$GENIMAGE_CFG" <<__EOF__
image boot.vfat {
	vfat {
		files = {
$files
		}
	}
	size = 64M
}

image sdcard.img {
	hdimage {
	}

	partition boot {
		partition-type = 0xC
		bootable = "true"
		image = "boot.vfat"
	}

	partition rootfs {
		partition-type = 0x83
		image = "rootfs.ext4"
	}
}
__EOF__

support/scripts/genimage.sh -c "$GENIMAGE_CFG"
