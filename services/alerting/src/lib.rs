//! Alerting: span-duration rules checked against every span of the live stream (its own
//! consumer group, before sampling), aggregate rules (latency percentile, error rate,
//! throughput) evaluated from the span metrics in ClickHouse, alert state and the
//! delivery log in PostgreSQL, and notifications to Slack, email and webhooks.
//!
//! Several replicas share the work without talking to each other: partitions of the
//! stream through the bus's durable consumers, evaluations and deliveries through claims
//! in PostgreSQL, and state changes through conditional updates (see
//! `weft_storage::postgres` alerting).

mod config;
mod deliver;
mod evaluate;
mod metrics;
mod notify;
mod rules;
mod stream;

pub use config::{AlertingConfig, DeliveryConfig, SmtpConfig, SmtpTls};
pub use notify::{SIGNATURE_HEADER, sign};

use anyhow::Context;
use metrics::AlertingMetrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use weft_bus::{Bus, ConsumerConfig, RuleChanged, Signal};
use weft_runtime::health::Readiness;
use weft_runtime::metrics::Registry;
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::ClickHouse;
use weft_storage::postgres::Postgres;

/// The consumer group of alerting's durable span consumers: it sees every span, beside
/// (not instead of) the sampler's group.
pub const CONSUMER_GROUP: &str = "alerting";

/// The wired service.
pub struct Alerting {
    config: AlertingConfig,
    bus: Bus,
    store: ClickHouse,
    postgres: Postgres,
    metrics: AlertingMetrics,
    registry: Arc<Registry>,
}

impl Alerting {
    /// Connects to NATS and sets up the ClickHouse and PostgreSQL clients. Binds no port.
    pub async fn build(config: AlertingConfig) -> anyhow::Result<Alerting> {
        let bus = Bus::connect(config.bus.clone())
            .await
            .context("failed to connect to NATS")?;
        let store = ClickHouse::new(config.clickhouse.clone());
        let postgres =
            Postgres::connect_lazy(&config.postgres).context("invalid PostgreSQL settings")?;
        let metrics = AlertingMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        bus.metrics().register_consuming(&mut registry);
        Ok(Alerting {
            config,
            bus,
            store,
            postgres,
            metrics,
            registry: Arc::new(registry),
        })
    }

    /// `/healthz`, `/readyz` and `/metrics`.
    pub fn health_router(&self) -> axum::Router {
        let readiness: Arc<dyn Readiness> = Arc::new(AlertingReadiness {
            bus: self.bus.clone(),
            postgres: self.postgres.clone(),
        });
        weft_runtime::health::routes(readiness, self.registry.clone())
    }

    /// Consumes spans, evaluates and delivers until `shutdown`; then stops taking work,
    /// lets deliveries in flight finish (claims of unfinished ones expire for the others).
    pub async fn serve(
        self,
        health: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        tracing::info!(
            addr = %health.local_addr()?,
            replica = %self.config.replica_id,
            partitions = self.config.partitions.len(),
            "alerting starting"
        );
        let health = axum::serve(health, self.health_router())
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let rules = Arc::new(rules::SpanRuleCache::new(
            self.postgres.clone(),
            self.config.rule_ttl,
            self.metrics.clone(),
        ));
        // Subscribed before consuming, so no change made after the first span is missed.
        let follow = match self.bus.subscribe::<RuleChanged>().await {
            Ok(changes) => {
                let rules = rules.clone();
                Some(tokio::spawn(changes.follow(
                    shutdown.clone(),
                    move |changed| {
                        tracing::info!(tenant_id = %changed.tenant_id, "alert rules changed");
                        rules.forget(changed.tenant_id);
                    },
                )))
            }
            Err(error) => {
                tracing::warn!(%error, "cannot follow rule changes; rules refresh after their TTL");
                None
            }
        };
        let evaluator = tokio::spawn(
            evaluate::Evaluator {
                postgres: self.postgres.clone(),
                store: self.store.clone(),
                replica: self.config.replica_id.clone(),
                interval: self.config.eval_interval,
                metrics: self.metrics.clone(),
            }
            .run(shutdown.clone()),
        );
        let deliverer = tokio::spawn(
            deliver::Deliverer::new(
                self.postgres.clone(),
                self.store.clone(),
                &self.config,
                self.metrics.clone(),
            )?
            .run(shutdown.clone()),
        );
        let handler = Arc::new(stream::SpanRuleHandler {
            rules,
            postgres: self.postgres.clone(),
            metrics: self.metrics.clone(),
        });
        let consumer = ConsumerConfig {
            group: CONSUMER_GROUP.to_owned(),
            signal: Signal::Spans,
            fetch_batch: self.config.fetch_batch,
            max_in_flight: self.config.fetch_batch.max(64),
            fetch_wait: self.config.fetch_wait,
            ack_wait: self.config.ack_wait,
        };
        let work = async {
            let consumed = weft_bus::consume(
                &self.bus,
                consumer,
                &self.config.partitions,
                handler,
                shutdown.clone(),
            )
            .await;
            evaluator.await.context("the evaluator panicked")?;
            deliverer.await.context("the deliverer panicked")?;
            if let Some(follow) = follow {
                follow.await.context("following rule changes panicked")?;
            }
            consumed.context("consuming span partitions failed")
        };
        let (health, worked) = tokio::join!(health, work);
        health.context("health endpoint failed")?;
        worked
    }
}

struct AlertingReadiness {
    bus: Bus,
    postgres: Postgres,
}

impl Readiness for AlertingReadiness {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            if !self.bus.is_connected() {
                return Err("nats".to_owned());
            }
            self.postgres
                .ping()
                .await
                .map_err(|_| "postgres".to_owned())
        })
    }
}
