//! The trace explorer in a real browser: a shop instrumented with the OpenTelemetry SDK
//! (five services, one failing checkout, a spread of ordinary requests, one 10 000-span
//! import) sends its traces to a stack, and `frontend/e2e/explorer-flow.mjs` drives
//! Debian's chromium through search, a trace, collapsing, selection, `#span=` links,
//! keyboard navigation and find, without JavaScript too, under the dashboard's
//! Content-Security-Policy. Screenshots at 1280 and 390 px, light and dark, land in
//! `.weft/test-output/browser/explorer`. The same shop's metrics, and a second
//! organisation of 50 services, are read on the services pages and the service map by
//! `frontend/e2e/services-flow.mjs` (screenshots in `.weft/test-output/browser/services`).

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};
use weft_e2e::Stack;
use weft_e2e::web::{PASSWORD, Visitor};

const SERVICES: [&str; 6] = [
    "frontend",
    "checkout",
    "inventory",
    "payment",
    "postgres",
    "importer",
];

/// One SDK per service, as each process of the shop would run it.
fn providers(stack: &Stack, key: &str) -> HashMap<&'static str, SdkTracerProvider> {
    SERVICES
        .iter()
        .map(|&service| {
            let exporter = SpanExporter::builder()
                .with_http()
                .with_endpoint(stack.ingest_url("/v1/traces"))
                .with_headers(HashMap::from([("x-api-key".to_owned(), key.to_owned())]))
                .with_protocol(Protocol::HttpBinary)
                .build()
                .expect("exporter");
            // Room for the 10 000-span import in one go.
            let processor = BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_max_queue_size(20_000)
                        .with_max_export_batch_size(2_000)
                        .build(),
                )
                .build();
            let provider = SdkTracerProvider::builder()
                .with_span_processor(processor)
                .with_resource(
                    Resource::builder_empty()
                        .with_service_name(service)
                        .with_attributes([
                            KeyValue::new("service.version", "1.42.0"),
                            KeyValue::new("deployment.environment", "production"),
                            KeyValue::new("host.name", format!("{service}-7f9c")),
                        ])
                        .build(),
                )
                .build();
            (service, provider)
        })
        .collect()
}

/// What the browser is told to look for.
struct Sent {
    checkout: String,
    charge_span: String,
    stock_span: String,
    import: String,
}

struct Shop<'a> {
    providers: &'a HashMap<&'static str, SdkTracerProvider>,
}

/// Spans of one trace, timed in milliseconds from its start.
struct Timeline<'a> {
    shop: &'a Shop<'a>,
    start: SystemTime,
}

impl Timeline<'_> {
    /// A span of `service` starting `from` ms into the trace, under `parent`.
    fn span(
        &self,
        service: &str,
        name: &str,
        kind: SpanKind,
        parent: Option<&Context>,
        from: u64,
        attributes: Vec<KeyValue>,
    ) -> Context {
        let tracer = self.shop.providers[service].tracer("weft-shop");
        let builder = tracer
            .span_builder(name.to_owned())
            .with_kind(kind)
            .with_start_time(self.start + Duration::from_millis(from))
            .with_attributes(attributes);
        match parent {
            Some(parent) => parent.with_span(builder.start_with_context(&tracer, parent)),
            None => Context::current_with_span(builder.start(&tracer)),
        }
    }

    fn end(&self, cx: &Context, to: u64) {
        cx.span()
            .end_with_timestamp(self.start + Duration::from_millis(to));
    }
}

