//! The query service compresses what it sends when the client asks for it: a large
//! trace as JSON, its trace page, its OTLP download and a static file come gzip-encoded
//! with `Accept-Encoding: gzip` and plain without, decode to the same bytes, are smaller
//! compressed, and keep their headers (the security headers, `Content-Disposition`,
//! caching); every one says `Vary: Accept-Encoding`. A tiny answer is never compressed.

use flate2::read::GzDecoder;
use std::io::Read;
use weft_e2e::Stack;
use weft_e2e::otlp::{random_id, request, span, string_attribute};
use weft_e2e::web::Visitor;

const SPANS: usize = 2_000;

/// One GET as sent: status, headers and the body as it came over the wire.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The body as the client reads it: gunzipped when it says it is gzip.
    fn decoded(&self) -> Vec<u8> {
        match self.header("content-encoding") {
            None => self.body.clone(),
            Some("gzip") => {
                let mut plain = Vec::new();
                GzDecoder::new(&self.body[..])
                    .read_to_end(&mut plain)
                    .expect("a gzip body that decodes");
                plain
            }
            Some(other) => panic!("unexpected content-encoding {other}"),
        }
    }
}

/// GETs `path` with `headers`; reqwest is built without decompression, so the body is
/// what the server sent.
async fn get(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = stack.http.get(stack.query_url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("query request");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("body").to_vec(),
    }
}

/// The same resource plain and gzip-compressed: both 200, the same content, the
/// compressed one smaller and marked; both vary by `Accept-Encoding`. Returns them.
async fn plain_and_compressed(stack: &Stack, path: &str, auth: (&str, &str)) -> (Answer, Answer) {
    let plain = get(stack, path, &[auth]).await;
    let compressed = get(stack, path, &[auth, ("accept-encoding", "gzip")]).await;
    for answer in [&plain, &compressed] {
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("vary"), Some("accept-encoding"), "{path}");
    }
    assert_eq!(
        plain.header("content-encoding"),
        None,
        "{path}: not asked for"
    );
    assert_eq!(
        compressed.header("content-encoding"),
        Some("gzip"),
        "{path}"
    );
    assert!(
        compressed.body.len() * 2 < plain.body.len(),
        "{path}: {} bytes compressed, {} plain",
        compressed.body.len(),
        plain.body.len()
    );
    assert!(
        compressed.decoded() == plain.body,
        "{path}: the compressed body decodes to the plain one"
    );
    assert_eq!(
        plain.header("content-type"),
        compressed.header("content-type"),
        "{path}"
    );
    println!(
        "{path}: {} bytes plain, {} gzip",
        plain.body.len(),
        compressed.body.len()
    );
    (plain, compressed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_gzip_compressed_when_asked() {
    let stack = Stack::start().await;
    let mut visitor = Visitor::new(&stack);
    let ingest = visitor
        .sign_up("gus@compress.io", "Compress")
        .await
        .shown("new-key");
    let tenant = stack.ns.tenant("api").await;
    let trace_id = random_id::<16>();
    let root = span(&trace_id, "POST /import");
    let mut spans = vec![root.clone()];
    for i in 1..SPANS {
        let mut child = span(&trace_id, &format!("insert row {i}"));
        child.parent_span_id = root.span_id.clone();
        child.attributes = vec![string_attribute(
            "db.statement",
            "INSERT INTO rows VALUES ($1, $2)",
        )];
        spans.push(child);
    }
    let trace = hex::encode(trace_id);
    // The same trace in the visitor's organisation (for the page) and the API tenant's.
    assert_eq!(stack.export(&ingest, &request(spans.clone())).await, 200);
    assert_eq!(stack.export(&tenant.ingest_key, &request(spans)).await, 200);
    stack.wait_for_trace(&tenant.read_key, &trace, SPANS).await;
    let cookie = format!("weft_session={}", visitor.cookies["weft_session"]);
    weft_e2e::eventually(
        "the trace page to show every span",
        std::time::Duration::from_secs(30),
        || async {
            let page = get(&stack, &format!("/traces/{trace}"), &[("cookie", &cookie)]).await;
            String::from_utf8(page.body)
                .unwrap()
                .contains(&format!("<dt>Spans</dt><dd>{SPANS}</dd>"))
                .then_some(())
        },
    )
    .await;

    // The JSON API: the same trace, parsed the same.
    let (plain, compressed) = plain_and_compressed(
        &stack,
        &format!("/api/v1/traces/{trace}"),
        ("x-api-key", &tenant.read_key),
    )
    .await;
    let json: serde_json::Value = serde_json::from_slice(&compressed.decoded()).unwrap();
    assert_eq!(json["spans"].as_array().unwrap().len(), SPANS);
    assert_eq!(plain.header("content-type"), Some("application/json"));

    // The trace page, with its security headers and timing.
    let (_, page) =
        plain_and_compressed(&stack, &format!("/traces/{trace}"), ("cookie", &cookie)).await;
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'self'")
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.header("server-timing")
            .unwrap()
            .contains("render;dur=")
    );
    assert_eq!(
        page.header("content-length"),
        None,
        "the length of a compressed body is not known ahead"
    );
    let html = String::from_utf8(page.decoded()).unwrap();
    assert_eq!(html.matches("\" data-depth=\"").count(), SPANS);

    // The OTLP download stays an attachment and decodes to the same OTLP JSON.
    let (_, download) = plain_and_compressed(
        &stack,
        &format!("/traces/{trace}/download"),
        ("cookie", &cookie),
    )
    .await;
    assert_eq!(
        download.header("content-disposition"),
        Some(format!("attachment; filename=\"trace-{trace}.json\"").as_str())
    );
    let otlp: serde_json::Value = serde_json::from_slice(&download.decoded()).unwrap();
    let exported: usize = otlp["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"].as_array().unwrap())
        .map(|s| s["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(exported, SPANS);

    // A static file keeps its caching.
    let (_, script) = plain_and_compressed(&stack, "/static/explorer.js", ("accept", "*/*")).await;
    assert_eq!(script.header("cache-control"), Some("max-age=3600"));

    // A tiny answer goes as it is, even when compression is welcome.
    let health = get(&stack, "/healthz", &[("accept-encoding", "gzip")]).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-encoding"), None);
    assert_eq!(
        health.header("vary"),
        None,
        "never compressed, so it does not vary"
    );
    stack.stop().await;
}
