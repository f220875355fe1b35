#!/usr/bin/env bash
# Pipeline measurements for docs/benchmarks.md against the local stack (deploy/up.sh with
# WEFT_DEMO_TRAFFIC=0). Only talks to 127.0.0.1; every loop is bounded.
#
#   loadtest/bench/pipeline.sh e2e    [DURATION_S] [CONCURRENCY]
#       generator at full speed -> ingest -> NATS -> sampler -> ClickHouse; waits until the
#       sampler has stored every accepted span (at most 600 s) and reports the sustained
#       rate counted in ClickHouse, plus CPU seconds per process.
#   loadtest/bench/pipeline.sh decided [DURATION_S] [CONCURRENCY]
#       as e2e, for a sampler with a sampling policy (the product default keeps errors,
#       slow traces and 10 % of the rest): waits until the sampler has decided every
#       accepted span and acknowledged everything (its /metrics), and reports spans
#       received per second decided and stored, and the share kept.
#   loadtest/bench/pipeline.sh ingest [DURATION_S] [CONCURRENCY]
#       stops the sampler (by its pid file), runs the generator, reports ingest's spans per
#       CPU-second; then restarts the sampler and times it draining the backlog.
#
# Output: key=value lines on stdout; the generator's JSON report in $OUT/loadtest.json.
# A writer flush is three INSERTs (spans, span_metrics, service_edges; the trace index
# comes from a view on spans), which mean_spans_per_flush assumes.
set -euo pipefail
# shellcheck source=loadtest/bench/lib.sh
source "$(dirname "$0")/lib.sh"
MODE=${1:?e2e, decided or ingest}
DURATION=${2:-60}
CONCURRENCY=${3:-32}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/weft/target}/release
RUN=$ROOT/.weft/run
OUT=${OUT:-/tmp/weft-bench-$MODE}
mkdir -p "$OUT"
# shellcheck disable=SC1091
source "$ROOT/.weft/demo.env"

spans() { ch "SELECT count() FROM weft.spans"; }
pid_of() { cat "$RUN/$1.pid"; }
INGEST=$(pid_of ingest)
CHPID=$(pgrep -xo clickhouse-serv || pgrep -o -f /usr/sbin/clickhouse-server)
NATSPID=$(pgrep -xo nats-server)

snapshot() { # snapshot NAME: CPU of every process now
    local name=$1 sampler=0 alerting=0
    [ -f "$RUN/sampler.pid" ] && sampler=$(cpu "$(pid_of sampler)")
    [ -f "$RUN/alerting.pid" ] && alerting=$(cpu "$(pid_of alerting)")
    eval "${name}_ingest=$(cpu "$INGEST") ${name}_sampler=$sampler ${name}_ch=$(cpu "$CHPID") ${name}_nats=$(cpu "$NATSPID") ${name}_alerting=$alerting"
}

