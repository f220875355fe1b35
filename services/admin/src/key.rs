//! `weft-admin key …`: creating, listing and revoking a tenant's API keys.

use crate::tenant::id_by_slug;
use anyhow::Context;
use std::time::Duration;
use weft_bus::{Bus, BusConfig, BusError, KeyRevoked};
use weft_model::KeyScope;
use weft_storage::postgres::Postgres;

/// How long a revocation may take to reach NATS before the command gives up announcing it.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn create(
    db: &Postgres,
    slug: &str,
    scope: KeyScope,
    name: &str,
) -> anyhow::Result<()> {
    let tenant = id_by_slug(db, slug).await?;
    let key = db.create_api_key(tenant, name, scope).await?;
    println!(
        "created {scope} key {} ({}); it is shown only now:\n{}",
        key.prefix, key.id, key.secret
    );
    Ok(())
}

pub(crate) async fn list(db: &Postgres, slug: &str) -> anyhow::Result<()> {
    let tenant = id_by_slug(db, slug).await?;
    println!(
        "{:<36}  {:<7}  {:<13}  {:<20}  status",
        "id", "scope", "prefix", "name"
    );
    for key in db.api_keys(tenant).await? {
        let status = match (key.revoked_at, key.last_used_at) {
            (Some(at), _) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
            (None, Some(at)) => format!("last used {}", at.format("%Y-%m-%d %H:%M")),
            (None, None) => "never used".to_owned(),
        };
        println!(
            "{:<36}  {:<7}  {:<13}  {:<20}  {status}",
            key.id, key.scope, key.prefix, key.name
        );
    }
    Ok(())
}

pub(crate) async fn revoke(
    db: &Postgres,
    bus: BusConfig,
    slug: &str,
    id: uuid::Uuid,
) -> anyhow::Result<()> {
    let tenant = id_by_slug(db, slug).await?;
    let digest = db
        .revoke_api_key(tenant, id)
        .await?
        .with_context(|| format!("tenant has no live key {id}"))?;
    // Ingest replicas forget the key at once; without NATS they do within their key cache
    // TTL, so a failed announcement is a warning, not a failed revocation.
    let bus = Bus::connect(bus).await?;
    if let Err(error) =
        tokio::time::timeout(ANNOUNCE_TIMEOUT, bus.announce(&KeyRevoked::new(&digest)))
            .await
            .unwrap_or(Err(BusError::Disconnected))
    {
        eprintln!(
            "weft-admin: revoked, but could not announce it ({error}); ingest drops the key within WEFT_KEY_CACHE_TTL"
        );
    }
    println!("revoked key {id}");
    Ok(())
}
