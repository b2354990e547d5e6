#!/usr/bin/env bash
# ARM smoke tests under qemu-user (make test-arm; run by .ci/run).
#
# For each ARM build from `make cross`, on the CPU it targets:
#   linux-armv6  qemu-arm     -cpu arm1176    (Pi Zero/1: catches ARMv7-only code)
#   linux-armv7  qemu-arm     -cpu cortex-a7  (Pi 2/3 32-bit)
#   linux-arm64  qemu-aarch64 -cpu cortex-a53 (Pi 3/4/Zero 2 W 64-bit)
# it runs `intercomd -version`, `intercomctl -version`, `intercomd
# -check-config` on the example config (and on a broken one, expecting exit
# 1), then cross-compiled pure-Go test binaries (`go test -c`) of
# $SELFTEST_PKGS as the self-test.
#
# qemu-user 7.2 (Debian 12) breaks Go's os/exec (golang/go#69259), so the test
# binaries run with INTERCOMD_QEMU_USER=1 in their environment and -test.short:
# tests that spawn processes must skip themselves when that variable is set.
#
# Needs the binaries in $DIST (make test-arm builds them first). Installs
# qemu-user from apt when missing. Idempotent.
set -euo pipefail

cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
GO=${GO:-go}
PKG_GOFLAGS=${PKG_GOFLAGS:--mod=mod}
SELFTEST_PKGS=${SELFTEST_PKGS:-./signaling ./intercom ./systemd}
EXAMPLE=${EXAMPLE:-cmd/intercomd/intercomd.example.yaml}
TEST_TIMEOUT=${TEST_TIMEOUT:-20m}

log() { printf '>> %s\n' "$*"; }
die() {
	printf 'smoke-arm: FAIL: %s\n' "$*" >&2
	exit 1
}

apt_install() {
	log "apt-get install $*"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends "$@" >/tmp/smoke-arm-apt.log 2>&1; then
		log "apt-get update (package lists missing or stale)"
		apt-get update >>/tmp/smoke-arm-apt.log 2>&1
		apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends "$@" >>/tmp/smoke-arm-apt.log 2>&1 ||
			{
				cat /tmp/smoke-arm-apt.log >&2
				die "apt-get install $*"
			}
	fi
}

if ! command -v qemu-arm >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
	apt_install qemu-user
fi
log "$(qemu-arm --version | head -n1)"

[ -f "$EXAMPLE" ] || die "$EXAMPLE missing (the example config is checked on every CPU)"

# target  qemu  cpu  GOARCH  GOARM
targets=(
	"linux-armv6 qemu-arm arm1176 arm 6"
	"linux-armv7 qemu-arm cortex-a7 arm 7"
	"linux-arm64 qemu-aarch64 cortex-a53 arm64 "
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'intercomd: [this is: not valid yaml\n' >"$work/broken.yaml"

# Packages that have tests today; a package without any is reported, not
# failed, so this script works while the tree grows.
pkgs=()
for p in $SELFTEST_PKGS; do
	if compgen -G "$p/*_test.go" >/dev/null; then
		pkgs+=("$p")
	else
		log "self-test: $p has no tests yet, skipped"
	fi
done
[ ${#pkgs[@]} -gt 0 ] || die "no self-test package has tests ($SELFTEST_PKGS)"

passed=0
failed=0
start_all=$(date +%s)
for t in "${targets[@]}"; do
	read -r target qemu cpu goarch goarm <<<"$t"
	bin="$DIST/$target"
	run() { "$qemu" -cpu "$cpu" "$@"; }
	for b in intercomd intercomctl; do
		[ -x "$bin/$b" ] || die "$bin/$b missing; run make cross"
	done
	log "[$target] $qemu -cpu $cpu"
	file "$bin/intercomd" 2>/dev/null | sed 's/^/   /' || true

	for b in intercomd intercomctl; do
		out=$(run "$bin/$b" -version) || die "[$target] $b -version exited $?"
		case "$out" in
		"$b "*) log "[$target] $b -version: $out" ;;
		*) die "[$target] $b -version printed '$out', want '$b <version>'" ;;
		esac
	done

	run "$bin/intercomd" -config "$EXAMPLE" -check-config ||
		die "[$target] intercomd -check-config rejected $EXAMPLE"
	log "[$target] -check-config $EXAMPLE: ok"
	rc=0
	run "$bin/intercomd" -config "$work/broken.yaml" -check-config >"$work/broken.out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || {
		cat "$work/broken.out" >&2
		die "[$target] -check-config on a broken config exited $rc, want 1"
	}
	log "[$target] -check-config on a broken config: exit 1 as expected"

	# Self-test: cross-compiled test binaries, run from their package
	# directory as `go test` would.
	tdir="$work/$target"
	mkdir -p "$tdir"
	log "[$target] go test -c ${pkgs[*]}"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm GOFLAGS="$PKG_GOFLAGS" \
		"$GO" test -c -o "$tdir/" "${pkgs[@]}"
	for p in "${pkgs[@]}"; do
		name=$(basename "$p")
		tb="$tdir/$name.test"
		[ -x "$tb" ] || die "[$target] $tb was not built"
		t0=$(date +%s)
		tlog="$work/$target-$name.log"
		if (cd "$p" && INTERCOMD_QEMU_USER=1 run "$tb" -test.v -test.short -test.count=1 -test.timeout="$TEST_TIMEOUT" >"$tlog" 2>&1); then
			passed=$((passed + 1))
			printf 'ok  \t%s [%s %s]\t%ss\t%s tests passed, %s skipped\n' "$p" "$qemu" "$cpu" "$(($(date +%s) - t0))" \
				"$(grep -c -- '^--- PASS' "$tlog" || true)" "$(grep -c -- '^--- SKIP' "$tlog" || true)"
			grep -A1 -- '^--- SKIP' "$tlog" | sed 's/^/   /' || true
		else
			failed=$((failed + 1))
			grep -v -E '^(=== (RUN|PAUSE|CONT)|--- PASS)' "$tlog" || true
			printf 'FAIL\t%s [%s %s]\t%ss\n' "$p" "$qemu" "$cpu" "$(($(date +%s) - t0))"
		fi
	done
done

log "smoke-arm: ${#targets[@]} targets in $(($(date +%s) - start_all))s"
echo "smoke-arm: $passed passed, $failed failed"
[ "$failed" = 0 ]