impl Shop<'_> {
    fn at(&self, start: SystemTime) -> Timeline<'_> {
        Timeline { shop: self, start }
    }

    /// A checkout whose card charge fails: five services, an exception with a stack trace.
    fn failing_checkout(&self, start: SystemTime) -> Sent {
        let t = self.at(start);
        let http = |method: &str, route: &str, status: i64| {
            vec![
                KeyValue::new("http.request.method", method.to_owned()),
                KeyValue::new("http.route", route.to_owned()),
                KeyValue::new("http.response.status_code", status),
            ]
        };
        let root = t.span("frontend", "GET /checkout", SpanKind::Server, None, 0, {
            let mut a = http("GET", "/checkout", 502);
            a.push(KeyValue::new("user.tier", "gold"));
            a
        });
        let api = t.span(
            "checkout",
            "POST /api/checkout",
            SpanKind::Server,
            Some(&root),
            15,
            http("POST", "/api/checkout", 502),
        );
        let reserve = t.span(
            "inventory",
            "reserve items",
            SpanKind::Internal,
            Some(&api),
            30,
            vec![KeyValue::new("cart.items", 3_i64)],
        );
        let stock = t.span(
            "postgres",
            "UPDATE stock",
            SpanKind::Client,
            Some(&reserve),
            38,
            vec![
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new(
                    "db.statement",
                    "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2",
                ),
            ],
        );
        t.end(&stock, 84);
        t.end(&reserve, 95);
        let charge = t.span(
            "payment",
            "charge card",
            SpanKind::Client,
            Some(&api),
            102,
            vec![
                KeyValue::new("payment.provider", "stripe"),
                KeyValue::new("payment.amount", 129.9),
            ],
        );
        let gateway = t.span(
            "payment",
            "POST /v1/charges",
            SpanKind::Client,
            Some(&charge),
            110,
            http("POST", "/v1/charges", 402),
        );
        t.end(&gateway, 322);
        charge.span().add_event_with_timestamp(
            "exception",
            start + Duration::from_millis(328),
            vec![
                KeyValue::new("exception.type", "CardDeclinedError"),
                KeyValue::new("exception.message", "card ending 4242 was declined: insufficient funds"),
                KeyValue::new(
                    "exception.stacktrace",
                    "CardDeclinedError: card ending 4242 was declined\n    at charge (payment/src/card.rs:88)\n    at checkout (checkout/src/api.rs:142)\n    at handle (checkout/src/main.rs:31)",
                ),
            ],
        );
        charge.span().set_status(Status::error("card declined"));
        t.end(&charge, 331);
        let order = t.span(
            "postgres",
            "INSERT order_attempts",
            SpanKind::Client,
            Some(&api),
            338,
            vec![KeyValue::new("db.system", "postgresql")],
        );
        t.end(&order, 381);
        api.span().set_status(Status::error("payment failed"));
        t.end(&api, 400);
        let render = t.span(
            "frontend",
            "render error page",
            SpanKind::Internal,
            Some(&root),
            402,
            vec![],
        );
        t.end(&render, 416);
        t.end(&root, 420);
        let id = |cx: &Context| cx.span().span_context().span_id().to_string();
        Sent {
            checkout: root.span().span_context().trace_id().to_string(),
            charge_span: id(&charge),
            stock_span: id(&stock),
            import: String::new(),
        }
    }

    /// Ordinary traffic: product pages, carts and searches of varied speed, some failing.
    fn traffic(&self, now: SystemTime) {
        let routes = [
            ("GET /products/{id}", "inventory", "load product"),
            ("GET /cart", "checkout", "load cart"),
            ("POST /cart/items", "checkout", "add item"),
            ("GET /search", "inventory", "search index"),
        ];
        for i in 0..36_u64 {
            let (route, service, inner) = routes[(i % 4) as usize];
            let t = self.at(now - Duration::from_secs(40 + i * 17));
            let total = 18 + (i * 37 % 23) * 11 + if i % 9 == 4 { 480 } else { 0 };
            let root = t.span(
                "frontend",
                route,
                SpanKind::Server,
                None,
                0,
                vec![KeyValue::new(
                    "http.route",
                    route.split(' ').nth(1).unwrap().to_owned(),
                )],
            );
            let child = t.span(service, inner, SpanKind::Server, Some(&root), 2, vec![]);
            let query = t.span(
                "postgres",
                "SELECT",
                SpanKind::Client,
                Some(&child),
                4,
                vec![KeyValue::new("db.system", "postgresql")],
            );
            t.end(&query, 4 + total / 3);
            if i % 7 == 3 {
                child.span().set_status(Status::error("upstream timeout"));
            }
            t.end(&child, total - 3);
            t.end(&root, total);
        }
    }

    /// A batch import of 10 000 spans: 99 files of 100 rows each under one request.
    fn import(&self, start: SystemTime) -> String {
        let t = self.at(start);
        let root = t.span(
            "importer",
            "POST /imports",
            SpanKind::Server,
            None,
            0,
            vec![],
        );
        for file in 0..99_u64 {
            let at = file * 90;
            let parse = t.span(
                "importer",
                "import file",
                SpanKind::Internal,
                Some(&root),
                at,
                vec![KeyValue::new("file.index", file as i64)],
            );
            for row in 0..100_u64 {
                let write = t.span(
                    "postgres",
                    "INSERT row",
                    SpanKind::Client,
                    Some(&parse),
                    at + row / 2,
                    vec![KeyValue::new("row.index", row as i64)],
                );
                t.end(&write, at + row / 2 + 1);
            }
            t.end(&parse, at + 88);
        }
        t.end(&root, 9_000);
        root.span().span_context().trace_id().to_string()
    }
}

