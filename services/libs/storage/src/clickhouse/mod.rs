//! ClickHouse over HTTP with the `clickhouse` crate. Row validation is off because
//! ClickHouse 18.16 lacks `RowBinaryWithNamesAndTypes`; row structs therefore list their
//! fields in table order, and every `SELECT` names its columns in struct order.
//!
//! Every statement sent from here is listed by [`SqlCatalogue`] as well, which the
//! ClickHouse compatibility test runs on both supported engines.

mod catalog;
mod erase;
pub mod histogram;
mod limits;
mod migrate;
mod packed;
mod packed_logs;
mod queries;
mod rows;
mod tenant;

pub use catalog::{CataloguedStatement, SqlCatalogue, StatementOrigin};
pub use erase::TENANT_TABLES;
pub use histogram::DurationHistogram;
pub use limits::ReadLimits;
pub use migrate::{MigrationReport, ServerVersion};
pub use packed::{EncodedSpan, PackedResource, PackedSpan, rowbinary};
pub use packed_logs::PackedLogs;
use queries::QUERY_RUNNING;
pub use queries::{DIFFERENCE_SAMPLE_TRACES, DIFFERENCE_VALUES_PER_KEY};
pub use rows::{
    LogRow, MetricRow, ServiceEdgeRow, SpanColumns, SpanMetricRow, SpanRow, TraceIndexRow,
};
pub use tenant::{
    AttributeFilter, AttributeTest, AttributeValues, EdgeStats, LogCount, LogCursor, LogSearch,
    MetricsWindow, NamedRedPoint, Operation, RedPoint, RedSeries, RedStats, SelectionCounts,
    StoredCounts, StoredLogLine, StoredSpan, StoredTraffic, TenantTraces, TraceCursor, TraceSearch,
    TraceSelection, TraceSort, TraceSummary,
};

use rows::Table;
use weft_model::TenantId;
use weft_runtime::config::{ConfigError, Env};

const PING: &str = "SELECT 1";

fn create_database(database: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS `{database}`")
}

fn drop_database(database: &str) -> String {
    format!("DROP DATABASE IF EXISTS `{database}`")
}

/// Why a ClickHouse call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("clickhouse request failed: {0}")]
    Client(#[from] ::clickhouse::error::Error),
    #[error("clickhouse migration {version} statement {statement} failed: {source}")]
    Migration {
        version: u32,
        statement: u32,
        source: ::clickhouse::error::Error,
    },
    #[error("clickhouse reported an unparsable version {0:?}")]
    Version(String),
    /// The tenant already runs its share of scans on this replica.
    #[error("this organisation already runs {0} searches at once")]
    TenantBusy(usize),
    /// An INSERT whose answer was lost still runs (query id).
    #[error("the INSERT {0} whose answer was lost still runs")]
    InsertStillRunning(String),
}

/// Where ClickHouse is and which database Weft uses.
#[derive(Clone, Debug)]
pub struct ClickHouseConfig {
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// Days of data kept, applied as a TTL on servers that support one.
    pub retention_days: u32,
    /// What one tenant read may cost.
    pub read_limits: ReadLimits,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".to_owned(),
            database: "weft".to_owned(),
            user: "default".to_owned(),
            password: String::new(),
            retention_days: 30,
            read_limits: ReadLimits::default(),
        }
    }
}

impl ClickHouseConfig {
    /// Reads `WEFT_CLICKHOUSE_URL`, `_DATABASE`, `_USER`, `_PASSWORD`,
    /// `WEFT_RETENTION_DAYS` and the read limits (see [`ReadLimits::from_env`]).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default = ClickHouseConfig::default();
        Ok(ClickHouseConfig {
            url: env.string("WEFT_CLICKHOUSE_URL", &default.url),
            database: env.string("WEFT_CLICKHOUSE_DATABASE", &default.database),
            user: env.string("WEFT_CLICKHOUSE_USER", &default.user),
            password: env.string("WEFT_CLICKHOUSE_PASSWORD", &default.password),
            retention_days: env.get("WEFT_RETENTION_DAYS", default.retention_days)?,
            read_limits: ReadLimits::from_env(env)?,
        })
    }
}

