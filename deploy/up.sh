#!/usr/bin/env bash
# Brings up the whole Weft platform on this machine: installs what is missing, starts
# PostgreSQL, NATS (JetStream) and ClickHouse (reusing running ones), applies migrations,
# builds and starts ingest, sampler, query and alerting, creates the demo account, and prints how
# to send data. Running it again keeps the demo account and restarts the services.
# Stop everything it started with deploy/down.sh.
source "$(dirname "$0")/lib.sh"

PROFILE="${WEFT_BUILD_PROFILE:-release}"
start_infrastructure

log "building Weft ($PROFILE; the first build takes several minutes)"
cd "$WEFT_ROOT"
cargo build --locked --profile "$PROFILE" -p weft-ingest -p weft-sampler -p weft-query -p weft-alerting -p weft-admin -p weft-loadtest
BIN="$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

export WEFT_DATABASE_URL="${WEFT_DATABASE_URL:-$PG_URL_BASE/weft}"
export WEFT_NATS_URL="${WEFT_NATS_URL:-nats://127.0.0.1:$NATS_PORT}"
export WEFT_CLICKHOUSE_URL="${WEFT_CLICKHOUSE_URL:-http://127.0.0.1:$CH_HTTP_PORT}"
# One secret for dashboard sessions, kept across restarts of the local stack.
if [ ! -s "$WEFT_STATE/session.secret" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WEFT_STATE/session.secret")
fi
export WEFT_SESSION_SECRET="${WEFT_SESSION_SECRET:-$(cat "$WEFT_STATE/session.secret")}"

log "applying migrations"
"$BIN/weft-admin" migrate
log "creating the demo account"
"$BIN/weft-admin" demo --keys-file "$WEFT_STATE/demo.env" >/dev/null
# shellcheck disable=SC1091
source "$WEFT_STATE/demo.env"

stop_service() {
    local pidfile="$RUN_DIR/$1.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill "$(cat "$pidfile")"
        wait_until 30 "$1 to stop" bash -c "! kill -0 $(cat "$pidfile")"
    fi
    rm -f "$pidfile"
}

start_service() { # start_service NAME COMMAND...
    local name=$1; shift
    stop_service "$name"
    nohup setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 &
    echo $! > "$RUN_DIR/$name.pid"
}

# mimalloc hands memory that fell free back to the OS after 10 ms; the sampler's trace
# buffer frees and refills hundreds of MB a second, and refilling returned memory costs
# page faults (a quarter of its CPU under load, see docs/benchmarks.md). A second keeps it.
export MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-1000}"
log "starting the services (logs in $LOG_DIR)"
start_service ingest "$BIN/weft-ingest"
start_service sampler "$BIN/weft-sampler"
start_service query "$BIN/weft-query"
start_service alerting "$BIN/weft-alerting"
for url in http://127.0.0.1:4318/readyz http://127.0.0.1:8081/readyz http://127.0.0.1:8080/readyz http://127.0.0.1:8082/readyz; do
    wait_until 60 "$url" curl -sf "$url"
done

if [ "${WEFT_DEMO_TRAFFIC:-1}" = 1 ]; then
    start_service demo-traffic "$BIN/weft-loadtest" demo --endpoint http://127.0.0.1:4318 --api-key "$WEFT_DEMO_INGEST_KEY"
fi

cat <<TXT

Weft is running.
  OTLP/gRPC ingest   127.0.0.1:4317
  OTLP/HTTP ingest   http://127.0.0.1:4318/v1/traces
  Dashboard          http://127.0.0.1:8080/login
    demo login       $WEFT_DEMO_EMAIL / $WEFT_DEMO_PASSWORD  (or sign up at /signup)
  Query API          http://127.0.0.1:8080/api/v1
  Prometheus metrics http://127.0.0.1:4318/metrics, :8081/metrics, :8080/metrics, :8082/metrics
  Demo keys, login   $WEFT_STATE/demo.env
    ingest key       $WEFT_DEMO_INGEST_KEY
    read key         $WEFT_DEMO_READ_KEY

Point any OpenTelemetry SDK at it:
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
  export OTEL_EXPORTER_OTLP_HEADERS=x-api-key=$WEFT_DEMO_INGEST_KEY

Read traces back:
  curl -H 'x-api-key: $WEFT_DEMO_READ_KEY' 'http://127.0.0.1:8080/api/v1/traces?lookback=15m'

Stop it all with deploy/down.sh.
TXT
