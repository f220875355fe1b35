# Shared by deploy/up.sh, deploy/down.sh and deploy/test.sh: install what is missing and
# start ClickHouse, NATS (JetStream) and PostgreSQL, reusing any that already answer.
# Everything this stack starts is recorded under .weft/run so down.sh stops only that.

set -euo pipefail

WEFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEFT_STATE="${WEFT_STATE:-$WEFT_ROOT/.weft}"
RUN_DIR="$WEFT_STATE/run"
LOG_DIR="$WEFT_STATE/logs"
# The build cache lives outside the clone so fresh clones reuse it; any path works.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weft/target}"
export PATH="$HOME/.cargo/bin:$PATH"

PG_PORT="${WEFT_PG_PORT:-5432}"
NATS_PORT="${WEFT_NATS_PORT:-4222}"
CH_HTTP_PORT="${WEFT_CH_HTTP_PORT:-8123}"
PG_URL_BASE="postgres://postgres:postgres@127.0.0.1:$PG_PORT"

mkdir -p "$RUN_DIR" "$LOG_DIR"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "run as root (needed: $*)"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq 1 $((seconds * 4))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "timed out after ${seconds}s waiting for $what"
}

record_started() { grep -qx "$1" "$RUN_DIR/started" 2>/dev/null || echo "$1" >> "$RUN_DIR/started"; }

# Debian packages this stack needs, by the command that shows each is present.
install_missing() {
    local missing=()
    [ -x /usr/sbin/clickhouse-server ] || missing+=(clickhouse-server clickhouse-client)
    command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v psql >/dev/null || missing+=(postgresql-client)
    command -v cc >/dev/null || missing+=(build-essential)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v curl >/dev/null || missing+=(curl ca-certificates)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v cargo >/dev/null; then
        log "installing Debian's Rust toolchain (Weft needs Rust 1.94 or newer; rustup gives one)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo rustc >/dev/null
    fi
}

