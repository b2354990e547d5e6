# intercomd — see README.md. `make demo` and `make test` need only Go.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin

.PHONY: all build test test-race test-mosquitto lint demo bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The default suite: embedded broker, loopback WebRTC, simulated devices. Go only.
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# The same suite under the race detector (CI).
test-race:
	$(GO) test -race -count=1 ./...

# The signalling/engine integration suite against a real mosquitto on 127.0.0.1
# (installs mosquitto from apt when missing).
test-mosquitto:
	./scripts/with-mosquitto.sh $(GO) test -count=1 -run 'Integration' ./intercom/... ./signaling/...

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...

demo: build
	$(BIN)/intercomd demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./signaling/

clean:
	rm -rf $(BIN) dist

# --- hardware (VM rig) ---
# The device adapters against real kernel drivers (vivid, gpio-sim,
# snd-aloop) in a Debian kernel under qemu, for each of HW_ARCHES. The rig
# installs what it needs on first use and caches it (see test/vm/README.md).
VM_RIG    ?= test/vm/rig.sh
HW_ARCHES ?= amd64 arm64
HW_PKGS   ?= ./device/...

.PHONY: test-hw
test-hw:
	$(VM_RIG) setup $(HW_ARCHES)
	@set -e; for a in $(HW_ARCHES); do \
		echo "== test-hw: $$a guest"; \
		CGO_ENABLED=0 GOARCH=$$a GOFLAGS=-mod=mod $(GO) test -count=1 -p 1 -timeout 15m \
			-exec "$(CURDIR)/$(VM_RIG) run" $(HW_PKGS); \
	done