SAMPLER_METRICS=${WEFT_SAMPLER_METRICS_URL:-http://127.0.0.1:8081/metrics}
decided_spans() { # spans the sampler has decided (kept or dropped), and buffered ones
    curl -sf "$SAMPLER_METRICS" | awk '/^weft_sampler_spans_sampled_total/ {s += $2} /^weft_sampler_buffered_spans / {b = $2} END {printf "%d %d\n", s, b}'
}

wait_decided() { # wait_decided TARGET: until the sampler decided TARGET more spans and buffers none
    local target=$1 n b
    for _ in $(seq 600); do
        read -r n b < <(decided_spans)
        [ "$n" -ge "$target" ] && [ "$b" -eq 0 ] && return 0
        sleep 1
    done
    return 1
}

wait_stored() { # wait_stored TARGET_COUNT: until spans >= target or no progress for 15 s (max 600 s)
    local target=$1 last=-1 still=0 n
    for _ in $(seq 600); do
        n=$(spans)
        [ "$n" -ge "$target" ] && return 0
        if [ "$n" = "$last" ]; then still=$((still + 1)); [ $still -ge 15 ] && return 1; else still=0; fi
        last=$n
        sleep 1
    done
    return 1
}

echo "date=$(date -u +%FT%TZ) cores=$(nproc) mode=$MODE duration=${DURATION}s concurrency=$CONCURRENCY"
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$MODE" = ingest ] && [ -f "$RUN/sampler.pid" ]; then
    kill "$(pid_of sampler)"
    for _ in $(seq 30); do kill -0 "$(pid_of sampler)" 2>/dev/null || break; sleep 1; done
    rm -f "$RUN/sampler.pid"
fi

before=$(spans); inserts_before=$(event InsertQuery)
read -r decided_before _ < <(decided_spans || echo "0 0")
snapshot a; t0=$(now)
"$BIN/weft-loadtest" --api-key "$WEFT_DEMO_INGEST_KEY" --rate 0 --duration "${DURATION}s" \
    --concurrency "$CONCURRENCY" --traces-per-request 10 --progress-interval 10s \
    --json "$OUT/loadtest.json" >"$OUT/loadtest.txt"
t1=$(now); snapshot b
accepted=$(python3 -c "import json;print(json.load(open('$OUT/loadtest.json'))['spans']['accepted'])")
sent_rate=$(python3 -c "import json;print(round(json.load(open('$OUT/loadtest.json'))['throughput']['accepted_spans_per_second']))")
echo "accepted_spans=$accepted generator_accepted_spans_per_s=$sent_rate send_seconds=$(echo "$t1 - $t0" | bc)"
ingest_cpu=$(echo "$b_ingest - $a_ingest" | bc)
echo "cpu_seconds_during_send ingest=$ingest_cpu sampler=$(echo "$b_sampler - $a_sampler" | bc) clickhouse=$(echo "$b_ch - $a_ch" | bc) nats=$(echo "$b_nats - $a_nats" | bc) wall=$(echo "$t1 - $t0" | bc)"
echo "ingest_spans_per_cpu_second=$(echo "$accepted / $ingest_cpu" | bc)"

if [ "$MODE" = ingest ]; then
    # Restart the sampler as deploy/up.sh does and time it draining the backlog.
    nohup setsid "$BIN/weft-sampler" >>"$ROOT/.weft/logs/sampler.log" 2>&1 &
    echo $! >"$RUN/sampler.pid"
    snapshot a; t1=$(now); before_drain=$(spans)
fi

if [ "$MODE" = decided ]; then
    if wait_decided $((decided_before + accepted)); then caught=yes; else caught=no; fi
    sleep 2 # the last kept traces' INSERTs (flush interval 1 s)
elif wait_stored $((before + accepted)); then caught=yes; else caught=no; fi
t2=$(now); snapshot c
stored=$(( $(spans) - before ))
inserts=$(( $(event InsertQuery) - inserts_before ))
echo "caught_up=$caught stored_spans=$stored"
if [ "$MODE" = decided ]; then
    echo "decided_seconds=$(echo "$t2 - $t0" | bc) received_spans_decided_per_s=$(echo "$accepted / ($t2 - $t0)" | bc) kept_share=$(echo "scale=4; $stored / $accepted" | bc)"
    echo "cpu_seconds_total ingest=$(echo "$c_ingest - $a_ingest" | bc) sampler=$(echo "$c_sampler - $a_sampler" | bc) clickhouse=$(echo "$c_ch - $a_ch" | bc) nats=$(echo "$c_nats - $a_nats" | bc) wall=$(echo "$t2 - $t0" | bc)"
    echo "weft_cpu_us_per_span=$(echo "($c_ingest - $a_ingest + $c_sampler - $a_sampler) * 1000000 / $accepted" | bc)"
elif [ "$MODE" = e2e ]; then
    echo "e2e_seconds=$(echo "$t2 - $t0" | bc) e2e_spans_per_s=$(echo "$stored / ($t2 - $t0)" | bc)"
    echo "cpu_seconds_total ingest=$(echo "$c_ingest - $a_ingest" | bc) sampler=$(echo "$c_sampler - $a_sampler" | bc) clickhouse=$(echo "$c_ch - $a_ch" | bc) nats=$(echo "$c_nats - $a_nats" | bc) alerting=$(echo "$c_alerting - $a_alerting" | bc) wall=$(echo "$t2 - $t0" | bc)"
    echo "weft_cpu_us_per_span=$(echo "($c_ingest - $a_ingest + $c_sampler - $a_sampler) * 1000000 / $stored" | bc) nats_cpu_us_per_span=$(echo "($c_nats - $a_nats) * 1000000 / $stored" | bc)"
    [ "$inserts" -gt 0 ] && echo "insert_queries=$inserts mean_spans_per_flush=$(echo "$stored / ($inserts / 3)" | bc)"
else
    drained=$(( $(spans) - before_drain ))
    echo "sampler_drain_seconds=$(echo "$t2 - $t1" | bc) sampler_drain_spans_per_s=$(echo "$drained / ($t2 - $t1)" | bc)"
    echo "cpu_seconds_drain sampler=$(echo "$c_sampler - $a_sampler" | bc) clickhouse=$(echo "$c_ch - $a_ch" | bc) nats=$(echo "$c_nats - $a_nats" | bc) wall=$(echo "$t2 - $t1" | bc)"
    [ "$inserts" -gt 0 ] && echo "insert_queries=$inserts mean_spans_per_flush=$(echo "$drained / ($inserts / 3)" | bc)"
fi
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
