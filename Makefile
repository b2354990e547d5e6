# intercomd — see README.md. `make demo` and `make test` need only Go.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin

.PHONY: all build test test-race test-mosquitto lint demo bench bench-site fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The default suite: embedded broker, loopback WebRTC, simulated devices.
# Go only, and pure Go: the daemon ships as CGO_ENABLED=0.
test:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./...

# The same suite under the race detector (CI).
test-race:
	$(GO) test -race -count=1 ./...

# The signalling/engine integration suite against a real mosquitto on 127.0.0.1
# (installs mosquitto from apt when missing).
test-mosquitto:
	./.ci/mosquitto.sh $(GO) test -count=1 ./intercom/... ./signaling/...

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...

demo: build
	$(BIN)/intercomd demo

# Go benchmarks (the 1000-endpoint site load is left to bench-site).
bench:
	$(GO) test -short -run '^$$' -bench . -benchmem ./...

bench-site:
	$(GO) test -run '^$$' -bench SiteLoad -benchtime 500x -timeout 20m ./intercom/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./signaling/

clean:
	rm -rf $(BIN) dist

# --- packaging ---
# Release artefacts; see docs/PACKAGING.md. Static, stripped, pure-Go
# binaries per target in $(DIST)/<os>-<arch>[v6|v7]/, tarballs, .debs, and
# the qemu-user and dpkg/lintian checks CI runs.
DIST          ?= dist
PKG_GOFLAGS   ?= -mod=mod
# <dist dir>:<GOARCH>:<GOARM>. ARMv6 (Pi Zero/1, ARM1176) stays pure Go:
# Debian's armhf cgo output needs ARMv7.
CROSS_TARGETS ?= linux-armv6:arm:6 linux-armv7:arm:7 linux-arm64:arm64: linux-amd64:amd64:
DEB_ARCHES    ?= armhf arm64 amd64

.PHONY: cross dist deb test-arm test-packaging cross-swenc

cross:
	@set -e; for t in $(CROSS_TARGETS); do \
	  dir=$${t%%:*}; rest=$${t#*:}; arch=$${rest%%:*}; arm=$${rest#*:}; \
	  echo ">> $(DIST)/$$dir: GOOS=linux GOARCH=$$arch GOARM=$$arm CGO_ENABLED=0 version $(VERSION)"; \
	  mkdir -p $(DIST)/$$dir; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch GOARM=$$arm GOFLAGS='$(PKG_GOFLAGS)' \
	    $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/$$dir/ ./cmd/...; \
	  ls -l $(DIST)/$$dir/intercomd $(DIST)/$$dir/intercomctl; \
	done

dist: cross
	DIST='$(DIST)' VERSION='$(VERSION)' packaging/mkdist.sh $(foreach t,$(CROSS_TARGETS),$(firstword $(subst :, ,$(t))))

deb: cross
	DIST='$(DIST)' GO='$(GO)' packaging/mkdeb.sh $(DEB_ARCHES)

# Optional cgo software-encoder build (tag swenc) for arm64 and armv7 with
# Debian's cross compilers. Not part of CI.
cross-swenc:
	DIST='$(DIST)' GO='$(GO)' LDFLAGS='$(LDFLAGS)' packaging/cross-swenc.sh

# Each ARM binary under qemu-user on its CPU: -version, -check-config and the
# pure-Go self-test binaries (INTERCOMD_QEMU_USER=1 is set for them).
test-arm: cross
	DIST='$(DIST)' GO='$(GO)' PKG_GOFLAGS='$(PKG_GOFLAGS)' .ci/smoke-arm.sh

# Builds and installs the amd64 .deb on this machine, checks it, runs
# lintian and systemd-analyze, then purges it again.
test-packaging:
	DIST='$(DIST)' GO='$(GO)' MAKE='$(MAKE)' .ci/packaging.sh

# --- software encoder (cgo) ---
# The optional SoftwareEncoder (device/swenc*.go, build tag swenc): openh264
# from pion/mediadevices v0.10.0, linked statically (amd64, arm64, armv7),
# so the only extra build dependency is g++. SWENC_TAGS=swenc,swenc_x264
# builds x264 instead (needs libx264-dev and pkg-config). See docs/SWENC.md.
SWENC_TAGS      ?= swenc
SWENC_BENCHTIME ?= 30x

.PHONY: test-swenc
test-swenc:
	@command -v g++ >/dev/null || { echo ">> installing g++"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends g++ || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends g++; }; }
	CGO_ENABLED=1 $(GO) test -count=1 -tags '$(SWENC_TAGS)' ./device/ -run Software -bench Software -benchtime $(SWENC_BENCHTIME)
	CGO_ENABLED=1 $(GO) vet -tags '$(SWENC_TAGS)' ./intercom/

