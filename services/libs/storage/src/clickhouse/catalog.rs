//! The SQL catalogue: every statement the ClickHouse layer sends, fully bound, in an order
//! that runs on an empty database. It is built from the same constants and builders the
//! store uses, so it cannot drift from them, and it exists so that a test can run all of
//! Weft's SQL on every ClickHouse version Weft supports (`tests/clickhouse_compat.rs`).
//!
//! What must stay true: whatever [`super::ClickHouse`], the migrator or
//! [`super::TenantTraces`] sends is listed here. The tests at the bottom fail when a read,
//! a table or a statement of the store or the migrator is added without an entry here.

use super::erase::{self, TENANT_TABLES};
use super::histogram::DurationHistogram;
use super::migrate::{self, ServerVersion};
use super::queries::TraceSample;
use super::rows::{MetricRow, Table};
use super::tenant::TenantRead;
use super::{
    AttributeFilter, AttributeTest, LogCursor, LogRow, LogSearch, MetricsWindow, RedSeries,
    ServiceEdgeRow, SpanMetricRow, SpanRow, TraceCursor, TraceIndexRow, TraceSearch,
    TraceSelection, TraceSort, TraceSummary,
};
use weft_model::{TenantId, TraceId};

/// Group sizes for "what is different" under its sample size, so the representative
/// rows are read (the sample's bounds are binds, checked in the storage tests).
const SAMPLED: super::SelectionCounts = super::SelectionCounts {
    selected: 1,
    baseline: 1,
};

/// Which part of the storage layer sends a statement, and so what a check may expect of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementOrigin {
    /// The store's and the migrator's own statements: ping, version probe, the ledger.
    Bookkeeping,
    /// Statement `statement` (from 1) of migration `version`. With a `min_version`, the
    /// migrator defers it on older servers, which are expected to reject it.
    Migration {
        version: u32,
        statement: u32,
        min_version: Option<ServerVersion>,
    },
    /// Rows of `table`. The store sends them as RowBinary with the row type's fields as
    /// the column list; the catalogue sends one representative row as `VALUES` with the
    /// same column list, which checks the columns and that each value fits its type.
    Insert { table: &'static str },
    /// A tenant-scoped read, listed after the inserts so that it reads their rows.
    Read,
    /// The erasure of a deleted tenant's rows of `table`, listed last.
    Erasure { table: &'static str },
}

/// One statement as the storage layer sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CataloguedStatement {
    /// A short unique label, for example `migration 1.3` or `search by service`.
    pub name: String,
    pub origin: StatementOrigin,
    pub sql: String,
}

impl CataloguedStatement {
    /// The oldest server the migrator runs this statement on, when it defers it on older ones.
    pub fn min_version(&self) -> Option<ServerVersion> {
        match self.origin {
            StatementOrigin::Migration { min_version, .. } => min_version,
            _ => None,
        }
    }
}

/// Every statement of the ClickHouse layer, for one database.
#[derive(Clone, Debug)]
pub struct SqlCatalogue {
    /// Sent without a database, before everything else.
    pub create_database: String,
    /// Sent in the database, in this order: bookkeeping and every migration statement
    /// (deferred ones included), the inserts, then the reads.
    pub statements: Vec<CataloguedStatement>,
    /// Sent without a database, after everything else.
    pub drop_database: String,
}

/// The tenant of the representative rows.
const TENANT: uuid::Uuid = uuid::Uuid::from_u128(0x5b6e_0a7c_1f2d_4e3a_9b8c_7d6e_5f4a_3b2c);

/// Ids that exercise the escaping of binary values: quote, backslash, NUL, tab, newline.
const TRACE_ID: [u8; 16] = [
    0x27, 0x5c, 0x00, 0x09, 0x0a, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0,
];
const SPAN_ID: [u8; 8] = [0x5c, 0x27, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06];

/// A customer attribute that exercises the escaping of bound strings.
const CUSTOMER: (&str, &str) = ("customer", "O'Brien \\ \t end");

const NANOS: u64 = 1_000_000_000;

