//! Alerting through the real stack: spans sent to ingest, rules and channels made with
//! the JSON API, notifications received by a local HTTP receiver standing in for Slack
//! and webhooks (which checks each request exactly, the HMAC signature too) and by a
//! real SMTP conversation; restarts, two replicas, a failing channel, and bad input.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_e2e::otlp::{now_ns, random_id, request, string_attribute};
use weft_e2e::smtp::SmtpServer;
use weft_e2e::web::{PASSWORD, Visitor};
use weft_e2e::{Stack, StackOptions, TestTenant, eventually};
use weft_model::KeyScope;

const SECRET: &str = "whsec-0123456789abcdef";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Paths that answer 500 this many more times.
    failures: Mutex<HashMap<String, u32>>,
    /// Attempts per path, failed ones too.
    attempts: Mutex<HashMap<String, u32>>,
}

/// A local HTTP server standing in for Slack and webhook receivers.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    *state
        .attempts
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    if let Some(left) = state.failures.lock().unwrap().get_mut(&path)
        && *left > 0
    {
        *left -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    state.received.lock().unwrap().push(Received {
        path,
        headers,
        body: body.to_vec(),
    });
    StatusCode::OK
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn fail(&self, path: &str, times: u32) {
        self.state
            .failures
            .lock()
            .unwrap()
            .insert(path.to_owned(), times);
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn attempts(&self, path: &str) -> u32 {
        self.state
            .attempts
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `path` received `count` requests; returns them.
    async fn wait_for(&self, path: &str, count: usize) -> Vec<Received> {
        eventually(
            &format!("{count} requests at /{path}"),
            Duration::from_secs(30),
            || async {
                let got = self.at(path);
                (got.len() >= count).then_some(got)
            },
        )
        .await
    }
}

/// Checks a webhook's `X-Weft-Signature` as a receiver should: recompute the HMAC of
/// `<t>.<body>` with the shared secret and compare, and refuse old timestamps.
fn verify_signature(received: &Received, secret: &str) {
    let header = received.headers["x-weft-signature"].to_str().unwrap();
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("a signature of the form t=…,v1=…: {header}"));
    let timestamp: i64 = t.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - timestamp).abs() < 300,
        "a fresh timestamp"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&received.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, expected, "the HMAC-SHA256 of <t>.<body>");
}

async fn call(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = stack
        .http
        .request(method, stack.query_url(path))
        .header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("alerts request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(stack: &Stack, path: &str, key: &str, body: Value) -> (u16, Value) {
    call(stack, reqwest::Method::POST, path, key, Some(body)).await
}

async fn write_key(stack: &Stack, tenant: &TestTenant) -> String {
    stack
        .ns
        .accounts
        .create_api_key(tenant.id, "write", KeyScope::Write)
        .await
        .expect("a write key")
        .secret
}

/// A span of `service` / `name` lasting `millis`, ending now, in a new trace (returned
/// in hex).
fn timed_span(name: &str, millis: u64, error: bool) -> (Span, String) {
    let trace_id = random_id::<16>();
    let end = now_ns();
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: random_id::<8>().to_vec(),
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: end - millis * 1_000_000,
        end_time_unix_nano: end,
        attributes: vec![string_attribute("region", "eu")],
        status: error.then(|| Status {
            code: 2,
            message: "card declined".to_owned(),
        }),
        ..Default::default()
    };
    (span, hex::encode(trace_id))
}

