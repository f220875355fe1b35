//! The tenant-scoped read layer: [`TenantTraces`] can only be made for one tenant and
//! only runs statements from [`super::queries`] with that tenant's filter filled in.

use super::queries::{self, Bind, SpanFilter, TENANT};
use super::{ClickHouseError, SpanRow};
use serde::Deserialize;
use weft_model::{TenantId, TraceId};

/// A trace as summarised by the trace index.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct TraceSummary {
    pub trace_id: [u8; 16],
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub root_service: String,
    pub root_name: String,
    pub span_count: u64,
    pub error_count: u64,
    pub service_names: Vec<String>,
}

/// An operation (span name) of a service, with its span kind and how often it was seen.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Deserialize)]
pub struct Operation {
    pub name: String,
    pub kind: u8,
    pub spans: u64,
}

/// How much of a tenant's data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ::clickhouse::Row, Deserialize)]
pub struct StoredCounts {
    pub spans: u64,
    pub distinct_spans: u64,
    pub indexed_spans: u64,
}

/// How search results are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceSort {
    #[default]
    Newest,
    Longest,
}

/// A trace search: a time window and optional span-level filters. A trace matches when
/// one of its spans matches every span filter (as in Jaeger).
#[derive(Clone, Debug, Default)]
pub struct TraceSearch {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub service: Option<String>,
    pub operation: Option<String>,
    pub min_duration_ns: Option<u64>,
    pub max_duration_ns: Option<u64>,
    pub errors_only: bool,
    pub attributes: Vec<(String, String)>,
    pub limit: u32,
    pub sort: TraceSort,
}

/// Reads of one tenant's traces.
pub struct TenantTraces<'a> {
    client: &'a ::clickhouse::Client,
    tenant: TenantId,
}

const NANOS: u64 = 1_000_000_000;

impl<'a> TenantTraces<'a> {
    pub(super) fn new(client: &'a ::clickhouse::Client, tenant: TenantId) -> Self {
        TenantTraces { client, tenant }
    }

    fn query(&self, template: &str) -> ::clickhouse::query::Query {
        assert!(template.contains(TENANT), "unscoped statement: {template}");
        // A formatted UUID is hex and dashes only, so it is safe to inline.
        let sql = template.replace(TENANT, &format!("toUUID('{}')", self.tenant));
        self.client.query(&sql)
    }

    /// The summary and all spans of a trace, or `None` when this tenant has no such trace.
    pub async fn trace(
        &self,
        trace_id: TraceId,
    ) -> Result<Option<(TraceSummary, Vec<SpanRow>)>, ClickHouseError> {
        let summary: Option<TraceSummary> = self
            .query(&queries::trace_summary())
            .bind(trace_id.to_hex())
            .fetch_optional()
            .await?;
        let Some(summary) = summary else {
            return Ok(None);
        };
        let spans = self
            .query(queries::TRACE_SPANS)
            .bind(summary.start_time_unix_nano / NANOS)
            .bind(summary.end_time_unix_nano.div_ceil(NANOS))
            .bind(trace_id.to_hex())
            .fetch_all::<SpanRow>()
            .await?;
        Ok(Some((summary, spans)))
    }

    pub async fn search(&self, search: &TraceSearch) -> Result<Vec<TraceSummary>, ClickHouseError> {
        let mut filter = SpanFilter::default();
        if let Some(service) = &search.service {
            filter.push(queries::SERVICE_IS, [Bind::Str(service.clone())]);
        }
        if let Some(operation) = &search.operation {
            filter.push(queries::OPERATION_IS, [Bind::Str(operation.clone())]);
        }
        if let Some(min) = search.min_duration_ns {
            filter.push(queries::DURATION_AT_LEAST, [Bind::U64(min)]);
        }
        if let Some(max) = search.max_duration_ns {
            filter.push(queries::DURATION_AT_MOST, [Bind::U64(max)]);
        }
        if search.errors_only {
            filter.push(queries::IS_ERROR, []);
        }
        for (key, value) in &search.attributes {
            let pair = [Bind::Str(key.clone()), Bind::Str(value.clone())];
            filter.push(queries::ATTRIBUTE_IS, pair.iter().chain(&pair).cloned());
        }
        let order = match search.sort {
            TraceSort::Newest => queries::ORDER_NEWEST,
            TraceSort::Longest => queries::ORDER_LONGEST,
        };
        let window = [
            Bind::U64(search.start_unix_nano / NANOS),
            Bind::U64(search.end_unix_nano.div_ceil(NANOS)),
        ];
        let mut binds: Vec<Bind> = window.to_vec();
        if !filter.conditions.is_empty() {
            binds.extend(window.iter().cloned());
            binds.extend(filter.binds.iter().cloned());
        }
        binds.push(Bind::U64(u64::from(search.limit)));
        let mut query = self.query(&queries::search(&filter, order));
        for bind in binds {
            query = match bind {
                Bind::U64(v) => query.bind(v),
                Bind::Str(v) => query.bind(v),
            };
        }
        let mut traces: Vec<TraceSummary> = query.fetch_all().await?;
        // The window is applied in whole seconds on the index; trim to the exact bounds.
        traces.retain(|t| {
            t.start_time_unix_nano >= search.start_unix_nano
                && t.start_time_unix_nano <= search.end_unix_nano
        });
        Ok(traces)
    }

    pub async fn stored_counts(&self) -> Result<StoredCounts, ClickHouseError> {
        Ok(self.query(queries::STORED_COUNTS).fetch_one().await?)
    }

    pub async fn services(&self, since_unix_nano: u64) -> Result<Vec<String>, ClickHouseError> {
        Ok(self
            .query(queries::SERVICES)
            .bind(since_unix_nano / NANOS)
            .fetch_all()
            .await?)
    }

    pub async fn operations(
        &self,
        service: &str,
        since_unix_nano: u64,
    ) -> Result<Vec<Operation>, ClickHouseError> {
        Ok(self
            .query(queries::OPERATIONS)
            .bind(service)
            .bind(since_unix_nano / NANOS)
            .fetch_all()
            .await?)
    }
}
