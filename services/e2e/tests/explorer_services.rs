//! The services pages and the service map as a signed-in user reads them over HTTP:
//! traces of known durations and errors are sent through ingest, and `/services`, a
//! service's page and `/map` show the exact request counts, error rates and histogram
//! percentiles of what was sent (within 3.125 % of the exact nearest-rank ones), the
//! operations table, links into the right trace searches, the map's boxes and call
//! labels; another organisation sees none of it; and a map of 50 services is laid out
//! with no two boxes of a layer overlapping.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::collections::BTreeSet;
use std::time::Duration;
use weft_e2e::Stack;
use weft_e2e::otlp::{now_ns, random_id, string_attribute};
use weft_e2e::web::{Page, Visitor};
use weft_storage::clickhouse::DurationHistogram;

const MS: u64 = 1_000_000;
const SERVER: i32 = 2;
const INTERNAL: i32 = 1;
const TRACES: u64 = 40;

/// One span as the test plans it.
struct Planned {
    service: String,
    name: &'static str,
    kind: i32,
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    start: u64,
    ns: u64,
    error: bool,
}

/// Spans as SDKs of their services would send them: one resource per service.
fn export_request(trace_id: [u8; 16], spans: &[Planned]) -> ExportTraceServiceRequest {
    let mut resources: Vec<ResourceSpans> = Vec::new();
    for span in spans {
        let service = string_attribute("service.name", &span.service);
        let position = resources
            .iter()
            .position(|r| r.resource.as_ref().unwrap().attributes[0] == service)
            .unwrap_or_else(|| {
                resources.push(ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![service.clone()],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans::default()],
                    schema_url: String::new(),
                });
                resources.len() - 1
            });
        resources[position].scope_spans[0].spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: span.id.to_vec(),
            parent_span_id: span.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: span.name.to_owned(),
            kind: span.kind,
            start_time_unix_nano: span.start,
            end_time_unix_nano: span.start + span.ns,
            status: span.error.then(|| Status {
                code: 2,
                message: "failed".into(),
            }),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: resources,
    }
}

/// The shop's traffic: `frontend` (`GET /checkout`, server, and `render`, internal)
/// calls `checkout` (`POST /checkout`), which calls `payments` (`POST /charge`); every
/// tenth checkout and every eighth charge fails. `batch` runs three internal jobs.
struct Shop {
    trace_ids: Vec<String>,
    frontend_ns: Vec<u64>,
    checkout_ns: Vec<u64>,
    payments_ns: Vec<u64>,
    failing_checkouts: BTreeSet<String>,
}

fn checkout_fails(i: u64) -> bool {
    i.is_multiple_of(10)
}

fn charge_fails(i: u64) -> bool {
    i.is_multiple_of(8)
}

async fn send_shop(stack: &Stack, key: &str) -> Shop {
    let base = now_ns() - 60_000 * MS;
    let mut shop = Shop {
        trace_ids: Vec::new(),
        frontend_ns: Vec::new(),
        checkout_ns: Vec::new(),
        payments_ns: Vec::new(),
        failing_checkouts: BTreeSet::new(),
    };
    for i in 0..TRACES {
        let trace_id = random_id::<16>();
        let start = base + i * 250 * MS;
        let (frontend, checkout, payments) = (
            (100 + i * 7) * MS,
            (60 + i * 13 % 50) * MS + 123_456,
            (20 + i * 17 % 40) * MS + 654_321,
        );
        let ids = (random_id::<8>(), random_id::<8>(), random_id::<8>());
        let span = |service: &str, name, kind, id, parent, offset: u64, ns, error| Planned {
            service: service.to_owned(),
            name,
            kind,
            id,
            parent,
            start: start + offset * MS,
            ns,
            error,
        };
        let spans = [
            span(
                "frontend",
                "GET /checkout",
                SERVER,
                ids.0,
                None,
                0,
                frontend,
                false,
            ),
            span(
                "frontend",
                "render",
                INTERNAL,
                random_id::<8>(),
                Some(ids.0),
                1,
                3 * MS,
                false,
            ),
            span(
                "checkout",
                "POST /checkout",
                SERVER,
                ids.1,
                Some(ids.0),
                5,
                checkout,
                checkout_fails(i),
            ),
            span(
                "payments",
                "POST /charge",
                SERVER,
                ids.2,
                Some(ids.1),
                10,
                payments,
                charge_fails(i),
            ),
        ];
        assert_eq!(
            stack.export(key, &export_request(trace_id, &spans)).await,
            200
        );
        let id = hex::encode(trace_id);
        if checkout_fails(i) {
            shop.failing_checkouts.insert(id.clone());
        }
        shop.trace_ids.push(id);
        shop.frontend_ns.push(frontend);
        shop.checkout_ns.push(checkout);
        shop.payments_ns.push(payments);
    }
    for job in 0..3_u64 {
        let spans = [Planned {
            service: "batch".into(),
            name: "nightly export",
            kind: INTERNAL,
            id: random_id::<8>(),
            parent: None,
            start: base + job * MS,
            ns: 5 * MS,
            error: false,
        }];
        assert_eq!(
            stack
                .export(key, &export_request(random_id::<16>(), &spans))
                .await,
            200
        );
    }
    shop
}

