//! RED metrics and service edges, as a user reads them from the query API: computed from
//! every span sent (checked against what the test sent, not against stored spans, which
//! sampling will thin out), with percentiles within 5 % of the exact ones; and counted
//! once when a sampler is killed (`kill -9`: its runtime stops where it is) and its
//! messages are delivered again to the next one.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;
use std::time::Duration;
use weft_bus::Bus;
use weft_e2e::otlp::{now_ns, random_id, string_attribute};
use weft_e2e::{Namespace, Stack, StackOptions, TestTenant, eventually};
use weft_model::PartitionSet;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const INTERNAL: i32 = 1;

/// One trace: checkout's `POST /checkout` (server) calls payments through its
/// `charge-payment` client span; payments' `POST /charge` (server) runs a `db.query`
/// (internal). Durations in nanoseconds.
struct Checkout {
    trace_id: [u8; 16],
    checkout_ns: u64,
    checkout_error: bool,
    charge_ns: u64,
    charge_error: bool,
}

impl Checkout {
    /// The `i`-th trace: durations spread from 20 ms to about half a second.
    fn new(i: u64) -> Checkout {
        let spread = |salt: u64| {
            let x = (i + 1).wrapping_mul(6_364_136_223_846_793_005) ^ salt;
            20_000_000 + (x >> 17) % 480_000_000
        };
        Checkout {
            trace_id: random_id::<16>(),
            checkout_ns: spread(0x9e37_79b9),
            checkout_error: i % 10 == 3,
            charge_ns: spread(0x85eb_ca6b) / 2,
            charge_error: i % 7 == 1,
        }
    }

    fn ids(&self) -> ([u8; 8], [u8; 8], [u8; 8]) {
        let id = |n: u8| {
            let mut id = [0u8; 8];
            id[..7].copy_from_slice(&self.trace_id[..7]);
            id[7] = n;
            id
        };
        (id(1), id(2), id(3))
    }

    fn checkout_spans(&self, start: u64) -> Vec<Span> {
        let (root, client, _) = self.ids();
        vec![
            span(
                self,
                (root, None),
                ("POST /checkout", SERVER),
                (start, self.checkout_ns),
                self.checkout_error,
            ),
            span(
                self,
                (client, Some(root)),
                ("charge-payment", CLIENT),
                (start + 1_000_000, self.charge_ns + 2_000_000),
                false,
            ),
        ]
    }

    fn payments_spans(&self, start: u64) -> Vec<Span> {
        let (_, client, server) = self.ids();
        let db = random_id::<8>();
        vec![
            span(
                self,
                (server, Some(client)),
                ("POST /charge", SERVER),
                (start + 2_000_000, self.charge_ns),
                self.charge_error,
            ),
            span(
                self,
                (db, Some(server)),
                ("db.query", INTERNAL),
                (start + 3_000_000, self.charge_ns / 2),
                false,
            ),
        ]
    }
}

fn span(
    trace: &Checkout,
    (id, parent): ([u8; 8], Option<[u8; 8]>),
    (name, kind): (&str, i32),
    (start, duration): (u64, u64),
    error: bool,
) -> Span {
    Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: name.to_owned(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration,
        status: error.then(|| Status {
            code: 2,
            message: "failed".into(),
        }),
        ..Default::default()
    }
}

