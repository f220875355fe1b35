//! Benchmark, not a check (ignored by default): the time from a slow span arriving at
//! ingest to the Slack request reaching a local receiver, over 100 alerts, with the
//! product's default sampler timing (decision wait 10 s, quiet time 2 s) and delivery
//! poll (1 s); and the time from the end of a latency rule's window to its Slack
//! request over 100 latency rules (one per service, their windows closing 300 ms apart,
//! so they fall at every phase of the evaluation interval), with the default
//! evaluation interval (15 s). Run it with
//! `cargo nextest run -p weft-e2e --test alerting_latency --run-ignored only --no-capture`;
//! docs/benchmarks.md records the figures.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_e2e::otlp::{now_ns, random_id, request, string_attribute};
use weft_e2e::{Stack, StackOptions, eventually};
use weft_model::KeyScope;

const ALERTS: usize = 100;

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run explicitly, see docs/benchmarks.md"]
async fn time_from_a_slow_span_to_slack() {
    let options = StackOptions {
        alerting: false,
        decision_wait: Duration::from_secs(10),
        quiet_time: Duration::from_secs(2),
        ..StackOptions::default()
    };
    let mut stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let alerting = stack
        .start_alerting_with(|config| {
            config.delivery.poll_interval = Duration::from_secs(1);
            config.eval_interval = Duration::from_secs(15);
        })
        .await;
    stack.keep(alerting);
    let tenant = stack.ns.tenant("bench").await;
    let key = stack
        .ns
        .accounts
        .create_api_key(tenant.id, "write", KeyScope::Write)
        .await
        .unwrap()
        .secret;
    // Slack: each message's arrival time by rule name.
    type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;
    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .route(
            "/slack",
            axum::routing::post(
                |axum::extract::State(arrivals): axum::extract::State<Arrivals>,
                 axum::Json(body): axum::Json<Value>| async move {
                    let title = body["blocks"][0]["text"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    arrivals.lock().unwrap().push((title, Instant::now()));
                },
            ),
        )
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let post = |path: &str, body: Value| {
        let request = stack
            .http
            .post(stack.query_url(path))
            .header("x-api-key", &key)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            response.json::<Value>().await.unwrap()
        }
    };
    let span = |name: &str, millis: u64| {
        let end = now_ns();
        opentelemetry_proto::tonic::trace::v1::Span {
            trace_id: random_id::<16>().to_vec(),
            span_id: random_id::<8>().to_vec(),
            name: name.to_owned(),
            kind: 2,
            start_time_unix_nano: end - millis * 1_000_000,
            end_time_unix_nano: end,
            ..Default::default()
        }
    };
    let export = |service: String, spans| {
        let mut request = request(spans);
        request.resource_spans[0]
            .resource
            .as_mut()
            .unwrap()
            .attributes = vec![string_attribute("service.name", &service)];
        let stack = &stack;
        let ingest_key = tenant.ingest_key.clone();
        async move { assert_eq!(stack.export(&ingest_key, &request).await, 200) }
    };

    // One service per alert, so each slow span is a new alert.
    for i in 0..ALERTS {
        export(format!("svc-{i}"), vec![span("GET /", 5)]).await;
    }
    // And one per latency rule, fast until the rule's window turns slow.
    for i in 0..ALERTS {
        export(format!("lat-{i}"), vec![span("GET /", 5)]).await;
    }
    eventually("the services known", Duration::from_secs(60), || async {
        let (_, body) = stack.query_get("/api/v1/services", &tenant.read_key).await;
        (body["services"].as_array().map(Vec::len) == Some(2 * ALERTS)).then_some(())
    })
    .await;
    let channel = post("/api/v1/alerts/channels", json!({"name": "slack", "target": {"kind": "slack", "webhook_url": format!("http://{receiver}/slack")}})).await;
    for i in 0..ALERTS {
        post("/api/v1/alerts/rules", json!({"name": format!("slow {i}"), "condition": {"kind": "span_duration", "service": format!("svc-{i}"), "threshold_ms": 500}, "channels": [channel["id"]]})).await;
    }

    let mut sent = Vec::new();
    for i in 0..ALERTS {
        sent.push((format!("[FIRING] slow {i} — svc-{i}"), Instant::now()));
        export(format!("svc-{i}"), vec![span("charge", 800)]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("every alert at Slack", Duration::from_secs(120), || async {
        (arrivals.lock().unwrap().len() >= ALERTS).then_some(())
    })
    .await;
    let arrived = arrivals.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .map(|(title, at)| {
            let (_, got) = arrived
                .iter()
                .find(|(t, _)| t == title)
                .expect("each alert once");
            *got - *at
        })
        .collect();
    latencies.sort();
    println!(
        "span-duration, {ALERTS} alerts, ingest to Slack: p50 {:?}, p99 {:?}, max {:?}",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().unwrap()
    );

    // Latency rules: a window that breaches the threshold is complete ("closes") when
    // its slow spans are acknowledged by ingest; from then on it takes the sampler's
    // metrics flush, up to one evaluation interval (each rule keeps its own phase) and
    // the delivery poll.
    for i in 0..ALERTS {
        post("/api/v1/alerts/rules", json!({"name": format!("p99 {i}"), "condition": {"kind": "latency", "service": format!("lat-{i}"), "percentile": "p99", "threshold_ms": 300, "window_seconds": 60}, "channels": [channel["id"]]})).await;
    }
    let mut closed = Vec::new();
    for i in 0..ALERTS {
        export(
            format!("lat-{i}"),
            (0..20).map(|_| span("POST /pay", 900)).collect(),
        )
        .await;
        closed.push((format!("[FIRING] p99 {i} — lat-{i}"), Instant::now()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eventually(
        "every latency alert at Slack",
        Duration::from_secs(120),
        || async {
            let arrived = arrivals.lock().unwrap();
            closed
                .iter()
                .all(|(title, _)| arrived.iter().any(|(t, _)| t == title))
                .then_some(())
        },
    )
    .await;
    let arrived = arrivals.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = closed
        .iter()
        .map(|(title, at)| {
            let (_, got) = arrived.iter().find(|(t, _)| t == title).unwrap();
            *got - *at
        })
        .collect();
    latencies.sort();
    println!(
        "latency rules, {ALERTS} alerts, window closed to Slack: p50 {:?}, p99 {:?}, max {:?}",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().unwrap()
    );
    stack.stop().await;
}