/// The ClickHouse store: writes rows and hands out tenant-scoped readers.
#[derive(Clone)]
pub struct ClickHouse {
    client: ::clickhouse::Client,
    config: ClickHouseConfig,
    gates: std::sync::Arc<limits::TenantGates>,
}

impl ClickHouse {
    pub fn new(config: ClickHouseConfig) -> Self {
        ClickHouse {
            client: Self::server_client(&config).with_database(&config.database),
            config,
            gates: std::sync::Arc::default(),
        }
    }

    fn server_client(config: &ClickHouseConfig) -> ::clickhouse::Client {
        ::clickhouse::Client::default()
            .with_url(&config.url)
            .with_user(&config.user)
            .with_password(&config.password)
            .with_validation(false)
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// Reads of one tenant's traces. This is the only way to read spans.
    pub fn tenant(&self, tenant: TenantId) -> TenantTraces<'_> {
        TenantTraces::new(&self.client, tenant, self.config.read_limits, &self.gates)
    }

    /// Answers when the server is reachable and the database exists.
    pub async fn ping(&self) -> Result<(), ClickHouseError> {
        self.client.query(PING).execute().await?;
        Ok(())
    }

    /// Creates the database if needed and applies every pending migration statement.
    pub async fn migrate(&self) -> Result<MigrationReport, ClickHouseError> {
        let server = Self::server_client(&self.config);
        server
            .query(&create_database(&self.config.database))
            .execute()
            .await?;
        migrate::run(&self.client, self.config.retention_days).await
    }

    /// Drops the whole database; used by tests to leave nothing behind.
    pub async fn drop_database(&self) -> Result<(), ClickHouseError> {
        Self::server_client(&self.config)
            .query(&drop_database(&self.config.database))
            .execute()
            .await?;
        Ok(())
    }

