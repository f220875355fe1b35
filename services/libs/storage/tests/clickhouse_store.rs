//! The ClickHouse store against a real server: migrations are idempotent, rows round-trip
//! byte for byte, search filters work, one tenant never reads another's traces, and
//! metric rows sum the same before and after ClickHouse merges them.

use weft_model::{TenantId, TraceId};
use weft_storage::clickhouse::{
    ClickHouse, ClickHouseConfig, DurationHistogram, LogCursor, LogRow, LogSearch, MetricRow,
    MetricsWindow, PackedSpan, RedSeries, ServiceEdgeRow, SpanMetricRow, SpanRow, TraceIndexRow,
    TraceSearch, TraceSort,
};

fn query_id() -> String {
    format!("weft-test-{}", uuid::Uuid::new_v4().simple())
}

fn store() -> ClickHouse {
    let url = std::env::var("WEFT_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    ClickHouse::new(ClickHouseConfig {
        url,
        database: format!("weft_test_{}", uuid::Uuid::new_v4().simple()),
        ..ClickHouseConfig::default()
    })
}

/// A span: `(trace, span, parent)` ids as repeated bytes, `(service, name)`, `(start second, duration ms)`.
fn span(
    tenant: TenantId,
    (trace, span, parent): (u8, u8, u8),
    (service, name): (&str, &str),
    (start_s, dur_ms): (u64, u64),
) -> SpanRow {
    SpanRow {
        tenant_id: tenant.as_uuid(),
        trace_id: [trace; 16],
        span_id: [span; 8],
        parent_span_id: [parent; 8],
        trace_state: String::new(),
        service_name: service.into(),
        name: name.into(),
        kind: 2,
        start_time: start_s as u32,
        start_time_unix_nano: start_s * 1_000_000_000 + 123,
        duration_ns: dur_ms * 1_000_000,
        status_code: if name == "fail" { 2 } else { 0 },
        status_message: String::new(),
        scope_name: "scope".into(),
        scope_version: "1".into(),
        attribute_keys: vec!["http.route".into(), "user".into()],
        attribute_values: vec!["/cart".into(), format!("u{trace}")],
        resource_keys: vec!["service.name".to_owned()].into(),
        resource_values: vec![service.to_owned()].into(),
        event_times_unix_nano: vec![start_s * 1_000_000_000 + 500],
        event_names: vec!["retry".into()],
        event_attributes: vec![r#"{"attempt":"2"}"#.into()],
        link_trace_ids: vec![[9; 16]],
        link_span_ids: vec![[9; 8]],
        link_attributes: vec!["{}".into()],
        sample_rate: 1.0,
        sampled_by: String::new(),
    }
}

/// The sampler writes spans packed (their RowBinary made when they arrive): read back,
/// they are the rows they were packed from, byte for byte, with the decision stamped.
#[tokio::test]
async fn packed_spans_are_stored_as_the_rows_they_were_packed_from() {
    let store = store();
    store.migrate().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tenant = TenantId::random();
    let mut rows = vec![
        span(
            tenant,
            (5, 1, 0),
            ("frontend", "GET /cart ✓"),
            (now - 10, 300),
        ),
        span(tenant, (5, 2, 1), ("cart", "fail"), (now - 10, 200)),
        span(tenant, (5, 3, 1), ("cart", "bare"), (now - 9, 20)),
    ];
    // One span with a long attribute, a resource of its own, and no events or links.
    let bare = &mut rows[2];
    bare.attribute_keys.push("payload".into());
    bare.attribute_values.push("x".repeat(300));
    bare.resource_keys = vec!["service.name".into(), "host.name".into()].into();
    bare.resource_values = vec!["cart".into(), "node-7".into()].into();
    bare.trace_state = "vendor=1".into();
    bare.event_times_unix_nano.clear();
    bare.event_names.clear();
    bare.event_attributes.clear();
    bare.link_trace_ids.clear();
    bare.link_span_ids.clear();
    bare.link_attributes.clear();
    let rule: std::sync::Arc<str> = "keep-slow".into();
    for row in &mut rows {
        (row.sample_rate, row.sampled_by) = (4.0, rule.to_string());
    }
    let packed: Vec<PackedSpan> = rows
        .iter()
        .map(|row| {
            let mut packed = PackedSpan::from_row(row);
            packed.stamp(4.0, &rule);
            packed
        })
        .collect();
    store
        .insert_packed_spans(&packed, &query_id())
        .await
        .unwrap();
    // ClickHouse indexes the trace as the INSERT stores its spans (migration 0008), with
    // the row the sampler used to write.
    let config = store.config();
    let mut indexed: Vec<TraceIndexRow> = ::clickhouse::Client::default()
        .with_url(&config.url)
        .with_database(&config.database)
        .with_validation(false)
        .query("SELECT ?fields FROM trace_index")
        .fetch_all()
        .await
        .unwrap();
    let mut index = TraceIndexRow::summarise(&packed);
    for row in indexed.iter_mut().chain(&mut index) {
        row.service_names.sort_unstable();
    }
    assert_eq!(indexed, index);
    // What the sampler asks before it writes spans that may be stored already.
    let window = (now as u32 - 10, now as u32);
    let stored = store
        .tenant(tenant)
        .stored_spans(&[[5; 16], [6; 16]], window)
        .await
        .unwrap();
    let mut ids: Vec<(u8, u8)> = stored
        .iter()
        .map(|s| (s.trace_id[0], s.span_id[0]))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [(5, 1), (5, 2), (5, 3)]);
    let elsewhere = store.tenant(TenantId::random());
    assert!(
        elsewhere
            .stored_spans(&[[5; 16]], window)
            .await
            .unwrap()
            .is_empty()
    );
    // A writer batch's traces, far more than one statement can name, are looked up in
    // several reads.
    let mut many: Vec<[u8; 16]> = (0..9_000u32)
        .map(|i| {
            let mut id = [0; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id[15] = 1;
            id
        })
        .collect();
    many.push([5; 16]);
    let found = store
        .tenant(tenant)
        .stored_spans(&many, window)
        .await
        .unwrap();
    assert_eq!(found.len(), 3);
    let (summary, read) = store
        .tenant(tenant)
        .trace(TraceId::from_bytes(&[5; 16]).unwrap())
        .await
        .unwrap()
        .expect("the packed trace");
    assert_eq!(read, rows);
    assert_eq!((summary.span_count, summary.error_count), (3, 1));
    assert_eq!(summary.root_name, "GET /cart ✓");
    assert_eq!(
        TraceIndexRow::summarise(&packed),
        TraceIndexRow::summarise(&rows)
    );
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn spans_round_trip_and_search_is_tenant_scoped() {
    let store = store();
    let first = store.migrate().await.unwrap();
    assert!(!first.applied.is_empty());
    let second = store.migrate().await.unwrap();
    assert!(
        second.applied.is_empty(),
        "second run applies nothing: {second:?}"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (a, b) = (TenantId::random(), TenantId::random());
    let spans = vec![
        span(a, (1, 1, 0), ("frontend", "GET /cart"), (now - 10, 300)),
        span(a, (1, 2, 1), ("cart", "fail"), (now - 10, 200)),
        span(a, (2, 3, 0), ("frontend", "GET /"), (now - 5, 50)),
        span(b, (3, 4, 0), ("billing", "charge"), (now - 5, 900)),
    ];
    store.insert_spans(&spans).await.unwrap();

    let trace1 = TraceId::from_bytes(&[1; 16]).unwrap();
    let (summary, read) = store
        .tenant(a)
        .trace(trace1)
        .await
        .unwrap()
        .expect("trace 1");
    assert_eq!(read, spans[..2].to_vec());
    assert_eq!((summary.span_count, summary.error_count), (2, 1));
    assert_eq!(
        (summary.root_service.as_str(), summary.root_name.as_str()),
        ("frontend", "GET /cart")
    );
    assert!(
        store.tenant(b).trace(trace1).await.unwrap().is_none(),
        "tenant b must not see a's trace"
    );

    let window = TraceSearch {
        start_unix_nano: (now - 60) * 1_000_000_000,
        end_unix_nano: now * 1_000_000_000,
        limit: 10,
        ..TraceSearch::default()
    };
    let all = store.tenant(a).search(&window).await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.trace_id[0]).collect::<Vec<_>>(),
        vec![2, 1],
        "newest first"
    );
    let longest = store
        .tenant(a)
        .search(&TraceSearch {
            sort: TraceSort::Longest,
            ..window.clone()
        })
        .await
        .unwrap();
    assert_eq!(longest[0].trace_id[0], 1);
    let errors = store
        .tenant(a)
        .search(&TraceSearch {
            errors_only: true,
            ..window.clone()
        })
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    let by_attr = store
        .tenant(a)
        .search(&TraceSearch {
            attributes: vec![weft_storage::clickhouse::AttributeFilter::equals(
                "user", "u2",
            )],
            ..window.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        by_attr.iter().map(|t| t.trace_id[0]).collect::<Vec<_>>(),
        vec![2]
    );
    let slow = store
        .tenant(a)
        .search(&TraceSearch {
            service: Some("frontend".into()),
            min_duration_ns: Some(100_000_000),
            ..window.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        slow.iter().map(|t| t.trace_id[0]).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(store.tenant(b).search(&window).await.unwrap().len(), 1);

    assert_eq!(
        store.tenant(a).services(0).await.unwrap(),
        vec!["cart", "frontend"]
    );
    assert_eq!(store.tenant(b).services(0).await.unwrap(), vec!["billing"]);
    let ops = store.tenant(a).operations("frontend", 0).await.unwrap();
    assert_eq!(
        ops.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        vec!["GET /", "GET /cart"]
    );
    assert!(
        store
            .tenant(b)
            .operations("frontend", 0)
            .await
            .unwrap()
            .is_empty()
    );

    store.drop_database().await.unwrap();
}

/// One message's metrics of `spans` spans of `durations_ms` each, in `minute`, with the
/// marker that says the minute counts the message, as the sampler writes them.
fn metric(
    tenant: TenantId,
    minute: u32,
    (service, operation): (&str, &str),
    message: u64,
    durations_ms: &[u64],
) -> [SpanMetricRow; 2] {
    let mut histogram = DurationHistogram::default();
    durations_ms
        .iter()
        .for_each(|d| histogram.record(d * 1_000_000));
    let (duration_buckets, duration_counts) = histogram.to_sparse();
    let spans = durations_ms.len() as u64;
    let row = SpanMetricRow {
        tenant_id: tenant.as_uuid(),
        minute,
        message: 0,
        service_name: service.into(),
        operation: operation.into(),
        kind: 2,
        status_code: 0,
        spans,
        errors: 0,
        duration_sum_ns: durations_ms.iter().sum::<u64>() * 1_000_000,
        duration_buckets,
        duration_counts,
        messages: 0,
    };
    let marker = row.marker(message);
    [row, marker]
}

#[tokio::test]
async fn metrics_sum_before_and_after_merges_and_remember_their_messages() {
    let store = store();
    store.migrate().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let minute = now - now % 60;
    let (a, b) = (TenantId::random(), TenantId::random());
    // Two write batches of tenant a (the second of two messages) and one of tenant b.
    let first = metric(a, minute, ("checkout", "POST"), 11, &[10, 20]);
    let second = SpanMetricRow::combine(
        [
            metric(a, minute, ("checkout", "POST"), 12, &[30]),
            metric(a, minute - 60, ("checkout", "GET"), 13, &[40, 50, 60]),
        ]
        .into_iter()
        .flatten(),
    );
    store.insert_metrics(&first, &query_id()).await.unwrap();
    store.insert_metrics(&second, &query_id()).await.unwrap();
    store
        .insert_metrics(
            &metric(b, minute, ("billing", "charge"), 14, &[99]),
            &query_id(),
        )
        .await
        .unwrap();
    let edge = ServiceEdgeRow {
        tenant_id: a.as_uuid(),
        minute,
        message: 0,
        caller_service: "checkout".into(),
        callee_service: "payments".into(),
        calls: 1,
        errors: 1,
        duration_sum_ns: 7_000_000,
        duration_buckets: vec![weft_storage::clickhouse::histogram::bucket(7_000_000)],
        duration_counts: vec![1],
        messages: 0,
    };
    store
        .insert_metrics(&[edge.clone(), edge.marker(12)], &query_id())
        .await
        .unwrap();

    let window = MetricsWindow {
        start_unix_nano: u64::from(minute - 120) * 1_000_000_000,
        end_unix_nano: u64::from(now) * 1_000_000_000,
    };
    let check = async |label: &str| {
        let services = store.tenant(a).service_red(window).await.unwrap();
        assert_eq!(services.len(), 1, "{label}");
        let checkout = &services[0];
        assert_eq!(
            (
                checkout.name.as_str(),
                checkout.spans,
                checkout.duration_sum_ns
            ),
            ("checkout", 6, 210_000_000),
            "{label}"
        );
        let histogram =
            DurationHistogram::from_sparse(&checkout.histogram.0, &checkout.histogram.1);
        assert_eq!(histogram.count(), 6, "{label}");
        let median = histogram.quantile(0.5).unwrap() as f64 / 30_000_000.0;
        assert!((median - 1.0).abs() < 0.032, "{label}: p50 {median}");
        let operations = store
            .tenant(a)
            .operation_red("checkout", window)
            .await
            .unwrap();
        assert_eq!(
            operations
                .iter()
                .map(|o| (o.name.as_str(), o.spans))
                .collect::<Vec<_>>(),
            [("GET", 3), ("POST", 3)],
            "{label}"
        );
        let series = RedSeries {
            service: "checkout".into(),
            operation: None,
            step_seconds: 60,
        };
        let points = store
            .tenant(a)
            .service_series(&series, window)
            .await
            .unwrap();
        assert_eq!(
            points
                .iter()
                .map(|p| (p.step_start, p.spans))
                .collect::<Vec<_>>(),
            [(minute - 60, 3), (minute, 3)],
            "{label}"
        );
        // Every service's series, and every operation's of one service, in one read each.
        let every_service = store.tenant(a).services_series(60, window).await.unwrap();
        assert_eq!(
            every_service
                .iter()
                .map(|p| (p.name.as_str(), p.step_start, p.spans))
                .collect::<Vec<_>>(),
            [("checkout", minute - 60, 3), ("checkout", minute, 3)],
            "{label}"
        );
        let by_operation = store
            .tenant(a)
            .operations_series("checkout", 120, window)
            .await
            .unwrap();
        let step = |m: u32| m - m % 120;
        assert_eq!(
            by_operation
                .iter()
                .map(|p| (p.name.as_str(), p.step_start, p.spans))
                .collect::<Vec<_>>(),
            [("GET", step(minute - 60), 3), ("POST", step(minute), 3)],
            "{label}"
        );
        let post = by_operation.iter().find(|p| p.name == "POST").unwrap();
        assert_eq!(
            DurationHistogram::from_sparse(&post.histogram.0, &post.histogram.1).count(),
            3,
            "{label}"
        );
        assert!(
            store
                .tenant(b)
                .operations_series("checkout", 60, window)
                .await
                .unwrap()
                .is_empty(),
            "{label}: b has no checkout"
        );
        let edges = store.tenant(a).service_edges(window).await.unwrap();
        assert_eq!(edges.len(), 1, "{label}");
        assert_eq!((edges[0].calls, edges[0].errors), (1, 1), "{label}");
        let counted = store
            .tenant(a)
            .counted_messages::<SpanMetricRow>(&[10, 11, 12, 13, 14], (minute - 60, minute))
            .await
            .unwrap();
        assert_eq!(counted, [11, 12, 13], "{label}: b's message is not a's");
        let counted = store
            .tenant(a)
            .counted_messages::<ServiceEdgeRow>(&[11, 12], (minute, minute))
            .await
            .unwrap();
        assert_eq!(counted, [12], "{label}");
        assert!(
            store
                .tenant(b)
                .service_edges(window)
                .await
                .unwrap()
                .is_empty()
        );
        let billing = store.tenant(b).service_red(window).await.unwrap();
        assert_eq!(billing.len(), 1, "{label}");
        assert_eq!((billing[0].name.as_str(), billing[0].spans), ("billing", 1));
    };
    check("as written").await;
    let server = ::clickhouse::Client::default()
        .with_url(&store.config().url)
        .with_database(&store.config().database)
        .with_validation(false);
    for table in ["span_metrics", "service_edges"] {
        server
            .query(&format!("OPTIMIZE TABLE {table} FINAL"))
            .execute()
            .await
            .unwrap();
    }
    let rows: (u64, u64) = server
        .query("SELECT countIf(message = 0), countIf(message != 0) FROM span_metrics")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        rows,
        (3, 4),
        "one row per key once merged, and every marker kept"
    );
    check("merged").await;
    store.drop_database().await.unwrap();
}

/// Metrics stored before migration 0005 (each row listing the messages it counted) read
/// the same after it, and their messages still count as counted.
#[tokio::test]
async fn metrics_written_before_the_markers_survive_their_migration() {
    let store = store();
    let config = store.config().clone();
    let server = ::clickhouse::Client::default().with_url(&config.url);
    server
        .query(&format!("CREATE DATABASE {}", config.database))
        .execute()
        .await
        .unwrap();
    let old = server.clone().with_database(&config.database);
    // The tables as migration 0002 created them.
    let red_metrics = include_str!("../../../../migrations/clickhouse/0002_red_metrics.sql");
    let sql: Vec<&str> = red_metrics
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    for statement in sql.join("\n").split(';') {
        if statement.trim_start().starts_with("CREATE TABLE") {
            old.query(statement).execute().await.unwrap();
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let minute = now - now % 60;
    let tenant = TenantId::random();
    // Two rows of one key, as written by two batches before any merge.
    for (messages, contributed, spans) in [("[7, 8]", "[2, 1]", 3), ("[9]", "[2]", 2)] {
        old.query(&format!(
            "INSERT INTO span_metrics (tenant_id, minute, service_name, operation, kind, \
             status_code, spans, errors, duration_sum_ns, `durationMap.bucket`, \
             `durationMap.count`, `messagesMap.id`, `messagesMap.spans`) VALUES \
             (toUUID('{tenant}'), {minute}, 'checkout', 'POST', 2, 0, {spans}, 1, \
             {spans}000000, [100], [{spans}], {messages}, {contributed})",
            tenant = tenant.as_uuid()
        ))
        .execute()
        .await
        .unwrap();
    }
    old.query(&format!(
        "INSERT INTO service_edges (tenant_id, minute, caller_service, callee_service, calls, \
         errors, duration_sum_ns, `durationMap.bucket`, `durationMap.count`, `messagesMap.id`, \
         `messagesMap.calls`) VALUES (toUUID('{tenant}'), {minute}, 'checkout', 'payments', \
         4, 0, 4000000, [100], [4], [8], [4])",
        tenant = tenant.as_uuid()
    ))
    .execute()
    .await
    .unwrap();

    store.migrate().await.unwrap();
    let window = MetricsWindow {
        start_unix_nano: u64::from(minute - 60) * 1_000_000_000,
        end_unix_nano: u64::from(now) * 1_000_000_000,
    };
    let reader = store.tenant(tenant);
    let services = reader.service_red(window).await.unwrap();
    assert_eq!(
        services
            .iter()
            .map(|s| (s.name.as_str(), s.spans, s.errors))
            .collect::<Vec<_>>(),
        [("checkout", 5, 2)]
    );
    let edges = reader.service_edges(window).await.unwrap();
    assert_eq!(
        edges
            .iter()
            .map(|e| (
                e.caller_service.as_str(),
                e.callee_service.as_str(),
                e.calls
            ))
            .collect::<Vec<_>>(),
        [("checkout", "payments", 4)]
    );
    let counted = reader
        .counted_messages::<SpanMetricRow>(&[6, 7, 8, 9, 10], (minute, minute))
        .await
        .unwrap();
    assert_eq!(counted, [7, 8, 9]);
    let counted = reader
        .counted_messages::<ServiceEdgeRow>(&[7, 8], (minute, minute))
        .await
        .unwrap();
    assert_eq!(counted, [8]);
    // Written from now on with markers, the migrated table folds new metrics in.
    store
        .insert_metrics(
            &metric(tenant, minute, ("checkout", "POST"), 11, &[10]),
            &query_id(),
        )
        .await
        .unwrap();
    assert_eq!(reader.service_red(window).await.unwrap()[0].spans, 6);
    store.drop_database().await.unwrap();
}

/// A log line of `tenant` at `time_unix_nano`, the `line`-th of bus message 1.
fn log_line(tenant: TenantId, time_unix_nano: u64, line: u32, severity: u8) -> LogRow {
    LogRow {
        tenant_id: tenant.as_uuid(),
        time: (time_unix_nano / 1_000_000_000) as u32,
        time_unix_nano,
        observed_time_unix_nano: time_unix_nano,
        trace_id: [line as u8 + 1; 16],
        span_id: [line as u8 + 1; 8],
        severity_number: severity,
        severity_text: if severity >= 17 { "ERROR" } else { "INFO" }.into(),
        body: format!("line {line}"),
        service_name: "cart".into(),
        scope_name: String::new(),
        scope_version: String::new(),
        attribute_keys: Vec::new(),
        attribute_values: Vec::new(),
        resource_keys: vec!["service.name".into()],
        resource_values: vec!["cart".into()],
        message: 1,
        message_line: line,
    }
}

/// Pages of log lines are the newest lines before the cursor, in order, whether they lie
/// within the first read's minute or hours apart (the read widens until it holds a
/// page), and never a line past the window's last nanosecond or of another tenant.
#[tokio::test]
async fn log_pages_hold_the_newest_lines_however_far_apart_they_are() {
    let store = store();
    store.migrate().await.unwrap();
    let second = 1_000_000_000u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let end = now / second * second + second / 2;
    let (a, b) = (TenantId::random(), TenantId::random());
    // Seconds before the window's end, newest first, each with its line number.
    let ages = [5, 10, 20, 1_800, 1_801, 1_802, 1_803, 100_000];
    let mut rows: Vec<LogRow> = ages
        .iter()
        .enumerate()
        .map(|(line, age)| {
            log_line(
                a,
                end - age * second,
                line as u32,
                if line % 2 == 1 { 17 } else { 9 },
            )
        })
        .collect();
    // In the window's last second but after its last nanosecond; another tenant's line.
    rows.push(log_line(a, end + 100, 50, 17));
    // Three in the last second of a window that ends 1000 s earlier, after its end.
    for line in 60..63 {
        rows.push(log_line(a, end - 1_000 * second + 100, line, 9));
    }
    rows.push(log_line(b, end - second, 51, 17));
    store.insert_logs(&rows, "weft-logs-test").await.unwrap();

    let mut search = LogSearch {
        start_unix_nano: end - 2 * 86_400 * second,
        end_unix_nano: end,
        limit: 3,
        ..LogSearch::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = store.tenant(a).logs(&search).await.unwrap();
        let lines: Vec<u32> = page.iter().map(|row| row.message_line).collect();
        let full = page.len() == search.limit as usize;
        pages.push(lines);
        match page.last() {
            Some(last) if full => search.before = Some(LogCursor::of(last)),
            _ => break,
        }
    }
    // Lines 60 to 62, 1000 s old, share a time: the later line of a message comes first.
    assert_eq!(
        pages,
        [vec![0, 1, 2], vec![62, 61, 60], vec![3, 4, 5], vec![6, 7]]
    );

    // A window whose last minute is empty and whose last second holds a page of lines
    // past its end: the page is still the three newest lines of the window.
    let earlier = LogSearch {
        end_unix_nano: end - 1_000 * second,
        before: None,
        ..search.clone()
    };
    let lines: Vec<u32> = store
        .tenant(a)
        .logs(&earlier)
        .await
        .unwrap()
        .iter()
        .map(|row| row.message_line)
        .collect();
    assert_eq!(lines, [3, 4, 5]);

    // A filter narrows every read alike: the errors are lines 1, 3, 5, 7.
    let errors = LogSearch {
        min_severity: Some(17),
        limit: 2,
        before: None,
        ..search.clone()
    };
    let page = store.tenant(a).logs(&errors).await.unwrap();
    let lines: Vec<u32> = page.iter().map(|row| row.message_line).collect();
    assert_eq!(lines, [1, 3]);
    let rest = LogSearch {
        before: page.last().map(LogCursor::of),
        limit: 10,
        ..errors
    };
    let lines: Vec<u32> = store
        .tenant(a)
        .logs(&rest)
        .await
        .unwrap()
        .iter()
        .map(|row| row.message_line)
        .collect();
    assert_eq!(lines, [5, 7]);

    // A first page read with its histogram is the page read alone, whether the first
    // read, the histogram's steps or the narrow read find where it begins, and the
    // histogram counts every line of the window.
    let first_pages = [
        LogSearch {
            before: None,
            ..search.clone()
        },
        earlier.clone(),
        LogSearch {
            limit: 6,
            ..earlier.clone()
        },
        LogSearch {
            min_severity: Some(17),
            limit: 2,
            ..earlier.clone()
        },
        LogSearch {
            limit: 100,
            before: None,
            ..search.clone()
        },
        // Windows of an hour, counted per second.
        LogSearch {
            start_unix_nano: end - 3_600 * second,
            before: None,
            ..search.clone()
        },
        LogSearch {
            start_unix_nano: end - 3_600 * second,
            limit: 5,
            before: None,
            ..search.clone()
        },
        LogSearch {
            start_unix_nano: earlier.end_unix_nano - 3_600 * second,
            ..earlier.clone()
        },
        LogSearch {
            start_unix_nano: earlier.end_unix_nano - 3_600 * second,
            limit: 4,
            ..earlier.clone()
        },
    ];
    for first_page in &first_pages {
        let alone = store.tenant(a).logs(first_page).await.unwrap();
        for step in [1, 60, 3_600, 86_400] {
            let (page, counts) = store
                .tenant(a)
                .logs_with_histogram(first_page, step)
                .await
                .unwrap();
            let lines = |rows: &[LogRow]| rows.iter().map(|r| r.message_line).collect::<Vec<_>>();
            assert_eq!(lines(&page), lines(&alone), "{first_page:?}, step {step}");
            assert!(counts.iter().all(|c| c.step_start % step == 0));
            assert!(counts.windows(2).all(|w| w[0].step_start < w[1].step_start));
            let counted: u64 = counts.iter().map(|c| c.lines).sum();
            let window = rows
                .iter()
                .filter(|r| r.tenant_id == a.as_uuid())
                .filter(|r| {
                    first_page
                        .min_severity
                        .is_none_or(|s| r.severity_number >= s)
                })
                .filter(|r| {
                    u64::from(r.time) >= first_page.start_unix_nano / second
                        && u64::from(r.time) <= first_page.end_unix_nano.div_ceil(second)
                })
                .count();
            assert_eq!(counted, window as u64, "{first_page:?}, step {step}");
        }
    }
    store.drop_database().await.unwrap();
}

/// An attribute filter matches a line's own attributes and its resource's, a value of
/// any kind as stored text, and never a pair whose key and value split elsewhere.
#[tokio::test]
async fn log_attribute_filters_match_line_and_resource_attributes() {
    let store = store();
    store.migrate().await.unwrap();
    let tenant = TenantId::random();
    let time = 1_764_590_000_000_000_000u64;
    let mut rows: Vec<LogRow> = (0..4).map(|line| log_line(tenant, time, line, 9)).collect();
    rows[0].attribute_keys = vec!["http.route".into(), "amount".into()];
    rows[0].attribute_values = vec!["/cart".into(), "5".into()];
    rows[1].attribute_keys = vec!["http.route=".into()];
    rows[1].attribute_values = vec!["/cart".into()];
    rows[2].resource_values = vec!["checkout".into()];
    rows[3].attribute_keys = vec!["http".into()];
    rows[3].attribute_values = vec!["route=/cart".into()];
    store
        .insert_logs(&rows, "weft-logs-attributes")
        .await
        .unwrap();
    let lines = |attributes: &[(&str, &str)]| {
        let search = LogSearch {
            start_unix_nano: time - 1_000_000_000,
            end_unix_nano: time + 1_000_000_000,
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            limit: 10,
            ..LogSearch::default()
        };
        let store = store.clone();
        async move {
            let mut lines: Vec<u32> = store
                .tenant(tenant)
                .logs(&search)
                .await
                .unwrap()
                .iter()
                .map(|row| row.message_line)
                .collect();
            lines.sort_unstable();
            lines
        }
    };
    assert_eq!(lines(&[("http.route", "/cart")]).await, [0]);
    assert_eq!(
        lines(&[("http.route", "/cart"), ("amount", "5")]).await,
        [0]
    );
    assert_eq!(
        lines(&[("http.route", "/cart"), ("amount", "6")]).await,
        [] as [u32; 0]
    );
    assert_eq!(lines(&[("service.name", "cart")]).await, [0, 1, 3]);
    assert_eq!(lines(&[("service.name", "checkout")]).await, [2]);
    assert_eq!(lines(&[("http.route=", "/cart")]).await, [1]);
    assert_eq!(lines(&[("http", "route=/cart")]).await, [3]);
    store.drop_database().await.unwrap();
}

/// A query named by its id is seen running while it runs and not after: what the
/// sampler waits on before it checks which lines a lost INSERT stored.
#[tokio::test]
async fn a_named_query_is_running_until_it_ends() {
    let store = store();
    store.migrate().await.unwrap();
    let url = std::env::var("WEFT_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".to_owned());
    let query_id = format!("weft-test-{}", uuid::Uuid::new_v4().simple());
    assert!(!store.query_running(&query_id).await.unwrap());
    let slow = {
        let (url, query_id) = (url.clone(), query_id.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/?query_id={query_id}"))
                .body("SELECT sleep(2)")
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let mut seen = false;
    for _ in 0..40 {
        if store.query_running(&query_id).await.unwrap() {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(seen, "the sleeping query was never seen running");
    assert!(
        store
            .await_query_end(&query_id, std::time::Duration::from_millis(300))
            .await
            .is_err(),
        "still running after 300 ms"
    );
    store
        .await_query_end(&query_id, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!store.query_running(&query_id).await.unwrap());
    assert!(slow.await.unwrap().is_success());
    store.drop_database().await.unwrap();
}