/// One resource per service, as SDKs in two processes would send them.
fn request(services: Vec<(&str, Vec<Span>)>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: services
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string_attribute("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

/// The exact `q`-quantile (nearest rank) of `values`, in milliseconds.
fn exact_ms(values: &[u64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1] as f64 / 1e6
}

fn assert_percentiles(line: &Value, durations: &[u64], what: &str) {
    for (field, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
        let exact = exact_ms(durations, q);
        let read = line[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{what} {field}: {line}"));
        let error = (read - exact).abs() / exact;
        assert!(
            error <= 0.05,
            "{what} {field}: {read} ms against the exact {exact} ms ({:.2} %)",
            error * 100.0
        );
    }
}

/// The line of `service` in `GET /api/v1/services`.
async fn service_line(stack: &Stack, tenant: &TestTenant, query: &str, service: &str) -> Value {
    let (status, body) = stack
        .query_get(&format!("/api/v1/services?{query}"), &tenant.read_key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["services"]
        .as_array()
        .and_then(|services| services.iter().find(|s| s["service"] == service))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn edges(stack: &Stack, tenant: &TestTenant) -> Vec<Value> {
    let (status, body) = stack
        .query_get("/api/v1/service-map?lookback=1h", &tenant.read_key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["edges"].as_array().cloned().unwrap_or_default()
}

/// Waits until the services show `requests` requests of checkout and of payments, and
/// the service map `requests` calls between them.
async fn wait_for_metrics(stack: &Stack, tenant: &TestTenant, requests: u64) {
    eventually(
        "every request in the metrics",
        Duration::from_secs(60),
        || async {
            for service in ["checkout", "payments"] {
                let line = service_line(stack, tenant, "lookback=1h", service).await;
                if line["requests"].as_u64()? < requests {
                    return None;
                }
            }
            let edges = edges(stack, tenant).await;
            (edges.first()?["calls"].as_u64()? >= requests).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_counts_equal_every_span_sent() {
    const TRACES: u64 = 120;
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    let traces: Vec<Checkout> = (0..TRACES).map(Checkout::new).collect();
    let start = now_ns() - 2_000_000_000;
    // Each service exports its own spans, 20 traces a request; every other time the
    // callee's spans arrive first, so calls are found across messages in both orders.
    for (batch, chunk) in traces.chunks(20).enumerate() {
        let checkout = request(vec![(
            "checkout",
            chunk.iter().flat_map(|t| t.checkout_spans(start)).collect(),
        )]);
        let payments = request(vec![(
            "payments",
            chunk.iter().flat_map(|t| t.payments_spans(start)).collect(),
        )]);
        let ordered = if batch % 2 == 0 {
            [checkout, payments]
        } else {
            [payments, checkout]
        };
        for request in ordered {
            assert_eq!(stack.export(&tenant.ingest_key, &request).await, 200);
        }
    }
    wait_for_metrics(&stack, &tenant, TRACES).await;
    // Stored spans are not where the numbers come from: without them nothing changes.
    stack.clickhouse_sql("TRUNCATE TABLE spans").await;
    stack.clickhouse_sql("TRUNCATE TABLE trace_index").await;

    let count = |pick: fn(&Checkout) -> bool| traces.iter().filter(|t| pick(t)).count() as u64;
    let checkout_ns: Vec<u64> = traces.iter().map(|t| t.checkout_ns).collect();
    let charge_ns: Vec<u64> = traces.iter().map(|t| t.charge_ns).collect();

    let checkout = service_line(&stack, &tenant, "lookback=1h", "checkout").await;
    assert_eq!(checkout["requests"], TRACES, "{checkout}");
    assert_eq!(checkout["errors"], count(|t| t.checkout_error));
    assert_eq!(checkout["spans"], 2 * TRACES, "server and client spans");
    let rate = checkout["rate_per_second"].as_f64().unwrap();
    assert!((rate - TRACES as f64 / 3600.0).abs() < 1e-9, "{rate}");
    let error_rate = checkout["error_rate"].as_f64().unwrap();
    assert!((error_rate - count(|t| t.checkout_error) as f64 / TRACES as f64).abs() < 1e-9);
    assert_percentiles(&checkout, &checkout_ns, "checkout");
    let payments = service_line(&stack, &tenant, "lookback=1h", "payments").await;
    assert_eq!(payments["requests"], TRACES, "{payments}");
    assert_eq!(payments["errors"], count(|t| t.charge_error));
    assert_percentiles(&payments, &charge_ns, "payments");
    let every_kind = service_line(&stack, &tenant, "lookback=1h&kind=all", "payments").await;
    assert_eq!(every_kind["requests"], 2 * TRACES, "{every_kind}");

    let (status, operations) = stack
        .query_get(
            "/api/v1/services/checkout/operations?lookback=1h",
            &tenant.read_key,
        )
        .await;
    assert_eq!(status, 200, "{operations}");
    let operations = operations["operations"].as_array().unwrap();
    let summary: Vec<(&str, &str, u64)> = operations
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("POST /checkout", "server", TRACES),
            ("charge-payment", "client", TRACES)
        ]
    );
    assert_percentiles(&operations[0], &checkout_ns, "POST /checkout");

    let (status, series) = stack
        .query_get(
            "/api/v1/services/payments/series?lookback=1h&step=5m",
            &tenant.read_key,
        )
        .await;
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["step_seconds"], 300);
    let points = series["points"].as_array().unwrap();
    assert!((12..=13).contains(&points.len()), "{}", points.len());
    let sum = |field: &str| {
        points
            .iter()
            .map(|p| p[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("requests"), TRACES);
    assert_eq!(sum("errors"), count(|t| t.charge_error));
    // Every service's series in one answer: the same counts.
    let (status, all) = stack
        .query_get(
            "/api/v1/services/series?lookback=1h&step=5m",
            &tenant.read_key,
        )
        .await;
    assert_eq!(status, 200, "{all}");
    let lines = all["services"].as_array().unwrap();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout", "payments"]);
    for line in lines {
        let points = line["points"].as_array().unwrap();
        assert!((12..=13).contains(&points.len()), "{}", points.len());
        let requests: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
        assert_eq!(requests, TRACES, "{}", line["service"]);
    }
    let (_, of_db) = stack
        .query_get(
            "/api/v1/services/payments/series?lookback=1h&kind=internal&operation=db.query",
            &tenant.read_key,
        )
        .await;
    let db: u64 = of_db["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(db, TRACES);

    let edges = edges(&stack, &tenant).await;
    assert_eq!(
        edges.len(),
        1,
        "only checkout calls another service: {edges:?}"
    );
    assert_eq!(edges[0]["caller"], "checkout");
    assert_eq!(edges[0]["callee"], "payments");
    assert_eq!(edges[0]["calls"], TRACES);
    assert_eq!(edges[0]["errors"], count(|t| t.charge_error));
    assert_percentiles(&edges[0], &charge_ns, "checkout → payments");

    // A window without the spans has nothing, and an unknown service is a 404.
    let (_, old) = stack
        .query_get(
            "/api/v1/services?start=2020-01-01T00:00:00Z&end=2020-01-01T01:00:00Z",
            &tenant.read_key,
        )
        .await;
    assert_eq!(old["services"], serde_json::json!([]));
    for path in [
        "/api/v1/services/nobody/operations",
        "/api/v1/services/nobody/series",
    ] {
        assert_eq!(
            stack.query_get(path, &tenant.read_key).await.0,
            404,
            "{path}"
        );
    }
    assert_eq!(
        stack
            .query_get(
                "/api/v1/services/checkout/series?step=30s",
                &tenant.read_key
            )
            .await
            .0,
        400
    );
    stack.stop().await;
}

/// Both services' spans of one trace in one request, so in one message.
fn whole_trace(trace: &Checkout, start: u64) -> ExportTraceServiceRequest {
    request(vec![
        ("checkout", trace.checkout_spans(start)),
        ("payments", trace.payments_spans(start)),
    ])
}

const ACK_WAIT: Duration = Duration::from_secs(3);

async fn stack_without_sampler() -> Stack {
    Stack::start_with(
        Namespace::create().await,
        StackOptions {
            ack_wait: ACK_WAIT,
            sampler: false,
            ..Default::default()
        },
    )
    .await
}

/// The case idempotency is for: a sampler stored a batch's metrics and was killed before
/// it acknowledged the messages. Its service-edge INSERT is kept failing (the table is
/// moved away, an error the writer retries), so the kill lands in that window for sure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_after_the_metrics_were_written_double_counts_no_metric() {
    const TRACES: u64 = 40;
    let stack = stack_without_sampler().await;
    let tenant = stack.ns.tenant("acme").await;
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    let every_partition = PartitionSet::all(stack.ns.bus.partitions);
    let start = now_ns() - 2_000_000_000;
    for i in 0..TRACES {
        let trace = Checkout::new(i);
        assert_eq!(
            stack
                .export(&tenant.ingest_key, &whole_trace(&trace, start))
                .await,
            200
        );
    }
    stack
        .clickhouse_sql("RENAME TABLE service_edges TO service_edges_moved")
        .await;
    let doomed = stack.start_sampler_owning(every_partition.clone()).await;
    // The writer stores spans, index and RED metrics of its first batch, then retries the
    // edges; later batches wait behind it. Every message is delivered and held.
    let counted = eventually(
        "a batch's RED metrics stored and every message held",
        Duration::from_secs(30),
        || async {
            let checkout = service_line(&stack, &tenant, "lookback=1h", "checkout").await;
            let requests = checkout["requests"].as_u64().filter(|r| *r > 0)?;
            (weft_e2e::sampler_backlog(&bus).await == (0, TRACES)).then_some(requests)
        },
    )
    .await;
    doomed.kill();
    stack
        .clickhouse_sql("RENAME TABLE service_edges_moved TO service_edges")
        .await;

    let successor = stack.start_sampler_owning(every_partition).await;
    wait_for_metrics(&stack, &tenant, TRACES).await;
    eventually(
        "every message acknowledged",
        Duration::from_secs(30),
        || async { (weft_e2e::sampler_backlog(&bus).await == (0, 0)).then_some(()) },
    )
    .await;
    for service in ["checkout", "payments"] {
        let line = service_line(&stack, &tenant, "lookback=1h", service).await;
        assert_eq!(line["requests"], TRACES, "{service} counted once: {line}");
        assert_eq!(line["spans"], 2 * TRACES, "{service}: {line}");
    }
    let edges = edges(&stack, &tenant).await;
    assert_eq!(edges.len(), 1, "{edges:?}");
    assert_eq!(edges[0]["calls"], TRACES);
    // Every trace is stored and indexed once (the killed sampler's writer stored no span:
    // its first batch held metrics only, the spans waiting for their decision).
    let stored = stack
        .ns
        .store
        .tenant(tenant.id)
        .stored_counts()
        .await
        .unwrap();
    assert_eq!(
        (stored.spans, stored.distinct_spans, stored.indexed_spans),
        (4 * TRACES, 4 * TRACES, 4 * TRACES),
        "every span stored and indexed once"
    );

    let metrics = stack.scrape(successor.url("/metrics")).await;
    let value = |series: &str| metrics.get(series).copied().unwrap_or(0.0);
    let redelivered: f64 = metrics
        .iter()
        .filter(|(series, _)| series.starts_with("weft_bus_redeliveries_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(redelivered, TRACES as f64, "every message came again");

    // One message per trace: the ones whose metrics the killed sampler stored are
    // recognised, and only those.
    assert_eq!(
        value(r#"weft_sampler_messages_already_counted_total{table="span_metrics"}"#),
        counted as f64
    );
    assert_eq!(
        value(r#"weft_sampler_messages_already_counted_total{table="service_edges"}"#),
        0.0
    );
    successor.stop().await;
    stack.stop().await;
}

/// A kill at an arbitrary moment of a stream of traces: the next sampler finds every
/// trace, and the metrics count every span once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_trace_and_counts_every_span_once() {
    const TRACES: u64 = 150;
    let stack = stack_without_sampler().await;
    let tenant = stack.ns.tenant("acme").await;
    let every_partition = PartitionSet::all(stack.ns.bus.partitions);
    let start = now_ns() - 2_000_000_000;
    let mut sampler = Some(stack.start_sampler_owning(every_partition.clone()).await);
    for i in 0..TRACES {
        let trace = Checkout::new(i);
        assert_eq!(
            stack
                .export(&tenant.ingest_key, &whole_trace(&trace, start))
                .await,
            200
        );
        if i == TRACES / 2 {
            sampler.take().expect("one kill").kill();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let successor = stack.start_sampler_owning(every_partition).await;
    wait_for_metrics(&stack, &tenant, TRACES).await;
    let traces = stack.ns.store.tenant(tenant.id);
    eventually("every span stored", Duration::from_secs(30), || async {
        (traces.stored_counts().await.ok()?.distinct_spans == 4 * TRACES).then_some(())
    })
    .await;
    for service in ["checkout", "payments"] {
        let line = service_line(&stack, &tenant, "lookback=1h", service).await;
        assert_eq!(line["requests"], TRACES, "{service}: {line}");
    }
    assert_eq!(edges(&stack, &tenant).await[0]["calls"], TRACES);
    successor.stop().await;
    stack.stop().await;
}

/// A message carries a trace decided at once (its root has ended) and one that waits for
/// the decision wait (its root has not come): the first's spans are stored while the
/// message is still held. A sampler killed then leaves the message to the next, which
/// finds those spans stored (and indexed with them), leaves them out, and stores the
/// rest: every span once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_part_of_a_message_was_stored_stores_no_span_twice() {
    const MESSAGES: u64 = 20;
    let stack = Stack::start_with(
        Namespace::create().await,
        StackOptions {
            ack_wait: ACK_WAIT,
            sampler: false,
            decision_wait: Duration::from_secs(10),
            ..Default::default()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    let partitions = stack.ns.bus.partitions;
    let partition = |trace: &Checkout| {
        weft_model::Partition::of(
            &weft_model::TraceId::from_bytes(&trace.trace_id).unwrap(),
            partitions,
        )
    };
    let start = now_ns() - 2_000_000_000;
    let mut finished = Vec::new();
    for i in 0..MESSAGES {
        let done = Checkout::new(i);
        // Of the same partition, so that ingest publishes both traces in one message.
        let waiting = std::iter::repeat_with(|| Checkout::new(i))
            .find(|other| partition(other) == partition(&done))
            .unwrap();
        let request = request(vec![
            ("checkout", done.checkout_spans(start)),
            (
                "payments",
                [done.payments_spans(start), waiting.payments_spans(start)].concat(),
            ),
        ]);
        assert_eq!(stack.export(&tenant.ingest_key, &request).await, 200);
        finished.push(hex::encode(done.trace_id));
    }
    let every_partition = PartitionSet::all(partitions);
    let doomed = stack.start_sampler_owning(every_partition.clone()).await;
    let store = stack.ns.store.tenant(tenant.id);
    eventually(
        "the finished traces stored, every message held",
        Duration::from_secs(30),
        || async {
            let counts = store.stored_counts().await.ok()?;
            (counts.spans == 4 * MESSAGES && weft_e2e::sampler_backlog(&bus).await == (0, MESSAGES))
                .then_some(())
        },
    )
    .await;
    doomed.kill();

    let successor = stack.start_sampler_owning(every_partition).await;
    eventually(
        "every message stored and acknowledged",
        Duration::from_secs(60),
        || async { (weft_e2e::sampler_backlog(&bus).await == (0, 0)).then_some(()) },
    )
    .await;
    let counts = store.stored_counts().await.unwrap();
    assert_eq!(
        (counts.spans, counts.distinct_spans, counts.indexed_spans),
        (6 * MESSAGES, 6 * MESSAGES, 6 * MESSAGES),
        "every span stored and indexed once"
    );
    // As a user reads them: each trace stored before the kill shows its four spans once.
    for trace in &finished {
        let (status, body) = stack
            .query_get(&format!("/api/v1/traces/{trace}"), &tenant.read_key)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["span_count"], 4, "{trace}: {body}");
        assert_eq!(body["spans"].as_array().unwrap().len(), 4, "{trace}");
    }
    let metrics = stack.scrape(successor.url("/metrics")).await;
    assert_eq!(
        metrics.get("weft_sampler_spans_already_stored_total"),
        Some(&((4 * MESSAGES) as f64)),
        "the spans stored before the kill are found"
    );
    successor.stop().await;
    stack.stop().await;
}
