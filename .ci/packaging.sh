#!/usr/bin/env bash
# Debian package and systemd unit checks (make test-packaging; run by .ci/run).
#
#  1. builds the amd64 binaries and the amd64 .deb (nfpm via `go run`);
#  2. `systemd-analyze verify` on the unit (a temp copy whose ExecStart points
#     at the built binary) and `systemd-analyze security --offline=true`,
#     failing above an exposure of $MAX_EXPOSURE;
#  3. `dpkg -i` on this machine: checks the binaries, the service user, the
#     conffile's owner/mode, the enabled unit, -version and -check-config
#     run as the service user, then `systemd-analyze verify` on the unit
#     exactly as installed;
#  4. reinstalls over itself (the upgrade path) and checks that a local edit
#     of the conffile survives;
#  5. lintian on the .deb, failing on errors and warnings (justified ones are
#     overridden in packaging/lintian-overrides);
#  6. `dpkg -r` then `dpkg -P`, checks nothing is left, and removes the user
#     and groups if this run created them. A failure purges too (trap).
#
# systemd need not be PID 1: verify and security work offline, and the
# postinst only enables the unit (deb-systemd-helper) when systemd isn't
# running. Installs what it needs with apt-get. Idempotent.
set -euo pipefail

cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
GO=${GO:-go}
MAKE=${MAKE:-make}
# systemd-analyze prints exposure as 0.0-10.0; --threshold takes it x10.
MAX_EXPOSURE=${MAX_EXPOSURE:-3.0}

log() { printf '>> %s\n' "$*"; }
passed=0
check() { # check <description> <command...>
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		printf 'ok  \t%s\n' "$what"
	else
		printf 'FAIL\t%s\n' "$what" >&2
		echo "test-packaging: $passed passed, 1 failed"
		exit 1
	fi
}

apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends "${missing[@]}" >/tmp/packaging-apt.log 2>&1; then
		log "apt-get update (package lists missing or stale)"
		apt-get update >>/tmp/packaging-apt.log 2>&1
		apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends "${missing[@]}" >>/tmp/packaging-apt.log 2>&1 ||
			{
				cat /tmp/packaging-apt.log >&2
				exit 1
			}
	fi
}

t_start=$(date +%s)
apt_install lintian systemd adduser init-system-helpers util-linux

# Leftovers of an interrupted run would make dpkg -i an upgrade.
if dpkg-query -W intercomd >/dev/null 2>&1; then
	log "purging a previously installed intercomd"
	dpkg -P intercomd
fi
user_existed=0
getent passwd intercomd >/dev/null && user_existed=1
gpio_existed=0
getent group gpio >/dev/null && gpio_existed=1

# 1. Build.
log "building linux-amd64 binaries and the amd64 .deb"
"$MAKE" --no-print-directory cross CROSS_TARGETS=linux-amd64:amd64: DIST="$DIST"
DIST="$DIST" GO="$GO" packaging/mkdeb.sh amd64
deb=$(ls -t "$DIST"/deb/intercomd_*_amd64.deb | head -n1)
log "package: $deb"
dpkg-deb --info "$deb" | sed 's/^/   /'
dpkg-deb --contents "$deb" | sed 's/^/   /'

# 2. The unit, before installing anything: ExecStart must exist for verify,
#    so a temp copy points at the built binary.
tmp=$(mktemp -d)
cleanup() {
	rm -rf "$tmp"
	if dpkg-query -W intercomd >/dev/null 2>&1; then
		log "cleanup: purging intercomd"
		dpkg -P intercomd >/dev/null 2>&1 || true
	fi
	# Debian keeps system users on purge; this machine is CI's, so undo
	# what this run created.
	if [ "$user_existed" = 0 ] && getent passwd intercomd >/dev/null; then
		log "cleanup: removing the intercomd user and group this run created"
		userdel intercomd
		if getent group intercomd >/dev/null; then groupdel intercomd; fi
	fi
	if [ "$gpio_existed" = 0 ] && getent group gpio >/dev/null; then
		log "cleanup: removing the gpio group this run created"
		groupdel gpio
	fi
}
trap cleanup EXIT
sed "s#^ExecStart=/usr/bin/intercomd #ExecStart=$PWD/$DIST/linux-amd64/intercomd #" \
	systemd/intercomd.service >"$tmp/intercomd.service"
