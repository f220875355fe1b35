//! The tenant-scoped read layer: [`TenantTraces`] can only be made for one tenant and
//! only runs statements from [`super::queries`] with that tenant's filter filled in.

use super::queries::{self, Bind, SpanFilter, TENANT};
use super::{ClickHouseError, SpanRow};
use serde::Deserialize;
use std::marker::PhantomData;
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

const NANOS: u64 = 1_000_000_000;

/// One read as it goes to ClickHouse: a statement of [`super::queries`] with the tenant
/// filled in, its binds in order, and the row type `R` it is fetched as.
///
/// The constructors below are pure and are the only way [`TenantTraces`] reads; the SQL
/// catalogue (`catalog.rs`) calls every one of them too, so the compatibility check sees
/// exactly what is sent. A new read needs a constructor here and an entry there; the
/// test `every_tenant_read_is_catalogued` in `catalog.rs` fails until it has both.
#[derive(Debug)]
pub(super) struct TenantRead<R> {
    sql: String,
    binds: Vec<Bind>,
    row: PhantomData<fn() -> R>,
}

impl<R> TenantRead<R> {
    fn new(tenant: TenantId, template: &str, binds: Vec<Bind>) -> Self {
        assert!(template.contains(TENANT), "unscoped statement: {template}");
        // A formatted UUID is hex and dashes only, so it is safe to inline.
        let sql = template.replace(TENANT, &format!("toUUID('{tenant}')"));
        TenantRead {
            sql,
            binds,
            row: PhantomData,
        }
    }

    /// The client's query with every bind applied; the client substitutes binds before
    /// sending, so its `sql_display()` is the statement as sent (but for `?fields`).
    pub(super) fn query(&self, client: &::clickhouse::Client) -> ::clickhouse::query::Query {
        self.binds
            .iter()
            .fold(client.query(&self.sql), |query, bind| match bind {
                Bind::U64(v) => query.bind(v),
                Bind::Str(v) => query.bind(v),
            })
    }
}

impl<R: ::clickhouse::RowOwned + ::clickhouse::RowRead> TenantRead<R> {
    async fn fetch_all(&self, client: &::clickhouse::Client) -> Result<Vec<R>, ClickHouseError> {
        Ok(self.query(client).fetch_all().await?)
    }

    async fn fetch_optional(
        &self,
        client: &::clickhouse::Client,
    ) -> Result<Option<R>, ClickHouseError> {
        Ok(self.query(client).fetch_optional().await?)
    }

    async fn fetch_one(&self, client: &::clickhouse::Client) -> Result<R, ClickHouseError> {
        Ok(self.query(client).fetch_one().await?)
    }
}

impl TenantRead<TraceSummary> {
    pub(super) fn trace_summary(tenant: TenantId, trace_id: TraceId) -> Self {
        Self::new(
            tenant,
            &queries::trace_summary(),
            vec![Bind::Str(trace_id.to_hex())],
        )
    }

    pub(super) fn search(tenant: TenantId, search: &TraceSearch) -> Self {
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
        Self::new(tenant, &queries::search(&filter, order), binds)
    }
}

impl TenantRead<SpanRow> {
    /// The spans of a trace, within the window its summary gives.
    pub(super) fn trace_spans(tenant: TenantId, trace_id: TraceId, summary: &TraceSummary) -> Self {
        Self::new(
            tenant,
            queries::TRACE_SPANS,
            vec![
                Bind::U64(summary.start_time_unix_nano / NANOS),
                Bind::U64(summary.end_time_unix_nano.div_ceil(NANOS)),
                Bind::Str(trace_id.to_hex()),
            ],
        )
    }
}

impl TenantRead<StoredCounts> {
    pub(super) fn stored_counts(tenant: TenantId) -> Self {
        Self::new(tenant, queries::STORED_COUNTS, Vec::new())
    }
}

impl TenantRead<String> {
    pub(super) fn services(tenant: TenantId, since_unix_nano: u64) -> Self {
        Self::new(
            tenant,
            queries::SERVICES,
            vec![Bind::U64(since_unix_nano / NANOS)],
        )
    }
}

impl TenantRead<Operation> {
    pub(super) fn operations(tenant: TenantId, service: &str, since_unix_nano: u64) -> Self {
        Self::new(
            tenant,
            queries::OPERATIONS,
            vec![
                Bind::Str(service.to_owned()),
                Bind::U64(since_unix_nano / NANOS),
            ],
        )
    }
}

/// Reads of one tenant's traces.
pub struct TenantTraces<'a> {
    client: &'a ::clickhouse::Client,
    tenant: TenantId,
}

impl<'a> TenantTraces<'a> {
    pub(super) fn new(client: &'a ::clickhouse::Client, tenant: TenantId) -> Self {
        TenantTraces { client, tenant }
    }

    /// The summary and all spans of a trace, or `None` when this tenant has no such trace.
    pub async fn trace(
        &self,
        trace_id: TraceId,
    ) -> Result<Option<(TraceSummary, Vec<SpanRow>)>, ClickHouseError> {
        let summary = TenantRead::trace_summary(self.tenant, trace_id)
            .fetch_optional(self.client)
            .await?;
        let Some(summary) = summary else {
            return Ok(None);
        };
        let spans = TenantRead::trace_spans(self.tenant, trace_id, &summary)
            .fetch_all(self.client)
            .await?;
        Ok(Some((summary, spans)))
    }

    pub async fn search(&self, search: &TraceSearch) -> Result<Vec<TraceSummary>, ClickHouseError> {
        let mut traces = TenantRead::search(self.tenant, search)
            .fetch_all(self.client)
            .await?;
        // The window is applied in whole seconds on the index; trim to the exact bounds.
        traces.retain(|t| {
            t.start_time_unix_nano >= search.start_unix_nano
                && t.start_time_unix_nano <= search.end_unix_nano
        });
        Ok(traces)
    }

    pub async fn stored_counts(&self) -> Result<StoredCounts, ClickHouseError> {
        TenantRead::stored_counts(self.tenant)
            .fetch_one(self.client)
            .await
    }

    pub async fn services(&self, since_unix_nano: u64) -> Result<Vec<String>, ClickHouseError> {
        TenantRead::services(self.tenant, since_unix_nano)
            .fetch_all(self.client)
            .await
    }

    pub async fn operations(
        &self,
        service: &str,
        since_unix_nano: u64,
    ) -> Result<Vec<Operation>, ClickHouseError> {
        TenantRead::operations(self.tenant, service, since_unix_nano)
            .fetch_all(self.client)
            .await
    }
}
