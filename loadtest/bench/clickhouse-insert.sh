#!/usr/bin/env bash
# B: ClickHouse alone inserting the sampler's rows, in the sampler's batches.
# Takes the newest BATCH span rows the sampler stored in weft.spans (generated shop
# traffic) as RowBinary: the format and bytes the sampler's `clickhouse` client sends
# over HTTP. Inserts them COUNT times into copies of the tables in a scratch database
# (one spans INSERT, like one writer flush, whose views copy the rows into
# spans_by_trace and sum them into trace_index, as in weft) and reports spans/s.
# Client cost is only curl; the Rust-side serialisation is excluded.
#   loadtest/bench/clickhouse-insert.sh [BATCH=100000] [COUNT=10]
set -euo pipefail
# shellcheck source=loadtest/bench/lib.sh
source "$(dirname "$0")/lib.sh"
BATCH=${1:-100000}
COUNT=${2:-10}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
CHPID=$(pgrep -xo clickhouse-serv || pgrep -o -f /usr/sbin/clickhouse-server)

ch "CREATE DATABASE IF NOT EXISTS weft_bench"
ch "DROP TABLE IF EXISTS weft_bench.spans_by_trace_feed"
ch "DROP TABLE IF EXISTS weft_bench.trace_index_feed"
for t in spans spans_by_trace trace_index; do
    ch "DROP TABLE IF EXISTS weft_bench.$t"
    ch "CREATE TABLE weft_bench.$t AS weft.$t"
done
# The trace-sorted copy is filled by a view on spans (migration 0006), as in weft.
ch "CREATE MATERIALIZED VIEW weft_bench.spans_by_trace_feed TO weft_bench.spans_by_trace AS SELECT * FROM weft_bench.spans"
# The trace index is summed by a view on spans (migration 0008), as in weft.
ch "$(sed -n '/^CREATE MATERIALIZED VIEW/,/;$/p' "$(dirname "$0")/../../migrations/clickhouse/0008_trace_index_feed.sql" |
    sed 's/ trace_index_feed TO trace_index / weft_bench.trace_index_feed TO weft_bench.trace_index /; s/^FROM spans$/FROM weft_bench.spans/; s/;$//')"
# `SELECT *` leaves out the MATERIALIZED columns, which the INSERT does not send either.
ch "SELECT * FROM weft.spans ORDER BY start_time_unix_nano DESC LIMIT $BATCH FORMAT RowBinary" >"$DIR/spans"
echo "date=$(date -u +%FT%TZ) cores=$(nproc) batch_spans=$BATCH batches=$COUNT spans_bytes=$(stat -c %s "$DIR/spans")"
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
c0=$(cpu "$CHPID"); t0=$(date +%s.%N)
for i in $(seq "$COUNT"); do
    a=$(date +%s.%N)
    curl -sf "$CH/?query=INSERT%20INTO%20weft_bench.spans%20FORMAT%20RowBinary" --data-binary "@$DIR/spans"
    b=$(date +%s.%N)
    echo "batch $i: spans and index $(echo "($b - $a) * 1000 / 1" | bc) ms"
done
t1=$(date +%s.%N); c1=$(cpu "$CHPID")
total=$((BATCH * COUNT))
echo "stored=$(ch 'SELECT count() FROM weft_bench.spans') indexed=$(ch 'SELECT sum(span_count) FROM weft_bench.trace_index') expected=$total"
echo "B_spans_per_s=$(echo "$total / ($t1 - $t0)" | bc) seconds=$(echo "$t1 - $t0" | bc)"
echo "clickhouse_cpu_seconds=$(echo "$c1 - $c0" | bc) clickhouse_spans_per_cpu_s=$(echo "$total / ($c1 - $c0)" | bc)"
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
ch "DROP DATABASE weft_bench"
