#!/usr/bin/env bash
# Runs a command with a private mosquitto on 127.0.0.1 and
# INTERCOMD_TEST_BROKER pointing at it. Installs mosquitto when missing.
set -euo pipefail
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
	echo "+ installing mosquitto"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends mosquitto >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends mosquitto >/dev/null; }
fi
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
PORT=${MOSQUITTO_PORT:-18883}
DIR=$(mktemp -d)
cat >"$DIR/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 10000
# Without it mosquitto delays small writes (Nagle) and signalling takes
# 40 ms per hop waiting for delayed ACKs.
set_tcp_nodelay true
CONF
"$MOSQ" -c "$DIR/mosquitto.conf" >"$DIR/log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
for _ in $(seq 50); do
	if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then break; fi
	sleep 0.1
done
echo "+ mosquitto $("$MOSQ" -h 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1:$PORT"
export INTERCOMD_TEST_BROKER="tcp://127.0.0.1:$PORT"
"$@"
