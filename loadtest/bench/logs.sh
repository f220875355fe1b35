#!/usr/bin/env bash
# Log measurements for docs/benchmarks.md against the local stack (deploy/up.sh with
# WEFT_DEMO_TRAFFIC=0 and a high WEFT_TENANT_LOGS_PER_SECOND). Only talks to 127.0.0.1;
# every loop is bounded.
#
#   loadtest/bench/logs.sh e2e [DURATION_S=60] [CONCURRENCY=32]
#       the generator's log lines (one per span of the shop's traces, OTLP/HTTP protobuf)
#       at full speed -> ingest -> NATS -> sampler -> ClickHouse; waits until every
#       accepted line is in weft.logs and reports lines/s counted in ClickHouse, CPU per
#       process and the mean lines per INSERT. Then, in the same run, B: ClickHouse alone
#       inserting the newest of those rows (RowBinary, the bytes the sampler's client
#       sends) into a copy of the table, in batches of that mean size, and the ratio.
#   loadtest/bench/logs.sh storage
#       bytes per stored line (compressed on disk, and uncompressed) of weft.logs.
#   loadtest/bench/logs.sh search [N=100]
#       log search latency over the last hour (GET /api/v1/logs with the demo read key),
#       N sequential requests per query after 5 uncounted ones, for a set of filters.
set -euo pipefail
# shellcheck source=loadtest/bench/lib.sh
source "$(dirname "$0")/lib.sh"
MODE=${1:?e2e, storage or search}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CARGO_TARGET_DIR:-$HOME/.cache/weft/target}/release
RUN=$ROOT/.weft/run
API=${WEFT_QUERY_URL:-http://127.0.0.1:8080}
OUT=${OUT:-/tmp/weft-bench-logs}
mkdir -p "$OUT"
# shellcheck disable=SC1091
source "$ROOT/.weft/demo.env"

lines() { ch "SELECT count() FROM weft.logs"; }

echo "date=$(date -u +%FT%TZ) cores=$(nproc) mode=$MODE lines_stored=$(lines)"
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"

case "$MODE" in
e2e)
    DURATION=${2:-60}
    CONCURRENCY=${3:-32}
    INGEST=$(cat "$RUN/ingest.pid")
    SAMPLER=$(cat "$RUN/sampler.pid")
    CHPID=$(pgrep -xo clickhouse-serv || pgrep -o -f /usr/sbin/clickhouse-server)
    NATSPID=$(pgrep -xo nats-server)
    snapshot() { eval "${1}_ingest=$(cpu "$INGEST") ${1}_sampler=$(cpu "$SAMPLER") ${1}_ch=$(cpu "$CHPID") ${1}_nats=$(cpu "$NATSPID")"; }
    before=$(lines); inserts_before=$(event InsertQuery)
    snapshot a; t0=$(now)
    "$BIN/weft-loadtest" --signal logs --api-key "$WEFT_DEMO_INGEST_KEY" --rate 0 \
        --duration "${DURATION}s" --concurrency "$CONCURRENCY" --traces-per-request 10 \
        --progress-interval 10s --json "$OUT/loadtest.json" >"$OUT/loadtest.txt"
    t1=$(now)
    accepted=$(python3 -c "import json;print(json.load(open('$OUT/loadtest.json'))['spans']['accepted'])")
    echo "accepted_lines=$accepted generator_accepted_lines_per_s=$(python3 -c "import json;print(round(json.load(open('$OUT/loadtest.json'))['throughput']['accepted_spans_per_second']))") send_seconds=$(echo "$t1 - $t0" | bc)"
    last=-1; still=0; caught=no
    for _ in $(seq 600); do
        n=$(lines)
        if [ "$n" -ge $((before + accepted)) ]; then caught=yes; break; fi
        if [ "$n" = "$last" ]; then still=$((still + 1)); [ $still -ge 15 ] && break; else still=0; fi
        last=$n; sleep 0.5
    done
    t2=$(now); snapshot c
    stored=$(( $(lines) - before ))
    inserts=$(( $(event InsertQuery) - inserts_before ))
    e2e=$(echo "$stored / ($t2 - $t0)" | bc)
    echo "caught_up=$caught stored_lines=$stored e2e_seconds=$(echo "$t2 - $t0" | bc) e2e_lines_per_s=$e2e"
    echo "cpu_seconds ingest=$(echo "$c_ingest - $a_ingest" | bc) sampler=$(echo "$c_sampler - $a_sampler" | bc) clickhouse=$(echo "$c_ch - $a_ch" | bc) nats=$(echo "$c_nats - $a_nats" | bc) wall=$(echo "$t2 - $t0" | bc)"
    echo "weft_cpu_us_per_line=$(echo "($c_ingest - $a_ingest + $c_sampler - $a_sampler) * 1000000 / $stored" | bc)"
    batch=$(( inserts > 0 ? stored / inserts : 10000 ))
    echo "insert_queries=$inserts mean_lines_per_insert=$batch"
    echo "load_after_e2e=$(cut -d' ' -f1-3 /proc/loadavg)"

    # B: the same rows, in the same batch size, straight into a copy of the table: the
    # newest lines of weft.logs, at least 20 batches where the table holds that many and
    # at most 2 M rows. The rate counts the rows the copy stored.
    rows=$(( stored < 2000000 ? stored : 2000000 ))
    count=$(( rows / batch )); [ "$count" -ge 20 ] || count=20
    rows=$(( count * batch ))
    ch "CREATE DATABASE IF NOT EXISTS weft_bench"
    ch "DROP TABLE IF EXISTS weft_bench.logs"
    ch "CREATE TABLE weft_bench.logs AS weft.logs"
    # One file per batch, so each INSERT carries what one INSERT of the sampler carries.
    # The newest rows, found by their second (a sort of the whole rows would not fit in
    # a query's memory), in the order the table holds them.
    since=$(ch "SELECT toUInt32(min(time)) FROM (SELECT time FROM weft.logs ORDER BY time DESC LIMIT $rows)")
    ch "SELECT * FROM weft.logs WHERE time >= toDateTime($since) LIMIT $rows FORMAT RowBinary" >"$OUT/rows"
    count=$(python3 "$ROOT/loadtest/bench/split-rowbinary.py" "$OUT/rows" "$batch" "$OUT/batch")
    rm -f "$OUT/rows"
    bytes_per_batch=$(( $(cat "$OUT"/batch.* | wc -c) / count ))
    c0=$(cpu "$CHPID"); b0=$(now)
    for i in $(seq 0 $((count - 1))); do
        curl -sf "$CH/?query=INSERT%20INTO%20weft_bench.logs%20FORMAT%20RowBinary" --data-binary "@$OUT/batch.$i"
    done
    b1=$(now); c1=$(cpu "$CHPID")
    rm -f "$OUT"/batch.*
    rows=$(ch 'SELECT count() FROM weft_bench.logs')
    b=$(echo "$rows / ($b1 - $b0)" | bc)
    echo "B_rows=$rows B_batches=$count B_batch_lines=$batch B_bytes_per_batch=$bytes_per_batch"
    echo "B_lines_per_s=$b B_seconds=$(echo "$b1 - $b0" | bc) B_clickhouse_cpu_seconds=$(echo "$c1 - $c0" | bc)"
    echo "ratio_e2e_over_B=$(echo "scale=3; $e2e / $b" | bc)"
    ch "DROP DATABASE weft_bench"
    ;;
