//! Delivering notifications: due deliveries are claimed in PostgreSQL (so two replicas
//! never send one at the same time) and each is sent in a task of its own with a
//! timeout, so a slow or failing channel holds up nothing else. A failed attempt is
//! logged in the delivery log and retried with exponential backoff until
//! `max_attempts`. A notification whose example trace is not stored yet waits for it up
//! to the trace wait, without counting attempts; past it, it is sent without the link.
//!
//! A replica that dies between sending and recording leaves the claim to expire and the
//! delivery to be sent again: at least once, never twice in normal operation.

use crate::config::{AlertingConfig, DeliveryConfig};
use crate::metrics::{AlertingMetrics, DeliveryLabels};
use crate::notify::{Notification, SIGNATURE_HEADER, sign};
use anyhow::Context;
use chrono::Utc;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use weft_mail::{Email, Mailer};
use weft_model::TraceId;
use weft_model::alerting::{AlertRule, ChannelTarget, TargetPolicy, url_host};
use weft_runtime::shutdown::CancellationToken;
use weft_storage::clickhouse::ClickHouse;
use weft_storage::postgres::{ClaimedDelivery, Postgres};

const CLAIM_LIMIT: i64 = 50;

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<
        hyper_util::client::legacy::connect::HttpConnector<GuardedResolver>,
    >,
    http_body_util::Full<bytes::Bytes>,
>;

/// Resolves the hosts of channel URLs and drops the addresses the target policy
/// refuses, so a name that resolves (or is re-pointed after saving) to an internal
/// address is never connected to. The check is on the addresses connected to, not on a
/// lookup before the request, so DNS cannot answer differently in between.
#[derive(Clone)]
struct GuardedResolver {
    policy: TargetPolicy,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
                .await?
                .filter(|address| match policy.refusal(address.ip()) {
                    Some(what) => {
                        refused.get_or_insert((address.ip(), what));
                        false
                    }
                    None => true,
                })
                .collect();
            match refused {
                Some((ip, what)) if allowed.is_empty() => Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    refusal(&format!("{host} resolves to {ip}, {what}")),
                )),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

/// Why a notification was not sent to an internal address, for the delivery log.
fn refusal(why: &str) -> String {
    format!(
        "{why}: refused, notifications only go to public addresses \
         (WEFT_ALERTING_ALLOW_PRIVATE_TARGETS)"
    )
}
/// How long a delivery waiting for its example trace is put back for.
const TRACE_POLL: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

pub struct Deliverer {
    postgres: Postgres,
    store: ClickHouse,
    replica: String,
    public_url: String,
    config: DeliveryConfig,
    http: HttpClient,
    mailer: Mailer,
    metrics: AlertingMetrics,
}

