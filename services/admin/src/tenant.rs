//! `weft-admin tenant …`: creating tenants and setting their own ingest limits.

use crate::cli::{BytesPerSecond, SpansPerSecond};
use anyhow::Context;
use weft_model::TenantId;
use weft_storage::postgres::Postgres;

pub(crate) async fn create(db: &Postgres, name: &str, slug: &str) -> anyhow::Result<()> {
    let tenant = db.create_tenant(name, slug).await?;
    println!("created tenant {} ({})", tenant.slug, tenant.id);
    Ok(())
}

pub(crate) async fn limit(
    db: &Postgres,
    slug: &str,
    spans_per_second: SpansPerSecond,
) -> anyhow::Result<()> {
    let tenant = id_by_slug(db, slug).await?;
    let limit = spans_per_second.own_limit();
    db.set_spans_per_second(tenant, limit).await?;
    match limit {
        Some(n) => println!("limit set to {n} spans per second per ingest replica"),
        None => println!("limit reset to the ingest default"),
    }
    Ok(())
}

/// Sets the log limits given (records, bytes); the other one is left as it is.
pub(crate) async fn log_limit(
    db: &Postgres,
    slug: &str,
    logs_per_second: Option<SpansPerSecond>,
    bytes_per_second: Option<BytesPerSecond>,
) -> anyhow::Result<()> {
    let tenant = id_by_slug(db, slug).await?;
    if let Some(logs_per_second) = logs_per_second {
        let limit = logs_per_second.own_limit();
        db.set_logs_per_second(tenant, limit).await?;
        match limit {
            Some(n) => println!("log limit set to {n} log records per second per ingest replica"),
            None => println!("log limit reset to the ingest default"),
        }
    }
    if let Some(bytes_per_second) = bytes_per_second {
        let limit = bytes_per_second.own_limit();
        db.set_log_bytes_per_second(tenant, limit).await?;
        match limit {
            Some(n) => println!(
                "log bytes limit set to {n} uncompressed bytes per second per ingest replica"
            ),
            None => println!("log bytes limit reset to the ingest default"),
        }
    }
    Ok(())
}

/// The tenant operators refer to by `slug`; an unknown slug is an error naming it.
pub(crate) async fn id_by_slug(db: &Postgres, slug: &str) -> anyhow::Result<TenantId> {
    Ok(db
        .tenant_by_slug(slug)
        .await?
        .with_context(|| format!("no tenant with slug {slug:?}"))?
        .tenant_id())
}
