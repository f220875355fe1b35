//! The logs page in a real browser: an organisation sends a trace and an hour of log
//! lines (one of them, an error, logged under a span of that trace), and
//! `frontend/e2e/logs-flow.mjs` drives Debian's chromium through the page: navigation,
//! histogram, a line opened to its attributes, the error filter in the URL, older pages,
//! and the trace link to the trace at its span. Screenshots at 1280 and 390 px, light
//! and dark, land in `.weft/test-output/browser/logs`.

use std::time::{Duration, Instant};
use weft_e2e::Stack;
use weft_e2e::otlp::trace_request;
use weft_e2e::web::{PASSWORD, Visitor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_page_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("logs");

    let stack = Stack::start().await;
    let email = "lena@shop.example";
    let mut lena = Visitor::new(&stack);
    let key = lena.sign_up(email, "Northwind Shop").await.shown("new-key");
    let (request, trace_id) = trace_request(3);
    let span_id = hex::encode(&request.resource_spans[0].scope_spans[0].spans[1].span_id);
    assert_eq!(stack.export(&key, &request).await, 200);

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let services = ["frontend", "checkout", "payments", "inventory"];
    let messages = [
        ("info", "GET /cart 200 in 12 ms"),
        ("debug", "cache hit for product page"),
        ("info", "order placed"),
        ("warn", "inventory below threshold, reordering"),
        ("info", "user signed in"),
        ("error", "upstream timed out after 2000 ms"),
    ];
    let mut lines = String::new();
    for i in 0..240u64 {
        let (level, message) = messages[(i * 7 % messages.len() as u64) as usize];
        let service = services[(i % services.len() as u64) as usize];
        let time = now_ms - (i * 13_700) % 3_300_000;
        lines.push_str(&format!(
            "{{\"time\":{time},\"level\":\"{level}\",\"msg\":\"{message}\",\"service\":\"{service}\",\"request_id\":\"req-{i:04}\",\"http\":{{\"method\":\"GET\",\"status\":200}}}}\n"
        ));
    }
    lines.push_str(&format!(
        "{{\"time\":{},\"level\":\"error\",\"msg\":\"card declined for customer, giving up after 3 attempts\",\"service\":\"payments\",\"customer\":\"O'Brien\",\"attempt\":3,\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}\n",
        now_ms - 1_000
    ));
    let response = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", &key)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lena.get("/logs").await.body.contains("card declined") {
        assert!(Instant::now() < deadline, "the lines were never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lena
        .get(&format!("/traces/{trace_id}"))
        .await
        .body
        .contains("waterfall")
    {
        assert!(Instant::now() < deadline, "the trace was never stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(root.join("frontend/e2e/logs-flow.mjs"))
        .current_dir(&root)
        .env("WEFT_QUERY_URL", format!("http://{}", stack.query))
        .env("WEFT_EMAIL", email)
        .env("WEFT_PASSWORD", PASSWORD)
        .env("WEFT_SCREENSHOTS", &screenshots)
        .env("WEFT_CHROMIUM", &chromium)
        .env("WEFT_TRACE_ID", &trace_id)
        .env("WEFT_SPAN_ID", &span_id)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (deploy/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "logs-flow.mjs failed ({}) after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}");
    stack.stop().await;
}
