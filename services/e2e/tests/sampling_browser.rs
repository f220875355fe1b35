//! The sampling page in a real browser: `frontend/e2e/sampling-flow.mjs` drives Debian's
//! chromium through the default policy, a validation error, a dry run over stored
//! traces, saving and resetting. Screenshots at 1280 and 390 px, light and dark, land in
//! `.weft/test-output/browser/sampling`.

use std::time::{Duration, Instant};
use weft_e2e::Stack;
use weft_e2e::otlp::{random_id, request, span, string_attribute};
use weft_e2e::web::{PASSWORD, Visitor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_the_sampling_policy_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("sampling");

    let stack = Stack::start().await;
    let email = "erin@shop.example";
    let mut erin = Visitor::new(&stack);
    let key = erin.sign_up(email, "Northwind Shop").await.shown("new-key");
    // Some traffic for the dry run: health checks and ordinary requests.
    let spans = (0..12)
        .map(|i| {
            let mut s = span(
                &random_id::<16>(),
                if i % 3 == 0 { "GET /healthz" } else { "GET /" },
            );
            if i % 3 == 0 {
                s.attributes
                    .push(string_attribute("http.route", "/healthz"));
            }
            s
        })
        .collect();
    assert_eq!(stack.export(&key, &request(spans)).await, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while erin.get("/traces").await.body.matches("<tr").count() < 13 {
        assert!(Instant::now() < deadline, "the 12 traces were never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(root.join("frontend/e2e/sampling-flow.mjs"))
        .current_dir(&root)
        .env("WEFT_QUERY_URL", format!("http://{}", stack.query))
        .env("WEFT_EMAIL", email)
        .env("WEFT_PASSWORD", PASSWORD)
        .env("WEFT_SCREENSHOTS", &screenshots)
        .env("WEFT_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (deploy/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sampling-flow.mjs failed ({}) after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}");
    stack.stop().await;
}
