#!/usr/bin/env bash
# Stops what deploy/up.sh (or deploy/test.sh) started: the services, and any of
# PostgreSQL, NATS and ClickHouse that were not already running before. Data is kept.
source "$(dirname "$0")/lib.sh"

stop_pidfile() {
    local pidfile="$RUN_DIR/$1.pid"
    [ -f "$pidfile" ] || return 0
    local pid; pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping $1"
        kill "$pid" 2>/dev/null || true
        wait_until 60 "$1 to stop" bash -c "! kill -0 $pid"
    fi
    rm -f "$pidfile"
}

for service in demo-traffic ingest query alerting sampler; do
    stop_pidfile "$service"
done

if [ -f "$RUN_DIR/started" ]; then
    while read -r what version; do
        case "$what" in
            nats|clickhouse) stop_pidfile "$what" ;;
            postgres) log "stopping PostgreSQL $version"; as_root pg_ctlcluster --skip-systemctl-redirect "$version" main stop ;;
        esac
    done < "$RUN_DIR/started"
    rm -f "$RUN_DIR/started"
fi
log "stopped"
