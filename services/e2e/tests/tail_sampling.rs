//! Tail sampling through the real stack: a known mix of traces sent to ingest is decided
//! whole by the tenant's policy (every error and slow trace kept, a tenth of the rest by
//! trace-id hash), each kept span says its sample rate and rule, and the RED metrics count
//! 100 % of what was sent. Late spans follow their trace's decision; two samplers split
//! the partitions and decide each trace once; a full buffer decides its oldest traces
//! early; a sampler killed mid-stream loses no kept trace and counts no metric twice; a
//! policy saved and announced applies at once, and only to its own tenant.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use weft_bus::{Bus, PolicyChanged};
use weft_e2e::otlp::{now_ns, random_id, string_attribute};
use weft_e2e::{Namespace, Stack, StackOptions, TestTenant, eventually};
use weft_model::PartitionSet;
use weft_model::sampling::{SamplingPolicy, trace_hash};

const MS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Error,
    Slow,
    Normal,
}

/// One trace of three spans: a frontend root, a backend call under it (failing in error
/// traces) and an internal span of the backend.
struct Planned {
    id: [u8; 16],
    kind: Kind,
    root_name: &'static str,
}

impl Planned {
    fn new(kind: Kind) -> Planned {
        Planned {
            id: random_id::<16>(),
            kind,
            root_name: "GET /checkout",
        }
    }

    fn spans(&self, start: u64) -> (Vec<Span>, Vec<Span>) {
        let root_id = random_id::<8>();
        let call_id = random_id::<8>();
        let root_ms = if self.kind == Kind::Slow { 1500 } else { 40 };
        let span = |id: [u8; 8], parent: Option<[u8; 8]>, name: &str, kind: i32, ms: u64| Span {
            trace_id: self.id.to_vec(),
            span_id: id.to_vec(),
            parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: name.to_owned(),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + ms * MS,
            ..Default::default()
        };
        let root = span(root_id, None, self.root_name, 2, root_ms);
        let mut call = span(call_id, Some(root_id), "POST /charge", 2, 20);
        if self.kind == Kind::Error {
            call.status = Some(Status {
                code: 2,
                message: "card declined".into(),
            });
        }
        let work = span(random_id::<8>(), Some(call_id), "charge card", 1, 10);
        (vec![root], vec![call, work])
    }
}

fn export(traces: &[&Planned], start: u64) -> ExportTraceServiceRequest {
    let (mut frontend, mut backend) = (Vec::new(), Vec::new());
    for trace in traces {
        let (f, b) = trace.spans(start);
        frontend.extend(f);
        backend.extend(b);
    }
    ExportTraceServiceRequest {
        resource_spans: [("frontend", frontend), ("backend", backend)]
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

/// What the default policy decides, as a pure function of the trace: its rule's name
/// and sample rate, or `None` for a dropped trace.
fn expected(trace: &Planned) -> Option<(&'static str, f64)> {
    match trace.kind {
        Kind::Error => Some(("keep errors", 1.0)),
        Kind::Slow => Some(("keep slow", 1.0)),
        Kind::Normal => (trace_hash(&trace.id) < (0.1 * u64::MAX as f64) as u64)
            .then_some(("keep 10% of the rest", 10.0)),
    }
}

fn sampling_options() -> StackOptions {
    StackOptions {
        default_policy: SamplingPolicy::default(),
        ..Default::default()
    }
}

async fn send(stack: &Stack, tenant: &TestTenant, traces: &[Planned], start: u64) {
    for chunk in traces.chunks(25) {
        let chunk: Vec<&Planned> = chunk.iter().collect();
        assert_eq!(
            stack
                .export(&tenant.ingest_key, &export(&chunk, start))
                .await,
            200
        );
    }
}

/// Stored spans by trace (hex): count, sampled_by, sample_rate, as ClickHouse holds them.
async fn stored(stack: &Stack, tenant: &TestTenant) -> HashMap<String, (u64, String, f64)> {
    let text = stack
        .clickhouse_sql(&format!(
            "SELECT lower(hex(trace_id)), count(), any(sampled_by), any(sample_rate) FROM spans \
             WHERE tenant_id = toUUID('{}') GROUP BY trace_id FORMAT TabSeparated",
            tenant.id
        ))
        .await;
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (
                fields[0].to_owned(),
                (
                    fields[1].parse().unwrap(),
                    fields[2].to_owned(),
                    fields[3].parse().unwrap(),
                ),
            )
        })
        .collect()
}

fn sum(metrics: &HashMap<String, f64>, prefix: &str) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| series.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

