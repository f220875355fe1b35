//! `weft-admin migrate`: brings the PostgreSQL and ClickHouse schemas up to date. Services
//! do not migrate on start, so this runs before them.

use anyhow::Context;
use weft_storage::clickhouse::{ClickHouse, ClickHouseConfig};
use weft_storage::postgres::{Postgres, PostgresConfig};

pub(crate) async fn run(
    postgres: &PostgresConfig,
    clickhouse: ClickHouseConfig,
) -> anyhow::Result<()> {
    Postgres::create_database_if_missing(postgres)
        .await
        .context("failed to create the PostgreSQL database")?;
    Postgres::connect_lazy(postgres)?
        .migrate()
        .await
        .context("failed to migrate PostgreSQL")?;
    let report = ClickHouse::new(clickhouse)
        .migrate()
        .await
        .context("failed to migrate ClickHouse")?;
    println!(
        "migrations applied: postgres up to date; clickhouse {} applied {} statement(s), {} deferred to a newer server",
        report.server.map(|v| v.to_string()).unwrap_or_default(),
        report.applied.len(),
        report.deferred.len(),
    );
    Ok(())
}
