#!/usr/bin/env bash
# Same-run comparison: bare QoS1 hop vs engine signalling, embedded broker then mosquitto.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
echo "## embedded broker"
go test -run '^$' -bench 'QoS1Hop' -benchtime 20000x ./signaling/ | grep Benchmark
go test -run '^$' -bench 'Signalling$' -benchtime 1000x ./intercom/ | grep Benchmark
echo "## mosquitto"
./.ci/mosquitto.sh go test -run '^$' -bench 'QoS1Hop' -benchtime 20000x ./signaling/ | grep Benchmark
./.ci/mosquitto.sh go test -run '^$' -bench 'Signalling$' -benchtime 1000x ./intercom/ | grep Benchmark