impl Deliverer {
    pub fn new(
        postgres: Postgres,
        store: ClickHouse,
        config: &AlertingConfig,
        metrics: AlertingMetrics,
    ) -> anyhow::Result<Deliverer> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            policy: config.delivery.targets,
        });
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .context("failed to load the system's TLS roots")?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // Redirects are not followed: webhook targets are the tenants' own, and a
        // redirect could point anywhere.
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Deliverer {
            postgres,
            store,
            replica: config.replica_id.clone(),
            public_url: config.public_url.clone(),
            config: config.delivery.clone(),
            http,
            mailer: Mailer::new(&config.smtp)?,
            metrics,
        })
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut sending = tokio::task::JoinSet::new();
        loop {
            let claim_for = this.config.timeout * 3 + Duration::from_secs(5);
            match this
                .postgres
                .claim_deliveries(&this.replica, claim_for, CLAIM_LIMIT)
                .await
            {
                Ok(claimed) => {
                    for delivery in claimed {
                        let this = this.clone();
                        sending.spawn(async move { this.deliver(delivery).await });
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot claim deliveries"),
            }
            while sending.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(this.config.poll_interval) => {}
            }
        }
        // Sends in flight finish (each has a timeout); their claims would expire anyway.
        while sending.join_next().await.is_some() {}
    }

    /// Whether the example trace is stored (and so opens in the dashboard).
    async fn trace_stored(&self, delivery: &ClaimedDelivery, trace_id: &str) -> bool {
        let Ok(id) = trace_id.parse::<TraceId>() else {
            return false;
        };
        matches!(
            self.store.tenant(delivery.tenant_id).trace(id).await,
            Ok(Some(_))
        )
    }

    async fn deliver(&self, delivery: ClaimedDelivery) {
        let notification = match self.notification(&delivery).await {
            Some(notification) => notification,
            None => return,
        };
        let channel = delivery.target.kind();
        let outcome = tokio::time::timeout(
            self.config.timeout * 2,
            self.send(&delivery.target, &notification),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
        let recorded = match outcome {
            Ok(()) => {
                self.metrics
                    .deliveries
                    .get_or_create(&DeliveryLabels {
                        channel,
                        outcome: "sent",
                    })
                    .inc();
                tracing::info!(tenant_id = %delivery.tenant_id, delivery_id = delivery.id, channel_id = %delivery.channel_id, channel, "notification sent");
                self.postgres
                    .delivery_sent(delivery.id, &self.replica)
                    .await
            }
            Err(error) => {
                let attempts = delivery.attempts + 1;
                let retry_at = (attempts < self.config.max_attempts).then(|| {
                    let backoff = self
                        .config
                        .retry_base
                        .saturating_mul(1 << (attempts - 1).min(16))
                        .min(MAX_BACKOFF);
                    Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default()
                });
                let outcome = if retry_at.is_some() {
                    "retry"
                } else {
                    "failed"
                };
                self.metrics
                    .deliveries
                    .get_or_create(&DeliveryLabels { channel, outcome })
                    .inc();
                // The error names the channel's status or connection problem, never its URL.
                let reason = format!("{error:#}");
                tracing::warn!(tenant_id = %delivery.tenant_id, delivery_id = delivery.id, channel_id = %delivery.channel_id, channel, attempts, error = %reason, "notification not delivered");
                self.postgres
                    .delivery_failed(delivery.id, &self.replica, &reason, retry_at)
                    .await
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, delivery_id = delivery.id, "cannot record the delivery's outcome");
        }
    }

    /// The notification of a delivery; `None` when it was put back to wait for its
    /// example trace.
    async fn notification(&self, delivery: &ClaimedDelivery) -> Option<Notification> {
        let tenant = delivery.tenant_id.to_string();
        match (&delivery.event, &delivery.rule) {
            (Some(event), Some(rule)) => {
                let mut trace_id = event.trace_id.clone();
                if let Some(id) = trace_id.clone()
                    && !self.trace_stored(delivery, &id).await
                {
                    let waited = (Utc::now() - event.at).to_std().unwrap_or_default();
                    if waited < self.config.trace_wait {
                        let until =
                            Utc::now() + chrono::Duration::from_std(TRACE_POLL).unwrap_or_default();
                        if let Err(error) = self
                            .postgres
                            .delivery_postponed(delivery.id, &self.replica, until)
                            .await
                        {
                            tracing::warn!(%error, delivery_id = delivery.id, "cannot postpone a delivery");
                        }
                        return None;
                    }
                    tracing::info!(tenant_id = %delivery.tenant_id, trace_id = %id, "example trace not stored; notifying without it");
                    trace_id = None;
                }
                Some(Notification::new(
                    &self.public_url,
                    tenant,
                    event.rule_id,
                    rule,
                    &event.state,
                    event.value,
                    trace_id,
                    event.at,
                    false,
                ))
            }
            _ => {
                let rule = AlertRule::from_json(
                    br#"{"name": "Test notification", "condition": {"kind": "latency", "service": "example-service",
                        "percentile": "p99", "threshold_ms": 800, "window_seconds": 300}}"#,
                )
                .expect("the test rule is valid");
                Some(Notification::new(
                    &self.public_url,
                    tenant,
                    uuid::Uuid::nil(),
                    &rule,
                    "test",
                    Some(950.0),
                    None,
                    delivery.created_at,
                    true,
                ))
            }
        }
    }

    async fn send(
        &self,
        target: &ChannelTarget,
        notification: &Notification,
    ) -> anyhow::Result<()> {
        match target {
            ChannelTarget::Webhook { url, secret } => {
                let body = notification.webhook_body();
                let signature = sign(secret, Utc::now().timestamp(), &body);
                self.post(url, body, Some(signature)).await
            }
            ChannelTarget::Slack { webhook_url } => {
                self.post(webhook_url, notification.slack_body(), None)
                    .await
            }
            ChannelTarget::Email { to } => self.email(to, notification).await,
        }
    }

    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        signature: Option<String>,
    ) -> anyhow::Result<()> {
        // A host written as an address is connected to without a lookup, so the
        // resolver never sees it: check it here.
        if let Some((host, _)) = url_host(url)
            && let Ok(ip) = host.parse::<std::net::IpAddr>()
            && let Some(what) = self.config.targets.refusal(ip)
        {
            anyhow::bail!(refusal(&format!("{ip} is {what}")));
        }
        let mut request = http::Request::post(url)
            .header("content-type", "application/json")
            .header("user-agent", "weft-alerting");
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        // Errors never carry the URL: it is the channel's secret.
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|_| anyhow::anyhow!("the channel's URL is not valid"))?;
        let response = tokio::time::timeout(self.config.timeout, self.http.request(request))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.config.timeout))?
            .map_err(|e| {
                // The whole chain: the refusal of an internal address is at its end.
                let mut causes = Vec::new();
                let mut cause = std::error::Error::source(&e);
                while let Some(error) = cause {
                    causes.push(error.to_string());
                    cause = error.source();
                }
                if causes.is_empty() {
                    causes.push(e.to_string());
                }
                anyhow::anyhow!("request failed: {}", causes.join(": "))
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            anyhow::bail!("the receiver answered {status}")
        }
    }

    async fn email(&self, to: &[String], notification: &Notification) -> anyhow::Result<()> {
        self.mailer
            .send(Email {
                to: to.to_vec(),
                subject: notification.subject(),
                text: notification.email_text(),
                html: notification.email_html(),
            })
            .await
    }
}