/// Waits until the samplers at `urls` decided `traces` traces in all and the bus has
/// nothing left for them.
async fn decided(stack: &Stack, urls: &[String], traces: usize) {
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    eventually(
        "every trace decided and every message acknowledged",
        Duration::from_secs(60),
        || async {
            let mut total = 0.0;
            for url in urls {
                total += sum(
                    &stack.scrape(url.clone()).await,
                    "weft_sampler_traces_decided_total{",
                );
            }
            (total >= traces as f64 && weft_e2e::sampler_backlog(&bus).await == (0, 0))
                .then_some(())
        },
    )
    .await;
}

fn mix(errors: usize, slow: usize, normal: usize) -> Vec<Planned> {
    let mut traces: Vec<Planned> = (0..errors).map(|_| Planned::new(Kind::Error)).collect();
    traces.extend((0..slow).map(|_| Planned::new(Kind::Slow)));
    traces.extend((0..normal).map(|_| Planned::new(Kind::Normal)));
    // Interleaved, as traffic is.
    traces.sort_by_key(|t| t.id);
    traces
}

/// Every trace the policy keeps is stored whole with its rule and rate; no other is.
fn assert_kept_exactly(traces: &[Planned], stored: &HashMap<String, (u64, String, f64)>) {
    let mut kept = 0;
    for trace in traces {
        let id = hex::encode(trace.id);
        match (expected(trace), stored.get(&id)) {
            (Some((rule, rate)), Some((spans, sampled_by, sample_rate))) => {
                kept += 1;
                assert_eq!(*spans, 3, "{id} ({:?}) stored whole", trace.kind);
                assert_eq!(sampled_by, rule, "{id}");
                assert!((sample_rate - rate).abs() < 1e-6, "{id}: {sample_rate}");
            }
            (None, None) => {}
            (want, got) => panic!("{id} ({:?}): expected {want:?}, stored {got:?}", trace.kind),
        }
    }
    assert_eq!(kept, stored.len(), "nothing else is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_mix_keeps_every_error_and_slow_trace_and_a_tenth_of_the_rest() {
    let stack = Stack::start_with(Namespace::create().await, sampling_options()).await;
    let tenant = stack.ns.tenant("acme").await;
    let traces = mix(60, 60, 1880);
    let start = now_ns() - 5_000 * MS;
    send(&stack, &tenant, &traces, start).await;
    decided(&stack, &[stack.sampler_url("/metrics")], traces.len()).await;

    let stored = stored(&stack, &tenant).await;
    assert_kept_exactly(&traces, &stored);
    // The share of normal traces kept: Binomial(1880, 0.1) has mean 188 and standard
    // deviation 13; five deviations either side fail a correct sampler once in about
    // two million runs. (The exact set is checked above: the share is a hash of the id.)
    let normal_kept = traces
        .iter()
        .filter(|t| t.kind == Kind::Normal && stored.contains_key(&hex::encode(t.id)))
        .count();
    assert!((123..=253).contains(&normal_kept), "{normal_kept} of 1880");

    // The API says why, per span and per trace.
    for kind in [Kind::Error, Kind::Slow, Kind::Normal] {
        let trace = traces
            .iter()
            .find(|t| t.kind == kind && expected(t).is_some())
            .unwrap();
        let (rule, rate) = expected(trace).unwrap();
        let (status, body) = stack
            .query_get(
                &format!("/api/v1/traces/{}", hex::encode(trace.id)),
                &tenant.read_key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sampled_by"], rule);
        assert_eq!(body["sample_rate"].as_f64(), Some(rate));
        let spans = body["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 3);
        for span in spans {
            assert_eq!(span["sampled_by"], rule, "{span}");
            assert_eq!(span["sample_rate"].as_f64(), Some(rate), "{span}");
        }
    }

    // RED metrics count every span sent, not the ones kept.
    let (status, body) = stack
        .query_get("/api/v1/services?lookback=1h", &tenant.read_key)
        .await;
    assert_eq!(status, 200, "{body}");
    let service = |name: &str| -> Value {
        body["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(service("frontend")["spans"], 2000, "{body}");
    assert_eq!(service("frontend")["requests"], 2000, "{body}");
    assert_eq!(service("backend")["spans"], 4000, "{body}");
    assert_eq!(service("backend")["errors"], 60, "{body}");

    let metrics = stack.scrape(stack.sampler_url("/metrics")).await;
    let kept = stored.len() as f64;
    assert_eq!(
        sum(
            &metrics,
            "weft_sampler_traces_decided_total{decision=\"kept\""
        ),
        kept
    );
    assert_eq!(
        sum(
            &metrics,
            "weft_sampler_traces_decided_total{decision=\"dropped\""
        ),
        2000.0 - kept
    );
    assert_eq!(
        metrics[r#"weft_sampler_spans_sampled_total{decision="kept"}"#],
        3.0 * kept
    );
    assert_eq!(metrics["weft_sampler_buffered_spans"], 0.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_spans_follow_their_traces_decision() {
    let stack = Stack::start_with(Namespace::create().await, sampling_options()).await;
    let tenant = stack.ns.tenant("acme").await;
    let failing = Planned::new(Kind::Error);
    // A normal trace the hash drops.
    let dropped = std::iter::repeat_with(|| Planned::new(Kind::Normal))
        .find(|t| expected(t).is_none())
        .unwrap();
    let start = now_ns() - 5_000 * MS;
    for trace in [&failing, &dropped] {
        let request = export(&[trace], start);
        assert_eq!(stack.export(&tenant.ingest_key, &request).await, 200);
    }
    decided(&stack, &[stack.sampler_url("/metrics")], 2).await;
    // A straggler of each, after the decision.
    for trace in [&failing, &dropped] {
        let mut late = export(&[trace], start);
        late.resource_spans.truncate(1);
        late.resource_spans[0].scope_spans[0].spans[0].span_id = random_id::<8>().to_vec();
        late.resource_spans[0].scope_spans[0].spans[0].name = "late retry".into();
        assert_eq!(stack.export(&tenant.ingest_key, &late).await, 200);
    }
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    let metrics = eventually(
        "the late spans handled",
        Duration::from_secs(30),
        || async {
            let metrics = stack.scrape(stack.sampler_url("/metrics")).await;
            (sum(&metrics, "weft_sampler_late_spans_total{") == 2.0
                && weft_e2e::sampler_backlog(&bus).await == (0, 0))
                .then_some(metrics)
        },
    )
    .await;
    assert_eq!(
        metrics[r#"weft_sampler_late_spans_total{decision="kept"}"#],
        1.0
    );
    assert_eq!(
        metrics[r#"weft_sampler_late_spans_total{decision="dropped"}"#],
        1.0
    );
    let traces_decided = sum(&metrics, "weft_sampler_traces_decided_total{");
    assert_eq!(traces_decided, 2.0, "late spans are not decided again");
    let stored = stored(&stack, &tenant).await;
    assert_eq!(
        stored.get(&hex::encode(failing.id)),
        Some(&(4, "keep errors".to_owned(), 1.0)),
        "the kept trace gained its late span, with the trace's rule"
    );
    assert!(!stored.contains_key(&hex::encode(dropped.id)));
    let (_, body) = stack
        .query_get(
            &format!("/api/v1/traces/{}", hex::encode(failing.id)),
            &tenant.read_key,
        )
        .await;
    assert_eq!(body["span_count"], 4, "{body}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_samplers_split_the_partitions_and_decide_each_trace_once() {
    let stack = Stack::start_with(
        Namespace::create().await,
        StackOptions {
            sampler: false,
            ..sampling_options()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let count = stack.ns.bus.partitions;
    let half = count / 2;
    let first = stack
        .start_sampler_owning(PartitionSet::parse(&format!("0-{}", half - 1), count).unwrap())
        .await;
    let second = stack
        .start_sampler_owning(PartitionSet::parse(&format!("{half}-{}", count - 1), count).unwrap())
        .await;
    let traces = mix(20, 20, 360);
    send(&stack, &tenant, &traces, now_ns() - 5_000 * MS).await;
    let urls = [first.url("/metrics"), second.url("/metrics")];
    decided(&stack, &urls, traces.len()).await;

    let mut per_sampler = Vec::new();
    for url in &urls {
        let metrics = stack.scrape(url.clone()).await;
        per_sampler.push(sum(&metrics, "weft_sampler_traces_decided_total{"));
    }
    assert_eq!(per_sampler.iter().sum::<f64>(), 400.0, "{per_sampler:?}");
    assert!(
        per_sampler.iter().all(|&n| n > 0.0),
        "both decide: {per_sampler:?}"
    );
    let stored = stored(&stack, &tenant).await;
    assert_kept_exactly(&traces, &stored);
    let counts = stack
        .ns
        .store
        .tenant(tenant.id)
        .stored_counts()
        .await
        .unwrap();
    assert_eq!(counts.spans, counts.distinct_spans, "no span written twice");
    assert_eq!(counts.indexed_spans, counts.spans);
    first.stop().await;
    second.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_decides_its_oldest_traces_early() {
    let stack = Stack::start_with(
        Namespace::create().await,
        StackOptions {
            sampler: false,
            ..Default::default()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let sampler = stack
        .start_sampler_with(|config| {
            config.sampling.max_buffered_spans = 60;
            // Without the cap no trace would be due for a minute.
            config.sampling.decision_wait = Duration::from_secs(60);
            config.sampling.quiet_time = Duration::from_secs(60);
        })
        .await;
    let traces = mix(0, 0, 100);
    send(&stack, &tenant, &traces, now_ns() - 5_000 * MS).await;
    let metrics = eventually(
        "early decisions to store the traces past the cap",
        Duration::from_secs(30),
        || async {
            let metrics = stack.scrape(sampler.url("/metrics")).await;
            let early = sum(
                &metrics,
                "weft_sampler_traces_decided_total{decision=\"kept\",trigger=\"memory\"}",
            );
            (early >= 80.0).then_some(metrics)
        },
    )
    .await;
    assert!(
        metrics["weft_sampler_buffered_spans"] <= 60.0,
        "{}",
        metrics["weft_sampler_buffered_spans"]
    );
    // Keep-all: every trace decided early is stored whole.
    let stored = eventually(
        "the early decisions stored",
        Duration::from_secs(30),
        || async {
            let stored = stored(&stack, &tenant).await;
            (stored.len() >= 80).then_some(stored)
        },
    )
    .await;
    assert!(
        stored
            .values()
            .all(|(spans, rule, _)| *spans == 3 && rule == "keep all")
    );
    sampler.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_kept_trace_and_counts_no_metric_twice() {
    let stack = Stack::start_with(
        Namespace::create().await,
        StackOptions {
            sampler: false,
            ack_wait: Duration::from_secs(3),
            ..sampling_options()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let every_partition = PartitionSet::all(stack.ns.bus.partitions);
    let doomed = stack.start_sampler_owning(every_partition.clone()).await;
    let traces = mix(30, 30, 540);
    let start = now_ns() - 5_000 * MS;
    let (before, after) = traces.split_at(300);
    send(&stack, &tenant, before, start).await;
    // Killed once some traces are decided and stored, with others still buffered.
    eventually("some traces stored", Duration::from_secs(30), || async {
        let metrics = stack.scrape(doomed.url("/metrics")).await;
        (sum(&metrics, "weft_sampler_traces_decided_total{") >= 20.0).then_some(())
    })
    .await;
    send(&stack, &tenant, after, start).await;
    doomed.kill();
    let successor = stack.start_sampler_owning(every_partition).await;
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    eventually(
        "everything redelivered and acknowledged",
        Duration::from_secs(60),
        || async {
            let metrics = stack.scrape(successor.url("/metrics")).await;
            (metrics.get("weft_sampler_buffered_spans") == Some(&0.0)
                && weft_e2e::sampler_backlog(&bus).await == (0, 0))
                .then_some(())
        },
    )
    .await;
    // Every trace the policy keeps is there whole, and once: the successor finds the
    // spans of redelivered messages that were stored before the kill, and indexed with
    // them, and leaves them out.
    let counts = stack
        .ns
        .store
        .tenant(tenant.id)
        .stored_counts()
        .await
        .unwrap();
    assert_eq!(counts.spans, counts.distinct_spans, "no span stored twice");
    assert_eq!(
        counts.indexed_spans, counts.distinct_spans,
        "the trace index counts every span once"
    );
    let text = stack
        .clickhouse_sql(&format!(
            "SELECT lower(hex(trace_id)), uniqExact(span_id), any(sampled_by) FROM spans \
             WHERE tenant_id = toUUID('{}') GROUP BY trace_id FORMAT TabSeparated",
            tenant.id
        ))
        .await;
    let stored: HashMap<String, (u64, String)> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[0].to_owned(), (f[1].parse().unwrap(), f[2].to_owned()))
        })
        .collect();
    let keep: HashSet<String> = traces
        .iter()
        .filter(|t| expected(t).is_some())
        .map(|t| hex::encode(t.id))
        .collect();
    for trace in &traces {
        let id = hex::encode(trace.id);
        match expected(trace) {
            Some((rule, _)) => assert_eq!(
                stored.get(&id),
                Some(&(3, rule.to_owned())),
                "{id} kept whole"
            ),
            None => assert!(!stored.contains_key(&id), "{id} dropped"),
        }
    }
    assert_eq!(stored.len(), keep.len());
    // RED metrics: every span once.
    let (_, body) = stack
        .query_get("/api/v1/services?lookback=1h", &tenant.read_key)
        .await;
    let spans_of = |name: &str| {
        body["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == name)
            .map(|s| s["spans"].clone())
    };
    assert_eq!(spans_of("frontend"), Some(Value::from(600)), "{body}");
    assert_eq!(spans_of("backend"), Some(Value::from(1200)), "{body}");
    successor.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_policy_applies_at_once_and_only_to_its_tenant() {
    let stack = Stack::start_with(Namespace::create().await, Default::default()).await;
    let (acme, globex) = (
        stack.ns.tenant("acme").await,
        stack.ns.tenant("globex").await,
    );
    let bus = Bus::connect(stack.ns.bus.clone()).await.unwrap();
    let start = now_ns() - 5_000 * MS;
    // Acme keeps errors only, and drops health checks before anything else.
    let errors_only = SamplingPolicy::from_json(
        br#"{"rules": [
            {"name": "no health checks", "action": "drop", "conditions": [{"field": "root.name", "op": "=", "value": "GET /healthz"}]},
            {"name": "errors", "conditions": [{"field": "status", "op": "=", "value": "error"}]}
        ]}"#,
    )
    .unwrap();
    stack
        .ns
        .accounts
        .set_sampling_policy(acme.id, &errors_only, None)
        .await
        .unwrap();
    bus.announce(&PolicyChanged { tenant_id: acme.id })
        .await
        .unwrap();
    let (normal, failing) = (Planned::new(Kind::Normal), Planned::new(Kind::Error));
    // A failing health check: the drop rule comes first.
    let mut health = Planned::new(Kind::Error);
    health.root_name = "GET /healthz";
    for tenant in [&acme, &globex] {
        let request = export(&[&normal, &failing, &health], start);
        assert_eq!(stack.export(&tenant.ingest_key, &request).await, 200);
    }
    decided(&stack, &[stack.sampler_url("/metrics")], 6).await;
    let acme_stored = stored(&stack, &acme).await;
    assert_eq!(
        acme_stored.keys().collect::<Vec<_>>(),
        vec![&hex::encode(failing.id)],
        "acme keeps its errors only"
    );
    assert_eq!(acme_stored[&hex::encode(failing.id)].1, "errors");
    let globex_stored = stored(&stack, &globex).await;
    assert_eq!(
        globex_stored.len(),
        3,
        "globex keeps all (the stack's default)"
    );

    // Back to keeping everything: announced, it applies to the next trace (the policy
    // TTL is 30 s; this is well within it).
    stack
        .ns
        .accounts
        .set_sampling_policy(acme.id, &SamplingPolicy::keep_all(), None)
        .await
        .unwrap();
    bus.announce(&PolicyChanged { tenant_id: acme.id })
        .await
        .unwrap();
    let after = Planned::new(Kind::Normal);
    let request = export(&[&after], start);
    assert_eq!(stack.export(&acme.ingest_key, &request).await, 200);
    decided(&stack, &[stack.sampler_url("/metrics")], 7).await;
    let acme_stored = stored(&stack, &acme).await;
    assert!(
        acme_stored.contains_key(&hex::encode(after.id)),
        "kept under the new policy"
    );
    assert_eq!(acme_stored[&hex::encode(after.id)].1, "keep all");
    stack.stop().await;
}

/// Alerts link to the trace that proves them: a trace with a span that a span-duration
/// alert rule matches is kept, whatever the sampling policy would have decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_that_span_alert_rules_match_are_kept() {
    let stack = Stack::start_with(Namespace::create().await, sampling_options()).await;
    let tenant = stack.ns.tenant("acme").await;
    let rule = weft_model::alerting::AlertRule::from_json(
        br#"{"name": "slow charges", "condition": {"kind": "span_duration",
            "service": "backend", "operation": "POST /charge", "threshold_ms": 15}}"#,
    )
    .unwrap();
    stack
        .ns
        .accounts
        .create_alert_rule(tenant.id, &rule)
        .await
        .unwrap();
    // Every normal trace's charge takes 20 ms: all match; the policy alone keeps a tenth.
    let traces = mix(0, 0, 40);
    send(&stack, &tenant, &traces, now_ns() - 5_000 * MS).await;
    decided(&stack, &[stack.sampler_url("/metrics")], traces.len()).await;
    let stored = eventually(
        "the kept traces stored",
        Duration::from_secs(30),
        || async {
            let stored = stored(&stack, &tenant).await;
            (stored.len() == traces.len()).then_some(stored)
        },
    )
    .await;
    for (id, (spans, rule, rate)) in &stored {
        assert_eq!(
            (*spans, rule.as_str(), *rate),
            (3, "alert: slow charges", 1.0),
            "{id}"
        );
    }
    stack.stop().await;
}