/// Waits until the signed-in visitor's trace page shows `spans` spans.
async fn wait_for_page(visitor: &mut Visitor, trace_id: &str, spans: usize) {
    let path = format!("/traces/{trace_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = visitor.get(&path).await;
        if page.status == 200
            && page
                .body
                .contains(&format!("<dt>Spans</dt><dd>{spans}</dd>"))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never showed {spans} spans ({})",
            page.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_explores_traces_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("explorer");

    let stack = Stack::start().await;
    let email = "dana@shop.example";
    let mut dana = Visitor::new(&stack);
    let key = dana.sign_up(email, "Northwind Shop").await.shown("new-key");

    let providers = providers(&stack, &key);
    let shop = Shop {
        providers: &providers,
    };
    let now = SystemTime::now();
    let mut sent = shop.failing_checkout(now - Duration::from_secs(25));
    shop.traffic(now);
    sent.import = shop.import(now - Duration::from_secs(200));
    tokio::task::spawn_blocking(move || {
        for provider in providers.values() {
            provider.force_flush().expect("flush");
            provider.shutdown().expect("shutdown");
        }
    })
    .await
    .unwrap();
    wait_for_page(&mut dana, &sent.checkout, 8).await;
    wait_for_page(&mut dana, &sent.import, 10_000).await;

    weft_e2e::browser::run_flow(
        &root,
        "explorer-flow.mjs",
        &[
            ("WEFT_QUERY_URL", format!("http://{}", stack.query)),
            ("WEFT_EMAIL", email.to_owned()),
            ("WEFT_PASSWORD", PASSWORD.to_owned()),
            ("WEFT_TRACE", sent.checkout.clone()),
            ("WEFT_ERROR_SPAN", sent.charge_span.clone()),
            ("WEFT_DEEP_SPAN", sent.stock_span.clone()),
            ("WEFT_LARGE_TRACE", sent.import.clone()),
            ("WEFT_SCREENSHOTS", screenshots.display().to_string()),
            ("WEFT_CHROMIUM", chromium),
        ],
    )
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reads_services_and_the_map_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("services");

    let stack = Stack::start().await;
    let email = "dana@shop.example";
    let mut dana = Visitor::new(&stack);
    let key = dana.sign_up(email, "Northwind Shop").await.shown("new-key");
    let providers = providers(&stack, &key);
    let shop = Shop {
        providers: &providers,
    };
    let now = SystemTime::now();
    let sent = shop.failing_checkout(now - Duration::from_secs(25));
    shop.traffic(now);
    tokio::task::spawn_blocking(move || {
        for provider in providers.values() {
            provider.force_flush().expect("flush");
            provider.shutdown().expect("shutdown");
        }
    })
    .await
    .unwrap();
    wait_for_page(&mut dana, &sent.checkout, 8).await;

    let mesh_email = "ops@mesh.example";
    let mut ops = Visitor::new(&stack);
    let mesh_key = ops.sign_up(mesh_email, "Mesh Corp").await.shown("new-key");
    let (requests, calls) =
        weft_e2e::mesh::fifty_services(weft_e2e::otlp::now_ns() - 30_000_000_000);
    for request in &requests {
        assert_eq!(stack.export(&mesh_key, request).await, 200);
    }
    // Both organisations' metrics and calls are stored before the browser looks.
    for (visitor, edges) in [(&mut dana, 5), (&mut ops, calls.len())] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let page = visitor.get("/map").await;
            if page.body.matches("<path class=\"edge").count() >= edges {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the map never showed {edges} calls"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    weft_e2e::browser::run_flow(
        &root,
        "services-flow.mjs",
        &[
            ("WEFT_QUERY_URL", format!("http://{}", stack.query)),
            ("WEFT_EMAIL", email.to_owned()),
            ("WEFT_MESH_EMAIL", mesh_email.to_owned()),
            ("WEFT_PASSWORD", PASSWORD.to_owned()),
            ("WEFT_SERVICE", "checkout".to_owned()),
            ("WEFT_SCREENSHOTS", screenshots.display().to_string()),
            ("WEFT_CHROMIUM", chromium),
        ],
    )
    .await;
    stack.stop().await;
}