    /// Erases every row of a deleted organisation from every table of tenant data (see
    /// [`erase`]): the tables that still hold rows of it get a delete mutation, which
    /// ClickHouse applies in the background. Returns the tables that had rows; none
    /// means the erasure is complete.
    pub async fn erase_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<&'static str>, ClickHouseError> {
        let mut erased = Vec::new();
        for table in TENANT_TABLES {
            let stored_rows = erase::stored_rows(table, tenant);
            let rows: u64 = self.client.query(&stored_rows).fetch_one().await?;
            if rows > 0 {
                let erasure = erase::erasure(table, tenant);
                self.client.query(&erasure).execute().await?;
                erased.push(table);
            }
        }
        Ok(erased)
    }

    /// Inserts spans as one block, which ClickHouse applies atomically with their trace
    /// index rows (made by a view on `spans`, migration 0008): on error nothing was
    /// written.
    pub async fn insert_spans(&self, spans: &[SpanRow]) -> Result<(), ClickHouseError> {
        self.insert_rows(spans, None).await
    }

    /// Inserts packed spans as one block, as the query `query_id`: the INSERT the client
    /// sends for [`SpanRow`]s (same columns, RowBinary), with the rows' bytes copied
    /// instead of serialised. Their trace index rows come with them, as in
    /// [`ClickHouse::insert_spans`].
    pub async fn insert_packed_spans(
        &self,
        spans: &[PackedSpan],
        query_id: &str,
    ) -> Result<(), ClickHouseError> {
        if spans.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO {}({}) FORMAT RowBinary",
            <SpanRow as rows::Table>::TABLE,
            catalog::column_list::<SpanRow>()
        );
        let insert = self.client.insert_formatted_with(sql);
        let mut insert = RowBinaryInsert::new(insert.with_setting("query_id", query_id));
        for span in spans {
            span.write_to(&mut insert.chunk);
            insert.send_full().await?;
        }
        insert.end().await
    }

    /// Inserts metric rows as one block, as the query `query_id`, which ClickHouse
    /// applies atomically: either every message the rows count is counted, or none is.
    pub async fn insert_metrics<R: MetricRow>(
        &self,
        rows: &[R],
        query_id: &str,
    ) -> Result<(), ClickHouseError> {
        self.insert_rows(rows, Some(query_id)).await
    }

    /// Inserts log lines as one block, which ClickHouse applies atomically, as the query
    /// `query_id`: a caller that loses the answer can wait for the INSERT to end (see
    /// [`ClickHouse::query_running`]) before it asks what is stored.
    pub async fn insert_logs(
        &self,
        rows: &[LogRow],
        query_id: &str,
    ) -> Result<(), ClickHouseError> {
        let mut packed = PackedLogs::default();
        for row in rows {
            packed.push_row(row);
        }
        self.insert_packed_logs(&[&packed], query_id).await
    }

    /// Inserts the lines of some bus messages as one block, as the query `query_id`.
    pub async fn insert_packed_logs(
        &self,
        messages: &[&PackedLogs],
        query_id: &str,
    ) -> Result<(), ClickHouseError> {
        if messages.iter().all(|m| m.is_empty()) {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO {}({}) FORMAT RowBinary",
            <LogRow as rows::Table>::TABLE,
            catalog::column_list::<LogRow>()
        );
        let insert = self.client.insert_formatted_with(sql);
        let mut insert = RowBinaryInsert::new(insert.with_setting("query_id", query_id));
        for message in messages {
            for row in message.rows() {
                insert.chunk.extend_from_slice(row);
            }
            insert.send_full().await?;
        }
        insert.end().await
    }

    /// Whether the server still runs the query `query_id` (an INSERT whose answer was lost
    /// may still be writing its block).
    pub async fn query_running(&self, query_id: &str) -> Result<bool, ClickHouseError> {
        let running: u64 = self
            .client
            .query(QUERY_RUNNING)
            .bind(query_id)
            .fetch_one()
            .await?;
        Ok(running > 0)
    }

    /// Waits until the query `query_id` (an INSERT whose answer was lost) no longer runs,
    /// for at most `within`: until then its rows may still be landing, and a look at what
    /// is stored would miss them.
    pub async fn await_query_end(
        &self,
        query_id: &str,
        within: std::time::Duration,
    ) -> Result<(), ClickHouseError> {
        let give_up = tokio::time::Instant::now() + within;
        while self.query_running(query_id).await? {
            if tokio::time::Instant::now() >= give_up {
                return Err(ClickHouseError::InsertStillRunning(query_id.to_owned()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Inserts rows as one block, as the query `query_id` if one is given.
    async fn insert_rows<T: Table>(
        &self,
        rows: &[T],
        query_id: Option<&str>,
    ) -> Result<(), ClickHouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<T>(T::TABLE).await?;
        if let Some(query_id) = query_id {
            insert = insert.with_setting("query_id", query_id);
        }
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }
}

/// An INSERT … FORMAT RowBinary whose rows are written into `chunk` and handed to the
/// connection a megabyte at a time.
struct RowBinaryInsert {
    insert: ::clickhouse::insert_formatted::InsertFormatted,
    chunk: Vec<u8>,
}

impl RowBinaryInsert {
    /// Bytes handed to the connection at a time.
    const CHUNK: usize = 1 << 20;

    fn new(insert: ::clickhouse::insert_formatted::InsertFormatted) -> RowBinaryInsert {
        RowBinaryInsert {
            insert,
            chunk: Vec::with_capacity(Self::CHUNK + 64 * 1024),
        }
    }

    /// Sends the chunk once it holds [`Self::CHUNK`] bytes.
    async fn send_full(&mut self) -> Result<(), ClickHouseError> {
        if self.chunk.len() >= Self::CHUNK {
            let fresh = Vec::with_capacity(Self::CHUNK + 64 * 1024);
            let full = std::mem::replace(&mut self.chunk, fresh);
            self.insert.send(full.into()).await?;
        }
        Ok(())
    }

    /// Sends what is left and ends the INSERT.
    async fn end(mut self) -> Result<(), ClickHouseError> {
        if !self.chunk.is_empty() {
            self.insert.send(self.chunk.into()).await?;
        }
        self.insert.end().await?;
        Ok(())
    }
}
