//! PostgreSQL (sqlx): accounts, tenants, members and invitations, dashboard sessions and
//! login throttling, password changes and resets, deleting organisations, API keys and
//! usage. Every statement about tenant data filters by
//! tenant; the SQL of this store lives in this module and its children.

mod accounts;
mod alerting;
mod api_keys;
mod key_cache;
mod members;
mod organisations;
mod passwords;
mod sampling;
mod sessions;
mod usage;

pub use accounts::{
    Attempt, HashingMemory, Membership, User, hash_password, hash_password_in, password_matches,
    password_matches_in,
};
pub use alerting::{
    AlertStoreError, ChannelInfo, ClaimedDelivery, DeliveryInfo, EventRow, Observation,
    SilenceInfo, StateRow, StateUpdate, StoredRule,
};
pub use api_keys::{ApiKeyInfo, NewApiKey, ResolvedKey, key_digest, looks_like_api_key};
pub use key_cache::KeyCache;
pub use members::{
    Invitation, Member, MembershipChange, NewInvitation, looks_like_invitation_token,
};
pub use organisations::OrganisationDeletion;
pub use passwords::{NewPasswordReset, ResetRefused, looks_like_reset_token};
pub use sampling::StoredPolicy;
pub use sessions::{SessionEnd, SessionState};
pub use usage::UsageDay;

use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;
use weft_model::TenantId;
use weft_runtime::config::{ConfigError, Env};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../../migrations/postgres");

/// Why a PostgreSQL call failed.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("postgres request failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("postgres migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("a tenant with slug {0:?} already exists")]
    DuplicateSlug(String),
}

/// Where PostgreSQL is.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    pub url: String,
    pub max_connections: u32,
}

impl PostgresConfig {
    pub const DEFAULT_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/weft";

    /// Reads `WEFT_DATABASE_URL` and `WEFT_DATABASE_MAX_CONNECTIONS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(PostgresConfig {
            url: env.string("WEFT_DATABASE_URL", Self::DEFAULT_URL),
            max_connections: env.get("WEFT_DATABASE_MAX_CONNECTIONS", 8)?,
        })
    }
}

/// A tenant (organisation).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Tenant {
    pub id: uuid::Uuid,
    pub name: String,
    pub slug: String,
}

impl Tenant {
    pub fn tenant_id(&self) -> TenantId {
        TenantId::new(self.id)
    }
}

/// The PostgreSQL store.
#[derive(Clone, Debug)]
pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    /// Connects lazily: the pool opens connections on first use, so a service can start
    /// (and report not ready) while PostgreSQL is still coming up.
    pub fn connect_lazy(config: &PostgresConfig) -> Result<Self, PostgresError> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(&config.url)?;
        Ok(Postgres { pool })
    }

    /// Creates the database named in the URL when it does not exist yet.
    pub async fn create_database_if_missing(config: &PostgresConfig) -> Result<(), PostgresError> {
        use sqlx::migrate::MigrateDatabase;
        if !sqlx::Postgres::database_exists(&config.url).await? {
            sqlx::Postgres::create_database(&config.url).await?;
        }
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), PostgresError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), PostgresError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_tenant(&self, name: &str, slug: &str) -> Result<Tenant, PostgresError> {
        sqlx::query_as("INSERT INTO tenants (name, slug) VALUES ($1, $2) RETURNING id, name, slug")
            .bind(name)
            .bind(slug)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    PostgresError::DuplicateSlug(slug.to_owned())
                }
                _ => PostgresError::Query(e),
            })
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>, PostgresError> {
        Ok(
            sqlx::query_as("SELECT id, name, slug FROM tenants WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