storage)
    ch "SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes), round(sum(data_compressed_bytes) / sum(rows), 1), round(sum(data_uncompressed_bytes) / sum(rows), 1) FROM system.parts WHERE database = 'weft' AND table = 'logs' AND active FORMAT TSV" |
        awk '{printf "rows=%s compressed_bytes=%s uncompressed_bytes=%s bytes_per_line=%s uncompressed_bytes_per_line=%s\n", $1, $2, $3, $4, $5}'
    ch "SELECT column, round(sum(column_data_compressed_bytes) / sum(rows), 1) AS per_line FROM system.parts_columns WHERE database = 'weft' AND table = 'logs' AND active GROUP BY column ORDER BY per_line DESC FORMAT TSV" |
        awk '{printf "%s=%s ", $1, $2} END {print ""}' | sed 's/^/bytes_per_line_by_column: /'
    ;;
search)
    N=${2:-100}
    WARMUP=5
    echo "lines_last_hour=$(ch 'SELECT count() FROM weft.logs WHERE time > now() - 3600')"
    trace=$(ch "SELECT lower(hex(trace_id)) FROM weft.logs WHERE time > now() - 3600 AND trace_id != toFixedString('', 16) ORDER BY rand() LIMIT 1")
    for query in \
        "lookback=1h" \
        "lookback=1h&service=checkout&severity=error" \
        "lookback=1h&q=deadlock" \
        "lookback=1h&attr=http.route%3D%2Fcart" \
        "lookback=1h&severity=warn&q=slow" \
        "trace_id=$trace"; do
        rm -f "$OUT/latency"; fails=0
        for i in $(seq $((N + WARMUP))); do
            out=$(curl -s -o "$OUT/body" -w '%{http_code} %{time_total}' -H "x-api-key: $WEFT_DEMO_READ_KEY" "$API/api/v1/logs?$query")
            [ "$i" -le $WARMUP ] && continue
            [ "${out% *}" = 200 ] || fails=$((fails + 1))
            echo "${out#* }" >>"$OUT/latency"
        done
        echo "search=\"$query\" n=$N failures=$fails lines_in_answer=$(python3 -c "import json;print(len(json.load(open('$OUT/body')).get('logs', [])))" 2>/dev/null || echo '?') p50_ms=$(pct "$OUT/latency" 0.5) p90_ms=$(pct "$OUT/latency" 0.9) p99_ms=$(pct "$OUT/latency" 0.99) max_ms=$(pct "$OUT/latency" 1)"
    done
    ;;
*) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
