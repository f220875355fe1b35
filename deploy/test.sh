#!/usr/bin/env bash
# Runs Weft's whole test suite against real PostgreSQL, NATS (JetStream) and ClickHouse:
# installs and starts what is missing (reusing servers that already answer), checks
# formatting and lints, then runs every unit, integration and end-to-end test.
source "$(dirname "$0")/lib.sh"
cd "$WEFT_ROOT"

start_infrastructure
install_browser_tooling
install_chdb
install_python_loggers
install_node_loggers
install_python_snippet
install_node_snippet
install_aiosmtpd

export WEFT_TEST_DATABASE_URL="${WEFT_TEST_DATABASE_URL:-$PG_URL_BASE/postgres}"
export WEFT_TEST_NATS_URL="${WEFT_TEST_NATS_URL:-nats://127.0.0.1:$NATS_PORT}"
export WEFT_TEST_CLICKHOUSE_URL="${WEFT_TEST_CLICKHOUSE_URL:-http://127.0.0.1:$CH_HTTP_PORT}"
export WEFT_CHDB_PYTHON="${WEFT_CHDB_PYTHON:-$CHDB_VENV/bin/python}"
export WEFT_LOGGERS_PYTHON="${WEFT_LOGGERS_PYTHON:-$LOGGERS_VENV/bin/python}"
export WEFT_SMTP_PYTHON="${WEFT_SMTP_PYTHON:-$SMTP_VENV/bin/python}"
export WEFT_SNIPPET_PYTHON_VENV="$SNIPPET_PYTHON_VENV"
export WEFT_SNIPPET_NODE_DIR="$SNIPPET_NODE_DIR"
export WEFT_SNIPPET_CARGO_TARGET_DIR="$SNIPPET_CARGO_TARGET_DIR"

# Namespaces of earlier runs that were interrupted before their teardown.
for db in $(psql "$WEFT_TEST_DATABASE_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'weft\_test\_%'"); do
    psql "$WEFT_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done
for db in $(curl -sf "$WEFT_TEST_CLICKHOUSE_URL/?query=SELECT%20name%20FROM%20system.databases%20WHERE%20name%20LIKE%20%27weft_test_%25%27"); do
    curl -sf "$WEFT_TEST_CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null
done

log "checking formatting and lints"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

# Two cores: two tests at a time keeps the services under test responsive.
log "running the tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --test-threads 2 --no-fail-fast
else
    cargo test --locked --workspace --no-fail-fast -- --test-threads 2
fi
