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