# --- hardware (VM rig) ---
# The device adapters against real kernel drivers (vivid, gpio-sim,
# snd-aloop, vicodec) in a Debian kernel under qemu, for each of HW_ARCHES.
# With arm64 the same tests also run as a 32-bit ARMv6 binary (GOARM=6, the
# Pi Zero's build) in the arm64 guest, through the kernel's 32-bit compat
# layer, which checks the 32-bit ioctl struct layouts against a kernel. The
# rig installs what it needs on first use and caches it (see test/vm/README.md).
VM_RIG    ?= test/vm/rig.sh
HW_ARCHES ?= amd64 arm64
HW_PKGS   ?= ./device/...

.PHONY: test-hw test-hw-daemon
test-hw:
	$(VM_RIG) setup $(HW_ARCHES)
	@set -e; for a in $(HW_ARCHES) $(if $(filter arm64,$(HW_ARCHES)),arm); do \
		echo "== test-hw: $$a binary"; \
		CGO_ENABLED=0 GOARCH=$$a GOARM=6 GOFLAGS=-mod=mod $(GO) test -count=1 -p 1 -timeout 15m \
			-exec "$(CURDIR)/$(VM_RIG) run" $(HW_PKGS); \
	done
	$(if $(filter arm64,$(HW_ARCHES)),$(MAKE) --no-print-directory test-hw-daemon)

# The whole daemon in the arm64 guest (test/vm/daemon): the door intercomd
# (embedded broker, vivid camera, loopback sound card, gpio-sim buttons and
# relay) calls a second intercomd, driven by gpio-sim lines and intercomctl.
# Run twice: with the arm64 binaries, and with the armv6 (Pi Zero) ones
# through the kernel's 32-bit compat layer.
HW_DAEMON_BIN    := test/vm/daemon/testdata/bin
HW_DAEMON_ARCHES ?= arm64 arm
test-hw-daemon:
	$(VM_RIG) setup arm64
	@set -e; for a in $(HW_DAEMON_ARCHES); do \
		echo "== test-hw-daemon: $$a intercomd in the arm64 guest"; \
		rm -rf $(HW_DAEMON_BIN) && mkdir -p $(HW_DAEMON_BIN); \
		CGO_ENABLED=0 GOARCH=$$a GOARM=6 GOFLAGS=-mod=mod $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o $(HW_DAEMON_BIN)/ ./cmd/intercomd ./cmd/intercomctl; \
		CGO_ENABLED=0 GOARCH=arm64 GOFLAGS=-mod=mod $(GO) test -count=1 -v -timeout 10m \
			-exec "$(CURDIR)/$(VM_RIG) run" ./test/vm/daemon/; \
	done

# --- web ---
# The browser SDK and the indoor-unit page (web/, see web/README.md). The
# bundle web/bundle/netcall.js is committed (go:embed needs it in every Go
# build); `make web` rebuilds it with the pinned esbuild (npm ci in web/).
# test-web installs Debian's chromium when missing, checks the committed
# bundle is current, and runs the SDK's node unit tests and the Playwright
# end-to-end suite against `bin/intercomd demo -stay` (started and stopped
# by the suite itself).
NPM      ?= npm
WEB_OUT  ?= web/test-output

.PHONY: web test-web
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && $(NPM) ci --no-audit --no-fund

web: web/node_modules/.package-lock.json
	cd web && node build.mjs

test-web: build
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	cd web && $(NPM) ci --no-audit --no-fund
	cd web && node build.mjs --check
	$(GO) test -count=1 ./web/...
	$(GO) build -o $(WEB_OUT)/bin/intercom-web ./web/cmd/intercom-web
	cd web && node --test test/unit/
	cd web && node --test --test-concurrency=1 --test-timeout=180000 test/e2e/