impl SqlCatalogue {
    /// The catalogue for `database`, with `{retention_days}` filled in and representative
    /// rows that start at `now_unix_nano` (so that no retention TTL removes them).
    pub fn new(database: &str, retention_days: u32, now_unix_nano: u64) -> SqlCatalogue {
        // Building a query sends nothing; the client only formats it.
        let client = ::clickhouse::Client::default();
        let mut statements = Vec::new();
        let mut push = |name: String, origin: StatementOrigin, sql: String| {
            statements.push(CataloguedStatement { name, origin, sql });
        };

        for (name, sql) in [
            ("ping", super::PING),
            ("server version", migrate::SERVER_VERSION),
            ("create ledger", migrate::CREATE_LEDGER),
            ("applied statements", migrate::APPLIED_STATEMENTS),
        ] {
            push(
                name.to_owned(),
                StatementOrigin::Bookkeeping,
                sql.to_owned(),
            );
        }
        for (version, description, text) in migrate::MIGRATIONS {
            for statement in migrate::statements(text, retention_days) {
                push(
                    format!("migration {version}.{} ({description})", statement.index),
                    StatementOrigin::Migration {
                        version: *version,
                        statement: statement.index,
                        min_version: statement.min_version,
                    },
                    statement.sql,
                );
            }
        }
        let (version, description, _) = migrate::MIGRATIONS[0];
        push(
            "record applied".to_owned(),
            StatementOrigin::Bookkeeping,
            migrate::record_applied(&client, (version, 1), description)
                .sql_display()
                .to_string(),
        );

        push(
            "kill an abandoned read".to_owned(),
            StatementOrigin::Bookkeeping,
            client
                .query(super::queries::KILL_QUERY)
                .bind("weft-read-catalogue")
                .sql_display()
                .to_string(),
        );
        push(
            "is a lost insert running".to_owned(),
            StatementOrigin::Bookkeeping,
            client
                .query(super::queries::QUERY_RUNNING)
                .bind("weft-logs-catalogue")
                .sql_display()
                .to_string(),
        );
        // Every read carries these settings as URL parameters; both engines must know them.
        let settings: Vec<String> = super::ReadLimits::default()
            .settings()
            .iter()
            .map(|(name, value)| format!("{name} = {value}"))
            .collect();
        push(
            "read limits".to_owned(),
            StatementOrigin::Bookkeeping,
            format!("SELECT 1 SETTINGS {}", settings.join(", ")),
        );

        let span = representative_span(now_unix_nano);
        let index = TraceIndexRow::summarise(std::slice::from_ref(&span));
        let metric = representative_metric(&span);
        let edge = representative_edge(&span);
        let log = representative_log(&span);
        for (table, sql) in [
            // With its trace index row, which the view of migration 0008 makes.
            insert::<SpanRow>(std::slice::from_ref(&span)),
            // Metrics go with the marker of the message they count, as the sampler
            // writes them.
            insert::<SpanMetricRow>(&[metric.clone(), metric.marker(MESSAGE)]),
            insert::<ServiceEdgeRow>(&[edge.clone(), edge.marker(MESSAGE)]),
            insert::<LogRow>(std::slice::from_ref(&log)),
        ] {
            push(
                format!("insert {table}"),
                StatementOrigin::Insert { table },
                sql,
            );
        }

        let tenant = TenantId::new(TENANT);
        let trace_id =
            TraceId::from_bytes(&TRACE_ID).expect("the representative trace id is valid");
        let summary = summary_of(&index[0]);
        let since = now_unix_nano - 3600 * NANOS;
        let mut read = |name: &str, sql: String| push(name.to_owned(), StatementOrigin::Read, sql);
        read(
            "trace summary",
            sent(&client, &TenantRead::trace_summary(tenant, trace_id)),
        );
        read(
            "trace spans",
            sent(
                &client,
                &TenantRead::trace_spans(tenant, trace_id, &summary),
            ),
        );
        read(
            "spans of traces",
            sent(
                &client,
                &TenantRead::spans_of_traces(tenant, &[summary.clone(), other_trace(&summary)]),
            ),
        );
        read(
            "stored traffic",
            sent(
                &client,
                &TenantRead::stored_traffic(tenant, since, now_unix_nano + 60 * NANOS),
            ),
        );
        read(
            "services",
            sent(&client, &TenantRead::services(tenant, since)),
        );
        read(
            "operations",
            sent(
                &client,
                &TenantRead::operations(tenant, &span.service_name, since),
            ),
        );
        read(
            "stored counts",
            sent(&client, &TenantRead::stored_counts(tenant)),
        );
        for (name, search) in searches(&span, now_unix_nano) {
            read(
                &name,
                sent(&client, &TenantRead::search_page_ids(tenant, &search)),
            );
            let ids = vec![hex::encode_upper(span.trace_id)];
            read(
                &format!("page of {name}"),
                sent(&client, &TenantRead::search_page(tenant, &search, ids)),
            );
        }
        let mut all_searches = searches(&span, now_unix_nano);
        let (_, every_filter) = all_searches.pop().expect("a search with every filter");
        let whole = &all_searches[0].1;
        for (name, selection) in selections(&span) {
            read(
                &format!("selection counts of {name}"),
                sent(
                    &client,
                    &TenantRead::selection_counts(tenant, whole, &selection),
                ),
            );
            for sample in [TraceSample::IdRange, TraceSample::IdHash] {
                read(
                    &format!("attribute values of {name} sampled by {sample:?}"),
                    sent(
                        &client,
                        &TenantRead::attribute_values(
                            tenant,
                            whole,
                            &selection,
                            &["trace_id"],
                            (SAMPLED, 10_000),
                            sample,
                        ),
                    ),
                );
            }
        }
        read(
            "selection counts with every filter",
            sent(
                &client,
                &TenantRead::selection_counts(tenant, &every_filter, &TraceSelection::Errors),
            ),
        );
        read(
            "attribute values with every filter",
            sent(
                &client,
                &TenantRead::attribute_values(
                    tenant,
                    &every_filter,
                    &TraceSelection::Errors,
                    &[],
                    (SAMPLED, 10_000),
                    TraceSample::IdRange,
                ),
            ),
        );
        let window = MetricsWindow {
            start_unix_nano: since,
            end_unix_nano: now_unix_nano + 60 * NANOS,
        };
        read(
            "service red",
            sent(&client, &TenantRead::service_red(tenant, window)),
        );
        read(
            "operation red",
            sent(
                &client,
                &TenantRead::operation_red(tenant, &metric.service_name, window),
            ),
        );
        let series = RedSeries {
            service: metric.service_name.clone(),
            operation: None,
            step_seconds: 300,
        };
        let of_operation = RedSeries {
            operation: Some(metric.operation.clone()),
            ..series.clone()
        };
        read(
            "service series",
            sent(
                &client,
                &TenantRead::service_series(tenant, &series, window),
            ),
        );
        read(
            "service series of an operation",
            sent(
                &client,
                &TenantRead::service_series(tenant, &of_operation, window),
            ),
        );
        read(
            "series of every service",
            sent(
                &client,
                &TenantRead::named_series(tenant, None, 300, window),
            ),
        );
        read(
            "series of every operation of a service",
            sent(
                &client,
                &TenantRead::named_series(tenant, Some(&metric.service_name), 300, window),
            ),
        );
        read(
            "service edges",
            sent(&client, &TenantRead::service_edges(tenant, window)),
        );
        read(
            "spans received",
            sent(&client, &TenantRead::spans_received(tenant, window)),
        );
        let minutes = (metric.minute, metric.minute);
        let messages = [MESSAGE - 1, MESSAGE, MESSAGE + 1];
        for table in [SpanMetricRow::TABLE, ServiceEdgeRow::TABLE] {
            read(
                &format!("counted messages of {table}"),
                sent(
                    &client,
                    &TenantRead::counted_messages(tenant, table, &messages, minutes),
                ),
            );
        }
        for (name, search) in log_searches(&log) {
            read(
                &name,
                sent(&client, &TenantRead::log_search(tenant, &search, 0)),
            );
            read(
                &format!("where the page begins: {name}"),
                sent(
                    &client,
                    &TenantRead::log_page_start(tenant, &search, search.start_unix_nano),
                ),
            );
        }
        let mut searches = log_searches(&log);
        let (_, every_filter) = searches.pop().expect("a search with every filter");
        let (_, log_window) = searches.swap_remove(0);
        read(
            "log histogram",
            sent(&client, &TenantRead::log_histogram(tenant, &log_window, 60)),
        );
        read(
            "log histogram with every filter",
            sent(
                &client,
                &TenantRead::log_histogram(tenant, &every_filter, 60),
            ),
        );
        let traces = [TRACE_ID, other_trace(&summary).trace_id];
        let seconds = (span.start_time, span.start_time);
        read(
            "stored spans",
            sent(&client, &TenantRead::stored_spans(tenant, &traces, seconds)),
        );
        read(
            "stored log lines",
            sent(
                &client,
                &TenantRead::stored_log_lines(
                    tenant,
                    &[MESSAGE - 1, MESSAGE, MESSAGE + 1],
                    (log.time, log.time),
                ),
            ),
        );
        for table in TENANT_TABLES {
            read(
                &format!("stored rows of {table}"),
                erase::stored_rows(table, tenant),
            );
        }
        for table in TENANT_TABLES {
            push(
                format!("erase {table}"),
                StatementOrigin::Erasure { table },
                erase::erasure(table, tenant),
            );
        }

        SqlCatalogue {
            create_database: super::create_database(database),
            statements,
            drop_database: super::drop_database(database),
        }
    }
}

