#!/usr/bin/env bash
# Sampler memory per buffered span, against the local stack (deploy/up.sh with
# WEFT_DEMO_TRAFFIC=0). Restarts the sampler with a decision wait and quiet time long
# enough that nothing is decided during the run, sends shop traffic at a fixed rate,
# and reads the sampler's resident memory (/proc/PID/status VmRSS) and its
# weft_sampler_buffered_spans gauge before and after. Bytes per buffered span =
# growth of RSS / spans buffered. The held bus messages (unacknowledged until decided)
# are part of what a buffered span costs, so they are included. Restarts the sampler
# as deploy/up.sh does at the end. Only talks to 127.0.0.1; every loop is bounded.
#   loadtest/bench/sampler-memory.sh [RATE=20000] [DURATION_S=20]
set -euo pipefail
RATE=${1:-20000}
DURATION=${2:-20}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/weft/target}/release
RUN=$ROOT/.weft/run
LOGS=$ROOT/.weft/logs
METRICS=http://127.0.0.1:8081/metrics
# shellcheck disable=SC1091
source "$ROOT/.weft/demo.env"

restart_sampler() { # restart_sampler [VAR=VALUE...]
    if [ -f "$RUN/sampler.pid" ]; then
        kill "$(cat "$RUN/sampler.pid")" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$(cat "$RUN/sampler.pid")" 2>/dev/null || break; sleep 1; done
    fi
    env "$@" nohup setsid "$BIN/weft-sampler" >>"$LOGS/sampler.log" 2>&1 &
    echo $! >"$RUN/sampler.pid"
    for _ in $(seq 60); do curl -sf http://127.0.0.1:8081/readyz >/dev/null && return 0; sleep 1; done
    echo "sampler not ready" >&2; return 1
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$RUN/sampler.pid")/status"; }
gauge() { curl -sf "$METRICS" | awk -v n="$1" '$1 == n {print $2}'; }

echo "date=$(date -u +%FT%TZ) cores=$(nproc) rate=$RATE duration=${DURATION}s"
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
restart_sampler WEFT_SAMPLER_DECISION_WAIT=10m WEFT_SAMPLER_QUIET_TIME=10m \
    WEFT_SAMPLER_ACK_WAIT=20m WEFT_SAMPLER_MAX_BUFFERED_SPANS=100000000 \
    WEFT_SAMPLER_MAX_BUFFERED_BYTES=100000000000
sleep 3
rss0=$(rss_kib)
"$BIN/weft-loadtest" --api-key "$WEFT_DEMO_INGEST_KEY" --rate "$RATE" --duration "${DURATION}s" \
    --traces-per-request 10 >/dev/null
# Let the sampler take in what ingest published.
last=-1
for _ in $(seq 60); do
    n=$(gauge weft_sampler_buffered_spans); [ "$n" = "$last" ] && break; last=$n; sleep 1
done
rss1=$(rss_kib)
spans=$(gauge weft_sampler_buffered_spans)
estimate=$(gauge weft_sampler_buffered_bytes)
echo "buffered_spans=$spans rss_before_kib=$rss0 rss_after_kib=$rss1"
echo "rss_bytes_per_buffered_span=$(( (rss1 - rss0) * 1024 / spans )) estimated_row_bytes_per_span=$(echo "$estimate / $spans" | bc)"
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
restart_sampler