fn of_service(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    let mut request = request(spans);
    request.resource_spans[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes = vec![string_attribute("service.name", service)];
    request
}

async fn send(stack: &Stack, tenant: &TestTenant, service: &str, spans: Vec<Span>) {
    assert_eq!(
        stack
            .export(&tenant.ingest_key, &of_service(service, spans))
            .await,
        200
    );
}

/// Sends a fast span of `service` and waits until the service is known (rules refuse
/// services that sent nothing).
async fn introduce(stack: &Stack, tenant: &TestTenant, service: &str, operation: &str) {
    send(
        stack,
        tenant,
        service,
        vec![timed_span(operation, 5, false).0],
    )
    .await;
    eventually(
        &format!("service {service} known"),
        Duration::from_secs(30),
        || async {
            let (status, body) = stack.query_get("/api/v1/services", &tenant.read_key).await;
            let listed = body["services"]
                .as_array()
                .is_some_and(|all| all.iter().any(|s| s["service"] == service));
            (status == 200 && listed).then_some(())
        },
    )
    .await;
}

async fn channel(stack: &Stack, key: &str, body: Value) -> String {
    let (status, created) = post(stack, "/api/v1/alerts/channels", key, body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn rule(stack: &Stack, key: &str, body: Value) -> String {
    let (status, created) = post(stack, "/api/v1/alerts/rules", key, body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn rule_state(stack: &Stack, key: &str, id: &str) -> Value {
    let (status, body) = stack
        .query_get(&format!("/api/v1/alerts/rules/{id}"), key)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn wait_for_state(stack: &Stack, key: &str, id: &str, state: &str) -> Value {
    eventually(
        &format!("rule {id} {state}"),
        Duration::from_secs(30),
        || async {
            let body = rule_state(stack, key, id).await;
            (body["state"] == state).then_some(body)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_span_alerts_slack_and_a_signed_webhook_with_a_trace_that_exists() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let receiver = Receiver::start().await;
    introduce(&stack, &tenant, "checkout", "charge-payment").await;
    let slack = channel(&stack, &key, json!({"name": "ops slack", "target": {"kind": "slack", "webhook_url": receiver.url("slack")}})).await;
    let hook = channel(&stack, &key, json!({"name": "pager", "target": {"kind": "webhook", "url": receiver.url("hook"), "secret": SECRET}})).await;
    // The API never shows the secrets again.
    let (_, channels) = stack
        .query_get("/api/v1/alerts/channels", &tenant.read_key)
        .await;
    assert!(
        !channels.to_string().contains(SECRET) && !channels.to_string().contains("/slack"),
        "{channels}"
    );
    let rule_id = rule(&stack, &key, json!({
        "name": "slow charge",
        "condition": {"kind": "span_duration", "service": "checkout", "operation": "charge-payment",
                      "attributes": [{"key": "region", "value": "eu"}], "threshold_ms": 500, "window_seconds": 60},
        "channels": [slack, hook]
    })).await;

    // Fast spans and slow spans of other operations do not alert.
    send(
        &stack,
        &tenant,
        "checkout",
        vec![
            timed_span("charge-payment", 20, false).0,
            timed_span("list-cart", 900, false).0,
        ],
    )
    .await;
    let (slow, trace_id) = timed_span("charge-payment", 800, false);
    send(&stack, &tenant, "checkout", vec![slow]).await;

    let message = receiver.wait_for("slack", 1).await.remove(0);
    let public = stack.query_url("");
    let slack_body = message.json();
    assert_eq!(message.headers["content-type"], "application/json");
    assert_eq!(
        slack_body["blocks"][0]["text"]["text"],
        "[FIRING] slow charge — checkout / charge-payment"
    );
    let fields: Vec<String> = slack_body["blocks"][1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        vec![
            "*State*\nfiring".to_owned(),
            "*Service*\ncheckout".to_owned(),
            "*Operation*\ncharge-payment".to_owned(),
            "*Observed*\n800 ms (span duration)".to_owned(),
            "*Threshold*\n500 ms".to_owned(),
            "*Window*\n60 s".to_owned(),
        ]
    );
    let buttons = slack_body["blocks"][3]["elements"].as_array().unwrap();
    assert_eq!(buttons[0]["url"], format!("{public}/traces/{trace_id}"));
    assert_eq!(
        buttons[1]["url"],
        format!("{public}/alerts/rules/{rule_id}")
    );
    assert_eq!(buttons[2]["url"], format!("{public}/services/checkout"));
    assert!(slack_body["text"].as_str().unwrap().contains("800 ms"));
    // The linked trace opens: the slow span is in it.
    let (status, trace) = stack
        .query_get(&format!("/api/v1/traces/{trace_id}"), &tenant.read_key)
        .await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["spans"][0]["name"], "charge-payment");

    let delivered = receiver.wait_for("hook", 1).await.remove(0);
    verify_signature(&delivered, SECRET);
    let body = delivered.json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["test"], false);
    assert_eq!(body["tenant_id"], tenant.id.to_string());
    assert_eq!(body["rule_id"], rule_id);
    assert_eq!(body["rule"], "slow charge");
    assert_eq!(body["kind"], "span_duration");
    assert_eq!(body["state"], "firing");
    assert_eq!(body["service"], "checkout");
    assert_eq!(body["operation"], "charge-payment");
    assert_eq!(body["observed"], 800.0);
    assert_eq!(body["threshold"], 500.0);
    assert_eq!(body["unit"], "ms");
    assert_eq!(body["window_seconds"], 60);
    assert_eq!(body["trace_id"], trace_id);
    assert_eq!(
        body["links"]["trace"],
        format!("{public}/traces/{trace_id}")
    );

    // More slow spans while firing notify nobody again; a test notification sent after
    // them arrives, and still only one alert came.
    send(
        &stack,
        &tenant,
        "checkout",
        vec![timed_span("charge-payment", 900, false).0],
    )
    .await;
    let (status, _) = post(
        &stack,
        &format!("/api/v1/alerts/channels/{hook}/test"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(status, 202);
    let after = receiver.wait_for("hook", 2).await;
    assert_eq!(after[1].json()["test"], true);
    verify_signature(&after[1], SECRET);
    assert_eq!(receiver.at("slack").len(), 1);

    let (_, log) = stack
        .query_get("/api/v1/alerts/deliveries", &tenant.read_key)
        .await;
    let log = log["deliveries"].as_array().unwrap().clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(
        log.iter()
            .all(|d| d["status"] == "sent" && d["attempts"] == 1),
        "{log:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_error_rate_rules_go_pending_fire_after_for_and_resolve() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let receiver = Receiver::start().await;
    introduce(&stack, &tenant, "cart", "GET /cart").await;
    let hook = channel(&stack, &key, json!({"name": "pager", "target": {"kind": "webhook", "url": receiver.url("hook"), "secret": SECRET}})).await;
    let latency = rule(&stack, &key, json!({
        "name": "cart p99", "for_seconds": 2,
        "condition": {"kind": "latency", "service": "cart", "operation": "GET /cart", "percentile": "p99", "threshold_ms": 300, "window_seconds": 120},
        "channels": [hook]
    })).await;
    let errors = rule(&stack, &key, json!({
        "name": "cart errors", "for_seconds": 2,
        "condition": {"kind": "error_rate", "service": "cart", "threshold_percent": 10, "min_requests": 5, "window_seconds": 120},
        "channels": [hook]
    })).await;
    assert_eq!(rule_state(&stack, &key, &latency).await["state"], "ok");

    // Slow and failing: 3 of 6 spans fail, 3 last a second.
    let mut bad = Vec::new();
    let mut bad_traces = Vec::new();
    for i in 0..6 {
        let (span, trace) = timed_span("GET /cart", if i < 3 { 1000 } else { 50 }, i >= 3);
        bad.push(span);
        bad_traces.push(trace);
    }
    send(&stack, &tenant, "cart", bad).await;
    wait_for_state(&stack, &key, &latency, "pending").await;
    wait_for_state(&stack, &key, &errors, "pending").await;
    let firing = wait_for_state(&stack, &key, &latency, "firing").await;
    wait_for_state(&stack, &key, &errors, "firing").await;
    assert!(firing["value"].as_f64().unwrap() > 900.0, "{firing}");

    let fired = receiver.wait_for("hook", 2).await;
    let by_rule = |rule: &str, state: &str| -> Vec<Value> {
        receiver
            .at("hook")
            .iter()
            .map(Received::json)
            .filter(|b| b["rule_id"] == rule && b["state"] == state)
            .collect()
    };
    for received in &fired {
        verify_signature(received, SECRET);
    }
    let latency_fired = by_rule(&latency, "firing");
    assert_eq!(latency_fired.len(), 1);
    let n = &latency_fired[0];
    assert_eq!(n["measure"], "p99 latency");
    assert_eq!(n["threshold"], 300.0);
    assert!(n["observed"].as_f64().unwrap() > 900.0, "{n}");
    assert_eq!(n["window_seconds"], 120);
    // The example is the slowest kept trace of the window, and it opens.
    let example = n["trace_id"].as_str().expect("an example trace").to_owned();
    assert!(
        bad_traces[..3].contains(&example),
        "{example} is one of the slow traces"
    );
    let (status, _) = stack
        .query_get(&format!("/api/v1/traces/{example}"), &tenant.read_key)
        .await;
    assert_eq!(status, 200);
    let errors_fired = by_rule(&errors, "firing");
    assert_eq!(errors_fired.len(), 1);
    // 3 failures of 7 spans (the first, introducing the service, succeeded).
    let observed = errors_fired[0]["observed"].as_f64().unwrap();
    assert!((observed - 300.0 / 7.0).abs() < 1e-9, "{observed}");
    assert_eq!(errors_fired[0]["unit"], "%");
    let error_example = errors_fired[0]["trace_id"]
        .as_str()
        .expect("an error trace")
        .to_owned();
    assert!(
        bad_traces[3..].contains(&error_example),
        "{error_example} is a failing trace"
    );

    // Traffic recovers: many fast, successful spans push p99 and the error rate down.
    let good: Vec<Span> = (0..400)
        .map(|_| timed_span("GET /cart", 10, false).0)
        .collect();
    send(&stack, &tenant, "cart", good).await;
    wait_for_state(&stack, &key, &latency, "resolved").await;
    wait_for_state(&stack, &key, &errors, "resolved").await;
    receiver.wait_for("hook", 4).await;
    let resolved = by_rule(&latency, "resolved");
    assert_eq!(resolved.len(), 1);
    assert!(
        resolved[0]["observed"].as_f64().unwrap() < 300.0,
        "{:?}",
        resolved[0]
    );
    assert_eq!(by_rule(&errors, "resolved").len(), 1);
    assert_eq!(receiver.at("hook").len(), 4, "one notification per change");

    // The history and the observed values behind the chart.
    let body = rule_state(&stack, &key, &latency).await;
    let states: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["resolved", "firing"]);
    let observed: Vec<&str> = body["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["state"].as_str().unwrap())
        .collect();
    assert!(
        observed.contains(&"pending") && observed.contains(&"firing"),
        "{observed:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_a_restart_and_a_kill_send_each_notification_once_and_a_failing_channel_is_retried()
 {
    let options = StackOptions {
        alerting: false,
        ..StackOptions::default()
    };
    let mut stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let first = stack.start_alerting().await;
    let second = stack.start_alerting().await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let receiver = Receiver::start().await;
    introduce(&stack, &tenant, "checkout", "charge-payment").await;
    receiver.fail("flaky", 2);
    let flaky = channel(&stack, &key, json!({"name": "flaky", "target": {"kind": "webhook", "url": receiver.url("flaky"), "secret": SECRET}})).await;
    let steady = channel(&stack, &key, json!({"name": "steady", "target": {"kind": "slack", "webhook_url": receiver.url("steady")}})).await;
    rule(
        &stack,
        &key,
        json!({
            "name": "slow charge",
            "condition": {"kind": "span_duration", "service": "checkout", "threshold_ms": 500},
            "channels": [flaky, steady]
        }),
    )
    .await;
    // Slow spans in many traces, so every partition (and both replicas) see some.
    let slow: Vec<Span> = (0..40)
        .map(|_| timed_span("charge-payment", 700, false).0)
        .collect();
    send(&stack, &tenant, "checkout", slow).await;

    receiver.wait_for("steady", 1).await;
    let flaky_received = receiver.wait_for("flaky", 1).await;
    verify_signature(&flaky_received[0], SECRET);
    assert_eq!(receiver.attempts("flaky"), 3, "two failures, then success");
    let (_, log) = stack
        .query_get("/api/v1/alerts/deliveries", &tenant.read_key)
        .await;
    let flaky_log = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel_name"] == "flaky")
        .unwrap()
        .clone();
    assert_eq!(flaky_log["status"], "sent");
    assert_eq!(flaky_log["attempts"], 3);

    // While firing, the first replica restarts gracefully and the second dies as with
    // kill -9; more slow spans reach the replica started after: the alert stays firing
    // and nobody is told twice.
    first.stop().await;
    second.kill();
    let restarted = stack.start_alerting().await;
    stack.keep(restarted);
    let restarted_at = chrono::Utc::now();
    let slow: Vec<Span> = (0..40)
        .map(|_| timed_span("charge-payment", 800, false).0)
        .collect();
    send(&stack, &tenant, "checkout", slow).await;
    // The new replica saw them (the alert's last matching span is from after the restart).
    eventually(
        "slow spans seen after the restart",
        Duration::from_secs(30),
        || async {
            let (_, body) = stack
                .query_get("/api/v1/alerts/states", &tenant.read_key)
                .await;
            let seen = body["states"][0]["last_seen_at"]
                .as_str()?
                .parse::<chrono::DateTime<chrono::Utc>>()
                .ok()?;
            (seen > restarted_at && body["states"][0]["state"] == "firing").then_some(())
        },
    )
    .await;
    let (status, _) = post(
        &stack,
        &format!("/api/v1/alerts/channels/{steady}/test"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(status, 202);
    let steady_received = receiver.wait_for("steady", 2).await;
    assert_eq!(
        steady_received[1].json()["blocks"][0]["text"]["text"],
        "[TEST] Test notification — example-service"
    );
    assert_eq!(receiver.at("steady").len(), 2);
    assert_eq!(receiver.at("flaky").len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_channels_and_silences_are_refused_naming_the_field() {
    let stack = Stack::start_with(
        weft_e2e::Namespace::create().await,
        StackOptions {
            alerting: false,
            ..StackOptions::default()
        },
    )
    .await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    introduce(&stack, &tenant, "checkout", "GET /").await;
    let cases = [
        (
            "/api/v1/alerts/rules",
            json!({"name": "x", "condition": {"kind": "latency", "service": "checkout", "percentile": "p99", "threshold_ms": -5}}),
            "condition.threshold_ms",
            "must be a number of at least 0",
        ),
        (
            "/api/v1/alerts/rules",
            json!({"name": "x", "condition": {"kind": "latency", "service": "checkout", "percentile": "p42", "threshold_ms": 5}}),
            "condition",
            "p42",
        ),
        (
            "/api/v1/alerts/rules",
            json!({"name": "x", "condition": {"kind": "error_rate", "service": "checkout", "threshold_percent": 5, "window_seconds": 5}}),
            "condition.window_seconds",
            "between 60 and 86400",
        ),
        (
            "/api/v1/alerts/rules",
            json!({"name": "x", "for_seconds": 100000, "condition": {"kind": "span_duration", "service": "checkout", "threshold_ms": 5}}),
            "for_seconds",
            "at most 86400",
        ),
        (
            "/api/v1/alerts/rules",
            json!({"name": "x", "condition": {"kind": "span_duration", "service": "chekout", "threshold_ms": 5}}),
            "condition.service",
            "no spans of service \"chekout\"",
        ),
        (
            "/api/v1/alerts/rules",
            json!({"name": "x", "condition": {"kind": "span_duration", "service": "checkout", "threshold_ms": 5}, "channels": [uuid::Uuid::new_v4()]}),
            "channels[0]",
            "no channel",
        ),
        (
            "/api/v1/alerts/channels",
            json!({"name": "x", "target": {"kind": "slack", "webhook_url": "javascript:alert(1)"}}),
            "target.webhook_url",
            "must be an http or https URL",
        ),
        (
            "/api/v1/alerts/channels",
            json!({"name": "x", "target": {"kind": "webhook", "url": "ftp://example.com/", "secret": SECRET}}),
            "target.url",
            "must be an http or https URL",
        ),
        (
            "/api/v1/alerts/channels",
            json!({"name": "x", "target": {"kind": "email", "to": ["oncall"]}}),
            "target.to[0]",
            "with a domain",
        ),
        (
            "/api/v1/alerts/silences",
            json!({"labels": {"service": "checkout"}, "ends_at": "tomorrow"}),
            "ends_at",
            "RFC 3339",
        ),
    ];
    for (path, body, field, message) in cases {
        let (status, answer) = post(&stack, path, &key, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["field"], field, "{body} → {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{body} → {answer}"
        );
    }
    // Read and ingest keys change nothing.
    let good = json!({"name": "x", "condition": {"kind": "span_duration", "service": "checkout", "threshold_ms": 5}});
    assert_eq!(
        post(
            &stack,
            "/api/v1/alerts/rules",
            &tenant.read_key,
            good.clone()
        )
        .await
        .0,
        403
    );
    assert_eq!(
        post(
            &stack,
            "/api/v1/alerts/rules",
            &tenant.ingest_key,
            good.clone()
        )
        .await
        .0,
        403
    );
    assert_eq!(
        post(&stack, "/api/v1/alerts/rules", &key, good).await.0,
        201
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_span_sends_an_email_over_real_smtp_with_text_and_html_parts() {
    let mut smtp = SmtpServer::start().await;
    let options = StackOptions {
        alerting: false,
        ..StackOptions::default()
    };
    let mut stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let port = smtp.port;
    let alerting = stack
        .start_alerting_with(|config| {
            config.smtp.host = "127.0.0.1".to_owned();
            config.smtp.port = port;
            config.smtp.tls = weft_alerting::SmtpTls::Opportunistic;
            config.smtp.from = "Weft alerts <alerts@weft.example>".to_owned();
        })
        .await;
    stack.keep(alerting);
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    introduce(&stack, &tenant, "payments", "charge-payment").await;
    let email = channel(&stack, &key, json!({"name": "on call", "target": {"kind": "email", "to": ["oncall@acme.example", "lead@acme.example"]}})).await;
    let rule_id = rule(&stack, &key, json!({
        "name": "slow charge",
        "condition": {"kind": "span_duration", "service": "payments", "operation": "charge-payment", "threshold_ms": 2000},
        "channels": [email]
    })).await;
    let (slow, trace_id) = timed_span("charge-payment", 2500, false);
    send(&stack, &tenant, "payments", vec![slow]).await;

    let message = smtp.next_message().await;
    assert_eq!(
        message["tls"], false,
        "the server offers no STARTTLS: plain"
    );
    let public = stack.query_url("");
    assert_eq!(message["mail_from"], "alerts@weft.example");
    assert_eq!(
        message["rcpt_tos"],
        json!(["oncall@acme.example", "lead@acme.example"])
    );
    assert_eq!(
        message["subject"],
        "[FIRING] slow charge — payments / charge-payment"
    );
    assert_eq!(message["from"], "Weft alerts <alerts@weft.example>");
    assert_eq!(message["content_type"], "multipart/alternative");
    let text = message["text"].as_str().unwrap();
    for line in [
        "Rule: slow charge",
        "State: firing",
        "Service: payments",
        "Operation: charge-payment",
        "Observed: 2500 ms (span duration)",
        "Threshold: 2000 ms",
        &format!("Example trace: {public}/traces/{trace_id}"),
        &format!("Rule: {public}/alerts/rules/{rule_id}"),
        &format!("Service: {public}/services/payments"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    let html = message["html"].as_str().unwrap();
    assert!(
        html.contains(&format!(
            "<a href=\"{public}/traces/{trace_id}\">Example trace</a>"
        )),
        "{html}"
    );
    let (status, _) = stack
        .query_get(&format!("/api/v1/traces/{trace_id}"), &tenant.read_key)
        .await;
    assert_eq!(status, 200);
    stack.stop().await;
}

async fn invite(owner: &mut Visitor, stack: &Stack, email: &str, role: &str) -> Visitor {
    let members = owner.get("/members").await;
    let invited = owner
        .submit(
            &members,
            "/members/invite",
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let link = invited.invitation_path();
    let mut visitor = Visitor::new(stack);
    let form = visitor.get(&link).await;
    let joined = visitor
        .submit(&form, &link, &[("password", PASSWORD)])
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    visitor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_alerts_members_edit_rules_and_admins_manage_channels() {
    let options = StackOptions {
        alerting: false,
        ..StackOptions::default()
    };
    let stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let mut owner = Visitor::new(&stack);
    let ingest_key = owner.sign_up("olga@acme.io", "Acme").await.shown("new-key");
    let (request, _) = weft_e2e::otlp::trace_request(1);
    assert_eq!(stack.export(&ingest_key, &request).await, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !owner.get("/services").await.body.contains("raw-client") {
        assert!(
            std::time::Instant::now() < deadline,
            "raw-client never listed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut viewer = invite(&mut owner, &stack, "vic@acme.io", "viewer").await;
    let mut member = invite(&mut owner, &stack, "mo@acme.io", "member").await;
    let rule = [
        ("kind", "span_duration"),
        ("name", "slow"),
        ("service", "raw-client"),
        ("operation", ""),
        ("attributes", ""),
        ("threshold", "100"),
        ("threshold_unit", "ms"),
        ("window", "2"),
        ("window_unit", "min"),
        ("for", "0"),
        ("for_unit", "min"),
        ("repeat", "1"),
        ("repeat_unit", "h"),
        ("labels", "team=edge"),
        // What the browser sends of the other kinds' pickers.
        ("percentile", "p99"),
        ("direction", "below"),
        ("min_requests", "20"),
    ];
    // The same form with some fields changed.
    let with = |changes: &[(&'static str, &'static str)]| {
        rule.iter()
            .map(|&(k, v)| {
                changes
                    .iter()
                    .find(|(c, _)| *c == k)
                    .map_or((k, v), |&(_, new)| (k, new))
            })
            .collect::<Vec<_>>()
    };
    let channel = [
        ("name", "ops"),
        ("kind", "slack"),
        ("url", "https://hooks.slack.com/services/T/B/x"),
        ("secret", ""),
        ("to", ""),
    ];

    // A viewer reads and changes nothing.
    let page = viewer.get("/alerts").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Members, admins and owners change alert rules.")
    );
    assert!(!page.body.contains("class=\"rule-form\""));
    let csrf = page.csrf();
    let refused = viewer
        .post(
            "/alerts",
            &[&[("csrf", csrf.as_str())][..], &rule[..]].concat(),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("change alert rules"));

    // A member creates a rule through the form (a bad one is refused with the message
    // next to the field it names, keeping what was typed) but not channels.
    let page = member.get("/alerts?kind=latency").await;
    assert!(
        page.body.contains("<option selected>raw-client</option>")
            || page.body.contains("<option>raw-client</option>"),
        "the service picker lists the tenant's services: {}",
        page.body
    );
    assert!(page.body.contains("name=\"percentile\""));
    let bad = member
        .submit(
            &page,
            "/alerts",
            &with(&[
                ("kind", "latency"),
                ("threshold", "0"),
                ("name", "kept name"),
            ]),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("<p class=\"field-error\" id=\"error-threshold\">must be above 0</p>"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("Not saved. Threshold: must be above 0"));
    assert!(bad.body.contains("value=\"kept name\""));
    let bad = member
        .submit(&page, "/alerts", &with(&[("window", "soon")]))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("id=\"error-window\">must be a number, not &#34;soon&#34;</p>"),
        "{}",
        bad.body
    );
    let bad = member
        .submit(&page, "/alerts", &with(&[("service", "no-such-service")]))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("id=\"error-service\">no spans of service"),
        "{}",
        bad.body
    );
    let created = member.submit(&page, "/alerts", &rule).await;
    assert_eq!(created.status, 303, "{}", created.body);
    // Its page pre-fills the form with the rule, in the units it was written in.
    let edit = member.get(created.location.as_deref().unwrap()).await;
    assert!(
        edit.body
            .contains("id=\"f-threshold\" name=\"threshold\" value=\"100\""),
        "{}",
        edit.body
    );
    assert!(edit.body.contains("value=\"team=edge\""));
    assert!(
        edit.body
            .contains("<option value=\"min\" selected>minutes</option>")
    );
    let rule_path = created.location.clone().unwrap();
    let saved = member
        .submit(
            &edit,
            &rule_path,
            &with(&[("threshold", "2"), ("threshold_unit", "s")]),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(
        saved.body.contains("Saved.") && saved.body.contains("&#62; 2000 ms"),
        "{}",
        saved.body
    );
    let saved = member.submit(&saved, &rule_path, &rule).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let page = member.get("/alerts/channels").await;
    assert!(page.body.contains("Admins and owners manage channels."));
    let refused = member
        .post(
            "/alerts/channels",
            &[&[("csrf", page.csrf().as_str())][..], &channel[..]].concat(),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("manage notification channels"));

    // The owner adds a channel; its URL never comes back, and a bad address is named.
    let page = owner.get("/alerts/channels").await;
    let added = owner.submit(&page, "/alerts/channels", &channel).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.contains("Channel ops added."));
    assert!(added.body.contains("hooks.slack.com …") && !added.body.contains("/services/T/B/x"));
    let bad = owner
        .submit(
            &page,
            "/alerts/channels",
            &[
                ("name", "mail"),
                ("kind", "email"),
                ("url", ""),
                ("secret", ""),
                ("to", "ops@localhost"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("target.to[0]</code>: must be an email address with a domain"),
        "{}",
        bad.body
    );
    // A member silences by label; a bad duration is named; the silence can be ended.
    let page = member.get("/alerts").await;
    let bad = member
        .submit(
            &page,
            "/alerts/silences",
            &[
                ("rule_id", ""),
                ("labels", "service=raw-client"),
                ("hours", "0"),
                ("comment", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("<code class=\"field\">hours</code>: must be 1 to 720 hours, not 0"),
        "{}",
        bad.body
    );
    let silenced = member
        .submit(
            &page,
            "/alerts/silences",
            &[
                ("rule_id", ""),
                ("labels", "service=raw-client"),
                ("hours", "2"),
                ("comment", "deploying"),
            ],
        )
        .await;
    assert_eq!(silenced.status, 200, "{}", silenced.body);
    assert!(
        silenced
            .body
            .contains("<strong>service=raw-client</strong>")
            && silenced.body.contains("deploying")
    );
    let end = silenced.actions("/alerts/silences/");
    assert_eq!(end.len(), 1, "{end:?}");
    let viewer_csrf = viewer.get("/alerts").await.csrf();
    let refused = viewer.post(&end[0], &[("csrf", &viewer_csrf)]).await;
    assert_eq!(refused.status, 403);
    let ended = member.submit(&silenced, &end[0], &[]).await;
    assert!(
        ended.body.contains("Silence ended.")
            && !ended.body.contains("service=raw-client</strong>")
    );
    // Everyone sees the rule and the viewer the channel.
    assert!(
        viewer
            .get("/alerts")
            .await
            .body
            .contains("span duration of raw-client &#62; 100 ms")
    );
    assert!(
        viewer
            .get("/alerts/channels")
            .await
            .body
            .contains("hooks.slack.com …")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_by_label_records_the_change_and_notifies_nobody_and_alerting_reports_health() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let receiver = Receiver::start().await;
    for path in ["/healthz", "/readyz"] {
        let status = stack
            .http
            .get(stack.alerting_url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path}");
    }
    introduce(&stack, &tenant, "search", "GET /q").await;
    let hook = channel(&stack, &key, json!({"name": "pager", "target": {"kind": "webhook", "url": receiver.url("hook"), "secret": SECRET}})).await;
    let silenced = rule(
        &stack,
        &key,
        json!({
            "name": "slow search", "labels": {"team": "discovery"},
            "condition": {"kind": "span_duration", "service": "search", "threshold_ms": 100},
            "channels": [hook]
        }),
    )
    .await;
    let (status, silence) = post(&stack, "/api/v1/alerts/silences", &key, json!({"labels": {"team": "discovery"}, "ends_at": "2099-01-01T00:00:00Z", "comment": "migration"})).await;
    assert_eq!(status, 201, "{silence}");
    let loud = rule(
        &stack,
        &key,
        json!({
            "name": "slow search, loud",
            "condition": {"kind": "span_duration", "service": "search", "threshold_ms": 100},
            "channels": [hook]
        }),
    )
    .await;
    send(
        &stack,
        &tenant,
        "search",
        vec![timed_span("GET /q", 400, false).0],
    )
    .await;
    let got = receiver.wait_for("hook", 1).await;
    assert_eq!(got[0].json()["rule_id"], loud);
    let body = wait_for_state(&stack, &key, &silenced, "firing").await;
    assert_eq!(body["history"][0]["silenced"], true, "{body}");
    assert_eq!(receiver.at("hook").len(), 1);
    let metrics = stack.scrape(stack.alerting_url("/metrics")).await;
    assert!(
        metrics
            .get("weft_alerting_spans_matched_total")
            .copied()
            .unwrap_or(0.0)
            >= 2.0,
        "{metrics:?}"
    );
    assert!(
        metrics
            .keys()
            .any(|k| k.starts_with("weft_alerting_deliveries_total{")),
        "{metrics:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throughput_rule_fires_when_a_service_goes_quiet_and_resolves_when_traffic_returns() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let receiver = Receiver::start().await;
    introduce(&stack, &tenant, "feed", "GET /feed").await;
    let hook = channel(&stack, &key, json!({"name": "pager", "target": {"kind": "webhook", "url": receiver.url("hook"), "secret": SECRET}})).await;
    // 1 span in a 60 s window is well below 300 per minute.
    let quiet = rule(&stack, &key, json!({
        "name": "feed quiet",
        "condition": {"kind": "throughput", "service": "feed", "direction": "below", "threshold_per_minute": 300, "window_seconds": 60},
        "channels": [hook]
    })).await;
    wait_for_state(&stack, &key, &quiet, "firing").await;
    let fired = receiver.wait_for("hook", 1).await[0].json();
    assert_eq!(fired["measure"], "throughput (below)");
    assert_eq!(fired["unit"], "/min");
    assert_eq!(fired["threshold"], 300.0);
    assert!(fired["observed"].as_f64().unwrap() < 300.0, "{fired}");
    let traffic: Vec<Span> = (0..400)
        .map(|_| timed_span("GET /feed", 3, false).0)
        .collect();
    send(&stack, &tenant, "feed", traffic).await;
    wait_for_state(&stack, &key, &quiet, "resolved").await;
    let resolved = receiver.wait_for("hook", 2).await[1].json();
    assert_eq!(resolved["state"], "resolved");
    assert!(
        resolved["observed"].as_f64().unwrap() >= 300.0,
        "{resolved}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_channel_urls_are_refused_on_save_and_at_delivery_unless_the_operator_allows_them()
{
    use weft_model::alerting::TargetPolicy;
    let options = StackOptions {
        alerting: false,
        ..StackOptions::default()
    };
    let mut stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();

    // A query replica as production runs it (no WEFT_ALERTING_ALLOW_PRIVATE_TARGETS):
    // every internal address is refused on save, naming the field and the setting.
    let guarded = stack
        .start_query_with(|c| c.alerting_targets = TargetPolicy::PublicOnly)
        .await;
    let guarded = stack.keep(guarded);
    let slack = |url: String| json!({"name": "x", "target": {"kind": "slack", "webhook_url": url}});
    let cases = [
        (
            json!({"name": "x", "target": {"kind": "webhook", "url": receiver.url("hook"), "secret": SECRET}}),
            "target.url",
            "127.0.0.1 is a loopback address",
        ),
        (
            slack(format!("http://localhost:{port}/slack")),
            "target.webhook_url",
            "localhost is a loopback name",
        ),
        (
            slack("http://169.254.169.254/latest/meta-data/".to_owned()),
            "target.webhook_url",
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            slack("http://10.0.0.7/hook".to_owned()),
            "target.webhook_url",
            "10.0.0.7 is a private address",
        ),
        (
            slack("http://[::ffff:192.168.1.1]:8080/hook".to_owned()),
            "target.webhook_url",
            "::ffff:192.168.1.1 is a private address",
        ),
        (
            slack("http://[fe80::1]/hook".to_owned()),
            "target.webhook_url",
            "fe80::1 is a link-local address",
        ),
    ];
    for (body, field, why) in cases {
        let response = stack
            .http
            .post(format!("http://{guarded}/api/v1/alerts/channels"))
            .header("x-api-key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["field"], field, "{body} → {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(why) && error.contains("WEFT_ALERTING_ALLOW_PRIVATE_TARGETS"),
            "{body} → {answer}"
        );
    }
    // The dashboard's channel form refuses the same way, naming the field.
    let mut owner = Visitor::of(guarded);
    owner.sign_up("olga@guarded.example", "Guarded").await;
    let page = owner.get("/alerts/channels").await;
    let refused = owner
        .submit(
            &page,
            "/alerts/channels",
            &[
                ("name", "ops"),
                ("kind", "slack"),
                ("url", "http://169.254.169.254/latest/meta-data/"),
                ("secret", ""),
                ("to", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("target.webhook_url</code>: 169.254.169.254 is a cloud metadata address"),
        "{}",
        refused.body
    );
    // A public address is saved (nothing is sent to it here).
    let response = stack
        .http
        .post(format!("http://{guarded}/api/v1/alerts/channels"))
        .header("x-api-key", &key)
        .json(&slack("https://93.184.216.34/services/T/B/x".to_owned()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // Channels saved where the operator allowed internal targets (the stack's own query)
    // are refused again when an alerting replica that does not allow them delivers:
    // `localhost` after resolving it, 127.0.0.1 as written. Nothing reaches the receiver.
    let by_name = channel(
        &stack,
        &key,
        slack(format!("http://localhost:{port}/by-name")),
    )
    .await;
    let by_address = channel(
        &stack,
        &key,
        json!({"name": "y", "target": {"kind": "webhook", "url": receiver.url("by-address"), "secret": SECRET}}),
    )
    .await;
    let guarded_alerting = stack
        .start_alerting_with(|c| {
            c.delivery.targets = TargetPolicy::PublicOnly;
            c.delivery.max_attempts = 1;
        })
        .await;
    for id in [&by_name, &by_address] {
        let path = format!("/api/v1/alerts/channels/{id}/test");
        assert_eq!(post(&stack, &path, &key, json!({})).await.0, 202);
    }
    let failed = eventually(
        "both deliveries failed",
        Duration::from_secs(30),
        || async {
            let (_, log) = stack
                .query_get("/api/v1/alerts/deliveries", &tenant.read_key)
                .await;
            let log = log["deliveries"].as_array().unwrap().clone();
            (log.len() == 2 && log.iter().all(|d| d["status"] == "failed")).then_some(log)
        },
    )
    .await;
    let error_of = |id: &str| {
        failed.iter().find(|d| d["channel_id"] == id).unwrap()["last_error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let by_name_error = error_of(&by_name);
    assert!(
        by_name_error.contains("localhost resolves to 127.0.0.1, a loopback address")
            || by_name_error.contains("localhost resolves to ::1, a loopback address"),
        "{by_name_error}"
    );
    assert!(by_name_error.contains("WEFT_ALERTING_ALLOW_PRIVATE_TARGETS"));
    let by_address_error = error_of(&by_address);
    assert!(
        by_address_error.contains("127.0.0.1 is a loopback address"),
        "{by_address_error}"
    );
    assert_eq!(
        receiver.attempts("by-name") + receiver.attempts("by-address"),
        0
    );

    // The same channels with the operator's permission are delivered.
    guarded_alerting.stop().await;
    let allowed = stack.start_alerting().await;
    stack.keep(allowed);
    for id in [&by_name, &by_address] {
        let path = format!("/api/v1/alerts/channels/{id}/test");
        assert_eq!(post(&stack, &path, &key, json!({})).await.0, 202);
    }
    receiver.wait_for("by-name", 1).await;
    receiver.wait_for("by-address", 1).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_is_notified_again_after_its_repeat_interval_and_not_before() {
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let receiver = Receiver::start().await;
    introduce(&stack, &tenant, "cart", "GET /cart").await;
    let hook = channel(&stack, &key, json!({"name": "pager", "target": {"kind": "webhook", "url": receiver.url("remind"), "secret": SECRET}})).await;
    // The shortest repeat a rule may have; the window keeps the slow spans in view for
    // five minutes, so the alert stays firing without more traffic.
    let latency = rule(&stack, &key, json!({
        "name": "cart p99", "repeat_seconds": 60,
        "condition": {"kind": "latency", "service": "cart", "percentile": "p99", "threshold_ms": 300, "window_seconds": 300},
        "channels": [hook]
    })).await;
    let slow: Vec<Span> = (0..5)
        .map(|_| timed_span("GET /cart", 1000, false).0)
        .collect();
    send(&stack, &tenant, "cart", slow).await;
    wait_for_state(&stack, &key, &latency, "firing").await;
    receiver.wait_for("remind", 1).await;

    let reminded = eventually("a reminder", Duration::from_secs(150), || async {
        let got = receiver.at("remind");
        (got.len() >= 2).then_some(got)
    })
    .await;
    for received in &reminded {
        verify_signature(received, SECRET);
        let body = received.json();
        assert_eq!(body["rule_id"], latency.as_str(), "{body}");
        assert_eq!(body["state"], "firing", "{body}");
    }
    // The reminder was recorded a repeat interval after the alert fired, not before,
    // and it is one reminder, once.
    let (_, detail) = call(
        &stack,
        reqwest::Method::GET,
        &format!("/api/v1/alerts/rules/{latency}"),
        &tenant.read_key,
        None,
    )
    .await;
    let history = detail["history"].as_array().unwrap();
    let at = |repeat: i64| {
        let event = history
            .iter()
            .find(|e| e["state"] == "firing" && e["repeat"] == repeat)
            .unwrap_or_else(|| panic!("no firing event with repeat {repeat}: {detail}"));
        chrono::DateTime::parse_from_rfc3339(event["at"].as_str().unwrap()).unwrap()
    };
    let interval = at(1) - at(0);
    assert!(
        interval >= chrono::Duration::seconds(60),
        "reminded after {interval:?}, before the 60 s repeat interval"
    );
    assert_eq!(
        history.iter().filter(|e| e["repeat"] == 1).count(),
        1,
        "{detail}"
    );
    assert_eq!(receiver.at("remind").len(), 2, "one firing, one reminder");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_uses_starttls_when_the_server_offers_it_and_checks_its_certificate() {
    let dir = std::env::temp_dir().join(format!("weft-smtp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut smtp, cert) = SmtpServer::start_tls(&dir).await;
    let options = StackOptions {
        alerting: false,
        ..StackOptions::default()
    };
    let mut stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let port = smtp.port;
    let smtp_config = |config: &mut weft_alerting::AlertingConfig| {
        config.smtp.host = "127.0.0.1".to_owned();
        config.smtp.port = port;
        config.smtp.tls = weft_alerting::SmtpTls::Opportunistic;
        config.smtp.from = "alerts@weft.example".to_owned();
        config.delivery.max_attempts = 1;
    };
    let tenant = stack.ns.tenant("acme").await;
    let key = write_key(&stack, &tenant).await;
    let email = channel(
        &stack,
        &key,
        json!({"name": "on call", "target": {"kind": "email", "to": ["oncall@acme.example"]}}),
    )
    .await;
    let test_path = format!("/api/v1/alerts/channels/{email}/test");

    // Without the server's certificate among its roots, alerting does not fall back to
    // plain text: the delivery fails, naming the SMTP failure, and nothing is received.
    let untrusting = stack
        .start_alerting_with(|config| smtp_config(config))
        .await;
    assert_eq!(post(&stack, &test_path, &key, json!({})).await.0, 202);
    let failed = eventually("the delivery failed", Duration::from_secs(30), || async {
        let (_, log) = stack
            .query_get("/api/v1/alerts/deliveries", &tenant.read_key)
            .await;
        let log = log["deliveries"].as_array().unwrap().clone();
        log.into_iter().find(|d| d["status"] == "failed")
    })
    .await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("SMTP delivery failed")
            && failed["last_error"]
                .as_str()
                .unwrap()
                .contains("certificate"),
        "{failed}"
    );
    untrusting.stop().await;

    // Trusting its CA (WEFT_SMTP_CA_FILE), the message goes over STARTTLS.
    let trusting = stack
        .start_alerting_with(|config| {
            smtp_config(config);
            config.smtp.ca_file = Some(cert.clone());
        })
        .await;
    stack.keep(trusting);
    assert_eq!(post(&stack, &test_path, &key, json!({})).await.0, 202);
    let message = smtp.next_message().await;
    assert_eq!(message["tls"], true, "{message}");
    assert_eq!(message["rcpt_tos"], json!(["oncall@acme.example"]));
    assert!(
        message["subject"].as_str().unwrap().starts_with("[TEST]"),
        "{message}"
    );
    stack.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
