//! Comparing two traces through the whole stack: two checkouts sent as OTLP to ingest,
//! differing by a call only A made (auth), a call only B made (a fraud check under the
//! card charge), a charge that got slower and a database query that did not. The JSON
//! API and the page give exactly those nodes and changes; the page is reached from the
//! trace page (paste an id, or pick a trace of the same operation) and from two ticked
//! search results; bad and unknown ids get clear 400 and 404 answers. A browser flow
//! does the same and saves screenshots.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::Value;
use std::time::Duration;
use weft_e2e::otlp::{now_ns, random_id, string_attribute};
use weft_e2e::web::{Page, Visitor};
use weft_e2e::{Stack, eventually};
use weft_model::{KeyScope, TenantId};

const MS: u64 = 1_000_000;

/// A span of a planned trace: service, operation, parent (index), start and length in ms.
type Call = (&'static str, &'static str, Option<usize>, u64, u64);

/// The checkout as it ran first: auth, then the card charge, then the orders query.
const A: [Call; 5] = [
    ("frontend", "GET /checkout", None, 0, 300),
    ("checkout", "POST /checkout", Some(0), 10, 250),
    ("auth", "verify token", Some(1), 15, 20),
    ("payment", "charge-card", Some(1), 40, 120),
    ("db", "SELECT orders", Some(1), 200, 20),
];

/// The same checkout later: no auth, a fraud check under a charge 400 ms slower, the
/// same query.
const B: [Call; 5] = [
    ("frontend", "GET /checkout", None, 0, 700),
    ("checkout", "POST /checkout", Some(0), 10, 650),
    ("payment", "charge-card", Some(1), 40, 520),
    ("fraud", "score order", Some(2), 50, 100),
    ("db", "SELECT orders", Some(1), 600, 20),
];

/// What the comparison must say, node by node in its order: depth, service, operation,
/// change, spans in A and B, total duration difference in ms.
const EXPECTED: [(u64, &str, &str, &str, u64, u64, i64); 6] = [
    (0, "frontend", "GET /checkout", "slower", 1, 1, 400),
    (1, "checkout", "POST /checkout", "slower", 1, 1, 400),
    (2, "auth", "verify token", "only_a", 1, 0, -20),
    (2, "payment", "charge-card", "slower", 1, 1, 400),
    (3, "fraud", "score order", "only_b", 0, 1, 100),
    (2, "db", "SELECT orders", "same", 1, 1, 0),
];

/// The trace as an SDK would send it, one resource per service; returns it with the
/// span ids in plan order.
fn request(
    trace_id: [u8; 16],
    start: u64,
    calls: &[Call],
) -> (ExportTraceServiceRequest, Vec<String>) {
    let ids: Vec<[u8; 8]> = calls.iter().map(|_| random_id::<8>()).collect();
    let mut resources: Vec<ResourceSpans> = Vec::new();
    for (i, &(service, name, parent, start_ms, ms)) in calls.iter().enumerate() {
        let begin = start + start_ms * MS;
        let span = Span {
            trace_id: trace_id.to_vec(),
            span_id: ids[i].to_vec(),
            parent_span_id: parent.map(|p| ids[p].to_vec()).unwrap_or_default(),
            name: name.to_owned(),
            kind: 2,
            start_time_unix_nano: begin,
            end_time_unix_nano: begin + ms * MS,
            ..Default::default()
        };
        resources.push(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attribute("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            schema_url: String::new(),
        });
    }
    (
        ExportTraceServiceRequest {
            resource_spans: resources,
        },
        ids.iter().map(hex::encode).collect(),
    )
}

/// An organisation with a signed-in owner and a read key.
async fn organisation(stack: &Stack, email: &str) -> (Visitor, String, String) {
    let mut visitor = Visitor::new(stack);
    let ingest = visitor.sign_up(email, "Shop").await.shown("new-key");
    let accounts = &stack.ns.accounts;
    let user = accounts.user_by_email(email).await.unwrap().unwrap().id;
    let tenant = TenantId::new(accounts.memberships(user).await.unwrap()[0].tenant_id);
    let read = accounts
        .create_api_key(tenant, "read", KeyScope::Read)
        .await
        .unwrap()
        .secret;
    (visitor, ingest, read)
}

