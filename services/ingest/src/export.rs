//! The export pipeline shared by both front ends and every signal: authenticate, admit
//! against the tenant's rate (before decoding where the body allows), split, publish,
//! and answer with what was rejected.

use crate::config::Limits;
use crate::metrics::{IngestMetrics, ItemLabels, RequestLabels};
use crate::rate::{Ask, TenantLimiter};
use crate::signal::Telemetry;
use crate::split::{self, Split};
use crate::usage::UsageCounter;
use futures::future::join_all;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use weft_bus::{Bus, Signal};
use weft_model::KeyScope;
use weft_runtime::health::Readiness;
use weft_runtime::{ApiError, ErrorKind};
use weft_storage::postgres::{KeyCache, Postgres, ResolvedKey};

/// Which front end a request came through, as metrics label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    Grpc,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Grpc => "grpc",
        }
    }
}

/// What an accepted export rejected, for `partial_success`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    pub count: u64,
    pub first_error: Option<String>,
}

/// 400 for a request that is not valid OTLP protobuf, saying why.
pub fn invalid_protobuf(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidArgument,
        format!("invalid OTLP protobuf: {why}"),
    )
}

/// A request let through by the tenant's limits, with what it was measured at; only an
/// admitted request can be exported.
#[derive(Debug)]
pub struct Admitted {
    /// The uncompressed size of the export (counted for logs; 0 for spans).
    bytes: u64,
}

/// The log limiter's second bucket (the first counts records).
const LOG_BYTES: usize = 1;

/// Authenticates and publishes OTLP export requests.
pub struct Exporter {
    bus: Bus,
    postgres: Postgres,
    keys: KeyCache,
    limiter: TenantLimiter<1>,
    /// Log records and log bytes per second, taken together or not at all.
    log_limiter: TenantLimiter<2>,
    /// Rotates the partition of log records without a trace, request by request.
    untraced: std::sync::atomic::AtomicU16,
    pub(crate) usage: Arc<UsageCounter>,
    pub(crate) limits: Limits,
    pub(crate) metrics: IngestMetrics,
}

impl Exporter {
    pub fn new(bus: Bus, postgres: Postgres, keys: KeyCache, limits: Limits) -> Self {
        Exporter {
            bus,
            postgres,
            keys,
            limiter: TenantLimiter::default(),
            log_limiter: TenantLimiter::default(),
            untraced: std::sync::atomic::AtomicU16::new(0),
            usage: Arc::default(),
            limits,
            metrics: IngestMetrics::default(),
        }
    }

    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// The tenant (and its limit) of an ingest key; 401 for a missing, unknown or revoked key.
    pub async fn authenticate(&self, key: Option<&str>) -> Result<ResolvedKey, ApiError> {
        self.keys
            .authorize(key, KeyScope::Ingest, "send data")
            .await
    }

    fn count_items(
        &self,
        transport: Transport,
        signal: Signal,
        outcome: &'static str,
        reason: &'static str,
        n: u64,
    ) {
        if n > 0 {
            self.metrics
                .items
                .get_or_create(&ItemLabels {
                    transport: transport.as_str(),
                    signal: signal.as_str(),
                    outcome,
                    reason,
                })
                .inc_by(n);
        }
    }