/// Polls a page until `ready` holds for it.
async fn page_when(visitor: &mut Visitor, path: &str, ready: impl Fn(&Page) -> bool) -> Page {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = visitor.get(path).await;
        if ready(&page) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never became ready: {} {}",
            page.status,
            page.body.chars().take(3000).collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Undoes askama's escaping of the characters these pages put in links and titles.
fn unescape(html: &str) -> String {
    html.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#62;", ">")
        .replace("&#60;", "<")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
}

/// The table row (`<tr …</tr>`) whose link starts with `href`.
fn row<'a>(page: &'a Page, href: &str) -> &'a str {
    let start = page
        .body
        .find(&format!("<tr data-href=\"{href}"))
        .unwrap_or_else(|| panic!("no row for {href}: {}", page.body));
    let rest = &page.body[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// The services of a services table, in table order.
fn listed(page: &Page) -> Vec<String> {
    page.body
        .split("<tr data-href=\"/services/")
        .skip(1)
        .map(|rest| rest.split('?').next().unwrap().to_owned())
        .collect()
}

/// The `<data value>` of the latency cell `class` in `html`.
fn latency(html: &str, class: &str) -> u64 {
    let cell = html
        .split(&format!("{class}\"><data value=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no {class} in {html}"));
    cell.split('"').next().unwrap().parse().unwrap()
}

/// Percentiles as the histogram (and so the page) reports them, checked against the
/// exact nearest-rank percentiles of what was sent.
fn percentiles(durations: &[u64]) -> [u64; 3] {
    let mut histogram = DurationHistogram::default();
    for d in durations {
        histogram.record(*d);
    }
    let mut sorted = durations.to_vec();
    sorted.sort_unstable();
    [0.5, 0.95, 0.99].map(|q| {
        let read = histogram.quantile(q).unwrap();
        let exact = sorted[((q * sorted.len() as f64).ceil() as usize).max(1) - 1];
        let error = (read as f64 - exact as f64).abs() / exact as f64;
        assert!(error <= 1.0 / 32.0, "p{q}: {read} against {exact}");
        read
    })
}

fn assert_latencies(html: &str, durations: &[u64], what: &str) {
    let [p50, p95, p99] = percentiles(durations);
    assert_eq!(
        [
            latency(html, "p50"),
            latency(html, "p95"),
            latency(html, "p99")
        ],
        [p50, p95, p99],
        "{what}"
    );
}

/// A duration as the pages write it below a second: three significant digits.
fn millis(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    let decimals = if ms >= 100.0 {
        0
    } else if ms >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{ms:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}ms")
}

/// The trace ids of a search results page, in table order.
fn result_ids(page: &Page) -> Vec<String> {
    page.body
        .split("<tr")
        .filter_map(|row| row.split("data-href=\"/traces/").nth(1))
        .map(|rest| rest[..32].to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_the_map_show_what_was_sent() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    assert_eq!(
        alice.get("/services").await.location.as_deref(),
        Some("/login")
    );
    let key = alice
        .sign_up("alice@shop.io", "Shop")
        .await
        .shown("new-key");

    // Before any data: the pages say how to start.
    let empty = alice.get("/services").await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("No services yet"), "{}", empty.body);
    assert!(
        empty
            .body
            .contains("<a href=\"/services\" aria-current=\"page\" class=\"current\">Services</a>"),
        "the Services link is marked current"
    );
    assert!(alice.get("/map").await.body.contains("No services yet"));
    let nothing = alice.get("/services/checkout").await;
    assert_eq!(nothing.status, 404);
    assert!(
        nothing
            .body
            .contains("No spans from checkout in this range")
    );

    let shop = send_shop(&stack, &key).await;
    let list = page_when(&mut alice, "/services?lookback=15m", |page| {
        ["frontend", "checkout", "payments"].iter().all(|s| {
            page.body
                .contains(&format!("<tr data-href=\"/services/{s}?"))
                && row(page, &format!("/services/{s}?"))
                    .contains(&format!("<small class=\"count\">{TRACES}</small>"))
        }) && page.body.contains("/services/batch?")
            // The batch jobs' metrics may be stored by more than one write.
            && row(page, "/services/batch?").contains("<small class=\"count\">3</small>")
    })
    .await;
    let map = page_when(&mut alice, "/map?lookback=15m", |page| {
        page.body.matches("<td class=\"num calls\">40</td>").count() == 2
    })
    .await;

    // The services table: one row per service, by name, with the exact counts.
    assert_eq!(listed(&list), ["batch", "checkout", "frontend", "payments"]);
    let checkout = row(&list, "/services/checkout?");
    assert!(
        checkout.contains("<span class=\"v err\">10%</span><small class=\"count\">4</small>"),
        "{checkout}"
    );
    assert!(
        checkout.contains("<span class=\"v\">2.67/min</span>"),
        "40 in 15 minutes: {checkout}"
    );
    assert!(checkout.contains("href=\"/services/checkout?lookback=15m\""));
    assert_eq!(checkout.matches("<svg class=\"spark\"").count(), 3);
    assert_latencies(checkout, &shop.checkout_ns, "checkout");
    let payments = row(&list, "/services/payments?");
    assert!(
        payments.contains(">12.5%</span><small class=\"count\">5</small>"),
        "{payments}"
    );
    assert_latencies(payments, &shop.payments_ns, "payments");
    let frontend = row(&list, "/services/frontend?");
    assert!(frontend.contains("<span class=\"v\">0%</span><small class=\"count\">0</small>"));
    assert_latencies(frontend, &shop.frontend_ns, "frontend's server spans only");
    let batch = row(&list, "/services/batch?");
    assert!(
        batch.contains(">all spans</small>"),
        "batch has no server spans: {batch}"
    );
    assert!(batch.contains("<small class=\"count\">3</small>"));

    // Sorted by a column of the URL; the header says which.
    let slowest = alice.get("/services?lookback=15m&sort=p95&dir=desc").await;
    assert_eq!(
        listed(&slowest),
        ["frontend", "checkout", "payments", "batch"]
    );
    assert!(slowest.body.contains("aria-sort=\"descending\"><a href=\"/services?lookback=15m&#38;sort=p95&#38;dir=asc\">p95</a>"), "{}", slowest.body);
    let fewest_errors = alice
        .get("/services?lookback=15m&sort=errors&dir=asc")
        .await;
    assert_eq!(listed(&fewest_errors)[2..], ["checkout", "payments"]);
    // The range is the search page's: presets and custom times.
    assert!(
        list.body
            .contains("<option value=\"15m\" selected>Last 15 minutes</option>")
    );
    let old = alice
        .get("/services?lookback=custom&start=2020-01-01T00:00&end=2020-01-01T01:00")
        .await;
    assert!(old.body.contains("No spans in this range"), "{}", old.body);
    assert!(old.body.contains("Jan 01, 00:00:00 – 01:00:00 UTC"));
    let bad = alice.get("/services?lookback=soon").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Invalid lookback"), "{}", bad.body);

    // A service: its numbers, charts, operations, neighbours and trace links.
    let page = alice.get("/services/checkout?lookback=15m").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let head = &page.body[page.body.find("class=\"card service-head\"").unwrap()..];
    let head = &head[..head.find("</section>").unwrap()];
    assert!(head.contains("<dd class=\"requests\">40</dd>"), "{head}");
    assert!(head.contains("<dd class=\"errors err\">10% <small>(4)</small></dd>"));
    assert_latencies(head, &shop.checkout_ns, "checkout's summary");
    assert_eq!(
        page.body.matches("<svg class=\"plot\"").count(),
        2,
        "latency and throughput"
    );
    for legend in [
        "<span class=\"key p50\"></span>p50",
        "<span class=\"key p99\"></span>p99",
        "<span class=\"key errors\"></span>errors",
    ] {
        assert!(page.body.contains(legend), "{legend}");
    }
    // Every step's hover title counts its requests; together, what was sent (per chart).
    let counted: u64 = page
        .body
        .split(" UTC\n")
        .skip(1)
        .map(|rest| {
            rest.split(" request")
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, 2 * TRACES);
    let operation = row(
        &page,
        "/traces?service=checkout&#38;operation=POST+%2Fcheckout",
    );
    assert!(operation.contains(">POST /checkout</a> <small class=\"kind\">server</small>"));
    assert!(operation.contains("<small class=\"count\">40</small>"));
    assert_latencies(operation, &shop.checkout_ns, "POST /checkout");
    let neighbours = &page.body[page.body.find("class=\"neighbours\"").unwrap()..];
    let (called_by, calls) = neighbours.split_once("aria-label=\"Calls\"").unwrap();
    assert!(called_by.contains(">frontend</span>") && !called_by.contains(">payments</span>"));
    assert!(calls.contains(">payments</span>") && calls.contains("12.5% err"));

    let link = |id: &str| {
        let marker = format!("id=\"{id}\" href=\"");
        let at = page.body.find(&marker).unwrap() + marker.len();
        unescape(page.body[at..].split('"').next().unwrap())
    };
    assert_eq!(
        link("slowest-traces"),
        "/traces?service=checkout&sort=longest&lookback=15m"
    );
    assert_eq!(
        link("error-traces"),
        "/traces?service=checkout&error=true&lookback=15m"
    );
    // The metrics are written as spans arrive; the kept traces once decided, a moment
    // later: the links find them once the sampler has stored them.
    let slowest = shop.trace_ids[TRACES as usize - 1].clone();
    let longest = page_when(&mut alice, &link("slowest-traces"), |page| {
        result_ids(page).first() == Some(&slowest)
    })
    .await;
    assert_eq!(result_ids(&longest)[0], slowest, "the slowest trace first");
    let failing = page_when(&mut alice, &link("error-traces"), |page| {
        result_ids(page).into_iter().collect::<BTreeSet<_>>() == shop.failing_checkouts
    })
    .await;
    let failing: BTreeSet<String> = result_ids(&failing).into_iter().collect();
    assert_eq!(failing, shop.failing_checkouts);

    let frontend_page = alice.get("/services/frontend?lookback=15m").await;
    let render = row(
        &frontend_page,
        "/traces?service=frontend&#38;operation=render",
    );
    assert!(render.contains("<small class=\"kind\">internal</small>"));
    assert!(
        frontend_page
            .body
            .contains("<dd class=\"requests\">40</dd>"),
        "server spans only"
    );

    // An unknown service is a page that says what to do, not an error.
    let unknown = alice.get("/services/nope?lookback=15m").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("No spans from nope in this range"));
    assert!(unknown.body.contains("href=\"/services/nope?lookback=7d\""));

    // The map: a box per service linking to its page, a labelled curve per call.
    for service in ["frontend", "checkout", "payments", "batch"] {
        assert!(
            map.body.contains(&format!(
                "<a href=\"/services/{service}?lookback=15m\" class=\"node"
            )),
            "{service}"
        );
    }
    assert_eq!(map.body.matches("<path class=\"edge").count(), 2);
    assert_eq!(
        map.body.matches("<path class=\"edge err\"").count(),
        2,
        "10 % and 12.5 % fail"
    );
    // A call's latency and errors are the callee's.
    let [_, checkout_p95, _] = percentiles(&shop.checkout_ns);
    let [_, payments_p95, _] = percentiles(&shop.payments_ns);
    for (label, p95) in [
        ("2.67/min · 10%", checkout_p95),
        ("2.67/min · 12.5%", payments_p95),
    ] {
        assert!(
            map.body
                .contains(&format!(">{label}</text><text class=\"p95\" x=\"")),
            "{label}: {}",
            map.body
        );
        assert!(
            map.body.contains(&format!(">p95 {}</text>", millis(p95))),
            "{label}"
        );
    }
    assert!(
        map.body
            .contains("<title>checkout → payments\n40 calls (2.67/min), 5 errors (12.5%)")
    );
    assert!(
        map.body
            .contains("<span class=\"arrow-to\" aria-hidden=\"true\">→</span>")
    );

    // Another organisation sees none of it.
    let mut mallory = Visitor::new(&stack);
    mallory.sign_up("mallory@evil.io", "Evil").await;
    for path in ["/services?lookback=15m", "/map?lookback=15m"] {
        let theirs = mallory.get(path).await;
        assert!(theirs.body.contains("No services yet"), "{path}");
        for secret in ["checkout", "payments", "frontend"] {
            assert!(!theirs.body.contains(secret), "{path} shows {secret}");
        }
    }
    let foreign = mallory.get("/services/checkout?lookback=15m").await;
    assert_eq!(
        foreign.status, 404,
        "the same page as a service that does not exist"
    );
    assert!(
        foreign
            .body
            .contains("No spans from checkout in this range")
    );
    for secret in [
        "payments",
        "frontend",
        "POST /checkout",
        "<svg class=\"plot\"",
    ] {
        assert!(!foreign.body.contains(secret), "{secret}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_of_fifty_services_is_laid_out_readably() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    let key = alice
        .sign_up("alice@mesh.io", "Mesh")
        .await
        .shown("new-key");
    let (requests, calls) = weft_e2e::mesh::fifty_services(now_ns() - 30_000 * MS);
    for request in &requests {
        assert_eq!(stack.export(&key, request).await, 200);
    }
    let services: BTreeSet<&String> = calls.iter().flat_map(|(a, b)| [a, b]).collect();
    let map = page_when(&mut alice, "/map?lookback=15m", |page| {
        page.body.matches("<path class=\"edge").count() == calls.len()
            && page.body.matches(" data-service=\"").count() == services.len()
    })
    .await;
    assert_eq!(services.len(), 50);
    // Boxes as drawn: no two overlap.
    let boxes: Vec<(f64, f64)> = map
        .body
        .split("<rect class=\"box\" x=\"")
        .skip(1)
        .map(|rest| {
            let x: f64 = rest.split('"').next().unwrap().parse().unwrap();
            let y: f64 = rest
                .split("y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (x, y)
        })
        .collect();
    assert_eq!(boxes.len(), services.len());
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart = (a.0 - b.0).abs() >= 168.0 || (a.1 - b.1).abs() >= 46.0;
            assert!(apart, "boxes at {a:?} and {b:?} overlap");
        }
    }
    // Four layers, left to right in tier order.
    let column = |service: &str| {
        let at = map
            .body
            .find(&format!("data-service=\"{service}\""))
            .unwrap();
        let rest = &map.body[at..];
        rest.split("x=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let (gateway, web, svc, store) = (
        column("gateway-00"),
        column("web-00"),
        column("svc-00"),
        column("store-00"),
    );
    assert!(
        gateway < web && web < svc && svc < store,
        "{gateway} {web} {svc} {store}"
    );
    assert_eq!(
        map.body.matches("<td class=\"num calls\">").count(),
        calls.len()
    );
    stack.stop().await;
}