/// Both checkouts, 30 and 20 s ago, stored; returns their ids and span ids.
async fn send_checkouts(stack: &Stack, ingest: &str, read: &str) -> [(String, Vec<String>); 2] {
    let now = now_ns();
    let mut sent = Vec::new();
    for (calls, ago) in [(&A, 30_000), (&B, 20_000)] {
        let trace_id = random_id::<16>();
        let (request, spans) = request(trace_id, now - ago * MS, calls);
        assert_eq!(stack.export(ingest, &request).await, 200);
        let trace_id = hex::encode(trace_id);
        stack.wait_for_trace(read, &trace_id, calls.len()).await;
        sent.push((trace_id, spans));
    }
    let b = sent.pop().unwrap();
    [sent.pop().unwrap(), b]
}

/// The nodes of an API answer as the test's expectation writes them.
fn api_nodes(body: &Value) -> Vec<(u64, String, String, String, u64, u64, i64)> {
    let count = |side: &Value| side["span_count"].as_u64().unwrap_or(0);
    body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["depth"].as_u64().unwrap(),
                n["service"].as_str().unwrap().to_owned(),
                n["operation"].as_str().unwrap().to_owned(),
                n["change"].as_str().unwrap().to_owned(),
                count(&n["a"]),
                count(&n["b"]),
                n["total_duration_difference_ns"].as_i64().unwrap() / MS as i64,
            )
        })
        .collect()
}

fn expected() -> Vec<(u64, String, String, String, u64, u64, i64)> {
    EXPECTED
        .iter()
        .map(|&(d, s, o, c, a, b, ms)| (d, s.into(), o.into(), c.into(), a, b, ms))
        .collect()
}

