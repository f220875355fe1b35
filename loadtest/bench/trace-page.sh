#!/usr/bin/env bash
# Trace page and trace API latency for given traces, against the running query service:
# logs in as the demo owner, then for each trace id makes N sequential requests of the
# dashboard's trace page (server-rendered HTML) and N of GET /api/v1/traces/{id} (read
# key), after WARMUP uncounted ones each. Latency is curl's time_total on 127.0.0.1.
#   loadtest/bench/trace-page.sh N TRACE_ID...
set -euo pipefail
# shellcheck source=loadtest/bench/lib.sh
source "$(dirname "$0")/lib.sh"
N=${1:?N}
shift
WARMUP=3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
API=${WEFT_QUERY_URL:-http://127.0.0.1:8080}
# shellcheck disable=SC1091
source "$ROOT/.weft/demo.env"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
csrf=$(curl -sf -c "$DIR/jar" -b "$DIR/jar" "$API/login" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$DIR/jar" -b "$DIR/jar" \
    --data-urlencode "csrf=$csrf" --data-urlencode "email=$WEFT_DEMO_EMAIL" --data-urlencode "password=$WEFT_DEMO_PASSWORD" "$API/login")
[ "$code" = 303 ] || { echo "login failed: $code" >&2; exit 1; }
echo "date=$(date -u +%FT%TZ) cores=$(nproc) load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
measure() { # measure NAME URL [curl args]: N timed requests after WARMUP
    local name=$1 url=$2 fails=0 out
    shift 2
    : >"$DIR/$name"
    for i in $(seq $((N + WARMUP))); do
        out=$(curl -s -o "$DIR/body" -w '%{http_code} %{time_total} %{size_download}' "$@" "$url")
        [ "$i" -le $WARMUP ] && continue
        [ "${out%% *}" = 200 ] || fails=$((fails + 1))
        echo "$out" | cut -d' ' -f2 >>"$DIR/$name"
    done
    echo "$name n=$N failures=$fails bytes=${out##* } p50_ms=$(pct "$DIR/$name" 0.5) p90_ms=$(pct "$DIR/$name" 0.9) p99_ms=$(pct "$DIR/$name" 0.99) max_ms=$(pct "$DIR/$name" 1)"
}
for id in "$@"; do
    spans=$(curl -sf -H "x-api-key: $WEFT_DEMO_READ_KEY" "$API/api/v1/traces/$id" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["spans"]))')
    echo "trace=$id spans=$spans"
    measure page "$API/traces/$id" -b "$DIR/jar"
    measure api "$API/api/v1/traces/$id" -H "x-api-key: $WEFT_DEMO_READ_KEY"
done
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