/// A search of each filter kind, each sort order, and one with every filter at once; all
/// of them match the representative span.
fn searches(span: &SpanRow, now_unix_nano: u64) -> Vec<(String, TraceSearch)> {
    let window = TraceSearch {
        start_unix_nano: now_unix_nano - 60 * NANOS,
        end_unix_nano: now_unix_nano + 60 * NANOS,
        limit: 20,
        ..TraceSearch::default()
    };
    let every_filter = TraceSearch {
        service: Some(span.service_name.clone()),
        operation: Some(span.name.clone()),
        min_duration_ns: Some(span.duration_ns / 2),
        max_duration_ns: Some(span.duration_ns * 2),
        kinds: vec![span.kind, 5],
        errors_only: true,
        attributes: vec![
            AttributeFilter::equals(CUSTOMER.0, CUSTOMER.1),
            AttributeFilter::equals(&span.resource_keys[0], &span.resource_values[0]),
            AttributeFilter {
                key: "http.route".to_owned(),
                test: AttributeTest::NotEquals("/health".to_owned()),
            },
            AttributeFilter {
                key: CUSTOMER.0.to_owned(),
                test: AttributeTest::Exists,
            },
        ],
        min_trace_duration_ns: Some(span.duration_ns / 2),
        max_trace_duration_ns: Some(span.duration_ns * 2),
        sampled_by: Some(span.sampled_by.clone()),
        sort: TraceSort::Longest,
        after: Some(TraceCursor {
            sort: TraceSort::Longest,
            key: span.duration_ns * 3,
            start_unix_nano: span.start_time_unix_nano,
            trace_id: [0xff; 16],
        }),
        ..window.clone()
    };
    let numeric = |test: AttributeTest| TraceSearch {
        attributes: vec![AttributeFilter {
            key: "retry.count".to_owned(),
            test,
        }],
        ..window.clone()
    };
    let searches = [
        ("search newest", window.clone()),
        (
            "search longest",
            TraceSearch {
                sort: TraceSort::Longest,
                ..window.clone()
            },
        ),
        (
            "search by service",
            TraceSearch {
                service: every_filter.service.clone(),
                ..window.clone()
            },
        ),
        (
            "search by operation",
            TraceSearch {
                operation: every_filter.operation.clone(),
                ..window.clone()
            },
        ),
        (
            "search by minimum duration",
            TraceSearch {
                min_duration_ns: every_filter.min_duration_ns,
                ..window.clone()
            },
        ),
        (
            "search by maximum duration",
            TraceSearch {
                max_duration_ns: every_filter.max_duration_ns,
                ..window.clone()
            },
        ),
        (
            "search errors only",
            TraceSearch {
                errors_only: true,
                ..window.clone()
            },
        ),
        (
            "search by attribute",
            TraceSearch {
                attributes: every_filter.attributes[..1].to_vec(),
                ..window.clone()
            },
        ),
        (
            "search most errors first",
            TraceSearch {
                sort: TraceSort::MostErrors,
                ..window.clone()
            },
        ),
        (
            "search by span kind",
            TraceSearch {
                kinds: every_filter.kinds.clone(),
                ..window.clone()
            },
        ),
        (
            "search by trace duration",
            TraceSearch {
                min_trace_duration_ns: every_filter.min_trace_duration_ns,
                max_trace_duration_ns: every_filter.max_trace_duration_ns,
                ..window.clone()
            },
        ),
        (
            "search by sampling rule",
            TraceSearch {
                sampled_by: every_filter.sampled_by.clone(),
                ..window.clone()
            },
        ),
        (
            "search by attribute above",
            numeric(AttributeTest::Above(1.5)),
        ),
        (
            "search by attribute at least",
            numeric(AttributeTest::AtLeast(2.0)),
        ),
        (
            "search by attribute below",
            numeric(AttributeTest::Below(1e9)),
        ),
        (
            "search by attribute at most",
            numeric(AttributeTest::AtMost(2.0)),
        ),
        (
            "search newest after a cursor",
            TraceSearch {
                after: Some(TraceCursor {
                    sort: TraceSort::Newest,
                    key: span.start_time_unix_nano + 1,
                    start_unix_nano: span.start_time_unix_nano + 1,
                    trace_id: [0; 16],
                }),
                ..window.clone()
            },
        ),
        (
            "search most errors after a cursor",
            TraceSearch {
                sort: TraceSort::MostErrors,
                after: Some(TraceCursor {
                    sort: TraceSort::MostErrors,
                    key: 2,
                    start_unix_nano: span.start_time_unix_nano,
                    trace_id: [0; 16],
                }),
                ..window.clone()
            },
        ),
        ("search with every filter", every_filter),
    ];
    searches
        .into_iter()
        .map(|(name, search)| (name.to_owned(), search))
        .collect()
}

