#!/bin/sh
# Buildroot post-build script for the intercomd images (runs with
# TARGET_DIR as $1).
set -eu

TARGET_DIR=$1

# The FAT boot partition, where first-boot settings can be dropped from any
# PC (see intercomd-boot-import.service).
mkdir -p "$TARGET_DIR/boot"
if ! grep -q '^/dev/mmcblk0p1' "$TARGET_DIR/etc/fstab"; then
	echo '/dev/mmcblk0p1	/boot	vfat	defaults,noatime,umask=0077	0	2' >>"$TARGET_DIR/etc/fstab"
fi

# Wi-Fi on wlan0 when wpa_supplicant is in the image (Zero W, Zero 2 W).
if [ -f "$TARGET_DIR/usr/lib/systemd/system/wpa_supplicant@.service" ]; then
	mkdir -p "$TARGET_DIR/etc/systemd/system/multi-user.target.wants"
	ln -sf /usr/lib/systemd/system/wpa_supplicant@.service \
		"$TARGET_DIR/etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service"
fi