# The browser end-to-end test drives Debian's chromium through playwright-core, which never
# downloads a browser of its own; npm ci runs again whenever package-lock.json changes.
install_browser_tooling() {
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    local e2e="$WEFT_ROOT/frontend/e2e"
    if [ ! -d "$e2e/node_modules/playwright-core" ] || [ "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]; then
        log "installing the browser test's npm packages"
        (cd "$e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    fi
}

# The ClickHouse compatibility test runs Weft's SQL on current ClickHouse too, in-process
# through chdb-core, from a venv outside the clone; pip runs again only on a version change.
# Pinned so that the engine the check holds Weft's SQL to changes only deliberately.
CHDB_CORE_VERSION=26.9.0
CHDB_VENV="${WEFT_CHDB_VENV:-$HOME/.cache/weft/chdb-venv}"

install_chdb() {
    local installed="import importlib.metadata as m, sys; sys.exit(m.version('chdb-core') != '$CHDB_CORE_VERSION')"
    if "$CHDB_VENV/bin/python" -c "$installed" 2>/dev/null; then return; fi
    # Debian's python3 has no ensurepip, so no venv, without python3-venv.
    if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
        log "installing python3-venv"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    log "installing chdb-core $CHDB_CORE_VERSION into $CHDB_VENV"
    [ -x "$CHDB_VENV/bin/python" ] || python3 -m venv "$CHDB_VENV"
    "$CHDB_VENV/bin/pip" install -q "chdb-core==$CHDB_CORE_VERSION"
}

# The real loggers the logs end-to-end tests drive: OpenTelemetry Python's SDK with both
# OTLP exporters, structlog and python-json-logger.
LOGGERS_VENV="${WEFT_LOGGERS_VENV:-$HOME/.cache/weft/otel-venv}"
LOGGERS_PACKAGES="opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-grpc==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 structlog==26.1.0 python-json-logger==4.2.0"

install_python_loggers() {
    local installed="import importlib.metadata as m, sys; sys.exit(m.version('opentelemetry-sdk') != '1.45.2' or m.version('structlog') != '26.1.0' or m.version('python-json-logger') != '4.2.0')"
    if "$LOGGERS_VENV/bin/python" -c "$installed" 2>/dev/null; then return; fi
    log "installing the Python loggers into $LOGGERS_VENV"
    [ -x "$LOGGERS_VENV/bin/python" ] || python3 -m venv "$LOGGERS_VENV"
    # shellcheck disable=SC2086
    "$LOGGERS_VENV/bin/pip" install -q $LOGGERS_PACKAGES
}

# pino, winston and bunyan for the JSON-lines tests, from their own package's lock file.
install_node_loggers() {
    local loggers="$WEFT_ROOT/services/e2e/loggers"
    if [ ! -d "$loggers/node_modules/pino" ] || [ "$loggers/package-lock.json" -nt "$loggers/node_modules/.package-lock.json" ]; then
        log "installing the Node.js loggers"
        (cd "$loggers" && npm ci --no-audit --no-fund)
    fi
}

# The SDKs the set-up page tells users to install, for the tests that run its snippets as
# the page renders them (services/e2e/tests/setup_snippets.rs). Python: the distro and
# the OTLP exporter, then what `opentelemetry-bootstrap -a install` adds (the urllib
# instrumentation the test's app is traced by among them), in a venv of their own.
SNIPPET_PYTHON_VENV="${WEFT_SNIPPET_PYTHON_VENV:-$HOME/.cache/weft/snippet-python-venv}"
# The versions the page pins: distro 0.66b2 came out before the instrumentations of its
# release, so `opentelemetry-bootstrap -a install` after it fails to find them.
SNIPPET_DISTRO_VERSION=0.66b1
SNIPPET_OTLP_VERSION=1.45.1

install_python_snippet() {
    local installed="import importlib.metadata as m, sys; sys.exit(m.version('opentelemetry-distro') != '$SNIPPET_DISTRO_VERSION' or m.version('opentelemetry-exporter-otlp') != '$SNIPPET_OTLP_VERSION' or m.version('opentelemetry-instrumentation-urllib') != '$SNIPPET_DISTRO_VERSION')"
    if "$SNIPPET_PYTHON_VENV/bin/python" -c "$installed" 2>/dev/null; then return; fi
    log "installing the set-up page's Python SDK into $SNIPPET_PYTHON_VENV"
    [ -x "$SNIPPET_PYTHON_VENV/bin/python" ] || python3 -m venv "$SNIPPET_PYTHON_VENV"
    "$SNIPPET_PYTHON_VENV/bin/pip" install -q "opentelemetry-distro==$SNIPPET_DISTRO_VERSION" "opentelemetry-exporter-otlp==$SNIPPET_OTLP_VERSION"
    "$SNIPPET_PYTHON_VENV/bin/opentelemetry-bootstrap" -a install
}

# Node.js: @opentelemetry/sdk-node and the auto-instrumentations, from the lock file of
# services/e2e/snippets, installed under ~/.cache/weft (npm ci runs again only when the
# lock file changes).
SNIPPET_NODE_DIR="${WEFT_SNIPPET_NODE_DIR:-$HOME/.cache/weft/snippet-node}"

install_node_snippet() {
    local package="$WEFT_ROOT/services/e2e/snippets"
    if [ -d "$SNIPPET_NODE_DIR/node_modules/@opentelemetry/sdk-node" ] && cmp -s "$package/package-lock.json" "$SNIPPET_NODE_DIR/package-lock.json"; then return; fi
    log "installing the set-up page's Node.js SDK into $SNIPPET_NODE_DIR"
    mkdir -p "$SNIPPET_NODE_DIR"
    cp "$package/package.json" "$package/package-lock.json" "$SNIPPET_NODE_DIR/"
    (cd "$SNIPPET_NODE_DIR" && npm ci --no-audit --no-fund)
}

# Rust needs no install: the snippet's crates are the workspace's own, built into this
# target directory once and offline after the first fetch.
SNIPPET_CARGO_TARGET_DIR="${WEFT_SNIPPET_CARGO_TARGET_DIR:-$HOME/.cache/weft/snippet-rust-target}"

# A real SMTP server for the email tests of alerting (aiosmtpd, run by the tests).
AIOSMTPD_VERSION=1.4.6
SMTP_VENV="${WEFT_SMTP_VENV:-$HOME/.cache/weft/smtp-venv}"

install_aiosmtpd() {
    local installed="import importlib.metadata as m, sys; sys.exit(m.version('aiosmtpd') != '$AIOSMTPD_VERSION')"
    if "$SMTP_VENV/bin/python" -c "$installed" 2>/dev/null; then return; fi
    log "installing aiosmtpd $AIOSMTPD_VERSION into $SMTP_VENV"
    [ -x "$SMTP_VENV/bin/python" ] || python3 -m venv "$SMTP_VENV"
    "$SMTP_VENV/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION"
}

start_postgres() {
    if ! port_open "$PG_PORT"; then
        local version
        version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
        [ -n "$version" ] || die "no PostgreSQL cluster found under /etc/postgresql"
        log "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
        record_started "postgres $version"
        wait_until 60 "PostgreSQL on port $PG_PORT" port_open "$PG_PORT"
    fi
    # Weft connects over TCP with a password; a stock cluster has none set for postgres.
    if ! psql "$PG_URL_BASE/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1; then
        log "setting the local postgres user's password"
        as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
        psql "$PG_URL_BASE/postgres" -Atqc 'SELECT 1' >/dev/null || die "cannot log in to PostgreSQL at $PG_URL_BASE"
    fi
}

start_nats() {
    if port_open "$NATS_PORT"; then return; fi
    log "starting NATS with JetStream"
    local store="${WEFT_NATS_STORE:-/var/lib/weft/nats}"
    as_root mkdir -p "$store"
    as_root start-stop-daemon --start --background --make-pidfile --pidfile "$RUN_DIR/nats.pid" \
        --exec "$(command -v nats-server || echo /usr/sbin/nats-server)" -- \
        -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$store" -l "$LOG_DIR/nats.log"
    record_started nats
    wait_until 30 "NATS on port $NATS_PORT" port_open "$NATS_PORT"
}

clickhouse_answers() { curl -sf "http://127.0.0.1:$CH_HTTP_PORT/?query=SELECT%201" >/dev/null; }

start_clickhouse() {
    if clickhouse_answers; then return; fi
    log "starting ClickHouse"
    as_root mkdir -p /var/lib/clickhouse /var/log/clickhouse-server
    as_root chown -R clickhouse:clickhouse /var/lib/clickhouse /var/log/clickhouse-server
    (cd / && as_root start-stop-daemon --start --background --make-pidfile --pidfile "$RUN_DIR/clickhouse.pid" \
        --chuid clickhouse --exec /usr/sbin/clickhouse-server -- \
        --config-file=/etc/clickhouse-server/config.xml)
    record_started clickhouse
    wait_until 120 "ClickHouse on port $CH_HTTP_PORT" clickhouse_answers
}

start_infrastructure() {
    install_missing
    start_postgres
    start_nats
    start_clickhouse
}
