//! The export pipeline shared by both front ends: authenticate, split, publish, and
//! answer with what was rejected.

use crate::config::Limits;
use crate::rate::TenantLimiter;
use crate::split::{self, Split};
use crate::usage::UsageCounter;
use futures::future::join_all;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use weft_bus::Bus;
use weft_model::KeyScope;
use weft_runtime::health::Readiness;
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::postgres::{KeyCache, Postgres, ResolvedKey};

/// Authenticates and publishes OTLP export requests.
pub struct Exporter {
    bus: Bus,
    postgres: Postgres,
    keys: KeyCache,
    limiter: TenantLimiter,
    pub(crate) usage: Arc<UsageCounter>,
    pub(crate) limits: Limits,
}

impl Exporter {
    pub fn new(bus: Bus, postgres: Postgres, keys: KeyCache, limits: Limits) -> Self {
        Exporter {
            bus,
            postgres,
            keys,
            limiter: TenantLimiter::new(limits.spans_per_second),
            usage: Arc::default(),
            limits,
        }
    }

    /// Forgets a revoked key at once (announced over NATS by whoever revoked it).
    pub fn forget_key(&self, digest: &[u8; 32]) {
        self.keys.forget(digest);
    }

    /// The tenant (and its limit) of an ingest key; 401 for a missing, unknown or revoked key.
    pub async fn authenticate(&self, key: Option<&str>) -> Result<ResolvedKey, ApiError> {
        self.keys
            .authorize(key, KeyScope::Ingest, "send data")
            .await
    }

    /// Publishes the valid spans of `request`; returns once JetStream holds all of them.
    pub async fn export(
        &self,
        key: &ResolvedKey,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, ApiError> {
        let tenant = key.tenant;
        if !self.bus.is_ready() {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "the span bus is unavailable, retry later",
            ));
        }
        let Split {
            parts,
            accepted,
            mut rejected,
            first_error,
        } = split::split(request, self.bus.config().partitions);
        if let Err(retry_after) = self.limiter.take(tenant, key.spans_per_second, accepted) {
            self.usage.record(tenant, 0, accepted + rejected);
            tracing::debug!(tenant_id = %tenant, spans = accepted, "tenant over its span rate");
            return Err(ApiError::rate_limited(
                format!(
                    "span rate limit of {} spans per second exceeded, retry in {retry_after}s",
                    key.spans_per_second.unwrap_or(self.limits.spans_per_second)
                ),
                retry_after,
            ));
        }
        let mut first_error = first_error;
        // Headroom under the server's limit for headers and framing.
        let max_message = self.bus.max_payload().saturating_sub(4096).max(1024);
        let mut messages = Vec::new();
        for (partition, part) in parts {
            let (mut encoded, mut too_large) = (Vec::new(), Vec::new());
            split::encode_within(part, max_message, &mut encoded, &mut too_large);
            rejected += too_large.len() as u64;
            if first_error.is_none() {
                first_error = too_large.into_iter().next();
            }
            messages.extend(encoded.into_iter().map(|payload| (partition, payload)));
        }
        let published = join_all(
            messages
                .into_iter()
                .map(|(partition, payload)| self.bus.publish_spans(tenant, partition, payload)),
        )
        .await;
        if let Some(error) = published.into_iter().find_map(Result::err) {
            return Err(ApiError::unavailable("publishing spans", &error));
        }
        self.usage.record(tenant, accepted, rejected);
        tracing::debug!(tenant_id = %tenant, spans = accepted, rejected, "export accepted");
        Ok(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message: first_error.unwrap_or_default(),
            }),
        })
    }
}

impl Readiness for Exporter {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            if !self.bus.is_ready() {
                return Err("nats jetstream".to_owned());
            }
            self.postgres
                .ping()
                .await
                .map_err(|_| "postgres".to_owned())
        })
    }
}
