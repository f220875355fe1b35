//! Row types of the ClickHouse tables, fields in table column order (see the module note
//! on validation). Ids are binary; attributes are parallel key/value arrays.

use serde::{Deserialize, Serialize};

/// A row type stored in one table, inserted with its fields as the column list.
pub(super) trait Table: ::clickhouse::RowOwned + ::clickhouse::RowWrite {
    const TABLE: &'static str;
}

impl Table for SpanRow {
    const TABLE: &'static str = "spans";
}

impl Table for TraceIndexRow {
    const TABLE: &'static str = "trace_index";
}

/// One stored span (`spans` table).
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct SpanRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    pub tenant_id: uuid::Uuid,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zeros for a root span.
    pub parent_span_id: [u8; 8],
    pub trace_state: String,
    pub service_name: String,
    pub name: String,
    /// OTLP `SpanKind` number.
    pub kind: u8,
    /// Start in whole seconds, for partitioning and the sort key.
    pub start_time: u32,
    pub start_time_unix_nano: u64,
    pub duration_ns: u64,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: u8,
    pub status_message: String,
    pub scope_name: String,
    pub scope_version: String,
    pub attribute_keys: Vec<String>,
    pub attribute_values: Vec<String>,
    pub resource_keys: Vec<String>,
    pub resource_values: Vec<String>,
    pub event_times_unix_nano: Vec<u64>,
    pub event_names: Vec<String>,
    /// One JSON object per event.
    pub event_attributes: Vec<String>,
    pub link_trace_ids: Vec<[u8; 16]>,
    pub link_span_ids: Vec<[u8; 8]>,
    /// One JSON object per link.
    pub link_attributes: Vec<String>,
    /// 1 / probability with which the trace was kept; 1.0 when every trace is kept.
    pub sample_rate: f32,
}

/// Part of one trace's summary (`trace_index` table); queries sum a trace's rows.
#[derive(Clone, Debug, PartialEq, ::clickhouse::Row, Serialize, Deserialize)]
pub struct TraceIndexRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    pub tenant_id: uuid::Uuid,
    pub trace_id: [u8; 16],
    pub start_time: u32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// Empty unless this part contains the root span.
    pub root_service: String,
    pub root_name: String,
    pub span_count: u32,
    pub error_count: u32,
    pub service_names: Vec<String>,
}

impl TraceIndexRow {
    /// Summarises spans of one tenant into one index row per trace.
    pub fn summarise(spans: &[SpanRow]) -> Vec<TraceIndexRow> {
        let mut by_trace: std::collections::HashMap<(uuid::Uuid, [u8; 16]), TraceIndexRow> =
            std::collections::HashMap::new();
        for span in spans {
            let end = span.start_time_unix_nano.saturating_add(span.duration_ns);
            let row = by_trace
                .entry((span.tenant_id, span.trace_id))
                .or_insert_with(|| TraceIndexRow {
                    tenant_id: span.tenant_id,
                    trace_id: span.trace_id,
                    start_time: span.start_time,
                    start_time_unix_nano: span.start_time_unix_nano,
                    end_time_unix_nano: end,
                    root_service: String::new(),
                    root_name: String::new(),
                    span_count: 0,
                    error_count: 0,
                    service_names: Vec::new(),
                });
            if span.start_time_unix_nano < row.start_time_unix_nano {
                row.start_time_unix_nano = span.start_time_unix_nano;
                row.start_time = span.start_time;
            }
            row.end_time_unix_nano = row.end_time_unix_nano.max(end);
            if span.parent_span_id == [0; 8] {
                row.root_service.clone_from(&span.service_name);
                row.root_name.clone_from(&span.name);
            }
            row.span_count += 1;
            row.error_count += u32::from(span.status_code == weft_model::StatusCode::Error as u8);
            if !row.service_names.contains(&span.service_name) {
                row.service_names.push(span.service_name.clone());
            }
        }
        by_trace.into_values().collect()
    }
}