/// A selection of each kind for "what is different"; all select the representative trace.
fn selections(span: &SpanRow) -> Vec<(&'static str, TraceSelection)> {
    vec![
        ("errors", TraceSelection::Errors),
        (
            "slow traces",
            TraceSelection::SlowerThan(span.duration_ns / 2),
        ),
        (
            "a region",
            TraceSelection::Region {
                start_unix_nano: span.start_time_unix_nano - NANOS,
                end_unix_nano: span.start_time_unix_nano + NANOS,
                min_duration_ns: 0,
                max_duration_ns: u64::MAX,
            },
        ),
    ]
}

/// A log search of each filter kind, a next page, and one with every filter at once;
/// all of them match the representative line. The last is the one with every filter.
fn log_searches(log: &LogRow) -> Vec<(String, LogSearch)> {
    let window = LogSearch {
        start_unix_nano: log.time_unix_nano - 60 * NANOS,
        end_unix_nano: log.time_unix_nano + 60 * NANOS,
        limit: 50,
        ..LogSearch::default()
    };
    let trace_id = TraceId::from_bytes(&log.trace_id).expect("a valid trace id");
    let span_id = weft_model::SpanId::from_bytes(&log.span_id).expect("a valid span id");
    let after = LogCursor {
        time_unix_nano: log.time_unix_nano + 1,
        message: log.message,
        message_line: log.message_line,
    };
    let every_filter = LogSearch {
        service: Some(log.service_name.clone()),
        min_severity: Some(log.severity_number),
        text: Some("DECLINED".to_owned()),
        attributes: vec![(CUSTOMER.0.to_owned(), CUSTOMER.1.to_owned())],
        trace_id: Some(trace_id),
        span_id: Some(span_id),
        before: Some(after),
        ..window.clone()
    };
    let searches = [
        ("logs newest", window.clone()),
        (
            "logs by service",
            LogSearch {
                service: every_filter.service.clone(),
                ..window.clone()
            },
        ),
        (
            "logs by severity",
            LogSearch {
                min_severity: every_filter.min_severity,
                ..window.clone()
            },
        ),
        (
            "logs by text",
            LogSearch {
                text: every_filter.text.clone(),
                ..window.clone()
            },
        ),
        (
            "logs by attribute",
            LogSearch {
                attributes: every_filter.attributes.clone(),
                ..window.clone()
            },
        ),
        (
            "logs of a trace",
            LogSearch {
                trace_id: Some(trace_id),
                ..window.clone()
            },
        ),
        (
            "logs of a span",
            LogSearch {
                span_id: Some(span_id),
                ..window.clone()
            },
        ),
        (
            "logs next page",
            LogSearch {
                before: Some(after),
                ..window.clone()
            },
        ),
        ("logs with every filter", every_filter),
    ];
    searches
        .into_iter()
        .map(|(name, search)| (name.to_owned(), search))
        .collect()
}