check "systemd-analyze verify (unit from the tree)" \
	systemd-analyze verify --man=no "$tmp/intercomd.service"
threshold=$(awk -v m="$MAX_EXPOSURE" 'BEGIN { printf "%d", m * 10 }')
systemd-analyze security --offline=true --no-pager "$tmp/intercomd.service" >"$tmp/security.txt" 2>&1 || true
grep -E '✗|Overall exposure' "$tmp/security.txt" | sed 's/^/   /' || true
exposure_ok() {
	systemd-analyze security --offline=true --threshold="$threshold" --no-pager "$tmp/intercomd.service" >/dev/null 2>&1
}
check "systemd-analyze security exposure <= $MAX_EXPOSURE" exposure_ok

# 3. Install.
log "dpkg -i $deb"
dpkg -i "$deb"
check "binaries in /usr/bin" test -x /usr/bin/intercomd -a -x /usr/bin/intercomctl
version_is() { # version_is <binary>: prints `<binary> -version`, checks its form
	local out
	out=$("/usr/bin/$1" -version) || return 1
	echo "   $out"
	case "$out" in "$1 "?*) return 0 ;; *) return 1 ;; esac
}
check "intercomd -version" version_is intercomd
check "intercomctl -version" version_is intercomctl
check "service user intercomd (nologin, gpio group exists)" \
	sh -c 'getent passwd intercomd | grep -q ":/usr/sbin/nologin$" && getent group gpio >/dev/null'
check "conffile root:intercomd 0640" \
	sh -c '[ "$(stat -c %U:%G:%a /etc/intercomd/intercomd.yaml)" = root:intercomd:640 ]'
check "conffile registered" sh -c 'dpkg-query -W -f="\${Conffiles}" intercomd | grep -q /etc/intercomd/intercomd.yaml'
check "intercomd -check-config as the service user" \
	runuser -u intercomd -- /usr/bin/intercomd -check-config -config /etc/intercomd/intercomd.yaml
check "unit enabled (multi-user.target.wants)" \
	test -L /etc/systemd/system/multi-user.target.wants/intercomd.service
check "systemd-analyze verify (installed unit)" \
	systemd-analyze verify --man=no /usr/lib/systemd/system/intercomd.service
check "sysusers.d, udev rule and man pages installed" \
	test -f /usr/lib/sysusers.d/intercomd.conf -a -f /usr/lib/udev/rules.d/60-intercomd-gpio.rules \
	-a -f /usr/share/man/man8/intercomd.8.gz -a -f /usr/share/man/man1/intercomctl.1.gz

# 4. Upgrade path: same package over itself; the local edit must survive.
echo "# local edit by test-packaging" >>/etc/intercomd/intercomd.yaml
log "dpkg -i again (upgrade path)"
dpkg -i --force-confold "$deb"
check "local conffile edit kept over an upgrade" grep -q "local edit by test-packaging" /etc/intercomd/intercomd.yaml
check "conffile still root:intercomd 0640 after upgrade" \
	sh -c '[ "$(stat -c %U:%G:%a /etc/intercomd/intercomd.yaml)" = root:intercomd:640 ]'

# 5. lintian. It warns when run as root but works.
log "lintian $deb"
lintian_ok=true
lintian --fail-on error,warning --display-info --info "$deb" >"$tmp/lintian.txt" 2>&1 || lintian_ok=false
sed 's/^/   /' "$tmp/lintian.txt"
check "lintian: no errors or warnings" "$lintian_ok"

# 6. Remove and purge.
log "dpkg -r intercomd"
dpkg -r intercomd
check "remove: binaries gone, conffile kept" \
	sh -c '! test -e /usr/bin/intercomd && test -f /etc/intercomd/intercomd.yaml'
log "dpkg -P intercomd"
dpkg -P intercomd
check "purge: config, statoverride, unit symlink and state gone" \
	sh -c '! test -e /etc/intercomd && ! dpkg-statoverride --list /etc/intercomd/intercomd.yaml >/dev/null &&
	       ! test -e /etc/systemd/system/multi-user.target.wants/intercomd.service && ! test -e /var/lib/intercomd'

log "test-packaging took $(($(date +%s) - t_start))s"
echo "test-packaging: $passed passed, 0 failed"
