//! The ClickHouse migrator: numbered `.sql` files from `migrations/clickhouse`, split into
//! statements; a statement preceded by `-- weft:min-version X.Y` runs only on a server at
//! least that new. Each applied statement is recorded in `schema_migrations`, so running
//! the migrator again applies only what is new (or newly supported after an upgrade).
//!
//! Every statement the migrator sends is a constant or function here that the SQL
//! catalogue (`catalog.rs`) lists as well; keep it that way when adding one.

use super::ClickHouseError;
use std::fmt;

/// The migration files: version, description, text.
pub(super) const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "traces",
        include_str!("../../../../../migrations/clickhouse/0001_traces.sql"),
    ),
    (
        2,
        "red metrics",
        include_str!("../../../../../migrations/clickhouse/0002_red_metrics.sql"),
    ),
    (
        3,
        "sampling",
        include_str!("../../../../../migrations/clickhouse/0003_sampling.sql"),
    ),
    (
        4,
        "logs",
        include_str!("../../../../../migrations/clickhouse/0004_logs.sql"),
    ),
    (
        5,
        "metric markers",
        include_str!("../../../../../migrations/clickhouse/0005_metric_markers.sql"),
    ),
    (
        6,
        "spans by trace",
        include_str!("../../../../../migrations/clickhouse/0006_spans_by_trace.sql"),
    ),
    (
        7,
        "log attribute hashes",
        include_str!("../../../../../migrations/clickhouse/0007_log_attribute_hashes.sql"),
    ),
    (
        8,
        "trace index feed",
        include_str!("../../../../../migrations/clickhouse/0008_trace_index_feed.sql"),
    ),
];

pub(super) const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version UInt32, statement UInt32, description String, applied_at DateTime) \
     ENGINE = MergeTree() ORDER BY (version, statement)";

pub(super) const SERVER_VERSION: &str = "SELECT version()";

pub(super) const APPLIED_STATEMENTS: &str = "SELECT version, statement FROM schema_migrations";

/// Records one applied statement; binds: version, statement, description.
const RECORD_APPLIED: &str = "INSERT INTO schema_migrations \
     (version, statement, description, applied_at) VALUES (?, ?, ?, now())";

/// Records one applied statement in the ledger.
pub(super) fn record_applied(
    client: &::clickhouse::Client,
    (version, statement): (u32, u32),
    description: &str,
) -> ::clickhouse::query::Query {
    client
        .query(RECORD_APPLIED)
        .bind(version)
        .bind(statement)
        .bind(description)
}

/// A ClickHouse server version, compared by major and minor number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    /// Reads the leading `major.minor` of a version as `SELECT version()` reports it.
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().split('.');
        Some(ServerVersion {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
        })
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What one run of the migrator did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub server: Option<ServerVersion>,
    pub applied: Vec<(u32, u32)>,
    /// Statements left for a newer server.
    pub deferred: Vec<(u32, u32)>,
}

/// One statement of a migration file, numbered from 1, with `{retention_days}` filled in.
pub(super) struct Statement {
    pub(super) index: u32,
    pub(super) sql: String,
    pub(super) min_version: Option<ServerVersion>,
}

pub(super) fn statements(text: &str, retention_days: u32) -> Vec<Statement> {
    let mut result = Vec::new();
    let mut current = String::new();
    let mut min_version = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(version) = trimmed.strip_prefix("-- weft:min-version") {
            min_version = ServerVersion::parse(version);
            continue;
        }
        if trimmed.starts_with("--") || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let sql = current.trim().trim_end_matches(';').to_owned();
            result.push(Statement {
                index: result.len() as u32 + 1,
                sql: sql.replace("{retention_days}", &retention_days.to_string()),
                min_version: min_version.take(),
            });
            current.clear();
        }
    }
    result
}

pub(super) async fn run(
    client: &::clickhouse::Client,
    retention_days: u32,
) -> Result<MigrationReport, ClickHouseError> {
    let version_text: String = client.query(SERVER_VERSION).fetch_one().await?;
    let server =
        ServerVersion::parse(&version_text).ok_or(ClickHouseError::Version(version_text))?;
    client.query(CREATE_LEDGER).execute().await?;
    let done: Vec<(u32, u32)> = client.query(APPLIED_STATEMENTS).fetch_all().await?;
    let mut report = MigrationReport {
        server: Some(server),
        ..Default::default()
    };
    for (version, description, text) in MIGRATIONS {
        for statement in statements(text, retention_days) {
            let key = (*version, statement.index);
            if done.contains(&key) {
                continue;
            }
            if statement.min_version.is_some_and(|min| server < min) {
                report.deferred.push(key);
                continue;
            }
            client
                .query(&statement.sql)
                .execute()
                .await
                .map_err(|source| ClickHouseError::Migration {
                    version: key.0,
                    statement: key.1,
                    source,
                })?;
            record_applied(client, key, description).execute().await?;
            tracing::info!(version = key.0, statement = key.1, %server, "applied clickhouse migration");
            report.applied.push(key);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_and_carry_their_minimum_version() {
        let parsed = statements(MIGRATIONS[0].2, 7);
        assert_eq!(parsed.len(), 5);
        assert!(
            parsed[0]
                .sql
                .starts_with("CREATE TABLE IF NOT EXISTS spans")
        );
        assert_eq!(parsed[0].min_version, None);
        assert_eq!(
            parsed[2].min_version,
            Some(ServerVersion {
                major: 20,
                minor: 3
            })
        );
        assert!(parsed[2].sql.contains("INTERVAL 7 DAY"));
        assert!(parsed.iter().all(|s| !s.sql.ends_with(';')));
        let metrics = statements(MIGRATIONS[1].2, 7);
        assert_eq!(metrics.len(), 4);
        assert!(
            metrics[0]
                .sql
                .contains("durationMap Nested(bucket UInt16, count UInt64)")
        );
        assert!(
            metrics[1]
                .sql
                .starts_with("CREATE TABLE IF NOT EXISTS service_edges")
        );
        assert!(metrics[2..].iter().all(|s| s.min_version.is_some()));
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (index, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, index + 1);
        }
    }

    #[test]
    fn versions_compare_numerically() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        let new = ServerVersion::parse("24.8.4.13").unwrap();
        assert!(old < new);
        assert!(ServerVersion::parse("x").is_none());
    }
}