/// The rows of the page: service, operation, change, and the row's text.
fn page_rows(page: &Page) -> Vec<(String, String, String, String)> {
    page.body
        .split("<span class=\"cr\"")
        .skip(1)
        .map(|row| {
            let row = row.split("</summary>").next().unwrap();
            let between = |from: &str, to: &str| {
                let rest = &row
                    [row.find(from).unwrap_or_else(|| panic!("{from} in {row}")) + from.len()..];
                rest[..rest.find(to).unwrap()].to_owned()
            };
            let service = between("<b class=\"c", "</b>");
            let service = service[service.find('>').unwrap() + 1..].to_owned();
            let change = between("data-change=\"", "\"");
            let operation = between("<span class=\"op\">", "</span>");
            (service, operation, change, row.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_traces_compare_by_call_path() {
    let stack = Stack::start().await;
    let (mut alice, ingest, read) = organisation(&stack, "alice@shop.io").await;
    let [(a, a_spans), (b, b_spans)] = send_checkouts(&stack, &ingest, &read).await;

    // The API: exactly the expected nodes, parents, durations and summaries.
    let (status, body) = stack
        .query_get(&format!("/api/v1/traces/compare?a={a}&b={b}"), &read)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(api_nodes(&body), expected(), "{body}");
    assert_eq!(body["a"]["trace_id"], a.as_str());
    assert_eq!(body["b"]["trace_id"], b.as_str());
    assert_eq!(body["a"]["duration_ns"], 300 * MS);
    assert_eq!(body["b"]["duration_ns"], 700 * MS);
    assert_eq!(
        body["changes"],
        serde_json::json!({"only_a": 1, "only_b": 1, "slower": 3, "faster": 0, "same": 1})
    );
    let nodes = body["nodes"].as_array().unwrap();
    let parents: Vec<Value> = nodes.iter().map(|n| n["parent"].clone()).collect();
    assert_eq!(
        parents,
        serde_json::json!([null, 0, 1, 1, 3, 1])
            .as_array()
            .unwrap()
            .clone()
    );
    let charge = &nodes[3];
    assert_eq!(charge["a"]["total_duration_ns"], 120 * MS);
    assert_eq!(charge["b"]["total_duration_ns"], 520 * MS);
    assert_eq!(
        charge["b"]["self_duration_ns"],
        420 * MS,
        "less the fraud check"
    );
    assert_eq!(charge["self_duration_difference_ns"], 300 * MS);
    assert_eq!(charge["a"]["first_span_id"], a_spans[3].as_str());
    assert_eq!(charge["b"]["first_span_id"], b_spans[2].as_str());
    assert!(nodes[2]["b"].is_null() && nodes[4]["a"].is_null());
    assert_eq!(nodes[0]["descendants"], 5);
    // Reversed, the same tree with the changes the other way round.
    let (_, reversed) = stack
        .query_get(&format!("/api/v1/traces/compare?a={b}&b={a}"), &read)
        .await;
    let changes: Vec<&str> = reversed["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        ["faster", "faster", "only_b", "faster", "only_a", "same"]
    );

    // Bad requests say what is wrong; an unknown trace is a 404 naming it.
    let unknown = "0123456789abcdef0123456789abcdef";
    for (path, status, message) in [
        (
            format!("/api/v1/traces/compare?a={a}"),
            400,
            "needs a and b",
        ),
        ("/api/v1/traces/compare".to_owned(), 400, "needs a and b"),
        (
            format!("/api/v1/traces/compare?a={a}&b=xyz"),
            400,
            "b is not a trace id",
        ),
        (
            format!("/api/v1/traces/compare?a={a}&b={b}&c=1"),
            400,
            "unknown parameter \"c\"",
        ),
        (
            format!("/api/v1/traces/compare?a={a}&b={unknown}"),
            404,
            "not found",
        ),
        (
            format!("/api/v1/traces/compare?a={unknown}&b={b}"),
            404,
            unknown,
        ),
    ] {
        let (got, body) = stack.query_get(&path, &read).await;
        assert_eq!(got, status, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{path}: {error}");
    }

    // The page: the same nodes in the same order, each side linking to its span.
    let page = alice.get(&format!("/traces/compare?a={a}&b={b}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let rows = page_rows(&page);
    let shown: Vec<(String, String, String)> = rows
        .iter()
        .map(|(s, o, c, _)| (s.clone(), o.clone(), c.clone()))
        .collect();
    let wanted: Vec<(String, String, String)> = EXPECTED
        .iter()
        .map(|&(_, s, o, c, ..)| (s.into(), o.into(), c.into()))
        .collect();
    assert_eq!(shown, wanted);
    let row = |service: &str| &rows.iter().find(|r| r.0 == service).unwrap().3;
    for (service, texts) in [
        (
            "auth",
            vec!["only in A", "not in B", "\u{2212}20ms", "\u{2212}1 span"],
        ),
        ("fraud", vec!["only in B", "not in A", "+100ms", "+1 span"]),
        (
            "payment",
            vec!["slower", "120ms", "520ms", "+400ms", "+333%", "self 420ms"],
        ),
        ("db", vec!["±0", "20ms"]),
    ] {
        for text in texts {
            assert!(
                row(service).contains(text),
                "{text} in the {service} row: {}",
                row(service)
            );
        }
    }
    assert!(
        !row("db").contains("class=\"tag\""),
        "an unchanged call carries no tag"
    );
    assert!(row("payment").contains(&format!("href=\"/traces/{a}#span={}\"", a_spans[3])));
    assert!(row("payment").contains(&format!("href=\"/traces/{b}#span={}\"", b_spans[2])));
    // Subtrees fold without JavaScript: one open <details> per node with children, each
    // closed again.
    assert_eq!(page.body.matches("<details class=\"node").count(), 3);
    assert_eq!(page.body.matches("</details>").count(), 3);
    for text in [
        "1 only in A",
        "1 only in B",
        "3 slower in B",
        "1 about the same",
        "300ms",
        "700ms",
    ] {
        assert!(page.body.contains(text), "{text} on the page");
    }

    // Reached from the trace page: a form to paste B, and a link to pick one.
    let trace_page = alice.get(&format!("/traces/{a}")).await;
    assert!(trace_page.body.contains("action=\"/traces/compare\""));
    assert!(
        trace_page
            .body
            .contains(&format!("name=\"a\" value=\"{a}\""))
    );
    let pick = alice.get(&format!("/traces/compare?a={a}&b=")).await;
    assert_eq!(pick.status, 200);
    assert!(
        pick.body
            .contains(&format!("href=\"/traces/compare?a={a}&amp;b={b}\"")),
        "B is a trace of the same operation to pick: {}",
        pick.body
    );
    // And from the search results: two ticked rows are a comparison, A the first.
    let search = alice.get("/traces?lookback=15m").await;
    assert_eq!(
        search
            .body
            .matches("form=\"compare-selected\" name=\"trace\"")
            .count(),
        2
    );
    let selected = alice
        .get(&format!("/traces/compare?trace={b}&trace={a}"))
        .await;
    assert_eq!(selected.status, 303);
    assert_eq!(
        selected.location.as_deref(),
        Some(format!("/traces/compare?a={b}&b={a}").as_str())
    );
    for (path, status, text) in [
        (
            format!("/traces/compare?trace={a}"),
            400,
            "Select exactly two traces",
        ),
        (
            format!("/traces/compare?a={a}&b=nope"),
            400,
            "B is not a trace id",
        ),
        (format!("/traces/compare?a={a}&b={unknown}"), 404, unknown),
    ] {
        let page = alice.get(&path).await;
        assert_eq!(page.status, status, "{path}");
        assert!(page.body.contains(text), "{text} on {path}: {}", page.body);
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparing_traces_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("compare");
    let stack = Stack::start().await;
    let email = "carol@shop.io";
    let (_, ingest, read) = organisation(&stack, email).await;
    let [(a, _), (b, _)] = send_checkouts(&stack, &ingest, &read).await;
    eventually("both in the search", Duration::from_secs(30), || async {
        let (_, body) = stack.query_get("/api/v1/traces?lookback=15m", &read).await;
        (body["traces"].as_array()?.len() == 2).then_some(())
    })
    .await;
    weft_e2e::browser::run_flow(
        &root,
        "compare-flow.mjs",
        &[
            ("WEFT_QUERY_URL", format!("http://{}", stack.query)),
            ("WEFT_EMAIL", email.to_owned()),
            ("WEFT_PASSWORD", weft_e2e::web::PASSWORD.to_owned()),
            ("WEFT_TRACE_A", a),
            ("WEFT_TRACE_B", b),
            ("WEFT_SCREENSHOTS", screenshots.display().to_string()),
            ("WEFT_CHROMIUM", chromium),
        ],
    )
    .await;
    stack.stop().await;
}

/// A trace of `spans` spans over six services, `fan_out` children per span, named by
/// position so that the call paths repeat as in a real fan-out.
fn large_trace(spans: usize, fan_out: usize) -> Vec<Call> {
    const SERVICES: [&str; 6] = ["gateway", "orders", "inventory", "pricing", "db", "cache"];
    const NAMES: [&str; 4] = ["load", "store", "lookup", "query"];
    (0..spans)
        .map(|i| {
            let parent = (i > 0).then(|| (i - 1) / fan_out);
            let depth = std::iter::successors(parent, |&p| (p > 0).then(|| (p - 1) / fan_out))
                .count() as u64;
            let start = depth * 2 + (i as u64 % 50);
            (
                SERVICES[i % SERVICES.len()],
                NAMES[i % NAMES.len()],
                parent,
                start,
                (400 >> depth).max(1),
            )
        })
        .collect()
}

/// Two 10 000-span traces of different shapes compare with every span counted once, and
/// the API's and page's times are printed (speed targets belong in benchmarks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_traces_compare_with_every_span_counted() {
    let stack = Stack::start().await;
    let (alice, ingest, read) = organisation(&stack, "alice@big.io").await;
    let spans = 10_000;
    let mut ids = Vec::new();
    for fan_out in [8, 6] {
        let trace_id = random_id::<16>();
        let calls = large_trace(spans, fan_out);
        let (request, _) = request(trace_id, now_ns() - 60_000 * MS, &calls);
        assert_eq!(stack.export(&ingest, &request).await, 200);
        let trace_id = hex::encode(trace_id);
        eventually(
            "the large trace stored",
            Duration::from_secs(60),
            || async {
                let (_, body) = stack
                    .query_get(&format!("/api/v1/traces/{trace_id}?span_limit=1"), &read)
                    .await;
                (body["span_count"].as_u64() == Some(spans as u64)).then_some(())
            },
        )
        .await;
        ids.push(trace_id);
    }
    let (a, b) = (&ids[0], &ids[1]);
    let api = format!("/api/v1/traces/compare?a={a}&b={b}");
    let page = format!("/traces/compare?a={a}&b={b}");
    let cookie = format!("weft_session={}", alice.cookies["weft_session"]);
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, body) = stack.query_get(&api, &read).await;
        let api_time = started.elapsed();
        assert_eq!(status, 200);
        let nodes = body["nodes"].as_array().unwrap();
        let counted = |side: &str| -> u64 {
            nodes
                .iter()
                .map(|n| n[side]["span_count"].as_u64().unwrap_or(0))
                .sum()
        };
        assert_eq!((counted("a"), counted("b")), (spans as u64, spans as u64));
        assert_eq!(
            nodes[0]["descendants"].as_u64(),
            Some(nodes.len() as u64 - 1)
        );
        let started = std::time::Instant::now();
        let response = stack
            .http
            .get(stack.query_url(&page))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let timing = response.headers()["server-timing"]
            .to_str()
            .unwrap()
            .to_owned();
        let html = response.text().await.unwrap();
        let shown = nodes.len().min(5_000);
        assert_eq!(html.matches("<span class=\"cr\"").count(), shown);
        assert_eq!(
            html.matches("<details").count(),
            html.matches("</details>").count()
        );
        if shown < nodes.len() {
            assert!(html.contains(&format!("The first {shown} of {} nodes", nodes.len())));
        }
        println!(
            "compare 2 x {spans} spans, {} nodes: API {api_time:?}; page {timing}, total {:?}, {} KiB",
            nodes.len(),
            started.elapsed(),
            html.len() / 1024
        );
    }
    stack.stop().await;
}