    /// Counts a finished request by its outcome.
    pub fn count_request(
        &self,
        transport: Transport,
        signal: Signal,
        result: Result<&Rejected, &ApiError>,
    ) {
        let outcome = match result {
            Ok(rejected) if rejected.count > 0 => "partial",
            Ok(_) => "accepted",
            Err(error) => error.kind.as_str(),
        };
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                transport: transport.as_str(),
                signal: signal.as_str(),
                outcome,
            })
            .inc();
    }

    /// Lets a request of `items` items and `bytes` uncompressed bytes through, or refuses
    /// it: 503 while the bus is down, 429 past the tenant's rate (spans: items; logs:
    /// records and bytes, neither taken when one refuses). Called before decoding wherever
    /// the count can be read off the encoded body, so a throttled tenant costs no decoding.
    pub fn admit(
        &self,
        key: &ResolvedKey,
        transport: Transport,
        signal: Signal,
        items: u64,
        bytes: u64,
    ) -> Result<Admitted, ApiError> {
        if !self.bus.is_ready() {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "the bus is unavailable, retry later",
            ));
        }
        let tenant = key.tenant;
        let (refused, message) = match signal {
            Signal::Spans => {
                let rate = key.spans_per_second.unwrap_or(self.limits.spans_per_second);
                let Err(refused) = self.limiter.take(
                    tenant,
                    [Ask {
                        rate: rate.into(),
                        amount: items,
                    }],
                ) else {
                    return Ok(Admitted { bytes: 0 });
                };
                self.usage.record_spans(tenant, 0, items);
                (
                    refused,
                    format!("span rate limit of {rate} spans per second"),
                )
            }
            Signal::Logs => {
                let records = key.logs_per_second.unwrap_or(self.limits.logs_per_second);
                let log_bytes = key
                    .log_bytes_per_second
                    .unwrap_or(self.limits.log_bytes_per_second);
                let asks = [
                    Ask {
                        rate: records.into(),
                        amount: items,
                    },
                    Ask {
                        rate: log_bytes,
                        amount: bytes,
                    },
                ];
                let Err(refused) = self.log_limiter.take(tenant, asks) else {
                    return Ok(Admitted { bytes });
                };
                self.usage.record_logs(tenant, 0, items, 0);
                let message = if refused.limit == LOG_BYTES {
                    format!("log byte rate limit of {log_bytes} uncompressed bytes per second")
                } else {
                    format!("log record rate limit of {records} log records per second")
                };
                (refused, message)
            }
        };
        let reason = if signal == Signal::Logs && refused.limit == LOG_BYTES {
            "byte_rate_limited"
        } else {
            "rate_limited"
        };
        self.count_items(transport, signal, "rejected", reason, items);
        tracing::debug!(tenant_id = %tenant, items, bytes, reason, "tenant over its rate");
        let retry_after = refused.retry_after_secs;
        Err(ApiError::rate_limited(
            format!("{message} exceeded, retry in {retry_after}s"),
            retry_after,
        ))
    }

    /// Counts JSON lines that could not be read into a log record: rejected, like
    /// invalid records of an OTLP export.
    pub(crate) fn count_unreadable(&self, key: &ResolvedKey, transport: Transport, lines: u64) {
        if lines == 0 {
            return;
        }
        self.usage.record_logs(key.tenant, 0, lines, 0);
        self.count_items(transport, Signal::Logs, "rejected", "invalid", lines);
    }

    /// The latest time an item may carry: now plus the accepted clock skew. Times past it
    /// (a clock decades ahead, `u64::MAX` as an end time) are refused here, once, so
    /// nothing downstream meets a time it cannot store.
    pub(crate) fn latest_accepted_time(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from((now + self.limits.max_future_skew).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Publishes the valid items of an admitted, decoded `request`.
    pub async fn export_decoded<T: Telemetry>(
        &self,
        key: &ResolvedKey,
        transport: Transport,
        request: &T,
        admitted: Admitted,
        traceparent: Option<&str>,
    ) -> Result<Rejected, ApiError> {
        let encoded = request.encode_to_vec();
        self.export::<T>(key, transport, &encoded, admitted, traceparent)
            .await
    }

    /// Publishes the valid items of an admitted `request` (protobuf of `T`); returns once
    /// JetStream holds all of them. 400 when it is not valid protobuf.
    pub async fn export<T: Telemetry>(
        &self,
        key: &ResolvedKey,
        transport: Transport,
        request: &[u8],
        admitted: Admitted,
        traceparent: Option<&str>,
    ) -> Result<Rejected, ApiError> {
        let tenant = key.tenant;
        let partitions = self.bus.config().partitions;
        let untraced = self
            .untraced
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % partitions;
        // Headroom under the server's limit for headers and framing.
        let max_message = self.bus.max_payload().saturating_sub(4096).max(1024);
        let Split {
            parts,
            accepted,
            rejected: invalid,
            too_large,
            first_error,
        } = split::split::<T::Item>(
            request,
            partitions,
            self.latest_accepted_time(),
            weft_model::Partition(untraced),
            max_message,
        )
        .map_err(invalid_protobuf)?;
        let rejected = Rejected {
            count: invalid,
            first_error,
        };
        let messages = parts.into_iter().flat_map(|(partition, payloads)| {
            payloads
                .into_iter()
                .map(move |payload| (partition, payload))
        });
        let published = join_all(messages.map(|(partition, payload)| {
            self.bus
                .publish(T::SIGNAL, tenant, partition, payload, traceparent)
        }))
        .await;
        if let Some(error) = published.into_iter().find_map(Result::err) {
            return Err(ApiError::unavailable("publishing to the bus", &error));
        }
        match T::SIGNAL {
            Signal::Spans => self.usage.record_spans(tenant, accepted, rejected.count),
            Signal::Logs => {
                self.usage
                    .record_logs(tenant, accepted, rejected.count, admitted.bytes)
            }
        }
        self.count_items(transport, T::SIGNAL, "accepted", "", accepted);
        self.count_items(
            transport,
            T::SIGNAL,
            "rejected",
            "invalid",
            invalid - too_large,
        );
        self.count_items(transport, T::SIGNAL, "rejected", "too_large", too_large);
        tracing::debug!(tenant_id = %tenant, items = accepted, rejected = rejected.count, "export accepted");
        Ok(rejected)
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
