#!/usr/bin/env bash
# Query latency against the running query service with the demo read key:
# N trace-by-id requests for trace ids sampled at random from the last hour of
# weft.trace_index, then N searches; sequential, after WARMUP uncounted requests each.
#   loadtest/bench/query.sh [N=200] [SEARCH="service=checkout&min_duration=500ms&lookback=1h"]
set -euo pipefail
# shellcheck source=loadtest/bench/lib.sh
source "$(dirname "$0")/lib.sh"
N=${1:-200}
SEARCH=${2:-service=checkout&min_duration=500ms&lookback=1h}
WARMUP=5
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
API=${WEFT_QUERY_URL:-http://127.0.0.1:8080}
# shellcheck disable=SC1091
source "$ROOT/.weft/demo.env"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
echo "date=$(date -u +%FT%TZ) cores=$(nproc) spans_stored=$(ch 'SELECT count() FROM weft.spans') traces_indexed=$(ch 'SELECT uniq(trace_id) FROM weft.trace_index')"
echo "spans_last_hour=$(ch 'SELECT count() FROM weft.spans WHERE start_time > now() - 3600')"
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
# Traces written in one batch (one index row): earlier runs with a fixed seed repeated trace ids.
ch "SELECT lower(hex(trace_id)) FROM weft.trace_index WHERE start_time > now() - 3600 GROUP BY trace_id HAVING count() = 1 ORDER BY rand() LIMIT $((N + WARMUP))" >"$DIR/ids"
i=0; fails=0
while read -r id; do
    i=$((i + 1))
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "x-api-key: $WEFT_DEMO_READ_KEY" "$API/api/v1/traces/$id")
    [ $i -le $WARMUP ] && continue
    [ "${out% *}" = 200 ] || fails=$((fails + 1))
    echo "${out#* }" >>"$DIR/byid"
done <"$DIR/ids"
echo "trace_by_id n=$(wc -l <"$DIR/byid") failures=$fails p50_ms=$(pct "$DIR/byid" 0.5) p90_ms=$(pct "$DIR/byid" 0.9) p99_ms=$(pct "$DIR/byid" 0.99) max_ms=$(pct "$DIR/byid" 1)"
fails=0
for i in $(seq $((N + WARMUP))); do
    out=$(curl -s -o "$DIR/body" -w '%{http_code} %{time_total}' -H "x-api-key: $WEFT_DEMO_READ_KEY" "$API/api/v1/traces?$SEARCH")
    [ "$i" -le $WARMUP ] && continue
    [ "${out% *}" = 200 ] || fails=$((fails + 1))
    echo "${out#* }" >>"$DIR/search"
done
echo "search=\"$SEARCH\" n=$(wc -l <"$DIR/search") failures=$fails traces_in_last_answer=$(python3 -c "import json;print(len(json.load(open('$DIR/body'))['traces']))") p50_ms=$(pct "$DIR/search" 0.5) p90_ms=$(pct "$DIR/search" 0.9) p99_ms=$(pct "$DIR/search" 0.99) max_ms=$(pct "$DIR/search" 1)"
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
