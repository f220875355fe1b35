#!/usr/bin/env bash
# "What is different" latency against the running query service with the demo read key:
# N sequential requests of GET /api/v1/traces/difference for SELECTION over the last
# hour, after WARMUP uncounted ones, with the spans the hour holds.
#   loadtest/bench/difference.sh [N=20] [SELECTION="selection=slow&threshold=1s"]
# The same answer over planted spans, without a demo stack (prints its own figures):
#   WEFT_BENCH_SPANS=3000000 cargo test -p weft-e2e --test explorer_search -- --ignored --nocapture difference_at_scale
set -euo pipefail
# shellcheck source=loadtest/bench/lib.sh
source "$(dirname "$0")/lib.sh"
N=${1:-20}
SELECTION=${2:-selection=slow&threshold=1s}
WARMUP=2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
API=${WEFT_QUERY_URL:-http://127.0.0.1:8080}
# shellcheck disable=SC1091
source "$ROOT/.weft/demo.env"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
echo "date=$(date -u +%FT%TZ) cores=$(nproc) spans_last_hour=$(ch 'SELECT count() FROM weft.spans WHERE start_time > now() - 3600')"
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
fails=0
for i in $(seq $((N + WARMUP))); do
    out=$(curl -s -o "$DIR/body" -w '%{http_code} %{time_total}' -H "x-api-key: $WEFT_DEMO_READ_KEY" "$API/api/v1/traces/difference?lookback=1h&$SELECTION")
    [ "$i" -le $WARMUP ] && continue
    [ "${out% *}" = 200 ] || fails=$((fails + 1))
    echo "${out#* }" >>"$DIR/times"
done
echo "difference=\"$SELECTION\" n=$(wc -l <"$DIR/times") failures=$fails first=$(python3 -c "import json;v=json.load(open('$DIR/body'))['values'];print(v[0]['key']+'='+v[0]['value'] if v else '-')") p50_ms=$(pct "$DIR/times" 0.5) p90_ms=$(pct "$DIR/times" 0.9) max_ms=$(pct "$DIR/times" 1)"
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
