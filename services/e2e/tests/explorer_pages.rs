//! The trace explorer as a signed-in user reads it over HTTP: traces sent as OTLP to
//! ingest are found by the search page with each filter and sort, a pasted trace id jumps
//! to its page, the trace page names every span and service and marks the error, the
//! download is OTLP JSON with every span, and malformed, unknown and other
//! organisations' trace ids get their pages. Also the server's render time for traces of
//! 1 000 and 10 000 spans (printed; speed targets belong in benchmarks).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::time::Duration;
use weft_e2e::Stack;
use weft_e2e::otlp::{now_ns, random_id, string_attribute};
use weft_e2e::web::{Page, Visitor};

const MS: u64 = 1_000_000;

/// One span of a hand-made trace, timed from the trace's start.
struct Planned {
    service: &'static str,
    name: &'static str,
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    start_ms: u64,
    ms: u64,
    error: bool,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    links: Vec<Link>,
}

fn planned(service: &'static str, name: &'static str, start_ms: u64, ms: u64) -> Planned {
    Planned {
        service,
        name,
        id: random_id::<8>(),
        parent: None,
        start_ms,
        ms,
        error: false,
        attributes: Vec::new(),
        events: Vec::new(),
        links: Vec::new(),
    }
}

/// The trace as an SDK would send it: one resource per service, one scope each.
fn trace_request(trace_id: [u8; 16], start: u64, spans: Vec<Planned>) -> ExportTraceServiceRequest {
    let mut resources: Vec<ResourceSpans> = Vec::new();
    for span in spans {
        let position = resources.iter().position(|r| {
            r.resource.as_ref().unwrap().attributes[0].value
                == string_attribute("service.name", span.service).value
        });
        let position = position.unwrap_or_else(|| {
            resources.push(ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        string_attribute("service.name", span.service),
                        string_attribute("deployment.environment", "staging"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans::default()],
                schema_url: String::new(),
            });
            resources.len() - 1
        });
        let begin = start + span.start_ms * MS;
        resources[position].scope_spans[0].spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: span.id.to_vec(),
            parent_span_id: span.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: span.name.to_owned(),
            kind: 2,
            start_time_unix_nano: begin,
            end_time_unix_nano: begin + span.ms * MS,
            attributes: span.attributes,
            events: span.events,
            links: span.links,
            status: span.error.then(|| Status {
                code: 2,
                message: "card declined".to_owned(),
            }),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: resources,
    }
}

/// What the tests sent: three traces of one organisation.
struct Shop {
    checkout: String,
    search: String,
    health: String,
    charge_span: String,
    checkout_spans: Vec<&'static str>,
}

/// A checkout that fails to charge the card (four services, an exception, a link to the
/// search), a search (two services) and a health check (one span), 30, 20 and 10 s ago.
async fn send_shop(stack: &Stack, key: &str) -> Shop {
    let now = now_ns();
    let (checkout, search, health) = (random_id::<16>(), random_id::<16>(), random_id::<16>());

    let mut root = planned("frontend", "GET /checkout", 0, 300);
    root.attributes = vec![
        string_attribute("http.route", "/checkout"),
        string_attribute("user.tier", "gold"),
        string_attribute("note", "<script>alert(1)</script>"),
    ];
    let mut api = planned("checkout", "POST /checkout", 10, 250);
    api.parent = Some(root.id);
    let mut charge = planned("payment", "charge-card", 40, 120);
    charge.parent = Some(api.id);
    charge.error = true;
    charge.events = vec![Event {
        time_unix_nano: now - 30_000 * MS + 150 * MS,
        name: "exception".to_owned(),
        attributes: vec![
            string_attribute("exception.type", "CardDeclined"),
            string_attribute("exception.message", "insufficient funds"),
            string_attribute(
                "exception.stacktrace",
                "at charge (payment/card.rs:42)\nat checkout (checkout/api.rs:7)",
            ),
        ],
        ..Default::default()
    }];
    charge.links = vec![Link {
        trace_id: search.to_vec(),
        span_id: random_id::<8>().to_vec(),
        ..Default::default()
    }];
    let mut query = planned("db", "SELECT orders", 200, 20);
    query.parent = Some(api.id);
    let charge_span = hex::encode(charge.id);
    let checkout_spans = vec![
        "GET /checkout",
        "POST /checkout",
        "charge-card",
        "SELECT orders",
    ];
    let checkout_request =
        trace_request(checkout, now - 30_000 * MS, vec![root, api, charge, query]);

    let search_root = planned("frontend", "GET /search", 0, 40);
    let mut index = planned("search-svc", "query index", 5, 30);
    index.parent = Some(search_root.id);
    let search_request = trace_request(search, now - 20_000 * MS, vec![search_root, index]);
    let health_request = trace_request(
        health,
        now - 10_000 * MS,
        vec![planned("frontend", "GET /health", 0, 2)],
    );
    for request in [checkout_request, search_request, health_request] {
        assert_eq!(stack.export(key, &request).await, 200);
    }
    Shop {
        checkout: hex::encode(checkout),
        search: hex::encode(search),
        health: hex::encode(health),
        charge_span,
        checkout_spans,
    }
}

