//! The query service: the dashboard (sign-up, login, onboarding, API keys, members,
//! sampling policy) and the JSON API over one tenant's traces (trace by id, search,
//! services and operations) and its sampling policy, authenticated with read- and
//! write-scope API keys. It reads ClickHouse
//! through the tenant-scoped layer and PostgreSQL for keys; it never writes spans.

mod api;
mod auth;
mod compare;
mod compression;
mod config;
mod dashboard;
mod difference;
mod headers;
mod metrics;
mod params;
mod policy;
mod view;

pub use config::{LoginLimits, QueryConfig, TrustedProxies};
pub use weft_mail::{SmtpConfig, SmtpTls};

use anyhow::Context;
use api::ApiState;
use dashboard::{DashboardState, LoginThrottle, SessionKeys};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use weft_runtime::health::Readiness;
use weft_runtime::metrics::Registry;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::ClickHouse;
use weft_storage::postgres::{KeyCache, Postgres};

/// The wired service: the state of each router, and the connection revocations arrive on.
pub struct Query {
    api: Arc<ApiState>,
    dashboard: Arc<DashboardState>,
    dependencies: Arc<Dependencies>,
    bus: weft_bus::Bus,
    metrics: metrics::QueryMetrics,
    registry: Arc<Registry>,
    /// How often, and for how long after a deletion, deleted organisations' rows are
    /// erased again.
    erasure_sweep: (std::time::Duration, std::time::Duration),
}

impl Query {
    /// Connects to NATS (retrying in the background) and PostgreSQL (lazily), and sets
    /// up the ClickHouse client. Binds no port.
    pub async fn build(config: QueryConfig) -> anyhow::Result<Query> {
        let postgres = Postgres::connect_lazy(&config.postgres)
            .context("failed to configure the PostgreSQL pool")?;
        let bus = weft_bus::Bus::connect(config.bus.clone())
            .await
            .context("failed to connect to NATS")?;
        let secret = match &config.session_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "WEFT_SESSION_SECRET is unset: sessions end when this process stops and do not work across replicas"
                );
                let mut secret = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
                secret
            }
        };
        let store = ClickHouse::new(config.clickhouse.clone());
        let keys = Arc::new(KeyCache::new(
            postgres.clone(),
            config.key_cache_ttl,
            100_000,
        ));
        let policies = policy::PolicyChanges {
            postgres: postgres.clone(),
            bus: bus.clone(),
        };
        let api = Arc::new(ApiState {
            store: store.clone(),
            keys: keys.clone(),
            policies: policies.clone(),
            alerting_targets: config.alerting_targets,
        });
        let dashboard = Arc::new(DashboardState {
            postgres: postgres.clone(),
            store: store.clone(),
            sessions: SessionKeys::new(&secret, config.session_ttl, config.secure_cookies),
            revocations: KeyRevocations {
                bus: bus.clone(),
                keys,
            },
            policies,
            throttle: LoginThrottle::new(&config.login),
            public_url: config.public_url.clone(),
            ingest_http_url: config.public_ingest_http_url.clone(),
            ingest_grpc_url: config.public_ingest_grpc_url.clone(),
            mailer: Arc::new(
                weft_mail::Mailer::new(&config.smtp).context("failed to set up SMTP for email")?,
            ),
            password_reset_ttl: config.password_reset_ttl,
            password_resets_per_hour: config.password_resets_per_hour,
            alerting_targets: config.alerting_targets,
        });
        let metrics = metrics::QueryMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        api.keys.register_metrics(&mut registry);
        Ok(Query {
            api,
            dashboard,
            dependencies: Arc::new(Dependencies { store, postgres }),
            bus,
            metrics,
            registry: Arc::new(registry),
            erasure_sweep: (config.erasure_sweep_interval, config.erasure_window),
        })
    }

    /// The whole HTTP surface: dashboard, API, health and metrics endpoints.
    pub fn router(&self) -> axum::Router {
        let readiness: Arc<dyn Readiness> = self.dependencies.clone();
        api::routes(self.api.clone())
            .merge(dashboard::routes(self.dashboard.clone()))
            .route_layer(axum::middleware::from_fn_with_state(
                self.metrics.clone(),
                metrics::time_requests,
            ))
            .merge(weft_runtime::health::routes(
                readiness,
                self.registry.clone(),
            ))
            .layer(axum::middleware::from_fn(headers::security_headers))
            .layer(compression::layer())
            .layer(axum::middleware::from_fn(
                weft_runtime::tracing_context::http,
            ))
    }

    /// Serves until `shutdown`, then drains in-flight requests. Every replica forgets a
    /// revoked read key at once, not after its cache TTL.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let revocations = self
            .bus
            .subscribe::<weft_bus::KeyRevoked>()
            .await
            .context("failed to subscribe to key revocations")?;
        let keys = self.api.keys.clone();
        let forget = tokio::spawn(revocations.follow(shutdown.clone(), move |revoked| {
            if let Some(digest) = revoked.digest() {
                keys.forget(&digest);
            }
        }));
        let (interval, window) = self.erasure_sweep;
        let sweep = tokio::spawn(dashboard::sweep_erasures(
            self.dashboard.clone(),
            interval,
            window,
            shutdown.clone(),
        ));
        tracing::info!(addr = %listener.local_addr()?, "query listening");
        // With the peer's address, which password attempts are counted by.
        let app = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        forget.await.context("the revocation listener panicked")?;
        sweep.await.context("the erasure sweep panicked")?;
        served.context("query server failed")
    }
}

/// Where a key revoked on the dashboard is announced: on the bus, so that every ingest
/// and query replica forgets it at once, and to this replica's key cache directly, so
/// that the API here refuses it even when the announcement fails.
pub(crate) struct KeyRevocations {
    bus: weft_bus::Bus,
    keys: Arc<KeyCache>,
}

impl KeyRevocations {
    pub(crate) async fn announce(&self, digest: &[u8; 32]) {
        if let Err(error) = self.bus.announce(&weft_bus::KeyRevoked::new(digest)).await {
            // Replicas still drop the key when its cache entry expires (WEFT_KEY_CACHE_TTL).
            tracing::warn!(%error, "could not announce a key revocation");
        }
        self.keys.forget(digest);
    }
}

/// What must answer before this replica takes traffic: ClickHouse for the API,
/// PostgreSQL for the dashboard and for key lookups.
struct Dependencies {
    store: ClickHouse,
    postgres: Postgres,
}

impl Readiness for Dependencies {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            self.store
                .ping()
                .await
                .map_err(|_| "clickhouse".to_owned())?;
            self.postgres
                .ping()
                .await
                .map_err(|_| "postgres".to_owned())
        })
    }
}
