//! One test's private corner of the shared servers.

use weft_bus::{Bus, BusConfig};
use weft_model::{KeyScope, TenantId};
use weft_storage::clickhouse::{ClickHouse, ClickHouseConfig};
use weft_storage::postgres::{Postgres, PostgresConfig};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Server addresses for tests: `WEFT_TEST_NATS_URL`, `WEFT_TEST_CLICKHOUSE_URL` and
/// `WEFT_TEST_DATABASE_URL` (a PostgreSQL URL whose user may create databases).
pub fn nats_url() -> String {
    env_or("WEFT_TEST_NATS_URL", "nats://127.0.0.1:4222")
}

pub fn clickhouse_url() -> String {
    env_or("WEFT_TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123")
}

fn postgres_admin_url() -> String {
    env_or(
        "WEFT_TEST_DATABASE_URL",
        "postgres://postgres:postgres@127.0.0.1:5432/postgres",
    )
}

/// Deletes the streams of test namespaces whose PostgreSQL database is gone (a run that
/// was interrupted before its teardown), so their reserved storage is freed. A live
/// namespace always has its database: it is created before any stream.
async fn delete_stale_streams(bus: &BusConfig, postgres_admin: &str) {
    use futures::TryStreamExt;
    let Ok(bus) = Bus::connect(bus.clone()).await else {
        return;
    };
    let Ok(names) = bus
        .jetstream()
        .stream_names()
        .try_collect::<Vec<String>>()
        .await
    else {
        return;
    };
    let Ok(mut admin) = <sqlx::PgConnection as sqlx::Connection>::connect(postgres_admin).await
    else {
        return;
    };
    for stream in names {
        let Some(prefix) = stream
            .strip_prefix("weft_test_")
            .and_then(|rest| rest.rsplit_once('_'))
            .map(|(id, _)| format!("weft_test_{id}"))
        else {
            continue;
        };
        let alive: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(&prefix)
            .fetch_optional(&mut admin)
            .await
            .unwrap_or(Some(1));
        if alive.is_none() {
            let _ = bus.jetstream().delete_stream(&stream).await;
        }
    }
}

/// A tenant with one key of each scope.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub id: TenantId,
    pub ingest_key: String,
    pub ingest_key_id: uuid::Uuid,
    pub read_key: String,
}

/// A random bus prefix, a fresh ClickHouse database and a fresh PostgreSQL database,
/// all migrated. Call [`Namespace::teardown`] at the end of the test.
pub struct Namespace {
    pub name: String,
    pub bus: BusConfig,
    pub clickhouse: ClickHouseConfig,
    pub postgres: PostgresConfig,
    pub store: ClickHouse,
    pub accounts: Postgres,
}

impl Namespace {
    pub async fn create() -> Namespace {
        Self::create_with_clickhouse(&clickhouse_url()).await
    }

    /// A namespace whose ClickHouse database lives on the server at `clickhouse_url`.
    pub async fn create_with_clickhouse(clickhouse_url: &str) -> Namespace {
        crate::init_logging();
        let name = format!(
            "weft_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let admin = postgres_admin_url();
        // The name is generated above from hex digits only.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(
                &mut <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connect to postgres"),
            )
            .await
            .expect("create the test database");
        let (base, _) = admin.rsplit_once('/').expect("database url has a path");
        let postgres = PostgresConfig {
            url: format!("{base}/{name}"),
            max_connections: 4,
        };
        let accounts = Postgres::connect_lazy(&postgres).expect("postgres pool");
        accounts.migrate().await.expect("postgres migrations");
        let clickhouse = ClickHouseConfig {
            url: clickhouse_url.to_owned(),
            database: name.clone(),
            ..ClickHouseConfig::default()
        };
        let store = ClickHouse::new(clickhouse.clone());
        store.migrate().await.expect("clickhouse migrations");
        let bus = BusConfig {
            url: nats_url(),
            prefix: name.clone(),
            partitions: 4,
            // JetStream reserves each stream's limit up front; tests run side by side.
            max_bytes: 64 << 20,
            dead_letter_max_bytes: 16 << 20,
            ..BusConfig::default()
        };
        delete_stale_streams(&bus, &admin).await;
        Namespace {
            name,
            bus,
            clickhouse,
            postgres,
            store,
            accounts,
        }
    }

    pub async fn tenant(&self, slug: &str) -> TestTenant {
        let tenant = self
            .accounts
            .create_tenant(slug, slug)
            .await
            .expect("create tenant");
        let ingest = self
            .accounts
            .create_api_key(tenant.tenant_id(), "ingest", KeyScope::Ingest)
            .await
            .expect("create ingest key");
        let read = self
            .accounts
            .create_api_key(tenant.tenant_id(), "read", KeyScope::Read)
            .await
            .expect("create read key");
        TestTenant {
            id: tenant.tenant_id(),
            ingest_key: ingest.secret,
            ingest_key_id: ingest.id,
            read_key: read.secret,
        }
    }

    /// Drops the databases and streams of this namespace.
    pub async fn teardown(self) {
        let Namespace {
            name,
            bus,
            store,
            accounts,
            ..
        } = self;
        accounts.pool().close().await;
        if let Ok(bus) = Bus::connect(bus).await {
            let _ = bus.delete_streams().await;
        }
        let _ = store.drop_database().await;
        if let Ok(mut admin) =
            <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url()).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}
