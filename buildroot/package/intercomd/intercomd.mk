################################################################################
#
# intercomd
#
################################################################################

# Built from the checkout this external tree lives in (make cross builds
# the same sources outside Buildroot). For a release image, point
# INTERCOMD_OVERRIDE_SRCDIR at an unpacked release instead.
INTERCOMD_VERSION = $(shell git -C $(BR2_EXTERNAL_INTERCOMD_PATH) describe --tags --always --dirty 2>/dev/null || echo local)
INTERCOMD_SITE = $(BR2_EXTERNAL_INTERCOMD_PATH)/..
INTERCOMD_SITE_METHOD = local
INTERCOMD_GOMOD = github.com/intercomd/intercomd
INTERCOMD_BUILD_TARGETS = cmd/intercomd cmd/intercomctl
INTERCOMD_LDFLAGS = -s -w -X main.version=$(INTERCOMD_VERSION)
# Pure Go, as in the Debian package and the release tarballs.
INTERCOMD_GO_ENV = CGO_ENABLED=0

# The local site method skips the download step, which is where the
# golang-package infrastructure vendors the modules; vendor them before the
# build instead. Like any download, this needs the Go module proxy.
INTERCOMD_GOPROXY ?= https://proxy.golang.org,direct
define INTERCOMD_VENDOR_MODULES
	cd $(@D) && $(HOST_GO_COMMON_ENV) GOFLAGS=-mod=mod \
		GOPROXY="$(INTERCOMD_GOPROXY)" $(GO_BIN) mod vendor
endef
INTERCOMD_PRE_BUILD_HOOKS += INTERCOMD_VENDOR_MODULES

# The service user, with the groups owning cameras, sound and GPIO chips.
INTERCOMD_USERS = intercomd -1 intercomd -1 * /var/lib/intercomd - video,audio,gpio intercomd video intercom daemon

# The configuration may hold broker credentials.
define INTERCOMD_PERMISSIONS
	/etc/intercomd/intercomd.yaml f 0640 root intercomd - - - - -
endef

# Example configuration; a rootfs overlay file of the same name replaces it.
define INTERCOMD_INSTALL_CONFIG
	$(INSTALL) -D -m 0640 $(@D)/cmd/intercomd/intercomd.example.yaml \
		$(TARGET_DIR)/etc/intercomd/intercomd.yaml
	$(INSTALL) -D -m 0644 $(@D)/packaging/60-intercomd-gpio.rules \
		$(TARGET_DIR)/usr/lib/udev/rules.d/60-intercomd-gpio.rules
endef
INTERCOMD_POST_INSTALL_TARGET_HOOKS += INTERCOMD_INSTALL_CONFIG

ifeq ($(BR2_PACKAGE_INTERCOMD_MOSQUITTO),y)
INTERCOMD_DEPENDENCIES += mosquitto
# Pull the local broker in with intercomd (the unit already orders itself
# after it).
define INTERCOMD_INSTALL_MOSQUITTO_DROPIN
	$(INSTALL) -d $(TARGET_DIR)/usr/lib/systemd/system/intercomd.service.d
	printf '[Unit]\nWants=mosquitto.service\n' \
		>$(TARGET_DIR)/usr/lib/systemd/system/intercomd.service.d/mosquitto.conf
endef
endif

# Buildroot's systemd preset enables the unit at the end of the build.
define INTERCOMD_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/systemd/intercomd.service \
		$(TARGET_DIR)/usr/lib/systemd/system/intercomd.service
	$(INSTALL) -D -m 0644 $(@D)/packaging/intercomd.sysusers \
		$(TARGET_DIR)/usr/lib/sysusers.d/intercomd.conf
	$(INTERCOMD_INSTALL_MOSQUITTO_DROPIN)
endef

$(eval $(golang-package))