/// The statement a read sends: the client's SQL with the binds applied and, as the
/// client does when it fetches, `?fields` replaced by the row type's columns.
fn sent<R: ::clickhouse::Row>(client: &::clickhouse::Client, read: &TenantRead<R>) -> String {
    let sql = read.query(client).sql_display().to_string();
    sql.replace("?fields", &column_list::<R>())
}

/// The column list the client derives from a row type: quoted names, comma-separated.
pub(super) fn column_list<R: ::clickhouse::Row>() -> String {
    R::COLUMN_NAMES
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An insert of one row with the column list the client's RowBinary insert uses.
fn insert<T: Table + CatalogueRow>(rows: &[T]) -> (&'static str, String) {
    let rows: Vec<String> = rows
        .iter()
        .map(|row| {
            let values: Vec<String> = row.literals().into_iter().map(|(_, v)| v).collect();
            format!("({})", values.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {}({}) VALUES {}",
        T::TABLE,
        column_list::<T>(),
        rows.join(", ")
    );
    (T::TABLE, sql)
}

/// A row as SQL literals, field by field in struct order, named by column.
trait CatalogueRow {
    fn literals(&self) -> Vec<(&'static str, String)>;
}

impl CatalogueRow for SpanRow {
    fn literals(&self) -> Vec<(&'static str, String)> {
        // Destructured so that a new field does not compile until it has a literal.
        let SpanRow {
            tenant_id,
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            service_name,
            name,
            kind,
            start_time,
            start_time_unix_nano,
            duration_ns,
            status_code,
            status_message,
            scope_name,
            scope_version,
            attribute_keys,
            attribute_values,
            resource_keys,
            resource_values,
            event_times_unix_nano,
            event_names,
            event_attributes,
            link_trace_ids,
            link_span_ids,
            link_attributes,
            sample_rate,
            sampled_by,
        } = self;
        vec![
            ("tenant_id", string(&tenant_id.to_string())),
            ("trace_id", bytes(trace_id)),
            ("span_id", bytes(span_id)),
            ("parent_span_id", bytes(parent_span_id)),
            ("trace_state", string(trace_state)),
            ("service_name", string(service_name)),
            ("name", string(name)),
            ("kind", kind.to_string()),
            ("start_time", start_time.to_string()),
            ("start_time_unix_nano", start_time_unix_nano.to_string()),
            ("duration_ns", duration_ns.to_string()),
            ("status_code", status_code.to_string()),
            ("status_message", string(status_message)),
            ("scope_name", string(scope_name)),
            ("scope_version", string(scope_version)),
            ("attribute_keys", array(attribute_keys, |v| string(v))),
            ("attribute_values", array(attribute_values, |v| string(v))),
            ("resource_keys", array(resource_keys, |v| string(v))),
            ("resource_values", array(resource_values, |v| string(v))),
            (
                "event_times_unix_nano",
                array(event_times_unix_nano, u64::to_string),
            ),
            ("event_names", array(event_names, |v| string(v))),
            ("event_attributes", array(event_attributes, |v| string(v))),
            ("link_trace_ids", array(link_trace_ids, |v| bytes(v))),
            ("link_span_ids", array(link_span_ids, |v| bytes(v))),
            ("link_attributes", array(link_attributes, |v| string(v))),
            ("sample_rate", sample_rate.to_string()),
            ("sampled_by", string(sampled_by)),
        ]
    }
}

impl CatalogueRow for SpanMetricRow {
    fn literals(&self) -> Vec<(&'static str, String)> {
        let SpanMetricRow {
            tenant_id,
            minute,
            message,
            service_name,
            operation,
            kind,
            status_code,
            spans,
            errors,
            duration_sum_ns,
            duration_buckets,
            duration_counts,
            messages,
        } = self;
        vec![
            ("tenant_id", string(&tenant_id.to_string())),
            ("minute", minute.to_string()),
            ("message", message.to_string()),
            ("service_name", string(service_name)),
            ("operation", string(operation)),
            ("kind", kind.to_string()),
            ("status_code", status_code.to_string()),
            ("spans", spans.to_string()),
            ("errors", errors.to_string()),
            ("duration_sum_ns", duration_sum_ns.to_string()),
            (
                "durationMap.bucket",
                array(duration_buckets, u16::to_string),
            ),
            ("durationMap.count", array(duration_counts, u64::to_string)),
            ("messages", messages.to_string()),
        ]
    }
}

impl CatalogueRow for ServiceEdgeRow {
    fn literals(&self) -> Vec<(&'static str, String)> {
        let ServiceEdgeRow {
            tenant_id,
            minute,
            message,
            caller_service,
            callee_service,
            calls,
            errors,
            duration_sum_ns,
            duration_buckets,
            duration_counts,
            messages,
        } = self;
        vec![
            ("tenant_id", string(&tenant_id.to_string())),
            ("minute", minute.to_string()),
            ("message", message.to_string()),
            ("caller_service", string(caller_service)),
            ("callee_service", string(callee_service)),
            ("calls", calls.to_string()),
            ("errors", errors.to_string()),
            ("duration_sum_ns", duration_sum_ns.to_string()),
            (
                "durationMap.bucket",
                array(duration_buckets, u16::to_string),
            ),
            ("durationMap.count", array(duration_counts, u64::to_string)),
            ("messages", messages.to_string()),
        ]
    }
}

impl CatalogueRow for LogRow {
    fn literals(&self) -> Vec<(&'static str, String)> {
        let LogRow {
            tenant_id,
            time,
            time_unix_nano,
            observed_time_unix_nano,
            trace_id,
            span_id,
            severity_number,
            severity_text,
            body,
            service_name,
            scope_name,
            scope_version,
            attribute_keys,
            attribute_values,
            resource_keys,
            resource_values,
            message,
            message_line,
        } = self;
        vec![
            ("tenant_id", string(&tenant_id.to_string())),
            ("time", time.to_string()),
            ("time_unix_nano", time_unix_nano.to_string()),
            (
                "observed_time_unix_nano",
                observed_time_unix_nano.to_string(),
            ),
            ("trace_id", bytes(trace_id)),
            ("span_id", bytes(span_id)),
            ("severity_number", severity_number.to_string()),
            ("severity_text", string(severity_text)),
            ("body", string(body)),
            ("service_name", string(service_name)),
            ("scope_name", string(scope_name)),
            ("scope_version", string(scope_version)),
            ("attribute_keys", array(attribute_keys, |v| string(v))),
            ("attribute_values", array(attribute_values, |v| string(v))),
            ("resource_keys", array(resource_keys, |v| string(v))),
            ("resource_values", array(resource_values, |v| string(v))),
            ("message", message.to_string()),
            ("message_line", message_line.to_string()),
        ]
    }
}

/// A quoted string; both versions read `\\` and `\'` inside quotes.
fn string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Bytes as a quoted string of `\xHH` escapes: ClickHouse 18.16 has no `X'…'` literal.
fn bytes(value: &[u8]) -> String {
    let escaped: String = value.iter().map(|b| format!("\\x{b:02X}")).collect();
    format!("'{escaped}'")
}

fn array<T>(values: &[T], literal: impl Fn(&T) -> String) -> String {
    let items: Vec<String> = values.iter().map(literal).collect();
    format!("[{}]", items.join(","))
}

/// A root span with an error, attributes, an event and a link, starting at `now_unix_nano`.
fn representative_span(now_unix_nano: u64) -> SpanRow {
    SpanRow {
        tenant_id: TENANT,
        trace_id: TRACE_ID,
        span_id: SPAN_ID,
        parent_span_id: [0; 8],
        trace_state: "rojo=00f067aa0ba902b7".to_owned(),
        service_name: "checkout".to_owned(),
        name: "POST /cart".to_owned(),
        kind: 2,
        start_time: u32::try_from(now_unix_nano / NANOS).expect("a start second fits DateTime"),
        start_time_unix_nano: now_unix_nano,
        duration_ns: 250_000_000,
        status_code: 2,
        status_message: "card declined".to_owned(),
        scope_name: "weft-catalogue".to_owned(),
        scope_version: "1.0".to_owned(),
        attribute_keys: vec![
            "http.route".to_owned(),
            CUSTOMER.0.to_owned(),
            "retry.count".to_owned(),
        ],
        attribute_values: vec!["/cart".to_owned(), CUSTOMER.1.to_owned(), "2".to_owned()],
        resource_keys: vec!["deployment.environment".to_owned()].into(),
        resource_values: vec!["production".to_owned()].into(),
        event_times_unix_nano: vec![now_unix_nano + 1_000],
        event_names: vec!["retry".to_owned()],
        event_attributes: vec![r#"{"attempt":"2"}"#.to_owned()],
        link_trace_ids: vec![[0x11; 16]],
        link_span_ids: vec![[0x22; 8]],
        link_attributes: vec!["{}".to_owned()],
        sample_rate: 4.0,
        sampled_by: "keep 25% of checkout".to_owned(),
    }
}

/// An error line of the span, carried by [`MESSAGE`].
fn representative_log(span: &SpanRow) -> LogRow {
    LogRow {
        tenant_id: span.tenant_id,
        time: span.start_time,
        time_unix_nano: span.start_time_unix_nano + 1_000,
        observed_time_unix_nano: span.start_time_unix_nano + 2_000,
        trace_id: span.trace_id,
        span_id: span.span_id,
        severity_number: 17,
        severity_text: "ERROR".to_owned(),
        body: "card declined for O'Brien \\ retrying".to_owned(),
        service_name: span.service_name.clone(),
        scope_name: "weft-catalogue".to_owned(),
        scope_version: "1.0".to_owned(),
        attribute_keys: vec![CUSTOMER.0.to_owned()],
        attribute_values: vec![CUSTOMER.1.to_owned()],
        resource_keys: span.resource_keys.to_vec(),
        resource_values: span.resource_values.to_vec(),
        message: MESSAGE,
        message_line: 3,
    }
}

/// The bus message (stream sequence) the representative metric rows count.
const MESSAGE: u64 = 42;

/// The metrics of three spans like `span` in its minute, counted by [`MESSAGE`].
fn representative_metric(span: &SpanRow) -> SpanMetricRow {
    let mut histogram = DurationHistogram::default();
    for extra in [0, 1_000, 90_000_000] {
        histogram.record(span.duration_ns + extra);
    }
    let (duration_buckets, duration_counts) = histogram.to_sparse();
    SpanMetricRow {
        tenant_id: span.tenant_id,
        minute: span.start_time - span.start_time % 60,
        message: 0,
        service_name: span.service_name.clone(),
        operation: span.name.clone(),
        kind: span.kind,
        status_code: span.status_code,
        spans: 3,
        errors: 3,
        duration_sum_ns: 3 * span.duration_ns + 90_001_000,
        duration_buckets,
        duration_counts,
        messages: 0,
    }
}

/// Two calls from the span's service to a callee whose name needs escaping.
fn representative_edge(span: &SpanRow) -> ServiceEdgeRow {
    let mut histogram = DurationHistogram::default();
    histogram.record(span.duration_ns);
    histogram.record(span.duration_ns / 2);
    let (duration_buckets, duration_counts) = histogram.to_sparse();
    ServiceEdgeRow {
        tenant_id: span.tenant_id,
        minute: span.start_time - span.start_time % 60,
        message: 0,
        caller_service: span.service_name.clone(),
        callee_service: CUSTOMER.1.to_owned(),
        calls: 2,
        errors: 1,
        duration_sum_ns: span.duration_ns + span.duration_ns / 2,
        duration_buckets,
        duration_counts,
        messages: 0,
    }
}

/// The summary the trace index gives for one index row, as the trace spans read uses it.
fn summary_of(row: &TraceIndexRow) -> TraceSummary {
    TraceSummary {
        trace_id: row.trace_id,
        start_time_unix_nano: row.start_time_unix_nano,
        end_time_unix_nano: row.end_time_unix_nano,
        root_service: row.root_service.clone(),
        root_name: row.root_name.clone(),
        span_count: u64::from(row.span_count),
        error_count: u64::from(row.error_count),
        service_names: row.service_names.clone(),
        sample_rate: row.sample_rate,
        sampled_by: row.sampled_by.clone(),
    }
}

/// A trace beside `summary`, with no spans stored: a read of several traces' spans
/// lists more than one id.
fn other_trace(summary: &TraceSummary) -> TraceSummary {
    let mut other = summary.clone();
    other.trace_id[15] ^= 0xff;
    other
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_590_000_123_456_789;

    fn catalogue() -> SqlCatalogue {
        SqlCatalogue::new("weft_catalogue", 7, NOW)
    }

    /// The identifiers that follow `marker` in `source`, for example the names of the
    /// `TenantRead::name(` calls.
    fn names_after<'a>(source: &'a str, marker: &str) -> Vec<&'a str> {
        source
            .split(marker)
            .skip(1)
            .map(|rest| {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect()
    }

    #[test]
    fn every_tenant_read_is_catalogued() {
        let layer = names_after(include_str!("tenant.rs"), "TenantRead::");
        assert!(layer.len() >= 6, "found the reads of tenant.rs: {layer:?}");
        for name in layer {
            assert!(
                include_str!("catalog.rs").contains(&format!("&TenantRead::{name}(")),
                "tenant.rs reads with TenantRead::{name}, which the SQL catalogue does not list"
            );
        }
    }

    #[test]
    fn every_table_is_catalogued() {
        for table in names_after(include_str!("rows.rs"), "impl Table for ") {
            assert!(
                include_str!("catalog.rs").contains(&format!("insert::<{table}>(")),
                "rows.rs stores {table}, which the SQL catalogue does not insert"
            );
        }
    }

    /// The statements that mod.rs and migrate.rs send, by what they pass to `query`. A new
    /// one fails here: add it to `SqlCatalogue::new`, then to this list.
    #[test]
    fn every_statement_of_the_store_and_the_migrator_is_catalogued() {
        let mut sent: Vec<&str> = names_after(include_str!("mod.rs"), ".query(&")
            .into_iter()
            .chain(names_after(include_str!("mod.rs"), ".query("))
            .chain(names_after(include_str!("migrate.rs"), ".query(&"))
            .chain(names_after(include_str!("migrate.rs"), ".query("))
            .filter(|name| !name.is_empty())
            .collect();
        sent.sort_unstable();
        sent.dedup();
        assert_eq!(
            sent,
            [
                "APPLIED_STATEMENTS",
                "CREATE_LEDGER",
                "PING",
                "QUERY_RUNNING",
                "RECORD_APPLIED",
                "SERVER_VERSION",
                "create_database",
                "drop_database",
                "erasure",
                "statement.sql",
                "stored_rows",
            ],
            "the store or the migrator sends a statement the SQL catalogue may not list"
        );
    }

    #[test]
    fn statements_are_fully_bound_and_uniquely_named() {
        let catalogue = catalogue();
        let mut names: Vec<&str> = catalogue
            .statements
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), catalogue.statements.len(), "names are unique");
        for statement in &catalogue.statements {
            let sql = &statement.sql;
            assert!(!sql.contains("{tenant}"), "{}: {sql}", statement.name);
            assert!(
                !sql.contains("{retention_days}"),
                "{}: {sql}",
                statement.name
            );
            assert!(!sql.contains("?fields"), "{}: {sql}", statement.name);
            assert!(!sql.ends_with(';'), "{}: {sql}", statement.name);
        }
    }

    #[test]
    fn migrations_come_first_and_deferred_ones_are_included() {
        let catalogue = catalogue();
        let migrations: Vec<&CataloguedStatement> = catalogue
            .statements
            .iter()
            .filter(|s| matches!(s.origin, StatementOrigin::Migration { .. }))
            .collect();
        let parsed: usize = migrate::MIGRATIONS
            .iter()
            .map(|(_, _, text)| migrate::statements(text, 7).len())
            .sum();
        assert_eq!(migrations.len(), parsed);
        assert!(migrations.iter().any(|s| s.min_version().is_some()));
        assert!(migrations.iter().any(|s| s.sql.contains("INTERVAL 7 DAY")));
        let first_insert = catalogue
            .statements
            .iter()
            .position(|s| matches!(s.origin, StatementOrigin::Insert { .. }))
            .unwrap();
        let last_migration = catalogue
            .statements
            .iter()
            .rposition(|s| matches!(s.origin, StatementOrigin::Migration { .. }))
            .unwrap();
        let first_read = catalogue
            .statements
            .iter()
            .position(|s| s.origin == StatementOrigin::Read)
            .unwrap();
        assert!(last_migration < first_insert && first_insert < first_read);
        let erasures: Vec<&str> = catalogue
            .statements
            .iter()
            .rev()
            .take(TENANT_TABLES.len())
            .filter_map(|s| match s.origin {
                StatementOrigin::Erasure { table } => Some(table),
                _ => None,
            })
            .collect();
        assert_eq!(erasures.len(), TENANT_TABLES.len(), "erasures come last");
    }

    #[test]
    fn reads_carry_the_tenant_and_the_binds_as_the_client_sends_them() {
        let catalogue = catalogue();
        let sql = |name: &str| {
            &catalogue
                .statements
                .iter()
                .find(|s| s.name == name)
                .unwrap()
                .sql
        };
        let summary = sql("trace summary");
        assert!(summary.contains("tenant_id = toUUID('5b6e0a7c-1f2d-4e3a-9b8c-7d6e5f4a3b2c')"));
        assert!(summary.contains("trace_id = unhex('275c00090aff102030405060708090a0')"));
        assert!(sql("trace spans").starts_with("SELECT `tenant_id`,`trace_id`,"));
        let every = sql("search with every filter");
        assert!(every.contains("v = 'O\\'Brien \\\\ \\\t end'"), "{every}");
        assert!(
            every.ends_with("ORDER BY trace_end - trace_start DESC, trace_id DESC LIMIT 20)"),
            "{every}"
        );
        assert!(
            every.contains(&format!(
                "(max(end_time_unix_nano) - min(start_time_unix_nano), hex(trace_id)) < (750000000, '{}')",
                "F".repeat(32)
            )),
            "{every}"
        );
        assert_eq!(every.matches("tenant_id = toUUID(").count(), 2);
        let values = sql("attribute values of a region sampled by IdRange");
        // The selected group's spans and their traces; the baseline's spans and, without
        // filters, only the selected traces it leaves out.
        assert_eq!(values.matches("tenant_id = toUUID(").count(), 4, "{values}");
        assert!(
            values.contains("AND trace_id NOT IN (SELECT trace_id FROM trace_index"),
            "{values}"
        );
        let filtered = sql("attribute values with every filter");
        assert!(filtered.contains("HAVING "), "{filtered}");
        assert!(filtered.contains(" AND NOT ("), "{filtered}");
        assert!(
            values.contains(
                "trace_id <= toFixedString(unhex('FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'), 16)"
            ),
            "{values}"
        );
        assert!(
            values.contains("NOT has(CAST(['trace_id'] AS Array(String)), key)"),
            "{values}"
        );
        assert!(
            sql("search by attribute above").contains("toFloat64OrNull(v) > 1.5"),
            "{}",
            sql("search by attribute above")
        );
        let spans_of = sql("spans of traces");
        assert!(
            spans_of.contains(
                "trace_id IN (SELECT toFixedString(unhex(arrayJoin(['275C00090AFF102030405060708090A0','275C00090AFF1020304050607080905F'])), 16))"
            ),
            "{spans_of}"
        );
        let counted = sql("counted messages of span_metrics");
        assert!(counted.contains("has([41,42,43], message)"), "{counted}");
        let series = sql("service series of an operation");
        assert!(
            series.contains("intDiv(toUInt32(minute), 300) * 300"),
            "{series}"
        );
        assert!(
            series.ends_with(
                "AND operation = 'POST /cart' GROUP BY step_start, kind ORDER BY step_start, kind"
            ),
            "{series}"
        );
    }

    #[test]
    fn inserts_name_the_columns_of_the_row_types() {
        fn check<T: Table + CatalogueRow>(row: &T) {
            let names: Vec<&str> = row.literals().into_iter().map(|(name, _)| name).collect();
            assert_eq!(
                names,
                T::COLUMN_NAMES,
                "literals of {} in column order",
                T::TABLE
            );
        }
        let span = representative_span(NOW);
        check(&span);
        check(&representative_metric(&span));
        check(&representative_edge(&span));
        check(&representative_log(&span));
        let catalogue = catalogue();
        let insert = &catalogue
            .statements
            .iter()
            .find(|s| s.origin == StatementOrigin::Insert { table: "spans" })
            .unwrap()
            .sql;
        assert!(insert.starts_with("INSERT INTO spans(`tenant_id`,`trace_id`,"));
        assert!(insert.contains(r"'\x27\x5C\x00\x09\x0A\xFF"));
    }
}