/// Polls a page until `ready` holds for it.
async fn page_when(visitor: &mut Visitor, path: &str, ready: impl Fn(&Page) -> bool) -> Page {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = visitor.get(path).await;
        if ready(&page) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never became ready: {} {}",
            page.status,
            page.body.chars().take(2000).collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The trace ids of a results page, in table order.
fn result_ids(page: &Page) -> Vec<String> {
    page.body
        .split("<tr")
        .filter_map(|row| row.split("data-href=\"/traces/").nth(1))
        .map(|rest| rest[..32].to_owned())
        .collect()
}

fn ids(traces: &[&String]) -> Vec<String> {
    traces.iter().map(|t| (*t).clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_finds_shows_and_downloads_traces() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    assert_eq!(
        alice.get("/traces").await.location.as_deref(),
        Some("/login"),
        "signed-out visitors are sent to log in"
    );
    let setup = alice.sign_up("alice@shop.io", "Shop").await;
    let key = setup.shown("new-key");

    // Before any data: the empty state sends a new user to the set-up page.
    let empty = alice.get("/traces").await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("No traces yet"), "{}", empty.body);
    assert!(empty.body.contains("href=\"/\""));
    assert!(
        empty
            .body
            .contains("<a href=\"/traces\" aria-current=\"page\" class=\"current\">Traces</a>"),
        "the Traces link leads the navigation, marked current"
    );

    let shop = send_shop(&stack, &key).await;
    let (checkout, search, health) = (&shop.checkout, &shop.search, &shop.health);
    let listed = page_when(&mut alice, "/traces?lookback=15m", |page| {
        result_ids(page).len() == 3
    })
    .await;

    // Newest first by default; longest first on request.
    assert_eq!(result_ids(&listed), ids(&[health, search, checkout]));
    let longest = alice.get("/traces?lookback=15m&sort=longest").await;
    assert_eq!(result_ids(&longest), ids(&[checkout, search, health]));
    assert!(
        longest
            .body
            .contains("aria-sort=\"descending\"><a href=\"/traces?")
    );

    // The table: root service and operation, duration, span and error counts, services.
    let row = listed
        .body
        .split("<tr")
        .find(|row| row.contains(&format!("data-href=\"/traces/{checkout}\"")))
        .unwrap();
    for shown in [
        "GET /checkout",
        "300ms",
        ">4</td>",
        "<span class=\"errs\">1</span>",
        ">payment</span>",
        ">db</span>",
        ">checkout</span>",
        "style=\"width:100%\"",
    ] {
        assert!(row.contains(shown), "{shown} in {row}");
    }
    // The scatter: one linked point per trace, red for the one with an error.
    assert!(listed.body.contains("<svg class=\"scatter\""));
    assert_eq!(listed.body.matches("<circle ").count(), 3);
    assert!(
        listed
            .body
            .contains(&format!("<a href=\"/traces/{checkout}\"><circle"))
    );
    assert_eq!(listed.body.matches("r=\"4.5\" class=\"err\"").count(), 1);
    assert!(
        listed
            .body
            .contains("<title>frontend: GET /checkout\n300ms · 4 spans, 1 error")
    );

    // Every filter, alone.
    for (query, expected) in [
        ("service=payment", vec![checkout]),
        ("service=search-svc&operation=query+index", vec![search]),
        ("operation=GET+%2Fhealth", vec![health]),
        ("min_duration=100ms", vec![checkout]),
        ("max_duration=5ms", vec![health]),
        ("min_duration=25ms&max_duration=35ms", vec![search]),
        ("error=true", vec![checkout]),
        ("attr=user.tier%3Dgold", vec![checkout]),
        ("attr=service.name%3Dsearch-svc", vec![search]),
        (
            "attr=deployment.environment%3Dstaging&sort=longest&limit=2",
            vec![checkout, search],
        ),
        ("limit=1", vec![health]),
        (
            "lookback=1h&service=&operation=&min_duration=&max_duration=&attr=",
            vec![health, search, checkout],
        ),
    ] {
        let page = alice.get(&format!("/traces?{query}")).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        assert_eq!(result_ids(&page), ids(&expected), "{query}");
    }
    // The form shows the search it ran.
    let filtered = alice
        .get("/traces?service=payment&min_duration=100ms&error=true&attr=user.tier%3Dgold")
        .await;
    for field in [
        "<option selected>payment</option>",
        "name=\"min_duration\" value=\"100ms\"",
        "name=\"error\" value=\"true\" checked",
        "name=\"attr\" value=\"user.tier=gold\"",
        "Clear filters",
    ] {
        assert!(filtered.body.contains(field), "{field}");
    }
    assert!(
        filtered.body.contains("<option value=\"charge-card\">"),
        "operations of the service are suggested"
    );

    // A custom range: a window an hour ago holds none of them; one around them holds all.
    let past = chrono::Utc::now() - chrono::Duration::hours(2);
    let before = format!(
        "/traces?lookback=custom&start={}&end={}",
        past.format("%Y-%m-%dT%H:%M"),
        (past + chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M")
    );
    let none = alice.get(&before).await;
    assert!(none.body.contains("No traces match"), "{}", none.body);
    let around = chrono::Utc::now() - chrono::Duration::minutes(5);
    let brushed = alice
        .get(&format!(
            "/traces?start={}&end={}",
            around.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            (around + chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%S%.3fZ")
        ))
        .await;
    assert_eq!(result_ids(&brushed).len(), 3);
    assert!(brushed.body.contains("<option value=\"custom\" selected>"));

    // Bad fields say which one; a pasted id jumps, anything else in the box is refused.
    let bad = alice.get("/traces?min_duration=fast").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Invalid min_duration"), "{}", bad.body);
    assert!(
        bad.body.contains("value=\"fast\""),
        "the form keeps what was typed"
    );
    let jump = alice
        .get(&format!("/traces?q=+{}+", checkout.to_uppercase()))
        .await;
    assert_eq!(jump.status, 303);
    assert_eq!(jump.location, Some(format!("/traces/{checkout}")));
    let not_an_id = alice.get("/traces?q=checkout").await;
    assert_eq!(not_an_id.status, 400);
    assert!(not_an_id.body.contains("is not a trace id"));

    // The trace page: every span and service, the error marked, the exception prominent.
    let trace = alice.get(&format!("/traces/{checkout}")).await;
    assert_eq!(trace.status, 200);
    for name in &shop.checkout_spans {
        assert!(
            trace.body.contains(&format!("</b> {name}</a>")),
            "row of {name}"
        );
    }
    for service in ["frontend", "checkout", "payment", "db"] {
        assert!(
            trace.body.contains(&format!("\">{service}</b>")),
            "{service}"
        );
    }
    assert!(trace.body.contains(&format!(
        "<div class=\"r err\" id=\"span-{}\"",
        shop.charge_span
    )));
    assert_eq!(trace.body.matches("<div class=\"r err\"").count(), 1);
    assert!(
        trace
            .body
            .contains(&format!("id=\"detail-{}\"", shop.charge_span))
    );
    assert!(
        trace
            .body
            .contains("<strong>CardDeclined</strong>: insufficient funds")
    );
    assert!(
        trace
            .body
            .contains("at charge (payment/card.rs:42)\nat checkout")
    );
    assert!(trace.body.contains("<strong>Error</strong> card declined"));
    assert!(
        trace
            .body
            .contains(&format!("href=\"/traces/{search}#span=")),
        "links lead to the linked trace"
    );
    assert!(
        trace
            .body
            .contains(&format!("href=\"/traces/{checkout}/download\""))
    );
    assert!(trace.body.contains("<dt>Spans</dt><dd>4</dd>"));
    assert!(trace.body.contains("<dt>Duration</dt><dd>300ms</dd>"));
    assert!(
        trace
            .body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "values are escaped"
    );
    assert!(!trace.body.contains("<script>alert(1)"));
    assert!(
        !trace.body.contains("<script>"),
        "no inline script: the CSP allows none"
    );
    // Nesting: the db query is a grandchild of the root, in start order after the charge.
    let position = |name: &str| trace.body.find(&format!("</b> {name}</a>")).unwrap();
    assert!(position("charge-card") < position("SELECT orders"));
    assert!(
        trace
            .body
            .contains("data-depth=\"2\"><div class=\"n\" style=\"--d:2\">")
    );
    assert!(
        trace.body.contains("data-kids=\"3\""),
        "the root can fold its three descendants"
    );
    // The critical path: the root's own time before and after the checkout call, the
    // checkout's own time around its calls, the whole charge and the whole query.
    let charge_row = trace
        .body
        .split(&format!("id=\"span-{}\"", shop.charge_span))
        .nth(1)
        .and_then(|rest| rest.split("<div class=\"r").next())
        .unwrap();
    assert!(
        charge_row.contains("<i class=\"cp\" style=\"left:13.333%;width:40%\"></i>"),
        "{charge_row}"
    );
    assert_eq!(trace.body.matches("<i class=\"cp\"").count(), 7);

    // The download is OTLP JSON that decodes with every span, grouped by service.
    let response = stack
        .http
        .get(stack.query_url(&format!("/traces/{checkout}/download")))
        .header(
            "cookie",
            format!("weft_session={}", alice.cookies["weft_session"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"trace-{checkout}.json\"").as_str()
    );
    let exported: ExportTraceServiceRequest = response.json().await.unwrap();
    let mut names: Vec<String> = exported
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| {
            assert_eq!(hex::encode(&s.trace_id), *checkout);
            s.name.clone()
        })
        .collect();
    names.sort();
    let mut expected: Vec<String> = shop.checkout_spans.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(exported.resource_spans.len(), 4);
    // It can be sent to an OTLP endpoint again as it is.
    let resend = stack
        .http
        .post(stack.ingest_url("/v1/traces"))
        .header("content-type", "application/json")
        .header("x-api-key", &key)
        .body(serde_json::to_vec(&exported).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), 200);

    // Malformed and unknown ids.
    for malformed in ["not-hex", "00000000000000000000000000000000", "abc"] {
        let page = alice.get(&format!("/traces/{malformed}")).await;
        assert_eq!(page.status, 400, "{malformed}");
        assert!(page.body.contains("Not a trace id"), "{malformed}");
        assert_eq!(
            alice
                .get(&format!("/traces/{malformed}/download"))
                .await
                .status,
            400
        );
    }
    let unknown = hex::encode(random_id::<16>());
    let missing = alice.get(&format!("/traces/{unknown}")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Trace not found"));
    assert_eq!(
        alice
            .get(&format!("/traces/{unknown}/download"))
            .await
            .status,
        404
    );

    // Another organisation sees none of it: the same 404 as an unknown id.
    let mut mallory = Visitor::new(&stack);
    mallory.sign_up("mallory@evil.io", "Evil").await;
    let foreign = mallory.get(&format!("/traces/{checkout}")).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(
        foreign.body.replace(checkout.as_str(), ""),
        mallory
            .get(&format!("/traces/{unknown}"))
            .await
            .body
            .replace(&unknown, "")
    );
    for secret in ["charge-card", "CardDeclined", "payment"] {
        assert!(!foreign.body.contains(secret), "{secret}");
    }
    assert_eq!(
        mallory
            .get(&format!("/traces/{checkout}/download"))
            .await
            .status,
        404
    );
    let theirs = mallory.get("/traces?lookback=7d").await;
    assert!(theirs.body.contains("No traces yet"));
    assert!(result_ids(&theirs).is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_trace_shows_its_sample_rate() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@sampled.io", "Sampled").await;
    let accounts = &stack.ns.accounts;
    let alice_id = accounts
        .user_by_email("alice@sampled.io")
        .await
        .unwrap()
        .unwrap()
        .id;
    let tenant = accounts.memberships(alice_id).await.unwrap()[0].tenant_id;

    // The sampler keeps every trace today (rate 1); a trace kept 1 in 4 is written as
    // tail sampling will write it.
    let now = now_ns();
    let span = weft_storage::clickhouse::SpanRow {
        tenant_id: tenant,
        trace_id: random_id::<16>(),
        span_id: random_id::<8>(),
        parent_span_id: [0; 8],
        trace_state: String::new(),
        service_name: "batch".into(),
        name: "nightly job".into(),
        kind: 1,
        start_time: (now / 1_000_000_000) as u32,
        start_time_unix_nano: now,
        duration_ns: 42 * MS,
        status_code: 0,
        status_message: String::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        attribute_keys: vec![],
        attribute_values: vec![],
        resource_keys: vec!["service.name".to_owned()].into(),
        resource_values: vec!["batch".to_owned()].into(),
        event_times_unix_nano: vec![],
        event_names: vec![],
        event_attributes: vec![],
        link_trace_ids: vec![],
        link_span_ids: vec![],
        link_attributes: vec![],
        sample_rate: 4.0,
        sampled_by: "keep a quarter".to_owned(),
    };
    stack
        .ns
        .store
        .insert_spans(std::slice::from_ref(&span))
        .await
        .unwrap();
    let trace = alice
        .get(&format!("/traces/{}", hex::encode(span.trace_id)))
        .await;
    assert_eq!(trace.status, 200, "{}", trace.body);
    assert!(trace.body.contains("<dt>Sampled</dt><dd>1 in 4</dd>"));
    stack.stop().await;
}

/// A trace of `spans` spans over six services, eight children per span (depth 5 for
/// 10 000), with two attributes each and an exception on every hundredth.
fn large_trace(spans: usize) -> (ExportTraceServiceRequest, String) {
    const SERVICES: [&str; 6] = ["gateway", "orders", "inventory", "pricing", "db", "cache"];
    let trace_id = random_id::<16>();
    let ids: Vec<[u8; 8]> = (0..spans).map(|_| random_id::<8>()).collect();
    let depth = |mut i: usize| {
        let mut d = 0;
        while i > 0 {
            i = (i - 1) / 8;
            d += 1;
        }
        d
    };
    let planned = (0..spans)
        .map(|i| {
            let d = depth(i) as u64;
            let mut span = planned(
                SERVICES[i % SERVICES.len()],
                ["load", "store", "lookup", "render", "query", "fetch"][i % 6],
                d * 2 + (i as u64 % 50),
                (400 >> d).max(1),
            );
            span.id = ids[i];
            span.parent = (i > 0).then(|| ids[(i - 1) / 8]);
            span.error = i % 100 == 7;
            span.attributes = vec![
                string_attribute("item.index", &i.to_string()),
                string_attribute("http.route", "/api/orders/{id}"),
            ];
            span
        })
        .collect();
    let request = trace_request(trace_id, now_ns() - 60_000 * MS, planned);
    (request, hex::encode(trace_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_traces_render_every_span() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    let key = alice.sign_up("alice@big.io", "Big").await.shown("new-key");
    for spans in [1_000, 10_000] {
        let (request, trace_id) = large_trace(spans);
        assert_eq!(stack.export(&key, &request).await, 200);
        let path = format!("/traces/{trace_id}");
        page_when(&mut alice, &path, |page| {
            page.status == 200
                && page
                    .body
                    .contains(&format!("<dt>Spans</dt><dd>{spans}</dd>"))
        })
        .await;
        let cookie = format!("weft_session={}", alice.cookies["weft_session"]);
        let mut timings = Vec::new();
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let response = stack
                .http
                .get(stack.query_url(&path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            let timing = response.headers()["server-timing"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = response.text().await.unwrap();
            let total = started.elapsed();
            assert_eq!(
                body.matches("\" data-depth=\"").count(),
                spans,
                "a row per span"
            );
            assert_eq!(body.matches("<section class=\"detail\"").count(), spans);
            timings.push(format!(
                "{timing}, total {total:?}, {} KiB",
                body.len() / 1024
            ));
        }
        for timing in timings {
            println!("trace of {spans} spans: {timing}");
        }
        // A page further into the waterfall, as a trace beyond 10 000 spans is shown.
        let tail = alice.get(&format!("{path}?offset={}", spans - 10)).await;
        assert_eq!(tail.status, 200);
        assert_eq!(tail.body.matches("\" data-depth=\"").count(), 10);
        assert!(
            tail.body
                .contains(&format!("Spans {}–{spans} of {spans}", spans - 9))
        );
        assert!(
            tail.body
                .contains(&format!("{path}?offset=0\">← Previous spans"))
        );
        assert_eq!(alice.get(&format!("{path}?offset=many")).await.status, 400);
    }
    stack.stop().await;
}

/// The row of span `span_id` in a trace page's HTML, up to the next row.
fn waterfall_row<'a>(body: &'a str, span_id: &str) -> &'a str {
    body.split(&format!("id=\"span-{span_id}\""))
        .nth(1)
        .and_then(|rest| rest.split("<div class=\"r").next())
        .unwrap_or_else(|| panic!("no row of span {span_id}"))
}

/// A trace one page cannot hold, whose critical path is known: a 1 s import whose
/// 10 000 short early writes fill the first page, and a late `notify` (500–950 ms)
/// calling `send` (600–900 ms) on the second. The path runs through the root's last
/// 50 ms, `notify` after and before `send`, all of `send`, and the root from the last
/// write (300 ms) to `notify`: the second page marks it although `notify`'s parent, and
/// the writes before it, are on the first. The browser then sees it highlighted
/// (`frontend/e2e/critical-path-flow.mjs`, screenshots in
/// `.weft/test-output/browser/critical-path`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_critical_path_of_a_trace_larger_than_a_page() {
    let weft_e2e::browser::BrowserRun {
        root: workspace,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("critical-path");
    let stack = Stack::start().await;
    let email = "carol@paged.io";
    let mut carol = Visitor::new(&stack);
    let key = carol.sign_up(email, "Paged").await.shown("new-key");
    let trace_id = random_id::<16>();
    let root = planned("importer", "POST /import", 0, 1_000);
    let mut spans = Vec::with_capacity(10_003);
    for i in 0..10_000 {
        let mut write = planned("postgres", "INSERT row", i % 300, 1);
        write.parent = Some(root.id);
        spans.push(write);
    }
    let mut notify = planned("importer", "notify", 500, 450);
    notify.parent = Some(root.id);
    let mut send = planned("mailer", "send report", 600, 300);
    send.parent = Some(notify.id);
    let ids = [root.id, notify.id, send.id].map(hex::encode);
    let [root_id, notify_id, send_id] = ids.clone();
    spans.extend([notify, send]);
    spans.insert(0, root);
    let request = trace_request(trace_id, now_ns() - 60_000 * MS, spans);
    assert_eq!(stack.export(&key, &request).await, 200);
    let trace = hex::encode(trace_id);
    let path = format!("/traces/{trace}");

    let second = page_when(&mut carol, &format!("{path}?offset=10000"), |page| {
        page.status == 200 && page.body.contains("<dt>Spans</dt><dd>10003</dd>")
    })
    .await;
    assert!(
        second.body.contains("Spans 10001–10003 of 10003"),
        "the second page holds the last three spans"
    );
    let cp = |left: &str, width: &str| {
        format!("<i class=\"cp\" style=\"left:{left}%;width:{width}%\"></i>")
    };
    assert!(
        waterfall_row(&second.body, &notify_id).contains(&format!(
            "{}{}",
            cp("90", "5"),
            cp("50", "10")
        )),
        "notify's own time after and before its call: {}",
        waterfall_row(&second.body, &notify_id)
    );
    assert!(
        waterfall_row(&second.body, &send_id).contains(&cp("60", "30")),
        "the whole call: {}",
        waterfall_row(&second.body, &send_id)
    );
    assert_eq!(
        second.body.matches("<i class=\"cp\"").count(),
        3,
        "the write left on this page is not on the path"
    );
    assert!(second.body.contains("<dt>Depth</dt><dd>3</dd>"));
    let first = carol.get(&path).await;
    assert!(
        waterfall_row(&first.body, &root_id).contains(&format!(
            "{}{}",
            cp("95", "5"),
            cp("30", "20")
        )),
        "the root's own time after notify and between the last write and notify: {}",
        waterfall_row(&first.body, &root_id)
    );

    weft_e2e::browser::run_flow(
        &workspace,
        "critical-path-flow.mjs",
        &[
            ("WEFT_QUERY_URL", format!("http://{}", stack.query)),
            ("WEFT_EMAIL", email.to_owned()),
            ("WEFT_PASSWORD", weft_e2e::web::PASSWORD.to_owned()),
            ("WEFT_TRACE", trace),
            ("WEFT_ROOT_SPAN", root_id),
            ("WEFT_CALL_SPAN", notify_id),
            ("WEFT_CALLEE_SPAN", send_id),
            ("WEFT_SCREENSHOTS", screenshots.display().to_string()),
            ("WEFT_CHROMIUM", chromium),
        ],
    )
    .await;
    stack.stop().await;
}
